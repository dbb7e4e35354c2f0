"""The plugin ops' CPU lowering (swin_trt.ops.lowering) against the op contract (swin_trt.ops.reference):
static graphs (sizes known while lowering, index tables stored) and graphs with dynamic height and width
(the same formulas computed in the graph), where ONE lowered graph must be right at every size."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from swin_trt.ops import reference, schema
from swin_trt.ops.lowering import lower_plugins

# (window, shift) pairs, incl. a shift along one axis only and a non-square window
GEOMETRIES = [((7, 7), (3, 3)), ((7, 7), (0, 0)), ((4, 5), (2, 0)), ((3, 4), (1, 3))]
# sizes where the window divides, does not divide, and where the map is smaller than the window
SIZES = [(14, 21), (10, 13), (5, 9), (3, 2)]


def plugin_model(op, attrs, inputs, node_inputs=None, inits=()):
    """One plugin node in a graph; ``inputs`` are (name, elem_type, shape) with str dims for dynamic ones."""
    node_inputs = node_inputs or [name for name, _, _ in inputs]
    node = helper.make_node(op, node_inputs, ["y"], domain=schema.DOMAIN,
                            **schema.plugin_attributes(op, len(node_inputs), **attrs))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info("y", inputs[0][1], None)], initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(schema.DOMAIN, 1)])


def run(model, feeds):
    session = ort.InferenceSession(lower_plugins(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


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
    model = plugin_model(schema.ATTENTION, attrs, [("qkv", TensorProto.FLOAT, ["r", window[0] * window[1], 24]),
                                                   feature_map_input()],
                         node_inputs=["qkv", "table", "fm"], inits=[init])
    for size in SIZES:
        grid = reference.padded_size(*size, window)
        qkv, _, _ = attention_case(window, shift, grid, seed=sum(size))
        got = run(model, {"qkv": qkv, "fm": np.zeros((2, *size, 1), np.float32)})
        expected = reference.window_attention(qkv, table, height=grid[0], width=grid[1], **attrs)
        np.testing.assert_allclose(got, expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("window,shift", GEOMETRIES)
def test_static_attention_stores_the_contract_mask(window, shift):
    grid = reference.padded_size(10, 13, window)
    qkv, table, attrs = attention_case(window, shift, grid)
    init = onnx.numpy_helper.from_array(table, "table")
    model = plugin_model(schema.ATTENTION, dict(attrs, height=grid[0], width=grid[1]),
                         [("qkv", TensorProto.FLOAT, list(qkv.shape))], node_inputs=["qkv", "table"],
                         inits=[init])
    expected = reference.window_attention(qkv, table, height=grid[0], width=grid[1], **attrs)
    np.testing.assert_allclose(run(model, {"qkv": qkv}), expected, atol=2e-5, rtol=0)
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
