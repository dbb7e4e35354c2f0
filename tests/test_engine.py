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

from swin_trt.engine.build import batch_profile, inspect_onnx, parse_failure, profile_shapes, size_profile
from swin_trt.environment import version_tuple
from swin_trt.engine.manifest import manifest_path, precision_summary
from swin_trt.engine.targets import FALLBACK_TARGET, TARGETS, dla_unsupported, resolve_target, target_for
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
    server, thor, orin, xavier = (resolve_target(t) for t in ("server", "thor", "orin", "xavier"))
    assert server.workspace_gib > thor.workspace_gib > orin.workspace_gib > xavier.workspace_gib
    assert not any(s.version_compatible or s.hardware_compat for s in (server, thor, orin, xavier))
    assert orin.jetson and thor.jetson and xavier.jetson and not server.jetson
    assert orin.dla and not thor.dla and not server.dla and not xavier.dla  # DLA: AGX Orin only
    assert "8.5" in xavier.note  # Xavier's newest TensorRT cannot build strongly typed networks


def test_jetson_targets_say_which_tensorrt_each_jetpack_carries():
    assert dict(resolve_target("orin").tensorrt) == {"JetPack 6": "TensorRT 10.3",
                                                     "JetPack 7.2.2+": "TensorRT 11.4.1 (SBSA build)"}
    assert dict(resolve_target("thor").tensorrt) == {"JetPack 7.2.2+": "TensorRT 11.4.1 (SBSA build)"}
    assert resolve_target("server").tensorrt == ()
    assert resolve_target("orin").to_dict()["tensorrt"]  # and the manifest's target section records it


@pytest.mark.parametrize("version, supported", [
    ("10.3.0.30", True),    # JetPack 6
    ("10.7.0", True),       # the last 10.x with DLA
    ("10.8.0", False),
    ("11.1.0", False),      # 11.0 to 11.4.0: no DLA on Jetson
    ("11.4.0.106", False),
    ("11.4.1.2", True),     # JetPack 7.2.2+, SBSA build: strongly typed DLA on AGX Orin
    ("11.5.0", True),
])
def test_dla_needs_a_tensorrt_that_has_it_on_jetson(version, supported):
    why = dla_unsupported(version)
    assert (why is None) == supported
    if not supported:
        assert version in why and "11.4.1" in why and "10.3" in why


def test_target_overrides_and_their_checks():
    settings = resolve_target("server", workspace_gib=3, builder_opt_level=5, version_compatible=True,
                              hardware_compat=True)
    assert (settings.workspace_gib, settings.builder_opt_level) == (3, 5)
    assert settings.version_compatible and settings.hardware_compat
    assert resolve_target("orin", dla_core=1).dla
    for kwargs, message in [(dict(target="orin", hardware_compat=True), "not supported on Jetson"),
                            (dict(target="server", dla_core=0), "`dla_core` needs a board with DLA cores"),
                            (dict(target="orin", dla_core=-1), ">= 0"),
                            (dict(target="server", builder_opt_level=6), "0 to 5"),
                            (dict(target="server", workspace_gib=0), "must be > 0"),
                            (dict(target="tx2"), "unknown target")]:
        with pytest.raises(UserError, match=message):
            resolve_target(**kwargs)


@pytest.mark.parametrize("tegra, capability, model, expected", [
    (True, "8.7", "NVIDIA Jetson AGX Orin Developer Kit", "orin"),
    (False, "8.7", None, "orin"),  # a container without /etc/nv_tegra_release
    (True, "11.0", "NVIDIA Jetson AGX Thor Developer Kit", "thor"),
    (False, "10.1", None, "thor"),  # Thor as CUDA 12.8/12.9 named it
    (True, None, "NVIDIA Jetson AGX Thor Developer Kit", "thor"),
    (True, "7.2", None, "xavier"),
    (True, None, "NVIDIA Jetson Xavier NX Developer Kit", "xavier"),
    (True, None, None, "orin"),
    (False, "9.0", None, "server"),
    (False, None, None, "server"),
])
def test_target_detection(tegra, capability, model, expected):
    assert target_for(tegra, capability, model) == expected


def test_auto_target_on_this_machine():
    """auto reads the real machine (no fakes): with no Jetson GPU and no Tegra board, the documented
    fallback; on a Jetson, its family."""
    from swin_trt.device import gpu_info
    from swin_trt.engine.targets import DEVICE_TREE_MODEL, JETSON_BY_CAPABILITY, TEGRA_RELEASE

    info = gpu_info()
    capability = info.compute_capability if info else None
    board = DEVICE_TREE_MODEL.read_bytes().lower() if DEVICE_TREE_MODEL.is_file() else b""
    tegra = TEGRA_RELEASE.is_file() or b"jetson" in board
    resolved = resolve_target("auto").name
    assert resolved in TARGETS and resolved != "auto"
    if capability in JETSON_BY_CAPABILITY:
        assert resolved == JETSON_BY_CAPABILITY[capability]
    elif not tegra:
        assert resolved == FALLBACK_TARGET == "server"  # e.g. this CPU-only machine, or an H200 server
    else:
        assert resolved in ("orin", "thor", "xavier")


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
    with pytest.raises(UserError, match="smaller than `opt_batch`"):
        batch_profile([None], opt_batch=8, max_batch=4)
    with pytest.raises(UserError, match="export's `dynamic_batch`"):
        batch_profile([None], opt_batch=8, export_max=4)
    with pytest.raises(UserError, match=">= 1"):
        batch_profile([None], max_batch=0)


def test_inspect_onnx(pico, tmp_path):
    static, dynamic = inspect_onnx(pico / "static.onnx"), inspect_onnx(pico / "dynamic.onnx")
    assert static.inputs == [("input", [2, 3, 64, 64])] and dynamic.batch_dims == [None]
    assert not static.plugin_ops and "MatMul" in static.node_ops
    plugin = inspect_onnx(tiny_graph(tmp_path / "p.onnx", "SwinWindowPartition"))
    assert plugin.plugin_ops == ["SwinWindowPartition"]
    assert not static.any_size_inputs
    any_size = inspect_onnx(tiny_graph(tmp_path / "hw.onnx", input_shape=("batch", 3, "h", "w")))
    assert any_size.inputs == [("x", [None, 3, None, None])] and any_size.any_size_inputs == any_size.inputs
    for shape in (("batch", "c", 8, 8), ("batch", "n", 8)):
        with pytest.raises(UserError, match="only the batch, and the height and width"):
            inspect_onnx(tiny_graph(tmp_path / "c.onnx", input_shape=shape))
    shadow = helper.make_function("swin_trt", "SwinWindowPartition", ["x"], ["y"],
                                  [helper.make_node("Identity", ["x"], ["y"])], [helper.make_opsetid("", 17)])
    with pytest.raises(UserError, match="named like swin-trt plugins"):
        inspect_onnx(tiny_graph(tmp_path / "f.onnx", "SwinWindowPartition", functions=[shadow]))


def test_size_profile_of_graphs_of_any_size(tmp_path):
    any_size = inspect_onnx(tiny_graph(tmp_path / "hw.onnx", input_shape=("batch", 3, "h", "w")))
    sizes = ((448, 448), (576, 576), (1024, 1024))
    assert size_profile(any_size, sizes) == sizes
    assert size_profile(any_size, ((256, 320), (256, 320), (256, 320)), min_img_size=(256, 256)) == \
        ((256, 320),) * 3
    with pytest.raises(UserError, match="pass `img_size_range` MIN:OPT:MAX.*right from 256x256 up"):
        size_profile(any_size, None, min_img_size=(256, 256))
    with pytest.raises(UserError, match="MIN <= OPT <= MAX in the width"):
        size_profile(any_size, ((448, 448), (576, 300), (1024, 1024)))
    with pytest.raises(UserError, match="1 <= MIN"):
        size_profile(any_size, ((0, 448), (576, 576), (1024, 1024)))
    with pytest.raises(UserError, match="right only from 256x256 up.*raise MIN"):
        size_profile(any_size, ((224, 256), (576, 576), (1024, 1024)), min_img_size=(256, 256))
    height_only = inspect_onnx(tiny_graph(tmp_path / "h.onnx", input_shape=("batch", 3, "h", 640)))
    assert size_profile(height_only, ((448, 640), (576, 640), (1024, 640))) == ((448, 640), (576, 640), (1024, 640))
    with pytest.raises(UserError, match="fixed width of 640"):
        size_profile(height_only, sizes)
    static = inspect_onnx(tiny_graph(tmp_path / "s.onnx", input_shape=("batch", 3, 224, 224)))
    assert size_profile(static) is None
    with pytest.raises(UserError, match="fixed size.*drop `img_size_range`"):
        size_profile(static, sizes)


def test_profile_shapes_combine_the_batch_and_size_profiles():
    sizes = ((448, 448), (576, 640), (1024, 1024))
    assert profile_shapes([None, 3, None, None], (1, 4, 8), sizes) == [(1, 3, 448, 448), (4, 3, 576, 640),
                                                                       (8, 3, 1024, 1024)]
    assert profile_shapes([2, 3, None, None], None, sizes) == [(2, 3, 448, 448), (2, 3, 576, 640),
                                                               (2, 3, 1024, 1024)]
    assert profile_shapes([None, 3, 224, 224], (1, 2, 4), None) == [(1, 3, 224, 224), (2, 3, 224, 224),
                                                                     (4, 3, 224, 224)]


def test_parse_failure_says_what_to_do(pico, tmp_path):
    """TensorRT's parser errors are printed by Polygraphy, one per node; the UserError adds the fix."""
    plain = parse_failure(Path("m.onnx"), inspect_onnx(pico / "static.onnx"), "Could not parse ONNX correctly")
    assert "'m.onnx'" in str(plain) and "Could not parse" in str(plain) and "`opset`" in str(plain)
    plugin = parse_failure(Path("p.onnx"), inspect_onnx(tiny_graph(tmp_path / "p.onnx", "SwinWindowAttention")),
                           "Could not parse ONNX correctly")
    assert "`plugins`" in str(plugin) and "plugins/README.md" in str(plugin)


def test_polygraphy_takes_the_options_the_build_passes():
    """The loaders and keyword arguments build.py uses exist in the Polygraphy installed here."""
    import inspect

    from swin_trt.environment import MIN_POLYGRAPHY, import_polygraphy

    pytest.importorskip("polygraphy", reason="Polygraphy is not installed (pip install 'swin-trt[trt]')")
    pg = import_polygraphy()
    assert version_tuple(pg.version) >= MIN_POLYGRAPHY
    inspect.signature(pg.trt.CreateConfig).bind(
        tf32=False, profiles=[pg.trt.Profile().add("input", (1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))],
        load_timing_cache="t.cache", memory_pool_limits={}, builder_optimization_level=3,
        hardware_compatibility_level=None, version_compatible=False, progress_monitor=None)
    inspect.signature(pg.trt.NetworkFromOnnxPath).bind("m.onnx", strongly_typed=True)
    inspect.signature(pg.trt.EngineBytesFromNetwork).bind((None, None, None), config=None,
                                                          save_timing_cache="t.cache")
    assert issubclass(pg.PolygraphyException, Exception)


@pytest.mark.parametrize("args, message", [
    (["missing.onnx"], "does not exist"),
    (["{bad}"], "is not an ONNX model"),
    (["{dynamic}", "--opt-batch", "8", "--max-batch", "4"], "smaller than --opt-batch"),
    (["{static}", "--max-batch", "4"], "static batch of 2"),
    (["{static}", "--target", "orin", "--hardware-compat"], "not supported on Jetson"),
    (["{static}", "--builder-opt-level", "9"], "0<=x<=5"),
    (["{static}", "--img-size-range", "64x64:64x64:64x64"], "fixed size"),
    (["{any_size}"], "pass --img-size-range MIN:OPT:MAX"),
    (["{any_size}", "--img-size-range", "448x448:576x576"], "is not MIN:OPT:MAX"),
    (["{any_size}", "--img-size-range", "448x448:big:1024"], "is not N or HxW"),
    (["{any_size}", "--img-size-range", "1024x1024:576x576:448x448"], "MIN <= OPT <= MAX in the height"),
    (["{any_size}", "--img-size-range", "448:576:1024", "--compare"], "does not take --img-size-range"),
])
def test_build_rejects_bad_input_before_tensorrt(pico, tmp_path, args, message):
    (tmp_path / "bad.onnx").write_text("not a protobuf")
    tiny_graph(tmp_path / "any_size.onnx", input_shape=("batch", 3, "h", "w"))
    paths = {"bad": tmp_path / "bad.onnx", "dynamic": pico / "dynamic.onnx", "static": pico / "static.onnx",
             "any_size": tmp_path / "any_size.onnx"}
    args = [a.format(**paths) for a in args]
    result = run_cli("build", *args, "-o", tmp_path / "m.engine")
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "m.engine").exists() and not (tmp_path / "m.engine.json").exists()


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
    # Parsing, the config and the build are Polygraphy's now; these are the calls swin-trt still makes.
    for name in ("MemoryPoolType", "WORKSPACE", "AMPERE_PLUS", "DLA_core", "GPU_FALLBACK", "num_DLA_cores",
                 "plugins_to_serialize", "load_library", "get_creator", "execute_async_v3", "set_tensor_address",
                 "phase_start", "IProgressMonitor", "get_tensor_profile_shape"):
        assert name in names, name
    assert not {"FP16", "INT8", "PREFER_PRECISION_CONSTRAINTS"} & set(names)  # precision flags are never set


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
    from swin_trt.device import gpu_info
    from swin_trt.environment import require_gpu

    if gpu_info() is not None:
        pytest.skip("this machine has a GPU")
    with pytest.raises(UserError, match="no usable NVIDIA GPU.*install the NVIDIA driver"):
        require_gpu()


# --- build --compare: the bad input it refuses first, and its variants (CPU) --------------------------------

def test_compare_variants_are_the_same_graph_rewritten_four_ways(pico, tmp_path):
    from swin_trt.engine.compare import VARIANTS, make_variants
    from swin_trt.ops import schema

    paths = make_variants(pico / "static.onnx", tmp_path)
    assert list(paths) == [v.name for v in VARIANTS] and len(paths) == 4
    for variant in VARIANTS:
        graph = inspect_onnx(paths[variant.name])
        assert graph.inputs == inspect_onnx(pico / "static.onnx").inputs
        windows = {schema.PARTITION, schema.REVERSE} & set(graph.plugin_ops)
        assert bool(windows) == (variant.window_ops == "plugin")
        assert (schema.ATTENTION in graph.plugin_ops) == variant.fuse_attention
        sidecar = json.loads(paths[variant.name].with_name(paths[variant.name].name + ".json").read_text())
        assert sidecar["rewrite"]["variant"] == variant.to_dict() | {"fuse_gathers": False}  # not a --compare variant
    with pytest.raises(UserError, match="already has plugin nodes"):
        make_variants(paths[VARIANTS[1].name], tmp_path / "again")


@pytest.mark.parametrize("args, message", [
    (["--variant", "a={static}"], "add --compare"),
    (["--compare", "--variant", "no-equals-sign"], "NAME=PATH"),
    (["--compare", "--variant", "a={static}", "--variant", "a={static}"], "given twice"),
    (["--compare", "--variant", "a={static}", "--variant", "b={dynamic}"], "the same graph"),
    (["--compare", "--variant", "a=missing.onnx"], "does not exist"),
    (["--compare", "--compare-runs", "0", "--variant", "a={static}"], "--compare-runs 0"),
])
def test_build_compare_rejects_bad_input_before_tensorrt(pico, tmp_path, args, message):
    paths = {"dynamic": pico / "dynamic.onnx", "static": pico / "static.onnx"}
    result = run_cli("build", pico / "static.onnx", *[a.format(**paths) for a in args], "-o", tmp_path / "m.engine")
    assert result.exit_code == 2 and message in result.output, result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not TRT_MISSING, reason="TensorRT is installed here")
def test_build_compare_without_tensorrt_says_so_before_rewriting(pico, tmp_path):
    result = run_cli("build", pico / "static.onnx", "-o", tmp_path / "m.engine", "--compare")
    assert result.exit_code == 2 and "TensorRT is not installed" in result.output
    assert "rewriting" not in result.output and list(tmp_path.iterdir()) == []


# --- with TensorRT, pycuda and a GPU ------------------------------------------------------------------

@pytest.fixture(scope="module")
def gpu_stack():
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    pytest.importorskip("polygraphy", reason="Polygraphy is not installed (pip install 'swin-trt[trt]')")
    from swin_trt.device import gpu_info

    if gpu_info() is None:
        pytest.skip("no CUDA GPU")


def _plugin_library():
    from swin_trt.plugin_library import find_plugin_library

    try:
        return find_plugin_library()
    except UserError as exc:
        pytest.skip(f"plugin library not built: {exc}")


def _compare_with_onnxruntime(onnx_path, engine_path, batch_sizes, **backend_options):
    """Runs both on random inputs; returns the batch sizes of the CUDA graphs the engine holds."""
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
        return sorted(shape[0] for shape in engine.graphs)  # graphs are keyed by input shape


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
    assert manifest["polygraphy"] and (tmp_path / "timing.cache").is_file()
    assert {t["mode"] for t in manifest["io"]} == {"input", "output"}
    assert _compare_with_onnxruntime(pico / "static.onnx", result.path, [2]) == []  # no graphs unless asked


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
    captured = _compare_with_onnxruntime(pico / "dynamic.onnx", result.path, [2, 4], cuda_graph=True)
    assert captured == [2, 4]  # one graph captured per batch size, and replayed on the second run


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_plugin_graph_engine_matches_onnxruntime(gpu_stack, pico, tmp_path):
    library = _plugin_library()
    rewritten = tmp_path / "plugins.onnx"
    result = run_cli("rewrite", pico / "static.onnx", "-o", rewritten, "--fuse-attention")
    assert result.exit_code == 0, result.output
    assert len(inspect_onnx(rewritten).plugin_ops) == 3, "every plugin family in the engine"
    from swin_trt.engine import build_engine

    built = build_engine(rewritten, tmp_path / "plugins.engine", plugins=library, tf32=False, progress=False)
    assert built.manifest["precision"]["plugin_layers"] > 0 and built.manifest["plugins"]["sha256"]
    _compare_with_onnxruntime(rewritten, built.path, [2])


@pytest.fixture(scope="module")
def any_size_backbone(gpu_stack, tmp_path_factory):
    """swin_pico_test's four stage maps for any input size (``export --features --dynamic-size``), rewritten
    with every plugin family (``rewrite --fuse-attention``): the graph a dense model ships."""
    folder = tmp_path_factory.mktemp("any_size")
    source, rewritten = folder / "backbone.onnx", folder / "backbone.rw.onnx"
    result = run_cli("export", "--arch", "swin_pico_test", "--features", "--dynamic-size", "--img-size", "160x192",
                     "--dynamic-batch", "2", "-o", source)
    assert result.exit_code == 0, result.output
    result = run_cli("rewrite", source, "-o", rewritten, "--fuse-attention", "--strict")
    assert result.exit_code == 0, result.output
    return source, rewritten


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_engine_with_an_image_size_profile_runs_at_two_sizes(any_size_backbone, tmp_path):
    """One engine from a graph of any size (partition, reverse and attention plugins reading the size from
    their inputs), built for 160x160 to 256x288, against ONNX Runtime on the export at two sizes, one of them
    padded (stages not multiples of the window)."""
    import onnxruntime as ort

    from swin_trt.engine import build_engine, environment

    source, rewritten = any_size_backbone
    graph = inspect_onnx(rewritten)
    assert set(graph.plugin_ops) == {"SwinWindowPartition", "SwinWindowReverse", "SwinWindowAttention"}
    assert graph.any_size_inputs, "the rewritten graph keeps dynamic height and width"
    library = _plugin_library()
    built = build_engine(rewritten, tmp_path / "any.engine", plugins=library, tf32=False, progress=False,
                         img_size_range=((160, 160), (192, 224), (256, 288)))
    assert built.manifest["img_size_profile"] == [[160, 160], [192, 224], [256, 288]]
    assert built.manifest["profile"] == [1, 2, 2] and built.manifest["precision"]["plugin_layers"] > 0
    assert "image size profile min/opt/max 160x160/192x224/256x288" in built.describe()

    trt = environment.import_tensorrt()
    pg = environment.import_polygraphy()
    environment.load_plugins(trt, library)
    reference = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    names = [o.name for o in reference.get_outputs()]
    with pg.trt.TrtRunner(pg.trt.EngineFromBytes(built.path.read_bytes())) as runner:
        for batch, height, width in ((2, 192, 224), (1, 256, 288)):  # 256x288: the last stage 8x9, padded
            x = np.random.default_rng(height).standard_normal((batch, 3, height, width)).astype(np.float32)
            got = runner.infer({"input": x})
            for name, want in zip(names, reference.run(None, {"input": x})):
                assert got[name].shape == want.shape, (name, height, width)
                assert float(np.abs(got[name] - want).max()) <= 1e-3, (name, height, width)


# --- every precision: FP32, FP16 and INT8 (Q/DQ) engines against the reference -------------------------

# Cosine of the engine's logits with the FP32 export in ONNX Runtime (the reference), and with the very graph
# the engine was built from, run in ONNX Runtime (plugins lowered, Q/DQ computed as TensorRT defines them).
PRECISION_BOUNDS = {"fp32": (0.99999, 0.99999), "fp16": (0.999, 0.9995), "int8": (0.99, 0.995)}


@pytest.fixture(scope="module")
def precision_graphs(gpu_stack, pico, photo_dir, tmp_path_factory):
    """The static pico export rewritten both ways (partition/reverse as plugins, or native) and quantized."""
    from swin_trt.precision.calibrate_stage import calibrate_file
    from swin_trt.precision.quantize_stage import QuantizeRequest, quantize_file
    from swin_trt.surgery.rewrite_stage import rewrite_file

    folder = tmp_path_factory.mktemp("precisions")
    graphs = {}
    for window_ops in ("plugin", "native"):
        rewritten = folder / f"pico.{window_ops}.onnx"
        rewrite_file(pico / "static.onnx", rewritten, window_ops=window_ops)
        calib = folder / f"pico.{window_ops}.calib.json"
        calibrate_file(rewritten, photo_dir, calib, min_images=1, progress=False)
        graphs[window_ops, "fp32"] = rewritten
        for precision in ("fp16", "int8"):
            graphs[window_ops, precision] = folder / f"pico.{window_ops}.{precision}.onnx"
            request = QuantizeRequest(precision, calib=calib if precision == "int8" else None)
            quantize_file(rewritten, graphs[window_ops, precision], request, log=lambda line: None)
    return graphs


def _cosine(a, b) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.tensorrt
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8"])
@pytest.mark.parametrize("window_ops", ["plugin", "native"])
def test_engine_of_every_precision_matches_the_reference(precision_graphs, pico, photo_dir, tmp_path, precision,
                                                         window_ops):
    from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
    from swin_trt.backends.tensorrt import TensorRTBackend
    from swin_trt.engine import build_engine
    from swin_trt.precision.calibrate_stage import preprocessor_for
    from swin_trt.precision.evaluate import load_pixels

    plugins = _plugin_library() if window_ops == "plugin" else None
    graph = precision_graphs[window_ops, precision]
    built = build_engine(graph, tmp_path / f"{precision}.engine", plugins=plugins, tf32=False, progress=False)
    summary = built.manifest["precision"]
    if precision == "int8":
        assert summary["mode"].startswith("int8 (Q/DQ)") and summary["quantize_layers"] > 0
    else:
        assert summary["quantize_layers"] == 0 and precision in summary["mode"]
    assert (summary["plugin_layers"] > 0) == (window_ops == "plugin")
    pixels = load_pixels(photo_dir, preprocessor_for(graph)[0], 6)
    with TensorRTBackend(built.path, plugins=plugins) as engine:
        logits = engine.infer(pixels)[0]
    reference = OnnxRuntimeBackend(pico / "static.onnx").infer(pixels)[0]
    same_graph = OnnxRuntimeBackend(graph).infer(pixels)[0]
    vs_reference, vs_graph = PRECISION_BOUNDS[precision]
    assert _cosine(logits, reference) >= vs_reference, precision
    assert _cosine(logits, same_graph) >= vs_graph, precision
    if precision == "fp32":
        assert float(np.abs(logits - reference).max()) <= 1e-3


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_build_compare_keeps_the_fastest_variant_and_records_all(gpu_stack, pico, tmp_path):
    from swin_trt.engine.compare import VARIANTS

    _plugin_library()
    result = run_cli("build", pico / "static.onnx", "-o", tmp_path / "best.engine", "--compare", "--no-progress",
                     "--compare-runs", "5", "--compare-warmup", "2")
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "best.engine.json").read_text())
    section = manifest["compare"]
    rows = section["variants"]
    assert [r["name"] for r in rows] == [v.name for v in VARIANTS]
    fastest = min(rows, key=lambda r: r["median_ms"])
    assert section["chosen"] == fastest["name"] and [r["chosen"] for r in rows].count(True) == 1
    assert all(r["min_ms"] <= r["median_ms"] <= r["max_ms"] for r in rows)
    assert section["source"]["sha256"] and manifest["engine"] == "best.engine"
    assert "compared 4 variants" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.engine", "best.engine.json"]
