"""Engines: target settings, build checks and the manifest on the CPU; real TensorRT builds where it exists.

Nothing here stands in for TensorRT: the CPU tests exercise the logic that runs before TensorRT is imported
(and the real "not installed" path on machines without it); the ``tensorrt`` tests build and run real
engines and skip, with the reason, where TensorRT, pycuda or a GPU is missing.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from swin_trt.engine.build import batch_profile, describe_parser_errors, inspect_onnx
from swin_trt.engine.environment import version_tuple
from swin_trt.engine.manifest import manifest_path, precision_summary
from swin_trt.engine.targets import resolve_target, target_for
from swin_trt.errors import UserError
from swin_trt.export import export_model

ROOT = Path(__file__).resolve().parents[1]
TRT_MISSING = importlib.util.find_spec("tensorrt") is None


def run_cli(*args):
    from swin_trt.cli.main import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def pico(tmp_path_factory):
    """swin_pico_test exported twice: static batch 2 and dynamic batch up to 4."""
    folder = tmp_path_factory.mktemp("pico")
    export_model("swin_pico_test", folder / "static.onnx", img_size=(64, 64), batch=2, check=False)
    export_model("swin_pico_test", folder / "dynamic.onnx", img_size=(64, 64), dynamic_batch=4, check=False)
    return folder


def tiny_graph(path: Path, op_type="Relu", input_shape=("batch", 3, 8, 8), functions=()):
    """A one-node ONNX file; ``op_type`` may be a plugin op (then it is not runnable, only inspectable)."""
    domain = "" if op_type == "Relu" else "swin_trt"
    node = helper.make_node(op_type, ["x"], ["y"], name="n0", domain=domain)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, input_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    opsets = [helper.make_opsetid("", 17)] + ([helper.make_opsetid("swin_trt", 1)] if domain else [])
    onnx.save(helper.make_model(graph, opset_imports=opsets, functions=list(functions)), path)
    return path


# --- targets ---------------------------------------------------------------------------------------------

def test_target_defaults_differ_where_the_hardware_does():
    server, orin, xavier = (resolve_target(t) for t in ("server", "orin", "xavier"))
    assert server.workspace_gib > orin.workspace_gib > xavier.workspace_gib
    assert not any(s.version_compatible or s.hardware_compat for s in (server, orin, xavier))
    assert orin.jetson and xavier.jetson and not server.jetson
    assert orin.dla and not server.dla and not xavier.dla
    assert "8.5" in xavier.note  # Xavier's newest TensorRT cannot build strongly typed networks


def test_target_overrides_and_their_checks():
    settings = resolve_target("server", workspace_gib=3, builder_opt_level=5, version_compatible=True,
                              hardware_compat=True)
    assert (settings.workspace_gib, settings.builder_opt_level) == (3, 5)
    assert settings.version_compatible and settings.hardware_compat
    assert resolve_target("orin", dla_core=1).dla
    for kwargs, message in [(dict(target="orin", hardware_compat=True), "not supported on Jetson"),
                            (dict(target="server", dla_core=0), "--dla-core"),
                            (dict(target="orin", dla_core=-1), ">= 0"),
                            (dict(target="server", builder_opt_level=6), "0 to 5"),
                            (dict(target="server", workspace_gib=0), "must be > 0"),
                            (dict(target="tx2"), "unknown target")]:
        with pytest.raises(UserError, match=message):
            resolve_target(**kwargs)


@pytest.mark.parametrize("tegra, capability, model, expected", [
    (True, "8.7", "NVIDIA Jetson AGX Orin Developer Kit", "orin"),
    (False, "8.7", None, "orin"),  # a container without /etc/nv_tegra_release
    (True, "7.2", None, "xavier"),
    (True, None, "NVIDIA Jetson Xavier NX Developer Kit", "xavier"),
    (True, None, None, "orin"),
    (False, "9.0", None, "server"),
    (False, None, None, "server"),
])
def test_target_detection(tegra, capability, model, expected):
    assert target_for(tegra, capability, model) == expected


def test_auto_target_on_this_machine_is_a_known_target():
    assert resolve_target("auto").name in ("server", "orin", "xavier")


# --- build argument checks (before TensorRT) ----------------------------------------------------------

def test_batch_profile():
    assert batch_profile([2]) is None
    assert batch_profile([2], opt_batch=2, max_batch=2) is None
    assert batch_profile([None]) == (1, 8, 8)
    assert batch_profile([None], export_max=4) == (1, 4, 4)
    assert batch_profile([None], opt_batch=4, max_batch=32) == (1, 4, 32)
    assert batch_profile([None], opt_batch=16) == (1, 16, 16)
    with pytest.raises(UserError, match="static batch of 2"):
        batch_profile([2], max_batch=4)
    with pytest.raises(UserError, match="smaller than --opt-batch"):
        batch_profile([None], opt_batch=8, max_batch=4)
    with pytest.raises(UserError, match="export's --dynamic-batch"):
        batch_profile([None], opt_batch=8, export_max=4)
    with pytest.raises(UserError, match=">= 1"):
        batch_profile([None], max_batch=0)


def test_inspect_onnx(pico, tmp_path):
    static, dynamic = inspect_onnx(pico / "static.onnx"), inspect_onnx(pico / "dynamic.onnx")
    assert static.inputs == [("input", [2, 3, 64, 64])] and dynamic.batch_dims == [None]
    assert not static.plugin_ops and "MatMul" in static.node_ops
    plugin = inspect_onnx(tiny_graph(tmp_path / "p.onnx", "SwinWindowPartition"))
    assert plugin.plugin_ops == ["SwinWindowPartition"]
    with pytest.raises(UserError, match="only the batch axis"):
        inspect_onnx(tiny_graph(tmp_path / "hw.onnx", input_shape=("batch", 3, "h", 8)))
    shadow = helper.make_function("swin_trt", "SwinWindowPartition", ["x"], ["y"],
                                  [helper.make_node("Identity", ["x"], ["y"])], [helper.make_opsetid("", 17)])
    with pytest.raises(UserError, match="named like swin-trt plugins"):
        inspect_onnx(tiny_graph(tmp_path / "f.onnx", "SwinWindowPartition", functions=[shadow]))


def test_parser_errors_name_node_op_and_reason(pico):
    graph = inspect_onnx(pico / "static.onnx")
    text = describe_parser_errors(Path("m.onnx"), [
        {"node": 3, "name": "", "op": "", "desc": "unsupported", "code": "UNSUPPORTED_NODE"},
        {"node": -1, "name": "", "op": "", "desc": "bad model", "code": "MODEL_DESERIALIZE_FAILED"}], graph)
    assert f"node 3 {graph.node_names[3]!r} ({graph.node_ops[3]}): unsupported [UNSUPPORTED_NODE]" in text
    assert "graph: bad model" in text
    plugin = describe_parser_errors(Path("m.onnx"), [
        {"node": 0, "name": "n0", "op": "SwinWindowAttention", "desc": "no creator", "code": "UNSUPPORTED_NODE"}],
        graph)
    assert "--plugins" in plugin


@pytest.mark.parametrize("args, message", [
    (["missing.onnx"], "does not exist"),
    (["{bad}"], "is not an ONNX model"),
    (["{dynamic}", "--opt-batch", "8", "--max-batch", "4"], "smaller than --opt-batch"),
    (["{static}", "--max-batch", "4"], "static batch of 2"),
    (["{static}", "--target", "orin", "--hardware-compat"], "not supported on Jetson"),
    (["{static}", "--builder-opt-level", "9"], "0<=x<=5"),
])
def test_build_rejects_bad_input_before_tensorrt(pico, tmp_path, args, message):
    (tmp_path / "bad.onnx").write_text("not a protobuf")
    paths = {"bad": tmp_path / "bad.onnx", "dynamic": pico / "dynamic.onnx", "static": pico / "static.onnx"}
    args = [a.format(**paths) for a in args]
    result = run_cli("build", *args, "-o", tmp_path / "m.engine")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "m.engine").exists()


# --- manifest helpers ----------------------------------------------------------------------------------

def test_precision_summary_of_a_quantized_fp16_network():
    layers = [("QUANTIZE", ["INT8"]), ("DEQUANTIZE", ["HALF"]), ("CONVOLUTION", ["HALF"]),
              ("QUANTIZE", ["INT8"]), ("DEQUANTIZE", ["HALF"]), ("MATRIX_MULTIPLY", ["HALF"]),
              ("PLUGIN_V3", ["HALF"]), ("SOFTMAX", ["FLOAT"]), ("SHAPE", ["INT64"]), ("CONSTANT", [])]
    summary = precision_summary(layers)
    assert summary["mode"] == "int8 (Q/DQ) + fp16 + fp32"
    assert summary["layers"] == 10 and summary["quantize_layers"] == 2 and summary["dequantize_layers"] == 2
    assert summary["plugin_layers"] == 1
    assert summary["layers_by_output_dtype"] == {"HALF": 5, "INT8": 2, "FLOAT": 1, "INT64": 1}
    assert summary["tensors_by_dtype"]["HALF"] == 5


def test_precision_summary_fp32_and_empty():
    assert precision_summary([("CONVOLUTION", ["FLOAT"]), ("ACTIVATION", ["FLOAT"])])["mode"] == "fp32"
    assert precision_summary([])["mode"] == "none"


def test_small_helpers():
    assert manifest_path("out/m.engine") == Path("out/m.engine.json")
    assert version_tuple("10.3.0.26") == (10, 3, 0, 26) and version_tuple("11.4.0.106-rc") == (11, 4, 0)


def test_name_check_script_sees_the_tensorrt_names_we_use():
    spec = importlib.util.spec_from_file_location("check_names", ROOT / "scripts" / "check_tensorrt_names.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    names = module.collect_names(module.SOURCES)
    for name in ("STRONGLY_TYPED", "parse_from_file", "node_name", "set_memory_pool_limit", "execute_async_v3",
                 "set_tensor_address", "phase_start", "IProgressMonitor", "get_tensor_profile_shape"):
        assert name in names, name
    assert not {"FP16", "INT8"} & set(names)  # precision flags are never set


# --- without TensorRT (this is the real path on machines that lack it) -----------------------------------

@pytest.mark.skipif(not TRT_MISSING, reason="TensorRT is installed here")
def test_build_without_tensorrt_says_how_to_get_it(pico, tmp_path):
    result = run_cli("build", pico / "static.onnx", "-o", tmp_path / "m.engine")
    assert result.exit_code == 2
    assert "TensorRT is not installed" in result.output
    assert "JetPack 6" in result.output and "pip install tensorrt" in result.output
    assert list(tmp_path.iterdir()) == []  # no engine, no manifest, no temporary file


@pytest.mark.skipif(not TRT_MISSING, reason="TensorRT is installed here")
def test_tensorrt_backend_without_tensorrt_says_how_to_get_it(tmp_path):
    from swin_trt.backends.base import open_backend

    (tmp_path / "m.engine").write_bytes(b"\0" * 16)
    with pytest.raises(UserError, match="pip install tensorrt"):
        open_backend(tmp_path / "m.engine")


def test_no_gpu_is_a_clear_user_error():
    from swin_trt.engine.device import gpu_info
    from swin_trt.engine.environment import require_gpu

    if gpu_info() is not None:
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="no usable NVIDIA GPU.*install the NVIDIA driver"):
        require_gpu()


# --- with TensorRT, pycuda and a GPU ------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpu_stack():
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    from swin_trt.engine.device import gpu_info

    if gpu_info() is None:
        pytest.skip("no CUDA GPU")


def _compare_with_onnxruntime(onnx_path, engine_path, batch_sizes, **backend_options):
    from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
    from swin_trt.backends.tensorrt import TensorRTBackend

    reference = OnnxRuntimeBackend(onnx_path)
    with TensorRTBackend(engine_path, **backend_options) as engine:
        assert engine.output_names == reference.output_names
        for count in batch_sizes:
            x = np.random.default_rng(count).standard_normal((count, 3, 64, 64)).astype(np.float32)
            for _ in range(2):  # the second run replays the CUDA graph where there is one
                got, want = engine.infer(x), reference.infer(x)
                assert [g.shape for g in got] == [w.shape for w in want]
                assert max(float(np.abs(g - w).max()) for g, w in zip(got, want)) <= 1e-3


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_static_batch_engine_matches_onnxruntime(gpu_stack, pico, tmp_path):
    from swin_trt.engine import build_engine

    result = build_engine(pico / "static.onnx", tmp_path / "static.engine", tf32=False, progress=False,
                          timing_cache=tmp_path / "timing.cache")
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest["profile"] is None and manifest["precision"]["mode"].startswith("fp32")
    assert manifest["stage"] == "build" and manifest["source"]["stage"] == "export"
    assert manifest["arch"] == "swin_pico_test" and "preprocessing" in manifest  # what infer reads
    assert (tmp_path / "timing.cache").is_file()
    assert {t["mode"] for t in manifest["io"]} == {"input", "output"}
    _compare_with_onnxruntime(pico / "static.onnx", result.path, [2])


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_dynamic_batch_engine_matches_onnxruntime(gpu_stack, pico, tmp_path):
    result = run_cli("build", pico / "dynamic.onnx", "-o", tmp_path / "dynamic.engine", "--no-tf32",
                     "--opt-batch", "2", "--no-progress")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "dynamic.engine.json").read_text())
    assert manifest["profile"] == [1, 2, 4]  # max from the export's --dynamic-batch
    _compare_with_onnxruntime(pico / "dynamic.onnx", tmp_path / "dynamic.engine", [1, 3, 4, 9])


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_cuda_graph_replay_matches_onnxruntime(gpu_stack, pico, tmp_path):
    pytest.importorskip("cuda.bindings.runtime", reason="cuda-python is not installed")
    from swin_trt.engine import build_engine

    result = build_engine(pico / "dynamic.onnx", tmp_path / "graph.engine", tf32=False, progress=False)
    _compare_with_onnxruntime(pico / "dynamic.onnx", result.path, [2, 4], cuda_graph=True)


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_plugin_graph_engine_matches_onnxruntime(gpu_stack, pico, tmp_path):
    pytest.importorskip("swin_trt.surgery", reason="the rewrite module swin_trt.surgery is not there yet")
    pytest.importorskip("swin_trt.cli.rewrite", reason="`swin-trt rewrite` is not there yet")
    from swin_trt.plugin_library import find_plugin_library

    try:
        library = find_plugin_library()
    except UserError as exc:
        pytest.skip(f"plugin library not built: {exc}")
    rewritten = tmp_path / "plugins.onnx"
    result = run_cli("rewrite", pico / "static.onnx", "-o", rewritten)
    assert result.exit_code == 0, result.output
    assert inspect_onnx(rewritten).plugin_ops, "the rewrite left no plugin nodes"
    from swin_trt.engine import build_engine

    built = build_engine(rewritten, tmp_path / "plugins.engine", plugins=library, tf32=False, progress=False)
    assert built.manifest["precision"]["plugin_layers"] > 0 and built.manifest["plugins"]["sha256"]
    _compare_with_onnxruntime(rewritten, built.path, [2])
