"""Swin V2 import proven numerically: with the same random weights, saved by each peer's own code, our logits
and stage features equal timm's, torchvision's and transformers', at the default size and where the window
does not divide a stage."""

import math

import pytest
import torch

from swin_trt.models import SwinTransformerV2, SwinV2Config
from swin_trt.models.checkpoint import LoadedCheckpoint, apply_state, detect_format, to_reference_layout
from swin_trt.models.peers import PEERS, build_peer, peer_features, peer_logits, randomize
from swin_trt.models.swin_v2 import CosineWindowAttention, cpb_coordinates, v2_block_geometry

ATOL = 1e-4
# swinv2_pico_test's shape: window 4, stages 16-8-4-2 at its default 64 px (the last stage smaller than the
# window). 64x96: stage 2 is 4x6; 72x88: odd stages 9x11, 5x6, 3x3, where transformers' nominal stage sizes
# (4x5, 2x2 from the floor-divided grid) are not the real ones.
PICO_V2 = dict(embed_dim=16, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2), window_size=4, num_classes=5)
SIZES = [(64, 64), (64, 96), (72, 88)]
TINY_V2 = dict(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=8, num_classes=10)
PEER_MODULE = {"timm": "timm", "torchvision": "torchvision", "hf": "transformers"}


def import_state(model, state_dict):
    fmt = detect_format(state_dict)
    tensors, recomputed = to_reference_layout(state_dict, fmt)
    return apply_state(model, LoadedCheckpoint("peer", "", fmt, tensors, recomputed))


def ours(config, peer_state, features=False):
    model = SwinTransformerV2(config, features=features).eval()
    import_state(model, peer_state)
    return model


def example(size, batch=2):
    return torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))


def peer(name, config, seed=1):
    pytest.importorskip(PEER_MODULE[name])
    return randomize(build_peer(name, config), seed)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", PEERS)
def test_logits_and_features_equal_the_peer(name, size):
    config = SwinV2Config(img_size=size, convention=name, **PICO_V2)
    reference = peer(name, config)
    state = reference.state_dict()
    assert detect_format(state) == name
    x = example(size)
    with torch.no_grad():
        logits = ours(config, state)(x)
        features = ours(config, state, features=True)(x)
    assert (logits - peer_logits(reference, x)).abs().max().item() <= ATOL
    expected = peer_features(name, reference, x)
    assert [tuple(f.shape) for f in features] == [tuple(f.shape) for f in expected]
    assert max((a - b).abs().max().item() for a, b in zip(features, expected)) <= ATOL


@pytest.mark.parametrize("name", PEERS)
def test_window_8_where_stages_are_odd(name):
    """The tiny test model (window 8) at 200x264: stages 50x66, 25x33, 13x17, 7x9; each peer matches only
    under its own convention (the others are 0.14 to 1.1 off on the logits)."""
    config = SwinV2Config(img_size=(200, 264), **TINY_V2)
    reference = peer(name, config)
    x = example(config.img_size, batch=1)
    expected = peer_logits(reference, x)
    for convention in PEERS:
        with torch.no_grad():
            error = (ours(config.with_(convention=convention), reference.state_dict())(x) - expected).abs().max()
        assert error.item() <= ATOL if convention == name else error.item() > 100 * ATOL, convention


@pytest.mark.parametrize("name", ["timm", "hf"])
def test_pretrained_window_sizes_enter_the_position_bias(name):
    """Fine-tuned-to-a-larger-window models normalise the CPB coordinates by the pretraining window."""
    config = SwinV2Config(img_size=(64, 96), convention=name, pretrained_window_sizes=(3, 3, 3, 2), **PICO_V2)
    reference = peer(name, config)
    x = example(config.img_size)
    with torch.no_grad():
        got = ours(config, reference.state_dict())(x)
        without = ours(config.with_(pretrained_window_sizes=()), reference.state_dict())(x)
    expected = peer_logits(reference, x)
    assert (got - expected).abs().max().item() <= ATOL
    assert (without - expected).abs().max().item() > 100 * ATOL


def test_hugging_face_base_model_without_head():
    """A bare ``Swinv2Model`` checkpoint (no classifier) loads with num_classes=0: its pooled output."""
    transformers = pytest.importorskip("transformers")
    config = SwinV2Config(img_size=(64, 64), convention="hf", **{**PICO_V2, "num_classes": 0})
    reference = randomize(build_peer("hf", config.with_(num_classes=5)), 1).swinv2
    assert isinstance(reference, transformers.Swinv2Model)
    x = example(config.img_size)
    with torch.no_grad():
        got = ours(config, reference.state_dict())(x)
        expected = reference(x).pooler_output
    assert (got - expected).abs().max().item() <= ATOL


@pytest.mark.slow
def test_full_swinv2_tiny_parity_with_every_peer():
    from swin_trt.models import create_model

    config = create_model("swinv2_tiny_window8_256")[0].config
    x = example(config.img_size, batch=1)
    for name in PEERS:
        reference = peer(name, config)
        with torch.no_grad():
            got = ours(config.with_(convention=name), reference.state_dict())(x)
        assert (got - peer_logits(reference, x)).abs().max().item() <= ATOL, name


def test_hf_geometry_follows_the_nominal_stage_height():
    """transformers sizes stage 3 of a 200x264 input as 6x8 (floor) while it is 7x9: a 6x6 window, no shift;
    timm shrinks the window to 7 rows and keeps the shift along the 9 columns."""
    config = SwinV2Config(img_size=(200, 264), **TINY_V2)
    real = config.stage_sizes()[3]
    assert real == (7, 9) and config.nominal_stage_size(3) == (6, 8)
    assert v2_block_geometry(config.with_(convention="hf"), 3, real, 4) == ((6, 6), (0, 0))
    assert v2_block_geometry(config, 3, real, 4) == ((7, 8), (0, 4))
    assert v2_block_geometry(config.with_(convention="torchvision"), 3, real, 4) == ((8, 8), (0, 4))


def test_hf_adds_the_shift_mask_twice():
    base = SwinV2Config(img_size=(64, 64), **PICO_V2)
    timm_block = SwinTransformerV2(base).layers[0].blocks[1]
    hf_block = SwinTransformerV2(base.with_(convention="hf")).layers[0].blocks[1]
    assert torch.equal(hf_block.attn_mask, 2 * timm_block.attn_mask)
    assert timm_block.attn_mask.min().item() == -100.0


def test_cpb_coordinates_are_log_spaced():
    table = cpb_coordinates((8, 8))
    assert table.shape == (15, 15, 2)
    assert table[7, 7].tolist() == [0.0, 0.0]
    assert table[-1, -1, 0].item() == pytest.approx(math.log2(9) / 3)  # offset 7 of 7 -> 8 -> log2(9) / 3
    pretrained = cpb_coordinates((8, 8), (6, 6))  # offset 7 of 5 -> 11.2
    assert pretrained[-1, -1, 0].item() == pytest.approx(math.log2(8 * 7 / 5 + 1) / 3)


def test_eval_mode_folds_the_constants_and_loading_refolds():
    """Eval mode evaluates the CPB table and head scale once (what an export sees); they never go stale."""
    config = SwinV2Config(img_size=(64, 64), **PICO_V2)
    model = SwinTransformerV2(config)
    attention = model.layers[0].blocks[0].attn
    assert isinstance(attention, CosineWindowAttention) and attention.folded_bias_table is None  # training
    model.eval()
    assert torch.equal(attention.folded_bias_table, attention.cpb_bias_table())
    assert torch.equal(attention.folded_head_scale, attention.live_head_scale())
    state = randomize(SwinTransformerV2(config), seed=3).state_dict()
    model.load_state_dict(state)
    assert torch.equal(attention.folded_bias_table, attention.cpb_bias_table())
    assert torch.equal(attention.folded_head_scale, attention.live_head_scale())
    assert attention.folded_head_scale.max().item() <= 100.0 + 1e-4  # clamped at log(100)
    model.train()
    assert attention.folded_bias_table is None and "folded_bias_table" not in model.state_dict()
