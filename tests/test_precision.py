"""`swin-trt quantize`: FP16 with float32 islands, INT8 QDQ around MatMuls and int8 window plugins, mixed
INT8/FP16 under a budget; every graph passes onnx.checker and runs in ONNX Runtime with the plugins."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto

from swin_trt.backends.onnxruntime import create_session
from swin_trt.ops.lowering import lower_plugins
from swin_trt.precision.calibration import with_outputs
from swin_trt.precision.evaluate import agreement, load_pixels, run_logits

from conftest import rounding_atol


@pytest.fixture(scope="module")
def calib(pico_rewritten, photo_dir, tmp_path_factory):
    from swin_trt.precision.calibrate_stage import calibrate_file

    out = tmp_path_factory.mktemp("calib") / "calib.json"
    calibrate_file(pico_rewritten, photo_dir, out, min_images=1, progress=False)
    return out


@pytest.fixture(scope="module")
def int8(cli, pico_rewritten, calib, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8") / "pico.int8.onnx"
    result = cli("quantize", pico_rewritten, "--precision", "int8", "--calib", calib, "-o", out)
    return out, result.output


def _producers(model):
    return {out: node for node in model.graph.node for out in node.output}


def _runtime_types(model: onnx.ModelProto, names: list[str], pixels: np.ndarray) -> dict[str, np.dtype]:
    """The dtypes ONNX Runtime actually produces for ``names`` (plugins lowered): types checked by running."""
    probe = with_outputs(model, names)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    outputs = session.run(names, {session.get_inputs()[0].name: pixels})
    return {name: value.dtype for name, value in zip(names, outputs)}


def _pixels(model_path, photo_dir, num=6):
    from swin_trt.data.model_input import resolve_input

    return load_pixels(photo_dir, resolve_input(model_path).preprocessor, num)


# ---- FP16 ----------------------------------------------------------------------------------------------


def test_fp16_graph_types_and_run(cli, pico_rewritten, photo_dir, tmp_path):
    out = tmp_path / "pico.fp16.onnx"
    cli("quantize", pico_rewritten, "--precision", "fp16", "-o", out)
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT  # io kept float32
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    plugins = [n for n in model.graph.node if n.domain == "swin_trt"]
    assert len(plugins) == 24
    islands = [n for n in model.graph.node if n.op_type in ("LayerNormalization", "Erf", "ReduceMean")]
    gelu = [n for n in model.graph.node if n.op_type == "Mul" and "/mlp/act/" in n.name]
    pixels = _pixels(pico_rewritten, photo_dir, 1)
    names = [n.output[0] for n in plugins] + [n.input[0] for n in plugins]
    names += [n.input[0] for n in islands] + [n.output[0] for n in islands + gelu]
    types = _runtime_types(model, sorted(set(names)), pixels)
    for node in islands:  # LayerNorm, erf and the pooling mean run in float32
        assert types[node.input[0]] == types[node.output[0]] == np.float32, node.name
    # GELU: x * (1 + erf(x / sqrt 2)) in float32, the final * 0.5 back in float16
    assert sorted({str(types[n.output[0]]) for n in gelu}) == ["float16", "float32"]
    for node in plugins:  # partition/reverse/attention move and compute float16
        assert types[node.input[0]] == np.float16 and types[node.output[0]] == np.float16, node.name
    attention = next(n for n in plugins if n.op_type == "SwinWindowAttention")
    table = {i.name: i for i in model.graph.initializer}[attention.input[1]]
    assert table.data_type == TensorProto.FLOAT  # the bias table stays float32 (the plugin accepts it)
    sidecar = json.loads((tmp_path / "pico.fp16.onnx.json").read_text())
    assert sidecar["quantize"]["precision"] == "fp16" and sidecar["preprocessing"]
    reference = run_logits(create_session(onnx.load(pico_rewritten)), pixels)
    assert agreement(reference, run_logits(create_session(model), pixels))["cosine"] > 0.9999


def test_fp16_io(cli, pico_rewritten, tmp_path):
    out = tmp_path / "io.onnx"
    cli("quantize", pico_rewritten, "--precision", "fp16", "--io-fp16", "-o", out)
    model = onnx.load(out)
    assert model.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT16
    outputs = create_session(model).run(None, {"input": np.zeros((1, 3, 64, 64), np.float16)})
    assert outputs[0].dtype == np.float16


def _demo_or_pico(tmp_path_factory, pico_rewritten):
    """The trained demo model when it is bundled (meaningful activations), else pico."""
    from swin_trt.models.registry import arch_names

    if "swin_demo" not in arch_names():
        return pico_rewritten
    from swin_trt.export import export_model
    from swin_trt.surgery.rewrite_stage import rewrite_file

    folder = tmp_path_factory.mktemp("demo")
    export_model("swin_demo", folder / "demo.onnx", check=False)
    rewrite_file(folder / "demo.onnx", folder / "demo.rw.onnx", fuse_attention=True)
    return folder / "demo.rw.onnx"


def test_fp32_islands_reduce_fp16_error(pico_rewritten, photo_dir, tmp_path_factory):
    """FP16 error against FP32 on a real-image batch, with and without LayerNorm/Softmax/reductions/erf in
    float32: the islands must lower it."""
    from swin_trt.models.demo import demo_images_dir
    from swin_trt.precision.fp16 import to_fp16

    path = _demo_or_pico(tmp_path_factory, pico_rewritten)
    data = demo_images_dir() if demo_images_dir().is_dir() else photo_dir
    pixels = _pixels(path, data, 32)
    model = onnx.load(path)
    reference = run_logits(create_session(model), pixels)
    errors = {}
    for islands in (True, False):
        fp16, _ = to_fp16(model, islands=islands)
        errors[islands] = agreement(reference, run_logits(create_session(fp16), pixels))
    print(f"\n{path.name} on {len(pixels)} images: FP16 mean |err| with islands "
          f"{errors[True]['mean_abs_err']:.3e}, without {errors[False]['mean_abs_err']:.3e}; max |err| "
          f"{errors[True]['max_abs_err']:.3e} vs {errors[False]['max_abs_err']:.3e}")
    assert errors[True]["mean_abs_err"] < errors[False]["mean_abs_err"]
    assert errors[True]["snr_db"] > errors[False]["snr_db"]


# ---- INT8 ----------------------------------------------------------------------------------------------


def test_int8_graph_structure(int8, pico_rewritten):
    path, output = int8
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    producers = _producers(model)
    inits = {i.name: i for i in model.graph.initializer}
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    assert len(matmuls) == 35
    for node in matmuls:  # activation per tensor, weight per output column (axis 1), both int8 symmetric
        act, weight = producers[node.input[0]], producers[node.input[1]]
        assert act.op_type == weight.op_type == "DequantizeLinear", node.name
        assert inits[act.input[1]].dims == [] and inits[act.input[2]].data_type == TensorProto.INT8
        assert onnx.numpy_helper.to_array(inits[act.input[2]]) == 0
        assert inits[weight.input[0]].data_type == TensorProto.INT8
        assert {a.name: a.i for a in weight.attribute}["axis"] == 1
        n_out = inits[weight.input[0]].dims[1]
        assert list(inits[weight.input[1]].dims) == [n_out]
    for node in model.graph.node:
        if node.op_type in ("SwinWindowPartition", "SwinWindowReverse"):
            assert producers[node.input[0]].op_type == "QuantizeLinear", node.name
    for op in ("Conv", "Gemm"):  # --keep-first / --keep-last: patch embedding and classifier stay float
        node = next(n for n in model.graph.node if n.op_type == op)
        assert node.input[0] not in producers or producers[node.input[0]].op_type != "DequantizeLinear"
    attention = [n for n in model.graph.node if n.op_type == "SwinWindowAttention"]
    assert all(producers[n.input[0]].op_type != "DequantizeLinear" for n in attention)  # qkv stays float
    assert "keep-first" in output and "keep-last" in output
    section = json.loads(path.with_name(path.name + ".json").read_text())["quantize"]
    assert section["method"] == "percentile" and len(section["calib_sha256"]) == 64
    assert section["int8"]["qdq_pairs"] == section["counts"]["QuantizeLinear"] == 43
    assert section["int8"]["int8_plugins"] == 16


def test_int8_runs_with_int8_plugins(int8, pico_rewritten, photo_dir, monkeypatch):
    from swin_trt.backends.onnxruntime import create_session

    path, _ = int8
    model = onnx.load(path)
    pixels = _pixels(pico_rewritten, photo_dir)
    plugins = [n for n in model.graph.node if n.op_type in ("SwinWindowPartition", "SwinWindowReverse")]
    types = _runtime_types(model, [n.output[0] for n in plugins], pixels[:1])
    assert all(types[n.output[0]] == np.int8 for n in plugins)  # the data movement runs on int8
    create_session(model).run(None, {"input": pixels[:1]})
    reference = run_logits(create_session(onnx.load(pico_rewritten)), pixels)
    exact = agreement(reference, run_logits(create_session(model, int8="exact"), pixels))
    assert exact["cosine"] > 0.999 and exact["top1_agreement"] == 1.0, exact
    from swin_trt.backends import ort_int8

    saturating_cpu = ort_int8.s8_weights_saturate()  # x86 without VNNI: its s8 kernels sum in int16
    for u8_weights in (True, False):  # this CPU's kernels with the weights ort_int8 gives each kind of CPU
        monkeypatch.setattr(ort_int8, "s8_weights_saturate", lambda: u8_weights)
        fast = agreement(reference, run_logits(create_session(model, int8="fast"), pixels))
        if u8_weights or not saturating_cpu:
            assert abs(fast["cosine"] - exact["cosine"]) < 1e-4, (u8_weights, fast, exact)  # no saturation


def test_int8_options(cli, pico_rewritten, calib, tmp_path):
    out = tmp_path / "q.onnx"
    cli("quantize", pico_rewritten, "--precision", "int8", "--calib", calib, "--exclude", "SwinWindowReverse_*",
        "--exclude", "*/mlp/fc2/*", "--quantize-first", "--quantize-last", "--int8-base", "fp16", "-o", out)
    model = onnx.load(out)
    onnx.checker.check_model(model)
    producers = _producers(model)
    for node in model.graph.node:
        kind = producers.get(node.input[0]).op_type if node.input and node.input[0] in producers else None
        if node.op_type == "SwinWindowReverse" or "/mlp/fc2/" in node.name:
            assert kind != "QuantizeLinear" and kind != "DequantizeLinear", node.name
        if node.op_type in ("Conv", "Gemm"):
            assert kind == "DequantizeLinear", node.name
    assert any(i.data_type == TensorProto.FLOAT16 for i in model.graph.initializer)
    create_session(model).run(None, {"input": np.zeros((1, 3, 64, 64), np.float32)})


def test_cache_for_another_model_is_exit_2(cli, pico_rewritten, calib, tmp_path):
    other = tmp_path / "other.onnx"
    model = onnx.load(pico_rewritten)
    model.doc_string = "changed"
    onnx.save(model, other)
    (tmp_path / "other.onnx.json").write_text(pico_rewritten.with_name(pico_rewritten.name + ".json").read_text())
    out = tmp_path / "q.onnx"
    result = cli("quantize", other, "--precision", "int8", "--calib", calib, "-o", out, expect=2)
    assert "made for another model" in result.output
    assert not out.exists() and not (tmp_path / "q.onnx.json").exists()


def test_int8_needs_a_cache(cli, pico_rewritten, tmp_path):
    result = cli("quantize", pico_rewritten, "--precision", "int8", "-o", tmp_path / "q.onnx", expect=2)
    assert "--calib" in result.output


# ---- CPU execution and mixed precision -----------------------------------------------------------------


def test_float_data_movement_is_exact(int8):
    """Moving the Q past the int8 plugins (for ORT's integer kernels) changes no number."""
    from swin_trt.backends.ort_int8 import float_data_movement

    model = onnx.load(int8[0])
    x = np.random.default_rng(0).standard_normal((1, 3, 64, 64)).astype(np.float32)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    outputs = []
    for candidate in (model, float_data_movement(model)):
        session = ort.InferenceSession(lower_plugins(candidate).SerializeToString(), options,
                                       providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {"input": x})[0])
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_probe_switches_match_real_graphs(int8, pico_rewritten, calib, photo_dir):
    """The switchable probe with every flag off is FP32, with every flag on it is the INT8 graph."""
    from swin_trt.precision.int8 import quantizable_nodes
    from swin_trt.backends.onnxruntime import create_session
    from swin_trt.precision.switchable import build_probe, flags, probe_layers

    model = onnx.load(pico_rewritten)
    scales = {k: v["scale"] for k, v in json.loads(calib.read_text())["tensors"].items()}
    layers = [n for n in quantizable_nodes(model) if not n.startswith(("/patch_embed", "/head"))]
    probe = build_probe(model, scales, layers)
    assert len(probe_layers(probe)) == 51
    session = create_session(probe, int8="exact")
    pixels = _pixels(pico_rewritten, photo_dir, 3)
    fp32 = run_logits(create_session(model), pixels)
    int8 = run_logits(create_session(onnx.load(int8[0]), int8="exact"), pixels)
    np.testing.assert_allclose(run_logits(session, pixels, feeds=flags(probe, set())), fp32, rtol=0,
                               atol=rounding_atol(fp32))
    np.testing.assert_allclose(run_logits(session, pixels, feeds=flags(probe, set(layers))), int8, atol=2e-3)


def test_best_meets_its_budget(cli, pico_rewritten, calib, int8, photo_dir, tmp_path):
    """On a budget all-INT8 misses, best names the layers that fall back, and the graph it writes, measured
    here on the same held-out images, meets the budget."""
    min_cosine, min_agreement = 0.99999, 1.0
    pixels = _pixels(pico_rewritten, photo_dir, 6)  # the images --eval-num 6 takes
    reference = run_logits(create_session(onnx.load(pico_rewritten)), pixels)
    all_int8 = agreement(reference, run_logits(create_session(onnx.load(int8[0]), int8="exact"), pixels))
    assert all_int8["cosine"] < min_cosine  # without fallbacks the budget is missed
    out = tmp_path / "best.onnx"
    result = cli("quantize", pico_rewritten, "--precision", "best", "--calib", calib, "--data", photo_dir,
                 "--eval-num", 6, "--min-cosine", min_cosine, "--min-agreement", min_agreement, "-o", out)
    assert "fell back:" in result.output and "alone in INT8 it gives cosine" in result.output
    model = onnx.load(out)
    onnx.checker.check_model(model)
    measured = agreement(reference, run_logits(create_session(model, int8="exact"), pixels))
    assert measured["cosine"] >= min_cosine and measured["top1_agreement"] >= min_agreement, measured
    best = json.loads((tmp_path / "best.onnx.json").read_text())["quantize"]["best"]
    assert best["budget_met"] and best["final"]["cosine"] == pytest.approx(measured["cosine"], abs=1e-6)
    assert best["fallback"] and all({"layer", "cosine", "top1_agreement"} <= set(e) for e in best["fallback"])
    nodes, producers = {n.name: n for n in model.graph.node}, _producers(model)
    for entry in best["fallback"]:  # a layer that fell back reads no int8 weight or int8 input
        node = nodes[entry["layer"]]
        fed = {producers[name].op_type for name in node.input[1:2] if name in producers}
        if node.op_type in ("SwinWindowPartition", "SwinWindowReverse"):
            fed = {producers[node.input[0]].op_type}
        assert not fed & {"QuantizeLinear", "DequantizeLinear"}, entry
    # the most sensitive layer falls back first
    cosines = [e["cosine"] for e in best["fallback"]]
    assert cosines == sorted(cosines)


def test_best_max_drop_sets_the_agreement_budget(cli, pico_rewritten, calib, photo_dir, tmp_path):
    out = tmp_path / "best.onnx"
    cli("quantize", pico_rewritten, "--precision", "best", "--calib", calib, "--data", photo_dir, "--eval-num", 6,
        "--max-drop", 0.25, "-o", out)
    budget = json.loads((tmp_path / "best.onnx.json").read_text())["quantize"]["best"]["budget"]
    assert budget["min_agreement"] == pytest.approx(0.75)
