"""Video Swin (3D Swin) proven numerically against torchvision's ``swin3d``: with the same random weights,
saved by torchvision's own model (and converted to the official / mmaction2 layout), our logits equal
torchvision's where the window divides every stage and where it does not (padding, a window that shrinks to a
dimension, shifts in T, H and W); a model that differs by one bias table, mask or index does not.

Tolerance: :func:`conftest.rounding_atol` of torchvision's logits (1024 float32 ulps of the largest logit: two
float32 evaluations of the same network whose roundings are ordered differently, e.g. another GEMM blocking on
AVX2 and AVX-512), never looser than 1e-4. Randomised weights (``peers.randomize``) make every path count:
torchvision's own init (std 0.02, zero biases) would leave the bias tables nearly invisible.
"""

import math
import re
from unittest import mock

import pytest
import torch

from swin_trt.errors import UserError
from swin_trt.models import VideoSwinTransformer, arch_names, create_model, get_arch
from swin_trt.models import video_swin
from swin_trt.models.checkpoint import LoadedCheckpoint, apply_state, detect_format, to_reference_layout
from swin_trt.models.peers import build_video_peer, randomize

from conftest import rounding_atol

CAP = 1e-4  # the tolerance is derived (module docstring) and never looser than this
PICO = get_arch("swin3d_pico_test").config  # embed 16, depths 2-2, heads 1-2, window 2x4x4, patch 2x4x4
# (T, H, W) clips of the pico model and what each exercises (stage token maps in brackets):
PICO_CLIPS = [
    (4, 32, 32),  # the window divides every stage [2x8x8, 2x4x4]: T window = T (not shifted), H/W shifted
    (7, 38, 54),  # the clip padded to the patch [4x10x14, 4x5x7]: windows padded and shifted in T, H and W
    (2, 64, 24),  # one token in T (window shrinks to 1); [1x16x6]: W padded 6 -> 8 and shifted; [1x8x3]: W
                  # shrinks to 3, where the official [:N, :N] bias index is not the true relative one
]


def tolerance(expected: torch.Tensor) -> float:
    return min(CAP, rounding_atol(expected.numpy()))


def clips(size, seed=0):
    """Batch 2: random normal and a smooth pattern (slow waves along T, H and W, one phase per channel)."""
    t, h, w = size
    noise = torch.randn(1, 3, t, h, w, generator=torch.Generator().manual_seed(seed))
    tt, hh, ww = torch.meshgrid(torch.linspace(0, 1, t), torch.linspace(0, 1, h), torch.linspace(0, 1, w),
                                indexing="ij")
    smooth = torch.stack([1.5 * torch.sin(2 * math.pi * (tt + 2 * hh + 3 * ww) + c) for c in range(3)])
    return torch.cat([noise, smooth[None]])


def imported(config, state, clip, features=False):
    """Our model for ``clip`` with ``state`` through the import (format detection, renaming, strict load)."""
    model = VideoSwinTransformer(config.with_(clip_size=clip), features=features).eval()
    fmt = detect_format(state)
    tensors, recomputed = to_reference_layout(state, fmt)
    return model, apply_state(model, LoadedCheckpoint("peer", "", fmt, tensors, recomputed))


def run(model, x):
    with torch.no_grad():
        return model(x)


def peer_stage_maps(peer, x):
    """torchvision's stage outputs (features = [stage, merge, stage, ...]) as (B, C, T, H, W)."""
    with torch.no_grad():
        x, maps = peer.patch_embed(x), []
        for index, layer in enumerate(peer.features):
            x = layer(x)
            if index % 2 == 0:
                maps.append(x.permute(0, 4, 1, 2, 3))
    return maps


@pytest.fixture(scope="module")
def pico_peer():
    return randomize(build_video_peer(PICO), seed=1)


@pytest.fixture(scope="module")
def tiny_peer():
    """torchvision's own swin3d_t (400 classes). Its trunc_normal_ init (2.5 s for 28M weights) is skipped:
    randomize draws every weight anyway."""
    from torchvision.models.video import swin3d_t

    with mock.patch("torch.nn.init.trunc_normal_", lambda tensor, *args, **kwargs: tensor):
        peer = swin3d_t().eval()
    return randomize(peer, seed=1)


# ---- parity ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("clip", PICO_CLIPS)
def test_pico_logits_and_stage_maps_equal_torchvision(pico_peer, clip):
    model, report = imported(PICO, pico_peer.state_dict(), clip)
    assert report.format == "torchvision" and len(report.recomputed) == 4  # tv stores the index buffers
    x = clips(clip)
    expected = run(pico_peer, x)
    assert (run(model, x) - expected).abs().max().item() <= tolerance(expected)
    with torch.no_grad():
        maps = model.stage_maps(x)
    wanted = peer_stage_maps(pico_peer, x)
    assert [tuple(m.shape) for m in maps] == [tuple(m.shape) for m in wanted]
    for ours, theirs in zip(maps, wanted):
        assert (ours - theirs).abs().max().item() <= tolerance(theirs)


def test_swin3d_t_logits_equal_torchvision(tiny_peer):
    """The real swin3d_t at 8x112x112: stages 4x28x28 (T window shrinks to 4, H/W shifted), 4x14x14 (H/W
    padded to 21), 4x7x7 (no shift, no mask), 4x4x4 (H and W shrink: the official index slice)."""
    model, report = imported(get_arch("swin3d_t").config, tiny_peer.state_dict(), (8, 112, 112))
    assert report.format == "torchvision"
    x = clips((8, 112, 112))
    expected = run(tiny_peer, x)
    assert (run(model, x) - expected).abs().max().item() <= tolerance(expected)


def _true_index(full, window):
    """The geometrically true relative index of a shrunk ``window`` into the full window's table: what the
    official code does *not* use."""
    coords = torch.stack(torch.meshgrid(*[torch.arange(w) for w in window], indexing="ij")).flatten(1)
    relative = coords[:, :, None] - coords[:, None, :]
    ft, fh, fw = full
    return ((relative[0] + ft - 1) * (2 * fh - 1) * (2 * fw - 1) + (relative[1] + fh - 1) * (2 * fw - 1)
            + relative[2] + fw - 1)


def _perturb(model, change):
    shifted, shrunk = model.layers[0].blocks[1], model.layers[1].blocks[0]  # clip (2, 64, 24)
    assert any(shifted.shift_size) and shrunk.window_size == (1, 4, 3)
    with torch.no_grad():
        if change == "one bias table perturbed":
            table = shrunk.attn.relative_position_bias_table  # noise as large as its entries
            table.add_(table.std() * torch.randn(table.shape, generator=torch.Generator().manual_seed(2)))
        elif change == "shift mask removed":
            shifted.attn_mask = None
        elif change == "bias index transposed":
            shifted.attn.relative_position_index = shifted.attn.relative_position_index.T.contiguous()
        elif change == "true index where the window shrank":
            shrunk.attn.relative_position_index = _true_index(PICO.window_size, shrunk.window_size)


@pytest.mark.parametrize("change", ["one bias table perturbed", "shift mask removed", "bias index transposed",
                                    "true index where the window shrank"])
def test_a_model_that_differs_fails_parity(pico_peer, change):
    """The parity test can fail: one change to one block moves the logits far beyond the tolerance."""
    clip = (2, 64, 24)
    model, _ = imported(PICO, pico_peer.state_dict(), clip)
    x = clips(clip)
    expected = run(pico_peer, x)
    _perturb(model, change)
    assert (run(model, x) - expected).abs().max().item() > 100 * tolerance(expected)


# ---- checkpoint files: torchvision and mmaction2 layouts, errors ---------------------------------------------------

def to_mmaction2(state: dict) -> dict:
    """torchvision's swin3d state dict in the official Video-Swin-Transformer / mmaction2 recognizer's keys:

    ============================== ===================================================
    torchvision                    official / mmaction2
    ============================== ===================================================
    ``patch_embed.*``, ``norm.*``  ``backbone.patch_embed.*``, ``backbone.norm.*``
    ``features.{2i}.{j}.*``        ``backbone.layers.{i}.blocks.{j}.*``
    ``... .mlp.0.*``, ``mlp.3.*``  ``... .mlp.fc1.*``, ``mlp.fc2.*``
    ``features.{2i+1}.*``          ``backbone.layers.{i}.downsample.*`` (the end of stage i)
    ``head.*``                     ``cls_head.fc_cls.*``
    ============================== ===================================================

    The ``relative_position_index`` buffers stay, as the official checkpoints keep them.
    """
    out = {}
    for key, value in state.items():
        match = re.match(r"^features\.(\d+)\.(.*)$", key)
        if match and int(match.group(1)) % 2:
            key = f"backbone.layers.{int(match.group(1)) // 2}.downsample.{match.group(2)}"
        elif match:
            block, rest = match.group(2).split(".", 1)
            rest = re.sub(r"^mlp\.0\.", "mlp.fc1.", re.sub(r"^mlp\.3\.", "mlp.fc2.", rest))
            key = f"backbone.layers.{int(match.group(1)) // 2}.blocks.{block}.{rest}"
        elif key.startswith("head."):
            key = "cls_head.fc_cls." + key[len("head."):]
        else:
            key = "backbone." + key
        out[key] = value
    return out


def test_mmaction2_and_torchvision_files_import_to_the_same_logits(pico_peer, tmp_path):
    clip = (7, 38, 54)
    state = pico_peer.state_dict()
    official = to_mmaction2(state)
    assert "backbone.layers.0.downsample.reduction.weight" in official and "cls_head.fc_cls.weight" in official
    torch.save({"meta": {"epoch": 30, "config": "swin_pico.py"}, "state_dict": official}, tmp_path / "mm.pth")
    torch.save(state, tmp_path / "tv.pth")
    x = clips(clip)
    expected = run(pico_peer, x)
    logits = {}
    for name, fmt in (("mm.pth", "mmaction2"), ("tv.pth", "torchvision")):
        model, spec, report = create_model("swin3d_pico_test", tmp_path / name, config_overrides={"clip_size": clip})
        assert report.format == fmt and len(report.recomputed) == 4, report.summary()
        logits[fmt] = run(model, x)
        assert (logits[fmt] - expected).abs().max().item() <= tolerance(expected)
    assert torch.equal(logits["mmaction2"], logits["torchvision"])
    torch.save(model.state_dict(), tmp_path / "ours.pth")  # our own layout loads back as it is
    again, _, report = create_model("swin3d_pico_test", tmp_path / "ours.pth", config_overrides={"clip_size": clip})
    assert report.format == "swin_trt" and torch.equal(run(again, x), logits["torchvision"])


def test_missing_and_unexpected_keys_are_named(pico_peer, tmp_path):
    state = dict(pico_peer.state_dict())
    del state["features.0.1.attn.proj.weight"]
    state["features.2.0.attn.extra_scale"] = torch.ones(2)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(UserError, match=r"missing 1: layers\.0\.blocks\.1\.attn\.proj\.weight; "
                                        r"unexpected 1: layers\.1\.blocks\.0\.attn\.extra_scale") as error:
        create_model("swin3d_pico_test", tmp_path / "broken.pth")
    assert error.value.exit_code == 2 and "torchvision layout" in str(error.value)


def test_a_bias_table_of_another_window_is_refused(tmp_path):
    """The 2D import interpolates a square table to a smaller window; a 3D table's row count does not say how
    its window splits into T, H and W, so it is refused, naming the window."""
    other = randomize(build_video_peer(PICO.with_(window_size=(2, 3, 3))), seed=1)
    torch.save(other.state_dict(), tmp_path / "w233.pth")
    with pytest.raises(UserError, match=r"have 75 rows where window 2x4x4 needs 147: .*not interpolated"):
        create_model("swin3d_pico_test", tmp_path / "w233.pth")


def test_image_and_video_checkpoints_name_the_archs_that_fit(pico_peer, tmp_path):
    torch.save(pico_peer.state_dict(), tmp_path / "video.pth")
    with pytest.raises(UserError, match=r"is a Video Swin checkpoint .* `arch` swin_pico_test is a Swin V1 arch: "
                                        r"pass `arch` swin3d_pico_test"):
        create_model("swin_pico_test", tmp_path / "video.pth")
    image, _, _ = create_model("swin_pico_test")
    torch.save(image.state_dict(), tmp_path / "image.pth")
    with pytest.raises(UserError, match=r"is a Swin V1 checkpoint .* `arch` swin3d_pico_test is a Video Swin arch"):
        create_model("swin3d_pico_test", tmp_path / "image.pth")


# ---- named configs, the registry, and the 2D code paths ------------------------------------------------------------

@pytest.mark.parametrize("name,acc", [("swin3d_t", 77.715), ("swin3d_s", 79.521), ("swin3d_b", 79.427)])
def test_named_configs_are_torchvisions(name, acc):
    from torchvision.models import video

    weights = getattr(video, f"Swin3D_{name[-1].upper()}_Weights").KINETICS400_V1
    spec = get_arch(name)
    config = spec.config
    with torch.device("meta"):
        peer = getattr(video, name)()
        ours = spec.build(config)
    stages = peer.features[0::2]
    assert (config.embed_dim, config.depths, config.num_heads) == (
        peer.patch_embed.proj.out_channels, tuple(len(s) for s in stages), tuple(s[0].attn.num_heads for s in stages))
    assert (config.window_size, config.patch_size, config.num_classes) == (
        tuple(stages[0][0].attn.window_size), peer.patch_embed.tuple_patch_size, len(weights.meta["categories"]))
    assert sum(p.numel() for p in ours.parameters()) == weights.meta["num_params"]
    assert weights.meta["_metrics"]["Kinetics-400"]["acc@1"] == acc and str(acc) in spec.description
    transforms = weights.transforms()
    pre = spec.preprocessing
    assert (pre.mean, pre.std, pre.interpolation, pre.resize) == (
        tuple(transforms.mean), tuple(transforms.std), transforms.interpolation.value, "crop")
    assert pre.at(config.img_size).to_dict()["resize"] == transforms.resize_size * 2  # shorter side 256
    assert list(config.img_size) == transforms.crop_size and config.clip_size[0] == 32  # torchvision's clip_len


def test_archs_lists_every_config(cli):
    """(Exporting a video arch, and the stages that refuse its clip graph: tests/test_video_export.py.)"""
    lines = cli("archs").output.splitlines()
    assert sorted(line.split()[0] for line in lines) == arch_names()
    assert any(line.startswith("swin3d_t ") and "32x224x224 window 8x7x7" in line for line in lines)


def test_create_model_options_on_a_video_arch():
    model, spec, report = create_model("swin3d_pico_test", img_size=(40, 48))  # img_size is the frame size
    assert spec.is_video and report is None and model.config.clip_size == (4, 40, 48)
    assert run(model, clips((4, 40, 48))).shape == (2, 5)
    with pytest.raises(ValueError, match=r"built for \(4, 40, 48\)"):
        run(model, clips((4, 32, 32)))
    with pytest.raises(ValueError, match="takes clips"):
        run(model, torch.zeros(1, 3, 40, 48))
    with pytest.raises(UserError, match="one convention"):
        create_model("swin3d_pico_test", convention="timm")
    with pytest.raises(UserError, match="arch swin3d_pico_test: depths"):
        create_model("swin3d_pico_test", config_overrides={"depths": (2, 2, 2)})


def test_geometry_helpers():
    """The shrink rule and the official index slice, as plain functions (what a graph pass will match)."""
    assert video_swin.window_geometry((4, 28, 28), (8, 7, 7), (4, 3, 3)) == ((4, 7, 7), (0, 3, 3))
    assert video_swin.window_geometry((4, 4, 4), (8, 7, 7), (4, 3, 3)) == ((4, 4, 4), (0, 0, 0))
    full = video_swin.relative_position_index((8, 7, 7))
    assert full.shape == (392, 392) and full.max() == 15 * 13 * 13 - 1
    assert (video_swin.block_position_index((8, 7, 7), (4, 7, 7)) == _true_index((8, 7, 7), (4, 7, 7)).numpy()).all()
    assert not (video_swin.block_position_index((8, 7, 7), (4, 4, 4))
                == _true_index((8, 7, 7), (4, 4, 4)).numpy()).all()
    x = torch.randn(2, 4, 6, 8, 3)
    windows = video_swin.window_partition(video_swin.cyclic_shift(x, (1, 2, 2)), (2, 3, 4))
    assert windows.shape == (2 * 2 * 2 * 2, 24, 3)
    back = video_swin.cyclic_shift(video_swin.window_reverse(windows, (2, 3, 4), (4, 6, 8)), (1, 2, 2), 1)
    assert torch.equal(back, x)
