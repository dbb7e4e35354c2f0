"""3D windows (Video Swin) in the window-op contract: the numpy reference (swin_trt.ops.reference) against
the Video Swin model's own functions (swin_trt.models.video_swin), the ONNX lowering against the reference
(static size attributes and feature-map form), the schema's checks, and 2D nodes serialised as before."""

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from swin_trt.models import video_swin
from swin_trt.models.video_swin import VideoSwinBlock, VideoSwinConfig
from swin_trt.ops import reference, schema
from swin_trt.ops.lowering import lower_plugins

from conftest import attention_atol
from plugin_graphs import plugin_model, run

# (map T, H, W), window, shift: window divides; padding in every dim with a shift in all three; padding with
# T unshifted; unshifted; a non-cubic window with T not padded
CASES = [((4, 6, 6), (2, 3, 3), (1, 1, 1)), ((5, 7, 8), (2, 3, 3), (1, 1, 2)), ((3, 5, 4), (2, 2, 3), (0, 1, 1)),
         ((4, 4, 4), (2, 2, 2), (0, 0, 0)), ((6, 5, 7), (3, 2, 4), (2, 1, 3))]


def model_partition(x, window, shift):
    """What a VideoSwinBlock does before attention: pad, roll by -shift, partition."""
    x = video_swin.cyclic_shift(video_swin.pad_to_window(torch.from_numpy(x), window), shift, -1)
    return video_swin.window_partition(x, window).numpy()


def model_reverse(windows, window, shift, size):
    """What a VideoSwinBlock does after attention: merge, roll by +shift, crop."""
    padded = video_swin.padded_size(size, window)
    x = video_swin.cyclic_shift(video_swin.window_reverse(torch.from_numpy(windows), window, padded), shift, 1)
    return x[:, :size[0], :size[1], :size[2]].numpy()


def clip(size, channels=3, batch=2, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).integers(-100, 100, (batch, *size, channels)).astype(dtype)


@pytest.mark.parametrize("size,window,shift", CASES)
def test_partition_reverse_and_mask_match_video_swin(size, window, shift):
    x = clip(size, seed=sum(size))
    windows = reference.window_partition(x, window, shift, True)
    np.testing.assert_array_equal(windows, model_partition(x, window, shift))
    assert windows.shape == (2 * reference.num_windows(size[1], size[2], window, frames=size[0]),
                             window[0] * window[1] * window[2], 3)
    other = np.random.default_rng(1).standard_normal(windows.shape).astype(np.float32)
    np.testing.assert_array_equal(reference.window_reverse(other, window, shift, True, *size[1:], frames=size[0]),
                                  model_reverse(other, window, shift, size))
    np.testing.assert_array_equal(reference.window_reverse(windows, window, shift, True, *size[1:],
                                                           frames=size[0]), x)  # round trip, exactly
    padded = reference.padded_size(*size[1:], window, frames=size[0])
    assert padded == video_swin.padded_size(size, window)
    mask, expected = (reference.attention_mask(window, shift, *padded[1:], frames=padded[0]),
                      video_swin.attention_mask(window, shift, padded))
    assert (mask is None) == (expected is None)
    if mask is not None:
        np.testing.assert_array_equal(mask, expected)


@pytest.mark.parametrize("window", [(8, 7, 7), (2, 3, 3), (3, 2, 4), (1, 7, 7)])
def test_relative_position_index_is_video_swins(window):
    np.testing.assert_array_equal(reference.relative_position_index(window), video_swin.relative_position_index(window))


def test_2d_is_the_one_frame_case():
    """A 2D op is the T = 1 (wt = 1, st = 0) case of the 3D one."""
    x = clip((10, 13), seed=4)
    windows = reference.window_partition(x, (7, 7), (3, 3), True)
    np.testing.assert_array_equal(reference.window_partition(x[:, None], (1, 7, 7), (0, 3, 3), True), windows)
    np.testing.assert_array_equal(reference.attention_mask((1, 7, 7), (0, 3, 3), 14, 14, frames=1),
                                  reference.attention_mask((7, 7), (3, 3), 14, 14))


@pytest.mark.parametrize("size", [(4, 6, 6), (5, 7, 8)])
def test_partition_attention_reverse_match_a_video_swin_block(size):
    """The block's whole shifted-window attention (pad, roll, partition, attention, reverse, roll, crop) equals
    reference partition -> qkv -> reference attention -> reverse. ``proj`` is the identity (exact in float32),
    so the difference is the attention's alone."""
    torch.manual_seed(0)
    config = VideoSwinConfig(window_size=(2, 3, 3), embed_dim=8)
    block = VideoSwinBlock(8, 2, size, True, config).eval()
    window, shift = block.window_size, block.shift_size
    assert window == (2, 3, 3) and shift == (1, 1, 1)  # no dim shrank: the block gathers the full index
    with torch.no_grad():
        block.attn.relative_position_bias_table.normal_()
        block.attn.proj.weight.copy_(torch.eye(8))
        block.attn.proj.bias.zero_()
        x = torch.randn(2, *size, 8)
        expected = block._shifted_window_attention(x).numpy()
        windows = reference.window_partition(x.numpy(), window, shift, True)
        qkv = block.attn.qkv(torch.from_numpy(windows)).numpy()
    table = block.attn.relative_position_bias_table.detach().numpy()
    padded = reference.padded_size(*size[1:], window, frames=size[0])
    attrs = dict(num_heads=2, window_size=window, shift_size=shift, scale=block.attn.scale)
    context = reference.window_attention(qkv, table, height=padded[1], width=padded[2], frames=padded[0], **attrs)
    got = reference.window_reverse(context, window, shift, True, *size[1:], frames=size[0])
    np.testing.assert_allclose(got, expected, atol=attention_atol(qkv, table, attrs), rtol=0)


# ---- the lowering (ONNX Runtime) against the reference ---------------------------------------------------------

FEATURE_MAP = ("fm", TensorProto.FLOAT, ["b", "t", "h", "w", 1])
LOWERING = [((2, 3, 3), (1, 1, 1)), ((2, 2, 3), (0, 1, 2)), ((3, 2, 2), (0, 0, 0))]
SIZES = [(4, 6, 6), (5, 7, 8), (1, 3, 2)]  # divides, pads in every dim, smaller than the window


@pytest.mark.parametrize("window,shift", LOWERING)
def test_partition_and_reverse_lowered_one_graph_at_every_size(window, shift):
    attrs = dict(window_size=window, shift_size=shift, pad_first=1)
    partition = plugin_model(schema.PARTITION, attrs, [("x", TensorProto.FLOAT, ["b", "t", "h", "w", 3])])
    reverse = plugin_model(schema.REVERSE, attrs, [("x", TensorProto.FLOAT, ["r", "n", 3]), FEATURE_MAP])
    for size in SIZES:
        x = clip(size, seed=sum(size))
        windows = run(partition, {"x": x})
        np.testing.assert_array_equal(windows, reference.window_partition(x, window, shift, True))
        back = run(reverse, {"x": windows, "fm": np.zeros((2, *size, 1), np.float32)})
        np.testing.assert_array_equal(back, x)


@pytest.mark.parametrize("window,shift", LOWERING)
@pytest.mark.parametrize("dtype", [np.float32, np.int8])
def test_static_partition_and_reverse_lowered(window, shift, dtype):
    size = (5, 7, 8)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    attrs = dict(window_size=window, shift_size=shift, pad_first=1)
    x = clip(size, seed=2, dtype=dtype)
    partition = plugin_model(schema.PARTITION, attrs, [("x", elem, [2, *size, 3])])
    windows = run(partition, {"x": x})
    np.testing.assert_array_equal(windows, reference.window_partition(x, window, shift, True))
    assert not {"Shape", "Range"} & {n.op_type for n in lower_plugins(partition).graph.node}
    other = np.random.default_rng(3).integers(-100, 100, windows.shape).astype(dtype)
    reverse = plugin_model(schema.REVERSE, dict(attrs, frames=size[0], height=size[1], width=size[2]),
                           [("x", elem, list(windows.shape))])
    np.testing.assert_array_equal(run(reverse, {"x": other}),
                                  reference.window_reverse(other, window, shift, True, *size[1:], frames=size[0]))


def attention_case(window, grid, heads=2, head_dim=4, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    n_windows = int(np.prod([g // w for g, w in zip(grid, window)]))
    tokens = int(np.prod(window))
    qkv = rng.standard_normal((batch * n_windows, tokens, 3 * heads * head_dim)).astype(np.float32)
    rows = int(np.prod([2 * w - 1 for w in window]))
    return qkv, rng.standard_normal((rows, heads)).astype(np.float32)


@pytest.mark.parametrize("window,shift", LOWERING + [((8, 7, 7), (4, 3, 3))])
def test_static_attention_lowered(window, shift):
    """Sizes in ``frames``/``height``/``width`` (the padded grid); (8, 7, 7) is Video Swin's 392-token window."""
    grid = tuple(2 * w for w in window) if window != (8, 7, 7) else (8, 14, 7)
    qkv, table = attention_case(window, grid)
    attrs = dict(num_heads=2, window_size=window, shift_size=shift, scale=0.5)
    model = plugin_model(schema.ATTENTION, dict(attrs, frames=grid[0], height=grid[1], width=grid[2]),
                         [("qkv", TensorProto.FLOAT, list(qkv.shape))], node_inputs=["qkv", "table"],
                         inits=[onnx.numpy_helper.from_array(table, "table")])
    expected = reference.window_attention(qkv, table, height=grid[1], width=grid[2], frames=grid[0], **attrs)
    np.testing.assert_allclose(run(model, {"qkv": qkv}), expected, atol=attention_atol(qkv, table, attrs), rtol=0)


@pytest.mark.parametrize("window,shift", LOWERING)
def test_attention_with_feature_map_at_every_size(window, shift):
    shifted = any(shift)  # an unshifted node has no mask and takes no feature map
    attrs = dict(num_heads=2, window_size=window, shift_size=shift, scale=0.5)
    _, table = attention_case(window, window)
    model = plugin_model(schema.ATTENTION, attrs, [("qkv", TensorProto.FLOAT, ["r", int(np.prod(window)), 24])]
                         + [FEATURE_MAP] * shifted, node_inputs=["qkv", "table", "fm"][:2 + shifted],
                         inits=[onnx.numpy_helper.from_array(table, "table")])
    for size in SIZES:
        grid = reference.padded_size(*size[1:], window, frames=size[0])
        qkv, _ = attention_case(window, grid, seed=sum(size))
        feeds = {"qkv": qkv, **({"fm": np.zeros((2, *size, 1), np.float32)} if shifted else {})}
        expected = reference.window_attention(qkv, table, height=grid[1], width=grid[2], frames=grid[0], **attrs)
        np.testing.assert_allclose(run(model, feeds), expected, atol=attention_atol(qkv, table, attrs), rtol=0)


# ---- node form and checks --------------------------------------------------------------------------------------

def test_2d_nodes_serialise_as_before():
    node = helper.make_node(schema.REVERSE, ["x"], ["y"], domain=schema.DOMAIN, **schema.plugin_attributes(
        schema.REVERSE, 1, window_size=(7, 7), shift_size=(3, 3), pad_first=1, height=14, width=21))
    assert {a.name: helper.get_attribute_value(a) for a in node.attribute} == {
        "window_size": [7, 7], "shift_size": [3, 3], "pad_first": 1, "height": 14, "width": 21,
        "plugin_version": b"1", "plugin_namespace": b"swin_trt"}


@pytest.mark.parametrize("op,change,message", [
    (schema.PARTITION, dict(window_size=(2, 2, 3, 3), shift_size=(0, 0, 0, 0)), "window_size=.* 2 integers"),
    (schema.PARTITION, dict(shift_size=(2, 1, 1)), r"shift_size=.2, 1, 1. is out of range"),
    (schema.PARTITION, dict(shift_size=(1, 1)), r"shift_size=.1, 1. is out of range: 3 integers"),
    (schema.PARTITION, dict(pad_first=0), "pad_first=0 is out of range: 1 for a 3D window"),
    (schema.REVERSE, dict(height=7, width=8), "lacks attribute.s. frames and has no feature-map input"),
    (schema.REVERSE, dict(frames=0, height=7, width=8), "frames=0 is out of range"),
    (schema.REVERSE, dict(window_size=(3, 3), shift_size=(1, 1), frames=5, height=7, width=8),
     "attribute frames is only for a 3D window"),
])
def test_3d_attributes_are_checked_with_the_attribute_named(op, change, message):
    attrs = dict(dict(window_size=(2, 3, 3), shift_size=(1, 1, 1), pad_first=1), **change)
    with pytest.raises(schema.PluginAttributeError, match=f"node 'blk' \\({op}\\).*{message}"):
        schema.check_attributes(op, attrs, "node 'blk'", num_inputs=1)


def test_attention_token_limit_is_the_cuda_kernels():
    attrs = dict(num_heads=3, window_size=(8, 7, 7), shift_size=(4, 3, 3), scale=0.5, frames=8, height=14,
                 width=14)
    schema.check_attributes(schema.ATTENTION, attrs, "n", num_inputs=2)  # 392 tokens: in the contract
    with pytest.raises(schema.PluginAttributeError, match="height=.* multiples of the window"):
        schema.check_attributes(schema.ATTENTION, dict(attrs, height=15), "n", num_inputs=2)
    assert schema.kernel_unsupported(schema.ATTENTION, attrs, head_dim=32) == ""  # Video Swin's 8x7x7 runs
    reason = schema.attention_unsupported(9 * 8 * 8, 32)
    assert "CUDA attention kernel" in reason and "at most 512" in reason and "no token limit" in reason
    assert schema.kernel_unsupported(schema.ATTENTION, dict(attrs, window_size=(9, 8, 8)), head_dim=32) == reason
    # The plugins run 3D windows: partition and reverse have no limit, whatever the rank.
    for op in (schema.PARTITION, schema.REVERSE):
        assert schema.kernel_unsupported(op, dict(window_size=(2, 7, 7))) == ""
        assert schema.kernel_unsupported(op, dict(window_size=(7, 7))) == ""


def test_reference_refuses_what_the_contract_does_not_define():
    x = clip((4, 6, 6))
    with pytest.raises(ValueError, match="pad_first must be True for a 3D window"):
        reference.window_partition(x, (2, 3, 3), (1, 1, 1), False)
    with pytest.raises(ValueError, match="needs frames="):
        reference.window_reverse(reference.window_partition(x, (2, 3, 3)), (2, 3, 3), 0, True, 6, 6)
    with pytest.raises(ValueError, match="shift_size"):
        reference.window_partition(x, (2, 3, 3), (2, 0, 0), True)


@pytest.mark.parametrize("op,attrs,inputs,message", [
    (schema.ATTENTION, dict(num_heads=1, window_size=(23, 23), shift_size=(0, 0), scale=0.5),
     [("qkv", TensorProto.FLOAT, [1, 529, 24]), ("table", TensorProto.FLOAT, [45 * 45, 1])], "at most 512"),
    (schema.ATTENTION, dict(num_heads=1, window_size=(9, 8, 8), shift_size=(0, 0, 0), scale=0.5),
     [("qkv", TensorProto.FLOAT, [1, 576, 24]), ("table", TensorProto.FLOAT, [17 * 15 * 15, 1])], "at most 512"),
])
def test_build_refuses_plugin_nodes_the_kernels_lack_before_tensorrt(op, attrs, inputs, message, tmp_path):
    """The CPU contract leads the C++ plugins: a node they cannot run stops `build` before TensorRT is
    imported (exit 2, naming the node), never an engine that silently lacks it."""
    from click.testing import CliRunner

    from swin_trt.cli.main import main

    path, engine = tmp_path / "m.onnx", tmp_path / "m.engine"
    onnx.save_model(plugin_model(op, attrs, inputs), str(path))
    result = CliRunner().invoke(main, ["build", str(path), "-o", str(engine)])
    assert result.exit_code == 2, result.output
    assert "cannot be built" in result.output and message in result.output and "--window-ops" in result.output
    assert not engine.exists()


def test_build_lets_3d_plugin_nodes_through():
    """3D partition, reverse and attention (Video Swin's 8x7x7, 392 tokens) are what the plugins run."""
    from swin_trt.engine.build import _refuse_plugins_the_kernels_lack

    nodes = [
        (schema.PARTITION, dict(window_size=(2, 7, 7), shift_size=(1, 3, 3), pad_first=1),
         [("x", TensorProto.FLOAT, [1, 4, 14, 14, 8])]),
        (schema.ATTENTION, dict(num_heads=1, window_size=(8, 7, 7), shift_size=(0, 0, 0), scale=0.5),
         [("qkv", TensorProto.FLOAT, [1, 392, 24]), ("table", TensorProto.FLOAT, [15 * 13 * 13, 1])]),
    ]
    for op, attrs, inputs in nodes:
        _refuse_plugins_the_kernels_lack("m.onnx", plugin_model(op, attrs, inputs).graph)
