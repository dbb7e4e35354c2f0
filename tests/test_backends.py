"""open_backend: each backend takes the options it honours; any other option is an error that names it."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from swin_trt.backends.base import open_backend
from swin_trt.cli.main import main
from swin_trt.errors import UserError


def test_ort_honours_its_options(pico_dynamic):
    with open_backend(pico_dynamic, threads=1, spinning=False, int8="exact") as backend:
        options = backend.session.get_session_options()
        assert options.intra_op_num_threads == 1
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_a_misspelled_option_is_an_error_naming_it(pico_dynamic):
    with pytest.raises(UserError, match="unknown backend option 'thread'"):
        open_backend(pico_dynamic, thread=1)


@pytest.mark.parametrize("model", ["model.engine", "torch:swin_pico_test"])
def test_threads_on_a_backend_without_them_is_an_error(model, tmp_path):
    """Checked before the backend opens: no TensorRT or GPU is needed to be told."""
    with pytest.raises(UserError, match="cannot honour threads=2: it sets ONNX Runtime's intra-op threads"):
        open_backend(str(tmp_path / model) if model.endswith(".engine") else model, threads=2)


def test_the_spinning_hint_is_ignored_where_there_is_nothing_to_tune():
    with open_backend("torch:swin_pico_test", spinning=False) as backend:
        assert backend.name == "torch"


def test_infer_threads_on_the_torch_backend_is_exit_2(tmp_path):
    from PIL import Image

    from swin_trt.video.synth import sample_images

    image = tmp_path / "chelsea.jpg"
    Image.fromarray(sample_images(["chelsea"])[0]).save(image)
    result = CliRunner().invoke(main, ["infer", str(image), "--model", "torch:swin_pico_test", "--threads", "2"])
    assert result.exit_code == 2 and "the torch backend cannot honour threads=2" in result.output


def test_a_graph_onnx_runtime_cannot_load_is_a_user_error(tmp_path):
    """An op ONNX Runtime lacks: the error names the file and the op, as every command then prints it (exit 2)."""
    import onnx
    from onnx import TensorProto, helper

    from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
    from swin_trt.errors import UserError

    node = helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "custom.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                      helper.make_opsetid("com.example", 1)]), str(path))
    with pytest.raises(UserError, match=r"cannot load '.*custom.onnx'.*Frobnicate"):
        OnnxRuntimeBackend(path)
