"""Graph surgery on graphs no one here wrote: ours, timm's and torchvision's Swin, both torch exporters,
static and dynamic batch, square and non-square inputs. Every rewritten graph runs on the CPU through the
plugins' CPU implementation and must equal the original on real photos."""

import json
import re

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from swin_trt.backends.onnxruntime import create_session
from swin_trt.ops import schema
from swin_trt.surgery.rewrite import rewrite

from conftest import TINY, export_peer, photo_batch, run_first

# Window 4 keeps the matrix fast. Square 128: every stage divides (32, 16, 8, 4). Non-square 96x112: stages
# 24x28, 12x14, 6x7, 3x4, so the window divides none of the last three and timm shrinks it in stage 4.
WINDOW = 4
SIZES = {"square": (128, 128), "nonsquare": (96, 112)}
CONFIG = {**TINY, "window_size": WINDOW}


def build_peer(impl, size):
    torch.manual_seed(0)
    if impl == "timm":
        import timm

        return timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=size, **CONFIG)
    if impl == "torchvision":
        from torchvision.models.swin_transformer import SwinTransformer

        return SwinTransformer(patch_size=[4, 4], embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8],
                               window_size=[WINDOW, WINDOW], num_classes=10)
    from swin_trt.models import SwinConfig, SwinTransformer

    return SwinTransformer(SwinConfig(img_size=size, convention="timm", **CONFIG))


CASES = [(impl, exporter, dynamic, shape)
         for impl in ("ours", "timm", "torchvision") for exporter in ("torchscript", "dynamo")
         for dynamic, shape in ((False, "nonsquare"), (True, "square"))]


@pytest.mark.parametrize("impl,exporter,dynamic,shape", CASES, ids=["-".join(map(str, c)) for c in CASES])
def test_rewrite_matrix(tmp_path, photo_dir, impl, exporter, dynamic, shape):
    size = SIZES[shape]
    original = export_peer(build_peer(impl, size), size, exporter, dynamic, tmp_path / "m.onnx")
    rewritten, report = rewrite(original, fuse_attention=True)
    counts = report.counts()
    assert counts == {schema.PARTITION: 8, schema.REVERSE: 8, schema.ATTENTION: 8}, report.format()
    assert not report.unmatched
    onnx.checker.check_model(rewritten)
    assert "Softmax" not in {n.op_type for n in rewritten.graph.node}  # every attention core fused
    initializers = {i.name for i in rewritten.graph.initializer}
    reshape_targets = [n.input[1] for n in rewritten.graph.node if n.op_type == "Reshape"]
    assert all(t in initializers for t in reshape_targets)  # the exporter's shape arithmetic is folded
    for node in rewritten.graph.node:
        if node.op_type in schema.OP_TYPES:
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            assert attrs["plugin_version"] == b"1" and attrs["plugin_namespace"] == b"swin_trt"
    reference = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
    candidate = create_session(rewritten)
    batches = (1, 3) if dynamic else (2,)
    for batch in batches:
        x = photo_batch(photo_dir, size, batch)
        assert np.abs(run_first(reference, x) - run_first(candidate, x)).max() <= 1e-4


def test_no_fuse_attention_keeps_softmax(tmp_path):
    original = export_peer(build_peer("ours", SIZES["square"]), SIZES["square"], "torchscript", False,
                      tmp_path / "m.onnx")
    rewritten, report = rewrite(original, fuse_attention=False)
    assert schema.ATTENTION not in report.counts()
    assert sum(n.op_type == "Softmax" for n in rewritten.graph.node) == 8


@pytest.mark.parametrize("window_ops, fuse_attention", [("plugin", None), ("native", False), ("native", True)],
                         ids=["default", "tensorrt-alone", "attention-plugin-only"])
def test_variants_keep_the_graph_exact(tmp_path, photo_dir, window_ops, fuse_attention):
    """Each plugin family is a choice; every combination computes what the original does. The default (no
    arguments) is partition/reverse as plugins and attention left native."""
    size = SIZES["nonsquare"]
    original = export_peer(build_peer("ours", size), size, "torchscript", False, tmp_path / "m.onnx")
    options = {} if fuse_attention is None else {"fuse_attention": fuse_attention}
    rewritten, report = rewrite(original, window_ops=window_ops, **options)
    ops = [n.op_type for n in rewritten.graph.node]
    windows = ops.count(schema.PARTITION) + ops.count(schema.REVERSE)
    assert windows == (16 if window_ops == "plugin" else 0)
    assert ops.count(schema.ATTENTION) == (8 if fuse_attention else 0)
    assert ops.count("Softmax") == (0 if fuse_attention else 8)
    assert report.variant == {"window_ops": window_ops, "fuse_attention": bool(fuse_attention), "fuse_gathers": False}
    if window_ops == "native":
        assert report.kept_native == {schema.PARTITION: 8, schema.REVERSE: 8}
        assert "kept as native ops (--window-ops native): 8 SwinWindowPartition" in report.format()
    assert report.format().startswith("found " + str(16 + (8 if fuse_attention else 0)) + " window ops")
    has_domain = any(o.domain == schema.DOMAIN for o in rewritten.opset_import)
    assert has_domain == bool(windows or fuse_attention)  # TensorRT alone: no trace of the plugin domain
    initializers = {i.name for i in rewritten.graph.initializer}
    assert all(n.input[1] in initializers for n in rewritten.graph.node if n.op_type == "Reshape")
    reference = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
    x = photo_batch(photo_dir, size, 2)
    assert np.abs(run_first(reference, x) - run_first(create_session(rewritten), x)).max() <= 1e-4


def test_unknown_window_ops_is_a_user_error(tmp_path):
    from swin_trt.errors import UserError

    with pytest.raises(UserError, match="plugin, native"):
        rewrite(onnx.ModelProto(), window_ops="gather")


def test_attention_with_heads_wider_than_the_plugin_is_left_with_the_reason(tmp_path, photo_dir):
    """Heads of 256 channels (the plugin runs at most MAX_HEAD_DIM): the windows are replaced, the attention
    stays ordinary ONNX ops with the reason in the report, the graph still computes the same, --strict fails."""
    from swin_trt.errors import UserError
    from swin_trt.models import SwinConfig, SwinTransformer

    assert schema.MAX_HEAD_DIM < 256
    torch.manual_seed(0)
    size = (32, 32)
    model = SwinTransformer(SwinConfig(img_size=size, embed_dim=256, depths=(2,), num_heads=(1,), window_size=4,
                                       num_classes=10))
    original = export_peer(model, size, "torchscript", False, tmp_path / "m.onnx")
    rewritten, report = rewrite(original, fuse_attention=True)
    assert schema.ATTENTION not in report.counts() and report.counts()[schema.PARTITION] == 2
    assert [op for _, op, _ in report.unmatched] == ["Softmax", "Softmax"]
    assert all(reason == "head dim 256: the SwinWindowAttention plugin runs head dims 1 to 128"
               for _, _, reason in report.unmatched)
    x = photo_batch(photo_dir, size, 2)
    np.testing.assert_allclose(run_first(create_session(rewritten), x), run_first(create_session(original), x), atol=1e-4)
    with pytest.raises(UserError, match="`strict`: 2 window op.*head dim 256"):
        rewrite(original, fuse_attention=True, strict=True)


def test_shrunk_windows_of_timm_are_matched(tmp_path):
    """At 96x112 the last stage is 3x4: timm shrinks the window to (3, 4) with no shift."""
    original = export_peer(build_peer("timm", SIZES["nonsquare"]), SIZES["nonsquare"], "torchscript", False,
                      tmp_path / "m.onnx")
    _, report = rewrite(original)
    last = [r for r in report.replacements if r.op == schema.PARTITION][-1]
    assert list(last.attrs["window_size"]) == [3, 4] and list(last.attrs["shift_size"]) == [0, 0]


def test_cli_rewrite_prints_report_and_validate_agrees(cli, tmp_path, photo_dir):
    model = tmp_path / "m.onnx"
    cli("export", "--arch", "swin_pico_test", "-o", model)
    out = tmp_path / "m.rw.onnx"
    result = cli("rewrite", model, "-o", out, "--strict", "--fuse-attention")
    assert "found 24 window ops" in result.output and "before  after" in result.output
    sidecar = json.loads((tmp_path / "m.rw.onnx.json").read_text())
    assert sidecar["stage"] == "rewrite" and sidecar["arch"] == "swin_pico_test"
    assert sidecar["rewrite"]["plugins"]["SwinWindowAttention"] == 8
    assert sidecar["rewrite"]["variant"] == {"window_ops": "plugin", "fuse_attention": True, "fuse_gathers": False}
    native = cli("rewrite", model, "-o", tmp_path / "m.native.onnx", "--window-ops", "native")
    assert "kept as native ops (--window-ops native): 8 SwinWindowPartition, 8 SwinWindowReverse" in native.output
    assert "attention left to TensorRT" in native.output
    assert json.loads((tmp_path / "m.native.onnx.json").read_text())["rewrite"]["plugins"] == {}
    checked = cli("validate", "--reference", model, "--candidate", out, "--data", photo_dir, "--json",
                  "--atol", "1e-4")
    document = json.loads(checked.stdout)
    entry = document["candidates"][0]
    assert entry["max_abs_err"] <= 1e-4 and entry["cosine"] > 0.9999 and entry["top1_agreement"] == 1.0


def test_validate_gate_fails_with_exit_1(cli, tmp_path, photo_dir):
    a, b = tmp_path / "a.onnx", tmp_path / "b.onnx"
    cli("export", "--arch", "swin_pico_test", "-o", a)
    from swin_trt.export import export_model

    export_model("swin_pico_test", b, seed=1)  # other random weights: far from a
    result = cli("validate", "--reference", a, "--candidate", b, "--data", photo_dir, "--min-cosine", "0.999999",
                 expect=1)
    assert "gates: 1 FAILED" in result.output
    assert re.search(rf"FAILED: {re.escape(str(b))}: cosine -?[0-9.]+ < --min-cosine 0.999999", result.output)


@pytest.mark.parametrize("content,message", [(b"not an onnx file at all", "is not an ONNX model")])
def test_rewrite_bad_input(cli, tmp_path, content, message):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    result = cli("rewrite", bad, "-o", tmp_path / "out.onnx", expect=2)
    assert message in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.onnx"]


def test_rewrite_graph_without_windows(cli, tmp_path):
    path = tmp_path / "mlp.onnx"
    torch.onnx.export(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.ReLU()), (torch.randn(1, 4),),
                      str(path), dynamo=False)
    result = cli("rewrite", path, "-o", tmp_path / "out.onnx", expect=2)
    assert "no Swin window ops" in result.output
    assert not (tmp_path / "out.onnx").exists()


def test_out_of_range_attribute_is_a_clear_error():
    with pytest.raises(schema.PluginAttributeError, match="shift_size"):
        schema.plugin_attributes(schema.PARTITION, window_size=(7, 7), shift_size=(7, 0), pad_first=1)


def test_lowering_rejects_bad_attribute_on_a_node(tmp_path, cli):
    model = tmp_path / "m.onnx"
    cli("export", "--arch", "swin_pico_test", "-o", model)
    out = tmp_path / "rw.onnx"
    cli("rewrite", model, "-o", out)
    graph = onnx.load(out)
    node = next(n for n in graph.graph.node if n.op_type == schema.PARTITION)
    for attr in node.attribute:
        if attr.name == "pad_first":
            attr.i = 5
    with pytest.raises(schema.PluginAttributeError, match="pad_first"):
        create_session(graph)
