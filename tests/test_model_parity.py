"""Checkpoint import proven numerically: same random weights, same logits as timm, torchvision and HF."""

import pytest
import torch

from swin_trt.models import SwinConfig, SwinTransformer
from swin_trt.models.checkpoint import LoadedCheckpoint, apply_state, detect_format, to_reference_layout

from conftest import TINY

ATOL = 1e-4


def import_state(model, state_dict):
    fmt = detect_format(state_dict)
    tensors, recomputed = to_reference_layout(state_dict, fmt)
    return apply_state(model, LoadedCheckpoint("peer", "", fmt, tensors, recomputed))


def ours(size, convention, **overrides):
    config = SwinConfig(img_size=size, convention=convention, **{**TINY, **overrides})
    return SwinTransformer(config).eval()


def compare(peer, model, size, batch=2):
    x = torch.randn(batch, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = peer(x)
        expected = getattr(expected, "logits", expected)
        return (expected - model(x)).abs().max().item()


@pytest.mark.parametrize("size", [(224, 224), (256, 320)])
def test_timm_parity(size):
    timm = pytest.importorskip("timm")
    peer = timm.create_model("swin_tiny_patch4_window7_224", pretrained=False, img_size=size,
                             **{k: v for k, v in TINY.items()}).eval()
    model = ours(size, "timm")
    assert import_state(model, peer.state_dict()).format == "timm"
    assert compare(peer, model, size) <= ATOL


@pytest.mark.parametrize("size", [(224, 224), (256, 320)])
def test_torchvision_parity(size):
    from torchvision.models.swin_transformer import SwinTransformer as TV

    peer = TV(patch_size=[4, 4], embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=[7, 7],
              num_classes=10).eval()
    model = ours(size, "torchvision")
    report = import_state(model, peer.state_dict())
    assert report.format == "torchvision" and report.recomputed  # tv stores the index buffers
    assert compare(peer, model, size) <= ATOL


@pytest.mark.parametrize("size", [(224, 224), (256, 320)])
def test_hugging_face_parity(size):
    transformers = pytest.importorskip("transformers")
    config = transformers.SwinConfig(image_size=size, patch_size=4, embed_dim=32, depths=[2, 2, 2, 2],
                                     num_heads=[1, 2, 4, 8], window_size=7, num_labels=10)
    peer = transformers.SwinForImageClassification(config).eval()
    model = ours(size, "hf")
    assert import_state(model, peer.state_dict()).format == "hf"
    assert compare(peer, model, size) <= ATOL


def test_conventions_differ_where_window_does_not_divide():
    """timm and torchvision really disagree at 256x320; each matches only under its own convention."""
    from torchvision.models.swin_transformer import SwinTransformer as TV

    peer = TV(patch_size=[4, 4], embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=[7, 7],
              num_classes=10).eval()
    wrong = ours((256, 320), "timm")
    import_state(wrong, peer.state_dict())
    assert compare(peer, wrong, (256, 320)) > 10 * ATOL


@pytest.mark.slow
def test_full_swin_t_parity_with_timm_and_torchvision():
    import timm
    import torchvision

    from swin_trt.models import create_model

    for peer in (timm.create_model("swin_tiny_patch4_window7_224", pretrained=False),
                 torchvision.models.swin_t()):
        model = create_model("swin_tiny")[0]
        import_state(model, peer.eval().state_dict())
        assert compare(peer, model, (224, 224), batch=1) <= ATOL


def test_features_mode_returns_four_nchw_stages():
    model = SwinTransformer(SwinConfig(img_size=(64, 96), **{**TINY, "window_size": 4}), features=True).eval()
    with torch.no_grad():
        outs = model(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 16, 24), (1, 64, 8, 12), (1, 128, 4, 6), (1, 256, 2, 3)]


def test_masks_and_index_are_buffers():
    model = ours((224, 224), "timm")
    shifted = model.layers[0].blocks[1]
    assert shifted.attn_mask is not None and shifted.attn_mask.shape == (64, 49, 49)
    assert "attn_mask" not in model.state_dict()  # non-persistent: recomputed, never loaded
