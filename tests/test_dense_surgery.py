"""Graph surgery for dense prediction: Hugging Face's Swin (SwinModel, SwinBackbone, UperNet on it) from both
torch exporters, and backbones exported with dynamic height and width (transformers, timm, swin-trt's own),
rewritten ONCE and equal to the source at several sizes on real photos."""

import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from swin_trt.backends.onnxruntime import create_session
from swin_trt.ops import schema
from swin_trt.surgery.rewrite import rewrite

from conftest import TINY
from conftest import photo_batch

HF_SMALL = dict(embed_dim=TINY["embed_dim"], depths=list(TINY["depths"]), num_heads=list(TINY["num_heads"]))
PER_OP = {schema.PARTITION: 8, schema.REVERSE: 8, schema.ATTENTION: 8}  # one of each per block, 8 blocks
DENSE_SIZES = [(448, 448), (512, 640)]


def hf_model(kind, window=7, attn="sdpa"):
    """A transformers Swin with random weights, built from a config (no hub download)."""
    from transformers import SwinBackbone, SwinConfig, SwinModel, UperNetConfig, UperNetForSemanticSegmentation

    torch.manual_seed(0)
    config = SwinConfig(window_size=window, out_features=["stage1", "stage2", "stage3", "stage4"], **HF_SMALL)
    if kind == "upernet":
        model = UperNetForSemanticSegmentation(  # as users build it: its backbone picks its own attention
            UperNetConfig(backbone_config=config, hidden_size=32, num_labels=5, use_auxiliary_head=False))
    elif kind == "backbone":
        model = SwinBackbone._from_config(config, attn_implementation=attn)
    else:
        model = SwinModel._from_config(config, attn_implementation=attn)

    class Outputs(torch.nn.Module):  # what a user exports: the tensors, not the ModelOutput
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            out = self.model(pixel_values=pixel_values)
            if kind == "upernet":
                return out.logits
            return tuple(out.feature_maps) if kind == "backbone" else out.last_hidden_state

    return Outputs().eval()


def export_peer(model, size, exporter, path, dynamic=False, batch=1):
    """Plain torch.onnx.export as a user calls it; ``dynamic`` leaves batch, height and width dynamic."""
    x = torch.randn(batch, 3, *size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            shapes = None
            if dynamic:
                auto = torch.export.Dim.AUTO
                shapes = ({0: torch.export.Dim("batch", min=1, max=8), 2: auto, 3: auto},)
            program = torch.onnx.export(model, (x,), dynamo=True, opset_version=18, verbose=False,
                                        dynamic_shapes=shapes, input_names=["input"])
            onnx.save_model(program.model_proto, str(path))
        else:
            axes = {"input": {0: "batch", 2: "height", 3: "width"}} if dynamic else None
            torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=17, input_names=["input"],
                              dynamic_axes=axes)
    return onnx.load(str(path))


def assert_equal_on_photos(original, rewritten, photo_dir, sizes, batches=(1,)):
    reference = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
    candidate = create_session(rewritten)
    name = reference.get_inputs()[0].name
    for size in sizes:
        for batch in batches:
            x = photo_batch(photo_dir, size, batch)
            expected, got = reference.run(None, {name: x}), candidate.run(None, {name: x})
            assert len(expected) == len(got)
            for a, b in zip(expected, got):
                assert a.shape == b.shape
                assert np.abs(a - b).max() <= 1e-4, (size, batch)


def rewrite_through_cli(cli, source):
    """``swin-trt rewrite --strict``; the rewritten graph must hold one plugin node of each op per block."""
    out = source.with_suffix(".rw.onnx")
    result = cli("rewrite", source, "-o", out, "--strict", "--fuse-attention")
    rewritten = onnx.load(out)
    ops = [n.op_type for n in rewritten.graph.node]
    assert {op: ops.count(op) for op in schema.OP_TYPES if op in ops} == PER_OP
    return rewritten, result.output


def assert_fully_rewritten(rewritten, report):
    assert report.counts() == PER_OP, report.format()
    assert not report.unmatched
    onnx.checker.check_model(rewritten)
    assert "Softmax" not in {n.op_type for n in rewritten.graph.node}


HF_CASES = [(kind, exporter) for kind in ("model", "backbone") for exporter in ("torchscript", "dynamo")]


@pytest.mark.parametrize("kind,exporter", HF_CASES, ids=["-".join(c) for c in HF_CASES])
def test_hugging_face_swin_static(tmp_path, photo_dir, kind, exporter):
    """Window 4 at 160x192: stages 40x48, 20x24, 10x12, 5x6, padded where 4 does not divide them (Hugging Face
    pads, then shifts). (transformers 5 fails on a stage smaller than the window, so none is here.) The dynamo
    exporter cannot export transformers' SDPA attention (torch's decomposition fails), so dynamo users
    export the eager attention."""
    size = (160, 192)
    model = hf_model(kind, window=4, attn="eager" if exporter == "dynamo" else "sdpa")
    original = export_peer(model, size, exporter, tmp_path / "m.onnx")
    rewritten, report = rewrite(original, strict=True, fuse_attention=True)
    assert_fully_rewritten(rewritten, report)
    heights = [r.attrs["height"] for r in report.replacements if r.op == schema.REVERSE]
    assert heights == [40, 40, 20, 20, 10, 10, 5, 5]
    assert all(r.attrs["pad_first"] == 1 for r in report.replacements if r.op != schema.ATTENTION)
    # separate q/k/v projections became one qkv MatMul per block
    assert sum(n.op_type == "MatMul" and n.name.endswith("/qkv/MatMul") for n in rewritten.graph.node) == 8
    assert_equal_on_photos(original, rewritten, photo_dir, [size])


def test_upernet_swin_from_transformers_rewrites_strict_through_the_cli(cli, tmp_path, photo_dir):
    """The user's case: UperNet on a Swin backbone, plain torch.onnx.export at 576x576, no sidecar."""
    source = tmp_path / "upernet.onnx"
    original = export_peer(hf_model("upernet"), (576, 576), "torchscript", source)
    rewritten, printed = rewrite_through_cli(cli, source)
    assert "found 24 window ops: 8 SwinWindowAttention, 8 SwinWindowPartition, 8 SwinWindowReverse" in printed
    assert_equal_on_photos(original, rewritten, photo_dir, [(576, 576)])


# Hugging Face decides in Python whether a stage needs padding and a crop, so its dynamic export is made at a
# size where every stage is padded (512x640 with window 7); then the graph runs at every size. (timm through
# dynamo works too, but its dynamic-shape export alone takes minutes on a 2-core machine.)
DYNAMIC_CASES = [("hf", "torchscript"), ("hf", "dynamo"), ("timm", "torchscript")]


def dynamic_backbone(impl, exporter):
    if impl == "hf":
        return hf_model("backbone", attn="eager" if exporter == "dynamo" else "sdpa")
    import timm

    torch.manual_seed(0)
    return timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, features_only=True,
                             strict_img_size=False, **{k: v for k, v in TINY.items() if k != "num_classes"}).eval()


@pytest.mark.parametrize("impl,exporter", DYNAMIC_CASES, ids=["-".join(c) for c in DYNAMIC_CASES])
def test_dynamic_size_backbone_is_rewritten_once_for_every_size(tmp_path, photo_dir, impl, exporter):
    original = export_peer(dynamic_backbone(impl, exporter), (512, 640), exporter, tmp_path / "m.onnx", dynamic=True,
                      batch=2)
    dims = [d.dim_param for d in original.graph.input[0].type.tensor_type.shape.dim]
    assert dims[0] and dims[2] and dims[3]  # batch, height and width are dynamic
    rewritten, report = rewrite(original, strict=True, fuse_attention=True)
    assert_fully_rewritten(rewritten, report)
    assert report.cleanup["shape_tensors_kept"] > 0  # what depends on the size stays computed
    for node in rewritten.graph.node:  # the size comes from the feature-map input, not from attributes
        attrs = {a.name for a in node.attribute}
        if node.op_type in schema.OP_TYPES:
            assert not attrs & {"height", "width"}
        if node.op_type == schema.REVERSE:
            assert len(node.input) == 2
    assert_equal_on_photos(original, rewritten, photo_dir, DENSE_SIZES, batches=(1, 2))


def test_swin_trt_dynamic_size_features_export(cli, tmp_path, photo_dir):
    """The export checks itself against PyTorch at 256x320 and at a larger size (a model built for it).
    (--exporter dynamo works too, but its dynamic-shape export takes minutes on a 2-core machine.)"""
    source = tmp_path / "backbone.onnx"
    result = cli("export", "--arch", "swin_nano_test", "--features", "--dynamic-size", "--img-size", "256x320",
                 "--dynamic-batch", "4", "-o", source)
    assert "from 256x256 up" in result.output
    original = onnx.load(source)
    dims = original.graph.input[0].type.tensor_type.shape.dim
    assert [bool(d.dim_param) for d in dims] == [True, False, True, True]
    rewritten, printed = rewrite_through_cli(cli, source)
    assert "kept computed" in printed
    assert_equal_on_photos(original, rewritten, photo_dir, DENSE_SIZES, batches=(1, 2))


def test_dynamic_size_export_refuses_a_size_whose_window_shrinks(cli, tmp_path):
    result = cli("export", "--arch", "swin_nano_test", "--features", "--dynamic-size", "-o", tmp_path / "m.onnx",
                 expect=2)
    assert "--img-size 256x256" in result.output
    assert not (tmp_path / "m.onnx").exists()


def test_dynamic_graph_that_runs_at_no_probe_size_is_a_clear_error(cli, tmp_path):
    """swin-trt's model exported with dynamic axes but without --dynamic-size keeps its masks for one size:
    the graph runs at no other size, and rewrite says so (exit 2) instead of a traceback."""
    from swin_trt.models import SwinConfig, SwinTransformer

    model = SwinTransformer(SwinConfig(img_size=(256, 256), **TINY), features=True).eval()
    path = tmp_path / "m.onnx"
    export_peer(model, (256, 256), "torchscript", path, dynamic=True)
    result = cli("rewrite", path, "-o", tmp_path / "out.onnx", expect=2)
    assert "could not evaluate the graph's shape arithmetic" in result.output
    assert "height=224, width=320" in result.output
