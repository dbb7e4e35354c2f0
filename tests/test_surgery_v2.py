"""Graph surgery on Swin V2 (scaled cosine attention, continuous position bias, post-norm): ours, timm's,
torchvision's and Hugging Face's, both torch exporters, at a size where the window divides no late stage.
Each block becomes one partition, one reverse and one cosine-mode attention plugin; the rewritten graph
runs on the CPU through the plugins' lowering and must equal the original on real photos. The folded CPB
table and per-head scales the surgery reads back must equal the model's own."""

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from swin_trt.backends.onnxruntime import create_session
from swin_trt.models import SwinTransformerV2, SwinV2Config
from swin_trt.models.peers import build_peer, randomize
from swin_trt.models.swin_v2 import CosineWindowAttention
from swin_trt.ops import schema
from swin_trt.surgery.rewrite import rewrite

from conftest import export_peer, photo_batch, run_first, sum_atol

# Window 4, 8 blocks. 96x112: stages 24x28, 12x14, 6x7, 3x4: the window divides none of the last three (the
# pad orders differ there) and the last stage is smaller than it (each implementation's own shrink rule).
PICO_V2 = dict(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4, num_classes=10)
SIZE = (96, 112)
IMPLEMENTATIONS = ("ours", "timm", "torchvision", "hf")
PEER_MODULE = {"timm": "timm", "torchvision": "torchvision", "hf": "transformers"}


def build_v2(impl, size=SIZE):
    if impl != "ours":
        pytest.importorskip(PEER_MODULE[impl])
    config = SwinV2Config(img_size=size, convention="timm" if impl == "ours" else impl, **PICO_V2)
    model = SwinTransformerV2(config) if impl == "ours" else build_peer(impl, config)
    return randomize(model, seed=1).eval()  # logit scales up to the clamp, a CPB MLP that varies


def attributes(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_every_v2_block_becomes_three_plugins_and_stays_exact(tmp_path, photo_dir, impl, exporter):
    original = export_peer(build_v2(impl), SIZE, exporter, False, tmp_path / "m.onnx")
    rewritten, report = rewrite(original, fuse_attention=True)
    assert report.counts() == {schema.PARTITION: 8, schema.REVERSE: 8, schema.ATTENTION: 8}, report.format()
    assert not report.unmatched
    onnx.checker.check_model(rewritten)
    assert "Softmax" not in {n.op_type for n in rewritten.graph.node}
    for node in rewritten.graph.node:
        if node.op_type == schema.ATTENTION:
            attrs = attributes(node)
            assert attrs["cosine"] == 1 and attrs["scale"] == 1.0
            assert len(attrs["head_scale"]) == attrs["num_heads"]
            assert all(0 < s <= 100 for s in attrs["head_scale"])
    reference = ort.InferenceSession(original.SerializeToString(), providers=["CPUExecutionProvider"])
    x = photo_batch(photo_dir, SIZE, 2)
    assert np.abs(run_first(reference, x) - run_first(create_session(rewritten), x)).max() <= 1e-4


def test_folded_cpb_table_and_head_scales_are_the_models(tmp_path):
    """The probe reads the CPB MLP's table and exp(min(logit_scale, log 100)) back out of the graph; they equal
    the model's own, block by block, the clamp included."""
    model = build_v2("ours", (64, 64))
    blocks = [m for m in model.modules() if isinstance(m, CosineWindowAttention)]
    assert any((b.logit_scale > math.log(100)).any() for b in blocks)  # the clamp is exercised
    original = export_peer(model, (64, 64), "torchscript", False, tmp_path / "m.onnx")
    rewritten, _ = rewrite(original, fuse_attention=True)
    tables = {i.name: onnx.numpy_helper.to_array(i) for i in rewritten.graph.initializer}
    nodes = [n for n in rewritten.graph.node if n.op_type == schema.ATTENTION]
    assert len(nodes) == len(blocks)
    with torch.no_grad():
        for node, block in zip(nodes, blocks):
            # 16 sigmoid(W2 relu(W1 c + b1)): sigmoid's slope is at most 1/4, W2's sum has CPB_HIDDEN terms
            hidden = block.cpb_mlp[1](block.cpb_mlp[0](block.relative_coords_table)).abs()
            terms = float((hidden @ block.cpb_mlp[2].weight.abs().T).max())
            np.testing.assert_allclose(tables[node.input[1]], block.cpb_bias_table().numpy(), rtol=0,
                                       atol=16 / 4 * sum_atol(terms, hidden.shape[-1]))
            # read off the logits path: scale + bias, over a head_dim-long normalised dot product
            scale = block.live_head_scale().flatten().numpy()
            head_dim = block.qkv.weight.shape[1] // block.num_heads
            np.testing.assert_allclose(attributes(node)["head_scale"], scale, rtol=0,
                                       atol=sum_atol(float(scale.max()) + 16, 2 * head_dim + 4))


def test_v2_export_of_any_size_rewrites_into_one_graph_for_every_size(cli, tmp_path, photo_dir):
    """export --dynamic-size of a V2 arch, rewrite --strict --fuse-attention: shifted attention and reverse
    read the size from the feature map; one rewritten graph equals the original at several sizes."""
    source, plugins = tmp_path / "m.onnx", tmp_path / "m.plugins.onnx"
    cli("export", "--arch", "swinv2_pico_test", "--dynamic-size", "--img-size", "160x160", "-o", str(source))
    cli("rewrite", str(source), "-o", str(plugins), "--fuse-attention", "--strict")
    graph = onnx.load(str(plugins)).graph
    for node in graph.node:
        if node.op_type == schema.ATTENTION:
            shifted = any(attributes(node)["shift_size"])
            assert len(node.input) == (3 if shifted else 2) and "height" not in attributes(node)
    reference = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    candidate = create_session(onnx.load(str(plugins)))
    for size in [(160, 160), (192, 288), (224, 176)]:
        x = photo_batch(photo_dir, size, 1)
        assert np.abs(run_first(reference, x) - run_first(candidate, x)).max() <= 1e-4, size
