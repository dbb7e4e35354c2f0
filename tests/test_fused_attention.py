"""SwinFusedWindowAttention (partition + attention + reverse of one block in one node, token-major qkv in,
token-major context out): its numpy reference and its CPU lowering against the unfused composition they stand
for, partition -> per-token Linear -> SwinWindowAttention -> per-token Linear -> reverse, in every geometry
(2D and 3D, shifted or not, padded or not, both pad orders, table and dense bias, V1 and cosine)."""

import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from swin_trt.ops import reference, schema

from conftest import attention_atol
from plugin_graphs import plugin_model, run

HEADS, HEAD_DIM = 2, 4
C = HEADS * HEAD_DIM

# (window, shift, sizes the block sees, pad_first): padded and not, shifted and not, 2D and 3D
CASES = [
    ((4, 4), (2, 2), [(8, 8), (6, 9)], 1),
    ((4, 4), (2, 2), [(6, 9)], 0),
    ((3, 4), (1, 3), [(5, 7), (3, 2)], 1),
    ((4, 4), (0, 0), [(8, 8), (5, 6)], 1),
    ((2, 3, 3), (1, 1, 1), [(4, 6, 6), (3, 5, 4)], 1),
    ((2, 3, 3), (0, 1, 0), [(2, 4, 7)], 1),
    ((2, 2, 2), (0, 0, 0), [(3, 3, 2)], 1),
]
IDS = [f"w{'x'.join(map(str, w))}-s{'x'.join(map(str, s))}-pf{p}" for w, s, _, p in CASES]


def linear(x, weight, bias):
    """A per-token Linear, evaluated in float64 and rounded once: both compositions see the same qkv rows."""
    return (x.astype(np.float64) @ weight + bias).astype(np.float32)


def block(window, bias_form, cosine, seed):
    rng = np.random.default_rng(seed)
    tokens, rows = math.prod(window), math.prod(2 * w - 1 for w in window)
    bias = (rng.standard_normal((rows, HEADS)) if bias_form == "table"
            else rng.standard_normal((HEADS, tokens, tokens))).astype(np.float32)
    weights = dict(w1=rng.standard_normal((C, 3 * C)) / 3, b1=rng.standard_normal(3 * C),
                   w2=rng.standard_normal((C, C)) / 3, b2=rng.standard_normal(C))
    attrs = dict(num_heads=HEADS, scale=HEAD_DIM ** -0.5)
    if cosine:
        attrs.update(scale=1.0, cosine=1, head_scale=[1.5, 30.0])
    return bias, weights, attrs


def unfused(x, bias, w, attrs, window, shift, pad_first):
    """What a block computes today: partition, qkv Linear, SwinWindowAttention, proj Linear, reverse."""
    batch, *sizes, _ = x.shape
    frames = sizes[0] if len(window) == 3 else None
    windows = reference.window_partition(x, window, shift, bool(pad_first))  # padding: zeros BEFORE the Linear
    qkv = linear(windows, w["w1"], w["b1"])
    grid = dict(zip(("frames", "height", "width")[3 - len(window):],
                    reference.padded_size(sizes[-2], sizes[-1], window, frames=frames)))
    context = reference.window_attention(qkv, bias, window_size=window, shift_size=shift, **grid, **attrs)
    out = linear(context, w["w2"], w["b2"])
    return reference.window_reverse(out, window, shift, bool(pad_first), sizes[-2], sizes[-1], frames=frames), qkv


@pytest.mark.parametrize("cosine", [0, 1], ids=["v1", "cosine"])
@pytest.mark.parametrize("bias_form", ["table", "dense"])
@pytest.mark.parametrize("window,shift,sizes,pad_first", CASES, ids=IDS)
def test_fused_reference_and_lowering_equal_the_unfused_block(window, shift, sizes, pad_first, bias_form, cosine):
    bias, w, attrs = block(window, bias_form, cosine, seed=len(sizes) + sum(window))
    rank = len(window)
    fields = dict(attrs, window_size=window, shift_size=shift, pad_first=pad_first)
    pad_row = w["b1"].astype(np.float32)
    dims = ["b", "t", "h", "w"][: rank + 1] if rank == 3 else ["b", "h", "w"]
    model = plugin_model(schema.FUSED_ATTENTION, fields, [("qkv", TensorProto.FLOAT, [*dims, 3 * C])],
                         node_inputs=["qkv", "bias", "pad_row"],
                         inits=[onnx.numpy_helper.from_array(bias, "bias"),
                                onnx.numpy_helper.from_array(pad_row, "pad_row")])
    rng = np.random.default_rng(7)
    for size in sizes:
        x = rng.standard_normal((2, *size, C)).astype(np.float32)
        expected, windows_qkv = unfused(x, bias, w, attrs, window, shift, pad_first)
        qkv_map = linear(x, w["w1"], w["b1"])  # the qkv Linear per token, BEFORE partitioning
        context = reference.fused_window_attention(qkv_map, bias, pad_row, window_size=window, shift_size=shift,
                                                   pad_first=bool(pad_first), **attrs)
        assert context.shape == (2, *size, C) and context.dtype == np.float32
        # the same qkv rows, the same windows: the fused reference IS the unfused block, bit for bit
        np.testing.assert_array_equal(linear(context, w["w2"], w["b2"]), expected)
        lowered = run(model, {"qkv": qkv_map})  # one graph of dynamic size, run at every size
        np.testing.assert_allclose(lowered, context, atol=attention_atol(windows_qkv, bias, attrs), rtol=0)
        padded = any(s % win for s, win in zip(size, window))
        if padded:  # padded tokens are keys (masked or not): a zero pad row would be another block
            zeros = reference.fused_window_attention(qkv_map, bias, np.zeros_like(pad_row), window_size=window,
                                                     shift_size=shift, pad_first=bool(pad_first), **attrs)
            assert np.abs(zeros - context).max() > 1e-3


def test_static_fused_node_stores_its_tables():
    """Sizes known while lowering: the gather indices and the mask are constants (no Shape/Range nodes)."""
    window, shift = (4, 4), (2, 2)
    bias, w, attrs = block(window, "table", 0, seed=1)
    qkv_map = linear(np.random.default_rng(2).standard_normal((2, 6, 9, C)), w["w1"], w["b1"])
    pad_row = w["b1"].astype(np.float32)
    model = plugin_model(schema.FUSED_ATTENTION, dict(attrs, window_size=window, shift_size=shift, pad_first=1),
                         [("qkv", TensorProto.FLOAT, list(qkv_map.shape))], node_inputs=["qkv", "bias", "pad_row"],
                         inits=[onnx.numpy_helper.from_array(bias, "bias"),
                                onnx.numpy_helper.from_array(pad_row, "pad_row")])
    from swin_trt.ops.lowering import lower_plugins

    assert not {"Shape", "Range"} & {n.op_type for n in lower_plugins(model).graph.node}
    expected = reference.fused_window_attention(qkv_map, bias, pad_row, window_size=window, shift_size=shift,
                                                pad_first=True, **attrs)
    windows = reference.window_partition(qkv_map, window, shift, True)
    np.testing.assert_allclose(run(model, {"qkv": qkv_map}), expected, atol=attention_atol(windows, bias, attrs),
                               rtol=0)


@pytest.mark.parametrize("change,inputs,message", [
    (dict(height=8, width=8), 3, "its size comes from input 0"),
    ({}, 2, "has 2 inputs: it takes 3, qkv, bias, pad_row"),
    (dict(pad_first=2), 3, "pad_first=2 is out of range"),
    (dict(cosine=1), 3, "lacks attribute head_scale"),
])
def test_fused_fields_are_checked(change, inputs, message):
    attrs = {**dict(num_heads=2, window_size=(4, 4), shift_size=(2, 2), pad_first=1, scale=0.5), **change}
    with pytest.raises(schema.PluginAttributeError, match=message):
        schema.check_attributes(schema.FUSED_ATTENTION, attrs, "node 'fused'", num_inputs=inputs)
    with pytest.raises(schema.PluginAttributeError, match="lacks attribute.*pad_first"):
        schema.check_attributes(schema.FUSED_ATTENTION, dict(num_heads=2, window_size=(4, 4), shift_size=(0, 0),
                                                             scale=0.5), "n", num_inputs=3)


def test_the_plugins_run_the_fused_form_within_the_kernel_limits():
    """The C++ plugin (SwinFusedWindowAttention) exists: `build` refuses a fused node only where the attention
    kernel cannot run it (tokens per window, head dim), as it does the windowed one."""
    for op in (schema.FUSED_ATTENTION, schema.ATTENTION):
        assert schema.kernel_unsupported(op, {"window_size": [7, 7]}) == ""
        assert schema.kernel_unsupported(op, {"window_size": [2, 7, 7]}, head_dim=32) == ""
        assert "576 tokens per window" in schema.kernel_unsupported(op, {"window_size": [9, 8, 8]})
        assert "head dim 130" in schema.kernel_unsupported(op, {"window_size": [7, 7]}, head_dim=130)
