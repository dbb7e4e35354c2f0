"""Graph surgery's fused gathers (swin_trt/surgery/fuse_gathers.py): partition -> Linear -> attention -> Linear ->
reverse becomes Linear -> SwinFusedWindowAttention -> Linear on the token map, where the graph proves it may.
Each fused graph is checked by the rewrite's own equivalence check and here against its source on real photos:
ours (static, padded with timm's order, any size) and torchvision's (padded, then shifted)."""

import importlib.util

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest

from swin_trt.backends.onnxruntime import create_session
from swin_trt.engine.build import inspect_onnx
from swin_trt.errors import UserError
from swin_trt.ops import schema
from swin_trt.surgery.fuse_gathers import fuse_gathers
from swin_trt.surgery.rewrite import rewrite

from conftest import export_peer, photo_batch, run_first

WINDOW_OPS = {schema.PARTITION, schema.REVERSE, schema.ATTENTION}


def assert_every_block_fused(rewritten, report, blocks):
    ops = [n.op_type for n in rewritten.graph.node]
    assert ops.count(schema.FUSED_ATTENTION) == blocks, report.format()
    assert not WINDOW_OPS & set(ops), report.format()  # no partition/reverse pass left in any block
    assert "Softmax" not in ops and not report.unfused
    assert report.counts() == {schema.FUSED_ATTENTION: blocks}
    onnx.checker.check_model(rewritten)


def assert_equal_to_source(original, rewritten, photo_dir, size, batches=(1,)):
    reference, fused = create_session(original), create_session(rewritten)
    for batch in batches:
        x = photo_batch(photo_dir, size, batch)
        assert np.abs(run_first(reference, x) - run_first(fused, x)).max() <= 1e-4


@pytest.mark.parametrize("img_size,convention", [(None, None), ((72, 88), "timm")], ids=["64", "72x88-timm"])
def test_fused_rewrite_of_pico_equals_its_source(tmp_path, photo_dir, img_size, convention):
    """64 px: every stage divides the window; 72x88 in timm's order (shift, then pad): stages 18x22, 9x11, 5x6
    and 3x3 are padded, so padded tokens are keys whose qkv is the Linear's bias (the pad row)."""
    from swin_trt.export import export_model

    path = tmp_path / "pico.onnx"
    export_model("swin_pico_test", path, img_size=img_size, convention=convention, check=False)
    original = onnx.load(path)
    rewritten, report = rewrite(original, fuse_attention=True, fuse_gathers=True)
    assert_every_block_fused(rewritten, report, 8)
    assert report.equivalence.max_abs_diff and max(report.equivalence.max_abs_diff.values()) <= 1e-4
    pad_first = {int(r.attrs["pad_first"]) for r in report.replacements}
    assert pad_first == ({0, 1} if convention == "timm" else {1})  # timm's order where the two orders differ
    assert "gathers fused into attention: 8 block(s)" in report.format()
    assert_equal_to_source(original, rewritten, photo_dir, img_size or (64, 64))


def test_fused_rewrite_of_an_any_size_v2_graph(tmp_path, photo_dir):
    """Swin V2 (cosine attention) with dynamic height and width: the fused node reads its size from its own
    input; one graph at every size, padded (176x208: stages 11x13 and 5x6 of window 4) or not."""
    from swin_trt.export import export_model

    path = tmp_path / "v2.onnx"
    export_model("swinv2_pico_test", path, img_size=160, dynamic_size=True, check=False)
    original = onnx.load(path)
    rewritten, report = rewrite(original, fuse_attention=True, fuse_gathers=True)
    assert_every_block_fused(rewritten, report, 8)
    assert len(report.equivalence.sizes) >= 2
    assert all(r.attrs.get("cosine") == 1 for r in report.replacements)
    for size in ((160, 160), (176, 208)):
        assert_equal_to_source(original, rewritten, photo_dir, size)


def test_fused_rewrite_of_torchvision(tmp_path, photo_dir):
    """torchvision pads, then shifts; at 96x112 with window 4 the last stages (6x7, 3x4) are padded."""
    from torchvision.models.swin_transformer import SwinTransformer
    import torch

    torch.manual_seed(0)
    model = SwinTransformer(patch_size=[4, 4], embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8],
                            window_size=[4, 4], num_classes=10)
    size = (96, 112)
    original = export_peer(model, size, "torchscript", False, tmp_path / "tv.onnx")
    rewritten, report = rewrite(original, fuse_attention=True, fuse_gathers=True)
    assert_every_block_fused(rewritten, report, 8)
    assert_equal_to_source(original, rewritten, photo_dir, size, batches=(2,))


def test_fused_rewrite_of_video_swin(tmp_path):
    """Video Swin's 3D windows (T, H, W): every block fused, equal to the source on a random clip."""
    from swin_trt.export import export_model

    path = tmp_path / "video.onnx"
    export_model("swin3d_pico_test", path, check=False)
    original = onnx.load(path)
    rewritten, report = rewrite(original, fuse_attention=True, fuse_gathers=True)
    assert_every_block_fused(rewritten, report, 4)
    assert all(len(r.attrs["window_size"]) == 3 for r in report.replacements)
    dims = [d.dim_value or 1 for d in original.graph.input[0].type.tensor_type.shape.dim]
    clip = np.random.default_rng(0).standard_normal(dims).astype(np.float32)
    expected, got = run_first(create_session(original), clip), run_first(create_session(rewritten), clip)
    assert np.abs(expected - got).max() <= 1e-4


@pytest.fixture(scope="module")
def pico_plugins(tmp_path_factory):
    """The pico model rewritten with every plugin family, unfused (a gs graph per call)."""
    from swin_trt.export import export_model

    path = tmp_path_factory.mktemp("fuse") / "pico.onnx"
    export_model("swin_pico_test", path, check=False)
    rewritten, _ = rewrite(onnx.load(path), fuse_attention=True)
    return rewritten


def test_a_block_with_something_else_between_stays_unfused(pico_plugins):
    """A weight that is no constant (here behind an Identity, as a quantized weight is behind DequantizeLinear)
    and a second reader of the windows: those blocks keep partition and reverse, with the reason."""
    graph = gs.import_onnx(pico_plugins)
    attentions = [n for n in graph.nodes if n.op == schema.ATTENTION]
    add = attentions[0].inputs[0].inputs[0]
    qkv_matmul = next(t for t in add.inputs if isinstance(t, gs.Variable)).inputs[0]
    assert qkv_matmul.op == "MatMul"
    weight = gs.Variable("qkv_weight_computed", dtype=np.float32)
    graph.nodes.append(gs.Node("Identity", "computed_weight", inputs=[qkv_matmul.inputs[1]], outputs=[weight]))
    qkv_matmul.inputs[1] = weight
    windows = [n for n in graph.nodes if n.op == schema.PARTITION][1].outputs[0]
    graph.outputs.append(windows)
    fusions, unfused = fuse_gathers(graph)
    assert len(fusions) == 6
    reasons = dict(unfused)
    assert "has no constant 2-D weight" in reasons[attentions[0].name]
    assert "read by something else than one projection" in reasons[attentions[1].name]


def test_fuse_gathers_needs_the_attention_plugin():
    with pytest.raises(UserError, match="`fuse_gathers` fuses .* needs `fuse_attention`"):
        rewrite(onnx.ModelProto(), fuse_gathers=True)


def test_cli_fuse_gathers_and_build_takes_the_fused_node(cli, tmp_path):
    """`rewrite --fuse-gathers` needs --fuse-attention; its graph runs in ONNX Runtime, and `build` takes the
    fused node (the plugin library implements SwinFusedWindowAttention): no refusal before TensorRT, and the
    node is among the plugin ops the library must register."""
    model = tmp_path / "m.onnx"
    cli("export", "--arch", "swin_pico_test", "-o", model)
    out = tmp_path / "m.fused.onnx"
    result = cli("rewrite", model, "-o", out, "--fuse-attention", "--fuse-gathers", "--strict")
    assert "gathers fused into attention: 8 block(s)" in result.output
    refused = cli("rewrite", model, "-o", tmp_path / "x.onnx", "--fuse-gathers", expect=2).output
    assert "--fuse-gathers fuses" in refused and "--fuse-attention" in refused
    graph = inspect_onnx(out)  # what `build` reads before TensorRT: refuses nothing here
    assert schema.FUSED_ATTENTION in graph.plugin_ops
    if importlib.util.find_spec("tensorrt") is None:
        engine = tmp_path / "m.engine"
        built = cli("build", out, "-o", engine, expect=2).output
        assert "TensorRT is not installed" in built and "cannot be built" not in built and not engine.exists()
