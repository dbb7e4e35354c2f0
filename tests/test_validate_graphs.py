"""The pieces of validate that need no model: precision detection, metrics, gates, the schema, and INT8
arithmetic on ONNX Runtime. (The self-made FP16 and INT8 graphs the validate tests use are in conftest.py.)"""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from swin_trt.validate.gates import Gates, check
from swin_trt.validate.metrics import Agreement, ErrorHistogram, capped, cosine_rows
from swin_trt.validate.model_precision import onnx_precision
from swin_trt.validate.schema import json_safe

from conftest import fp16_graph, int8_graph, sum_atol

# ---- the pieces that need no model --------------------------------------------------------------------


def _tiny_graph():
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    w = numpy_helper.from_array(np.eye(4, dtype=np.float32) * 0.3, "w")
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    return helper.make_model(helper.make_graph([node], "g", [x], [y], [w]))


def test_precision_is_read_from_the_graph():
    model = _tiny_graph()
    assert onnx_precision(model) == "fp32"
    assert onnx_precision(fp16_graph(model)) == "fp16"
    assert onnx_precision(int8_graph(model)) == "int8"
    assert onnx_precision(fp16_graph(int8_graph(model))) == "int8+fp16"


def test_agreement_and_histogram_stream():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(10, 7)).astype(np.float32)
    candidate = reference + rng.normal(scale=1e-3, size=reference.shape).astype(np.float32)
    whole, parts = Agreement(), Agreement()
    whole.update(reference, candidate, np.arange(10) % 7)
    for i in range(0, 10, 3):  # batch by batch gives the same numbers as all at once
        parts.update(reference[i:i + 3], candidate[i:i + 3], np.arange(10)[i:i + 3] % 7)
    a, b = whole.result(), parts.result()
    assert a.keys() == b.keys()
    for key in a:
        assert math.isclose(a[key], b[key], rel_tol=1e-9), key
    assert 50 < a["snr_db"] < 70 and a["top1_agreement"] == 1.0
    histogram = ErrorHistogram()
    histogram.update(reference, candidate)
    counts = histogram.result()["counts"]
    assert sum(counts) == reference.size and len(counts) == len(histogram.EDGES) + 1


def test_cosine_of_zero_vectors_follows_one_rule_everywhere():
    """Two zero vectors are identical (1), a zero vector against another has nothing in common (0): in the
    logits metric and in the per-layer statistics alike."""
    from swin_trt.validate.layers import _Stats

    zero, ones = np.zeros((1, 4)), np.ones((1, 4))
    assert cosine_rows(zero, zero)[0] == 1.0 and cosine_rows(zero, ones)[0] == cosine_rows(ones, zero)[0] == 0.0
    assert cosine_rows(ones, -ones)[0] == pytest.approx(-1.0)
    metric = Agreement()
    metric.update(np.zeros((2, 5)), np.zeros((2, 5)))
    metric.update(np.zeros((2, 5)), np.ones((2, 5)))
    assert metric.result()["cosine"] == 0.5 and metric.result()["cosine_min"] == 0.0
    stats = _Stats([4])
    stats.update(zero, zero)
    stats.update(zero, ones)
    assert stats.cosine_sum / stats.count == 0.5


def test_identical_outputs_have_infinite_snr_written_as_null():
    agreement = Agreement()
    agreement.update(np.ones((2, 3)), np.ones((2, 3)))
    assert agreement.result()["snr_db"] == math.inf
    assert json_safe({"snr": [math.inf, 1.0]}) == {"snr": [None, 1.0]}
    assert capped(math.inf) == 140.0 and capped(-math.inf) == -140.0


@pytest.mark.parametrize("gates,metric", [
    (Gates(atol=1e-3), "max_abs_err"), (Gates(min_cosine=0.999), "cosine"),
    (Gates(min_agreement=0.99), "top1_agreement"), (Gates(max_acc_drop=0.01), "acc1_drop")])
def test_each_gate_names_its_metric_and_candidate(gates, metric):
    entry = {"name": "m.int8.onnx", "max_abs_err": 0.1, "cosine": 0.99, "top1_agreement": 0.9, "acc1_change": -0.05}
    failures = check(gates, entry)
    assert [f["metric"] for f in failures] == [metric]
    assert "m.int8.onnx" in failures[0]["message"] and metric.split("_")[0] in failures[0]["message"]


def test_gates_pass_on_the_boundary():
    entry = {"name": "m", "max_abs_err": 1e-3, "cosine": 0.999, "top1_agreement": 0.99, "acc1_change": 0.49 - 0.5}
    assert check(Gates(atol=1e-3, min_cosine=0.999, min_agreement=0.99, max_acc_drop=0.01), entry) == []


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_int8_graphs_run_exact_int8_arithmetic(mode):
    """ONNX Runtime's fused u8s8 kernels saturate int16 pair sums on x86 without VNNI; our sessions must not,
    neither the exact one validation uses nor the fast one (uint8 weights) infer uses."""
    from swin_trt.backends.onnxruntime import OnnxRuntimeBackend

    k, scale = 64, np.float32(0.05)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    inits = [numpy_helper.from_array(np.full((k, 8), 127, np.int8), "wq"),
             numpy_helper.from_array(scale, "s"), numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "z"], ["xf"]),
             helper.make_node("DequantizeLinear", ["wq", "s", "z"], ["wf"]),
             helper.make_node("MatMul", ["xf", "wf"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "qdq", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    pixels = np.full((1, k), 127 * scale, np.float32)
    expected = k * (127 * scale) ** 2
    got = OnnxRuntimeBackend(model, int8=mode).infer(pixels)[0]
    np.testing.assert_allclose(got, np.full((1, 8), expected), rtol=sum_atol(1.0, k))  # k float32 products
