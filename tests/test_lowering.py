"""The plugin ops' CPU lowering (swin_trt.ops.lowering) against the op contract (swin_trt.ops.reference):
static graphs (sizes known while lowering, index tables stored) and graphs with dynamic height and width
(the same formulas computed in the graph), where ONE lowered graph must be right at every size."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from swin_trt.ops import reference, schema
from swin_trt.ops.lowering import lower_plugins

from conftest import attention_atol
from plugin_graphs import plugin_model, run

# (window, shift) pairs, incl. a shift along one axis only and a non-square window
GEOMETRIES = [((7, 7), (3, 3)), ((7, 7), (0, 0)), ((4, 5), (2, 0)), ((3, 4), (1, 3))]
# sizes where the window divides, does not divide, and where the map is smaller than the window
SIZES = [(14, 21), (10, 13), (5, 9), (3, 2)]


def feature_map_input():
    return ("fm", TensorProto.FLOAT, ["b", "h", "w", 1])


@pytest.mark.parametrize("window,shift", GEOMETRIES)
@pytest.mark.parametrize("pad_first", [1, 0])
def test_partition_and_reverse_one_dynamic_graph_at_every_size(window, shift, pad_first):
    attrs = dict(window_size=window, shift_size=shift, pad_first=pad_first)
    partition = plugin_model(schema.PARTITION, attrs, [("x", TensorProto.FLOAT, ["b", "h", "w", 3])])
    reverse = plugin_model(schema.REVERSE, attrs, [("x", TensorProto.FLOAT, ["r", "n", 3]),
                                                   feature_map_input()])
    rng = np.random.default_rng(0)
    for size in SIZES:
        x = rng.standard_normal((2, *size, 3)).astype(np.float32)
        windows = run(partition, {"x": x})
        np.testing.assert_array_equal(windows, reference.window_partition(x, window, shift, bool(pad_first)))
        fm = np.zeros((2, *size, 1), np.float32)
        back = run(reverse, {"x": windows, "fm": fm})
        np.testing.assert_array_equal(back, reference.window_reverse(windows, window, shift, bool(pad_first), *size))


@pytest.mark.parametrize("window,shift", GEOMETRIES)
@pytest.mark.parametrize("pad_first", [1, 0])
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_static_partition_and_reverse_store_the_contract_tables(window, shift, pad_first, dtype):
    size = (10, 13)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    attrs = dict(window_size=window, shift_size=shift, pad_first=pad_first)
    x = np.random.default_rng(1).integers(-90, 90, (2, *size, 3)).astype(dtype)
    partition = plugin_model(schema.PARTITION, attrs, [("x", elem, [2, *size, 3])])
    windows = run(partition, {"x": x})
    np.testing.assert_array_equal(windows, reference.window_partition(x, window, shift, bool(pad_first)))
    lowered = lower_plugins(partition)
    assert not {"Shape", "Range"} & {n.op_type for n in lowered.graph.node}  # index computed while lowering
    reverse = plugin_model(schema.REVERSE, dict(attrs, height=size[0], width=size[1]),
                           [("x", elem, list(windows.shape))])
    np.testing.assert_array_equal(run(reverse, {"x": windows}), x)


def attention_case(window, shift, grid, heads=2, head_dim=4, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    n_windows = reference.num_windows(*grid, window)
    tokens = window[0] * window[1]
    qkv = rng.standard_normal((batch * n_windows, tokens, 3 * heads * head_dim)).astype(np.float32)
    table = rng.standard_normal(((2 * window[0] - 1) * (2 * window[1] - 1), heads)).astype(np.float32)
    return qkv, table, dict(num_heads=heads, window_size=window, shift_size=shift, scale=head_dim ** -0.5)


@pytest.mark.parametrize("window,shift", GEOMETRIES)
def test_attention_with_feature_map_at_every_size(window, shift):
    _, table, attrs = attention_case(window, shift, (7, 7))
    init = onnx.numpy_helper.from_array(table, "table")
    shifted = any(shift)  # an unshifted node has no mask and takes no feature map (op contract)
    model = plugin_model(schema.ATTENTION, attrs, [("qkv", TensorProto.FLOAT, ["r", window[0] * window[1], 24])]
                         + [feature_map_input()] * shifted,
                         node_inputs=["qkv", "table", "fm"][:2 + shifted], inits=[init])
    for size in SIZES:
        grid = reference.padded_size(*size, window)
        qkv, _, _ = attention_case(window, shift, grid, seed=sum(size))
        got = run(model, {"qkv": qkv, **({"fm": np.zeros((2, *size, 1), np.float32)} if shifted else {})})
        expected = reference.window_attention(qkv, table, height=grid[0], width=grid[1], **attrs)
        np.testing.assert_allclose(got, expected, atol=attention_atol(qkv, table, attrs), rtol=0)


@pytest.mark.parametrize("window,shift", GEOMETRIES)
def test_static_attention_stores_the_contract_mask(window, shift):
    grid = reference.padded_size(10, 13, window)
    qkv, table, attrs = attention_case(window, shift, grid)
    init = onnx.numpy_helper.from_array(table, "table")
    model = plugin_model(schema.ATTENTION, dict(attrs, height=grid[0], width=grid[1]),
                         [("qkv", TensorProto.FLOAT, list(qkv.shape))], node_inputs=["qkv", "table"],
                         inits=[init])
    expected = reference.window_attention(qkv, table, height=grid[0], width=grid[1], **attrs)
    np.testing.assert_allclose(run(model, {"qkv": qkv}), expected, atol=attention_atol(qkv, table, attrs), rtol=0)
    if any(shift):
        stored = [i for i in lower_plugins(model).graph.initializer if "/mask" in i.name]
        mask = onnx.numpy_helper.to_array(stored[0])[:, 0]
        np.testing.assert_array_equal(mask, reference.attention_mask(window, shift, *grid))


def test_size_comes_from_one_place():
    attrs = dict(window_size=(7, 7), shift_size=(3, 3), pad_first=1)
    with pytest.raises(schema.PluginAttributeError, match="cannot know the spatial size"):
        schema.check_attributes(schema.REVERSE, attrs, "n", num_inputs=1)
    with pytest.raises(schema.PluginAttributeError, match="drop the attributes"):
        schema.check_attributes(schema.REVERSE, dict(attrs, height=14, width=14), "n", num_inputs=2)
    schema.check_attributes(schema.REVERSE, attrs, "n", num_inputs=2)
    attention = dict(num_heads=2, window_size=(7, 7), scale=0.5)
    schema.check_attributes(schema.ATTENTION, dict(attention, shift_size=(0, 0)), "n", num_inputs=2)  # no mask
    with pytest.raises(schema.PluginAttributeError, match="cannot know the spatial size"):
        schema.check_attributes(schema.ATTENTION, dict(attention, shift_size=(3, 3)), "n", num_inputs=2)


def cosine_attrs(heads, head_dim=4, **extra):
    scales = np.linspace(1.5, 100.0, heads).astype(np.float32) if heads > 1 else np.array([100.0], np.float32)
    return dict(num_heads=heads, scale=1.0, cosine=1, head_scale=[float(s) for s in scales], **extra)


def torch_cosine_attention(qkv, table, attrs, grid):
    """Swin V2's attention as timm writes it (F.normalize, logit scale, bias, mask, softmax), in torch: an
    oracle that shares nothing with swin_trt.ops.reference but the mask."""
    import torch
    import torch.nn.functional as F

    heads, window = attrs["num_heads"], attrs["window_size"]
    rows, tokens, three_c = qkv.shape
    q, k, v = torch.from_numpy(qkv).reshape(rows, tokens, 3, heads, -1).permute(2, 0, 3, 1, 4)
    attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
    attn = attn * torch.tensor(attrs["head_scale"]).reshape(1, heads, 1, 1)
    index = torch.from_numpy(reference.relative_position_index(window).reshape(-1))
    attn = attn + torch.from_numpy(table)[index].reshape(tokens, tokens, heads).permute(2, 0, 1)[None]
    mask = reference.attention_mask(window, attrs["shift_size"], *grid)
    if mask is not None:
        attn = (attn.reshape(-1, mask.shape[0], heads, tokens, tokens) + torch.from_numpy(mask)[None, :, None])
        attn = attn.reshape(rows, heads, tokens, tokens)
    out = attn.softmax(-1) @ v
    return out.transpose(1, 2).reshape(rows, tokens, three_c // 3).numpy()


@pytest.mark.parametrize("window,shift", GEOMETRIES)
def test_cosine_attention_reference_lowering_and_torch_agree(window, shift):
    """Cosine mode (Swin V2): the numpy contract equals timm's formula in torch; the lowering equals the
    contract, with the size in attributes and, in a graph of any size, from the feature map."""
    attrs = cosine_attrs(2, window_size=window, shift_size=shift)
    grid = reference.padded_size(10, 13, window)
    qkv, table, _ = attention_case(window, shift, grid, seed=3)
    qkv[0, 0, :4] = 0  # an all-zero q row: the norm's floor, no NaN
    expected = reference.window_attention(qkv, table, height=grid[0], width=grid[1], **attrs)
    assert np.isfinite(expected).all()
    atol = attention_atol(qkv, table, attrs)
    np.testing.assert_allclose(expected, torch_cosine_attention(qkv, table, attrs, grid), atol=atol, rtol=0)
    init = onnx.numpy_helper.from_array(table, "table")
    static = plugin_model(schema.ATTENTION, dict(attrs, height=grid[0], width=grid[1]),
                          [("qkv", TensorProto.FLOAT, list(qkv.shape))], node_inputs=["qkv", "table"], inits=[init])
    np.testing.assert_allclose(run(static, {"qkv": qkv}), expected, atol=atol, rtol=0)
    node_inputs = ["qkv", "table", "fm"] if any(shift) else ["qkv", "table"]
    inputs = [("qkv", TensorProto.FLOAT, ["r", window[0] * window[1], 24])] + [feature_map_input()] * any(shift)
    any_size = plugin_model(schema.ATTENTION, attrs, inputs, node_inputs=node_inputs, inits=[init])
    for size in SIZES:
        grid = reference.padded_size(*size, window)
        qkv, _, _ = attention_case(window, shift, grid, seed=sum(size))
        feeds = {"qkv": qkv, **({"fm": np.zeros((2, *size, 1), np.float32)} if any(shift) else {})}
        want = reference.window_attention(qkv, table, height=grid[0], width=grid[1], **attrs)
        np.testing.assert_allclose(run(any_size, feeds), want, atol=attention_atol(qkv, table, attrs), rtol=0)


@pytest.mark.parametrize("change,message", [
    (dict(cosine=2), "cosine=2 is out of range"),
    (dict(head_scale=None), "lacks attribute head_scale"),
    (dict(head_scale=[2.0]), "one value per head"),
    (dict(head_scale=[2.0, 100.5]), r"head_scale\[1\] = 100.5 is out of range"),
    (dict(head_scale=[float("nan"), 2.0]), r"head_scale\[0\] = nan is out of range"),
    (dict(head_scale=[0.0, 2.0]), r"head_scale\[0\] = 0.0"),
    (dict(scale=0.5), "exactly 1.0 with cosine = 1"),
    (dict(cosine=0), "head_scale is only for cosine = 1"),
])
def test_cosine_fields_are_checked_with_the_node_and_attribute_named(change, message):
    attrs = dict(cosine_attrs(2, window_size=(4, 4), shift_size=(0, 0)), **change)
    attrs = {key: value for key, value in attrs.items() if value is not None}
    with pytest.raises(schema.PluginAttributeError, match=message):
        schema.check_attributes(schema.ATTENTION, attrs, "node 'blocks.0.attn'", num_inputs=2)


def test_unshifted_attention_takes_no_feature_map():
    attrs = dict(num_heads=2, window_size=(7, 7), shift_size=(0, 0), scale=0.5)
    with pytest.raises(schema.PluginAttributeError, match="takes only qkv and the bias table"):
        schema.check_attributes(schema.ATTENTION, attrs, "n", num_inputs=3)


@pytest.mark.parametrize("window,shift,grid", [((3, 4), (1, 3), (6, 8)), ((2, 2, 3), (1, 1, 1), (4, 4, 6))])
def test_dense_bias_is_added_as_is(window, shift, grid):
    """The bias input's dense form (heads, N, N): a table's own gather gives the table's results, and a bias no
    table gives (as Video Swin's shrunk windows have) is added as is, by the reference and the lowering alike."""
    heads, tokens = 2, int(np.prod(window))
    rng = np.random.default_rng(3)
    n_windows = int(np.prod([g // w for g, w in zip(grid, window)]))
    qkv = rng.standard_normal((2 * n_windows, tokens, 3 * heads * 4)).astype(np.float32)
    table = rng.standard_normal((int(np.prod([2 * w - 1 for w in window])), heads)).astype(np.float32)
    attrs = dict(num_heads=heads, window_size=window, shift_size=shift, scale=0.5)
    sizes = dict(zip(("frames", "height", "width")[3 - len(window):], grid))
    gathered = reference.relative_position_bias(table, window)
    np.testing.assert_array_equal(reference.window_attention(qkv, gathered, **attrs, **sizes),
                                  reference.window_attention(qkv, table, **attrs, **sizes))
    dense = rng.standard_normal((heads, tokens, tokens)).astype(np.float32)
    model = plugin_model(schema.ATTENTION, dict(attrs, **sizes), [("qkv", TensorProto.FLOAT, list(qkv.shape))],
                         node_inputs=["qkv", "bias"], inits=[onnx.numpy_helper.from_array(dense, "bias")])
    expected = reference.window_attention(qkv, dense, **attrs, **sizes)
    np.testing.assert_allclose(run(model, {"qkv": qkv}), expected, atol=attention_atol(qkv, dense, attrs), rtol=0)
    assert np.abs(expected - reference.window_attention(qkv, table, **attrs, **sizes)).max() > 0.01
    with pytest.raises(ValueError, match=r"dense bias is \(heads, N, N\)"):
        reference.window_attention(qkv, dense[:, :-1], **attrs, **sizes)
    with pytest.raises(schema.PluginAttributeError, match="not rank 1"):
        schema.bias_form((tokens,))
