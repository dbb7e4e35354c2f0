"""``swin-trt package --triton / --deepstream``, the serve repository, and ``export --fold-normalization``.

Every config.pbtxt is parsed with Triton's own schema (tritonclient's model_config protobuf). An engine is
opaque bytes to ``package`` (it reads the manifest ``swin-trt build`` writes, never deserializes the plan),
so the engine cases use a plan file and a manifest of exactly the shape build writes.
"""

from __future__ import annotations

import configparser
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
from swin_trt.preprocess import Preprocessor
from swin_trt.export import export_model
from swin_trt.io import read_sidecar, sha256_file, write_json
from swin_trt.ops import schema

pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="tritonclient (pip install 'swin-trt[serve]')")

from swin_trt import triton_config as model_config  # noqa: E402
from swin_trt.triton_config import read_config  # noqa: E402

DEMO_IMAGES = Path(__file__).resolve().parents[1] / "swin_trt" / "assets" / "demo_images"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The demo model: float export (dynamic batch), its rewritten graph, and a float255-folded export."""
    from swin_trt.surgery.rewrite_stage import rewrite_file

    folder = tmp_path_factory.mktemp("package")
    export_model("swin_demo", folder / "demo.onnx", dynamic_batch=8, check=False)
    export_model("swin_demo", folder / "pixels.onnx", dynamic_batch=8, check=False, fold_normalization="float255")
    rewrite_file(folder / "demo.onnx", folder / "demo.rewritten.onnx")
    return folder


def fake_engine(folder: Path, source: Path, plugins: Path | None, precision: str = "int8 (Q/DQ) + fp16 + fp32",
                dtype: str = "FLOAT") -> Path:
    """A plan file and the manifest `swin-trt build` writes beside it (package never opens the plan)."""
    engine = folder / "model.engine"
    engine.write_bytes(b"opaque TensorRT plan bytes")
    manifest = {**read_sidecar(source), "stage": "build", "engine": engine.name, "tensorrt": "10.3.0",
                "gpu": {"name": "Orin", "compute_capability": "8.7"},
                "target": {"name": "orin", "version_compatible": False},
                "precision": {"mode": precision, "plugin_layers": 36 if plugins else 0},
                "plugins": {"path": str(plugins), "sha256": sha256_file(plugins)} if plugins else None,
                "io": [{"name": "input", "shape": [-1, 3, 112, 112], "dtype": dtype, "mode": "input"},
                       {"name": "logits", "shape": [-1, 12], "dtype": "FLOAT", "mode": "output"}],
                "profile": [1, 4, 8]}
    write_json(folder / "model.engine.json", manifest)
    return engine


def test_export_fold_normalization_equals_the_float_export(models):
    """uint8 and float255 inputs, normalised inside the graph, give the float export's logits (1e-4)."""
    export_model("swin_demo", models / "u8.onnx", dynamic_batch=8, check=False, fold_normalization="uint8")
    reference = Preprocessor.from_sidecar(read_sidecar(models / "demo.onnx"))
    pixels = np.stack([reference.to_uint8(Image.open(p)) for p in sorted(DEMO_IMAGES.glob("*/00[01].png"))])
    with OnnxRuntimeBackend(models / "demo.onnx") as float_model:
        expected = float_model.infer_padded(reference.normalize(pixels))[0]
    for name, dtype in (("pixels.onnx", "float32"), ("u8.onnx", "uint8")):
        sidecar = read_sidecar(models / name)
        assert sidecar["folded_normalization"]["std"] == [0.229, 0.224, 0.225]
        assert sidecar["preprocessing"]["scale"] == "0..255" and sidecar["preprocessing"]["dtype"] == dtype
        with OnnxRuntimeBackend(models / name) as folded:
            assert folded.dtype == np.dtype(dtype)
            # the folded sidecar's preprocessing feeds 0..255 pixels: every stage works unchanged
            got = folded.infer_padded(Preprocessor.from_sidecar(sidecar).normalize(pixels))[0]
        np.testing.assert_allclose(got, expected, atol=1e-4)
        assert (got.argmax(1) == expected.argmax(1)).all()


def test_triton_bundle_of_an_onnx_graph_is_its_lowered_cpu_twin(cli, models, tmp_path):
    repository = tmp_path / "repo"
    cli("package", models / "demo.rewritten.onnx", "--triton", "-o", repository, "--name", "swin_cpu")
    config = read_config(repository / "swin_cpu" / "config.pbtxt")
    assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 8
    assert config.dynamic_batching.max_queue_delay_microseconds == 100
    assert list(config.input[0].dims) == [3, 112, 112] and config.output[0].label_filename == "labels.txt"
    assert (repository / "swin_cpu" / "labels.txt").read_text().splitlines()[:2] == ["astronaut", "brick"]
    parameters = json.loads(config.parameters["swin_trt"].string_value)
    assert parameters["preprocessing"]["crop"] == [112, 112] and len(parameters["class_names"]) == 12
    twin = onnx.load(str(repository / "swin_cpu" / "1" / "model.onnx"))
    rewritten = onnx.load(str(models / "demo.rewritten.onnx"))
    assert any(n.op_type in schema.OP_TYPES for n in rewritten.graph.node)
    assert not any(n.op_type in schema.OP_TYPES for n in twin.graph.node)
    batch = np.random.default_rng(0).standard_normal((3, 3, 112, 112)).astype(np.float32)
    import onnxruntime as ort

    session = ort.InferenceSession(twin.SerializeToString(), providers=["CPUExecutionProvider"])
    with OnnxRuntimeBackend(models / "demo.rewritten.onnx") as reference:
        np.testing.assert_allclose(session.run(None, {"input": batch})[0], reference.infer(batch)[0], atol=1e-4)
    assert "tritonserver --model-repository " + str(repository.resolve()) in (repository / "README.md").read_text()
    cli("package", models / "demo.rewritten.onnx", "--triton", "-o", repository, "--name", "swin_cpu", expect=2)


def plugin_build(folder: Path, registering: bool = True) -> Path:
    """A build folder as CMake leaves it on a TensorRT machine: the plugin library and, beside it, the library
    that registers it at load (package never opens either; the bytes stand for the files)."""
    folder.mkdir(parents=True, exist_ok=True)
    library = folder / "libswin_trt_plugins.so"
    library.write_bytes(b"the plugin library the engine was built with")
    if registering:
        (folder / "libswin_trt_plugins_autoreg.so").write_bytes(b"registers the plugins when dlopened")
    return library


def test_triton_bundle_of_an_engine_loads_its_plugins(cli, models, tmp_path):
    library = plugin_build(tmp_path / "build")
    registering = library.with_name("libswin_trt_plugins_autoreg.so")
    engine = fake_engine(tmp_path, models / "demo.rewritten.onnx", library)
    repository = tmp_path / "repo"
    cli("package", engine, "--triton", "-o", repository, "--instances", 2)
    folder = repository / "model"
    config = read_config(folder / "config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 8
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]  # the engine's opt and max
    assert config.instance_group[0].kind == config.instance_group[0].KIND_GPU and config.instance_group[0].count == 2
    assert (folder / "1" / "model.plan").read_bytes() == engine.read_bytes()
    # both libraries, side by side: the registering one finds the plugins beside itself ($ORIGIN)
    assert (folder / "1" / library.name).read_bytes() == library.read_bytes()
    assert (folder / "1" / registering.name).read_bytes() == registering.read_bytes()
    readme = (repository / "README.md").read_text()
    # Triton only dlopens the library it is given: that must be the one that registers the creators at load
    assert (f"tritonserver --model-repository {repository.resolve()} "
            f"--backend-config=tensorrt,plugins={repository.resolve() / 'model' / '1' / registering.name}") in readme
    assert "TensorRT 10.3.0" in readme and "dlopen" in readme and "registers the swin_trt plugin creators" in readme
    assert f"model/1/{library.name}" in readme and f"model/1/{registering.name}" in readme
    # --plugins may name either library of a build
    cli("package", engine, "--triton", "-o", tmp_path / "repo3", "--plugins", registering)
    assert (tmp_path / "repo3" / "model" / "1" / library.name).is_file()
    # a different plugin build than the engine's is refused, and nothing is written
    other = tmp_path / "other.so"
    other.write_bytes(b"another build")
    result = cli("package", engine, "--triton", "-o", tmp_path / "repo2", "--plugins", other, expect=2)
    assert "not the one model.engine was built with" in result.output
    assert not (tmp_path / "repo2" / "model").exists()


def test_bundles_need_the_registering_library(cli, models, tmp_path):
    """A build without libswin_trt_plugins_autoreg.so (CMake found no libnvinfer) cannot make a bundle that
    loads: both commands say which library is missing and how to build it, and write nothing."""
    library = plugin_build(tmp_path / "headers_only_build", registering=False)
    engine = fake_engine(tmp_path, models / "pixels.onnx", library)
    for args, output in ((["--triton"], tmp_path / "repo"), (["--deepstream"], tmp_path / "ds")):
        result = cli("package", engine, *args, "-o", output, expect=2)
        assert "libswin_trt_plugins_autoreg.so not found" in result.output, result.output
        assert "--target swin_trt_plugins_autoreg" in result.output and "libnvinfer" in result.output
        assert not output.exists() or not any(output.iterdir())


def test_serve_repository_config_parses_with_tritons_schema(models, tmp_path):
    from swin_trt.serving.model_info import describe_model
    from swin_trt.serving.serve_repository import ServeOptions, write_serve_repository

    folder = write_serve_repository(describe_model(models / "demo.onnx"), tmp_path,
                                    ServeOptions("demo", max_batch=16, queue_delay_us=500, instances=2))
    config = read_config(folder / "config.pbtxt")
    assert config.backend == "python" and config.max_batch_size == 16 and config.instance_group[0].count == 2
    assert config.dynamic_batching.max_queue_delay_microseconds == 500
    assert config.input[0].name == "pixels" and config.input[0].data_type == model_config.schema().TYPE_UINT8
    assert "from swin_trt.serving.triton_model import TritonPythonModel" in (folder / "1" / "model.py").read_text()


def _nvinfer(path: Path) -> dict:
    parser = configparser.ConfigParser(inline_comment_prefixes=None, comment_prefixes=("#",))
    parser.read(path)
    return dict(parser["property"])


def test_deepstream_bundle_of_a_folded_engine(cli, models, tmp_path):
    library = plugin_build(tmp_path / "build")
    engine = fake_engine(tmp_path, models / "pixels.onnx", library)
    bundle = tmp_path / "ds"
    cli("package", engine, "--deepstream", "-o", bundle)
    config = _nvinfer(bundle / "config_infer_swin.txt")
    # nvinfer dlopens custom-lib-path and nothing more: the library that registers the plugins at load
    assert config["custom-lib-path"] == "libswin_trt_plugins_autoreg.so"
    assert (bundle / "libswin_trt_plugins_autoreg.so").is_file() and (bundle / library.name).is_file()
    assert "registers the swin_trt plugin creators" in (bundle / "README.md").read_text()
    assert config["network-type"] == "1" and config["model-engine-file"] == "model.engine"
    assert config["batch-size"] == "8" and config["network-mode"] == "1"  # int8 engine
    assert float(config["net-scale-factor"]) == 1.0 and config["offsets"] == "0.0;0.0;0.0"  # folded into the graph
    assert config["infer-dims"] == "3;112;112" and config["output-blob-names"] == "logits"
    assert (bundle / config["labelfile-path"]).read_text().strip().split(";")[:2] == ["astronaut", "brick"]
    assert (bundle / "model.engine").read_bytes() == engine.read_bytes()


def test_deepstream_refuses_a_per_channel_std_and_says_how_to_fold(cli, models, tmp_path):
    result = cli("package", models / "demo.onnx", "--deepstream", "-o", tmp_path / "ds", expect=2)
    assert "--fold-normalization float255" in result.output and not (tmp_path / "ds").exists()
    cli("package", models / "pixels.onnx", "--deepstream", "-o", tmp_path / "ok")
    config = _nvinfer(tmp_path / "ok" / "config_infer_swin.txt")
    assert config["onnx-file"] == "model.onnx" and "custom-lib-path" not in config  # no plugin nodes: none needed
