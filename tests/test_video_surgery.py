"""`swin-trt rewrite` on Video Swin (3D) exports: 3D window partition / reverse (pad, then torch.roll over
T, H, W) and the attention core become 3D plugin nodes, and the rewritten graph computes what its source does.

Sources: swin3d_pico_test (ours; window 2x4x4 = 32 tokens) exported by the TorchScript exporter (dynamic batch,
at a clip the window divides and at one padded to the patch and window; static batch) and by the dynamo
exporter; torchvision's swin3d_t (weights=None) exported by a user with plain ``torch.onnx.export`` at 8x64x64
(windows 4x7x7 = 196 tokens in stages 1-2: T shrunk to the 4 frames, which keeps the bias a true relative bias;
4x4x4 and 4x2x2 in stages 3-4: H and W shrunk, Video Swin's full-index bias, fused with a dense bias) and at
16x64x64 (8x7x7 = 392 tokens). Expected geometry comes from the model's own functions
(swin_trt.models.video_swin), tolerances from float32 rounding (conftest.rounding_atol, capped at 1e-4).
"""

from __future__ import annotations

import collections
import json
import math
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from swin_trt.export import ExportOptions, ExportStage
from swin_trt.models.registry import get_arch
from swin_trt.models.video_swin import VideoSwinConfig, block_position_index, relative_position_index, window_geometry
from swin_trt.ops import schema
from swin_trt.ops.lowering import lower_plugins
from swin_trt.surgery import probes
from swin_trt.surgery.rewrite import rewrite

from conftest import rounding_atol

CAP = 1e-4  # the derived tolerance is never looser than this
DIVIDES = (4, 32, 32)  # stage maps 2x8x8, 2x4x4: the window (2, 4, 4) divides every stage
PADDED = (7, 38, 54)  # stage maps 4x10x14, 4x5x7: padded to the window, shifted in T, H and W
TV_CLIP = (8, 64, 64)  # torchvision swin3d_t: stage maps 4x16x16, 4x8x8, 4x4x4, 4x2x2
TV_LONG = (16, 64, 64)  # T = 8 frames of tokens: the full 8x7x7 window (392 tokens) in stages 1-2


# ---- sources ---------------------------------------------------------------------------------------------------

def _pico_config(clip) -> VideoSwinConfig:
    return get_arch("swin3d_pico_test").config.with_(clip_size=clip)


def _torchvision_export(clip, path: Path) -> Path:
    from torchvision.models.video import swin3d_t

    torch.manual_seed(0)  # trunc_normal_ init is seconds on a 28M model: normal_ is as good for a graph test
    with mock.patch("torch.nn.init.trunc_normal_", lambda t, *a, std=1.0, **k: torch.nn.init.normal_(t, std=std)):
        model = swin3d_t(weights=None).eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(model, (torch.randn(1, 3, *clip),), str(path), dynamo=False, opset_version=17,
                          input_names=["clip"])
    return path


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict:
    """name -> (path, config, dynamic batch)"""
    folder = tmp_path_factory.mktemp("video_surgery")
    found = {}
    for name, clip, options in [
        ("torchscript", DIVIDES, dict(dynamic_batch=4)),
        ("torchscript-padded", PADDED, dict(dynamic_batch=4)),
        ("torchscript-static", DIVIDES, dict()),
        ("dynamo", DIVIDES, dict(exporter="dynamo", dynamic_batch=2)),
    ]:
        path = folder / f"{name}.onnx"
        ExportStage(path, ExportOptions("swin3d_pico_test", img_size=clip[1:], clip_len=clip[0], **options)).run()
        found[name] = (path, _pico_config(clip), "dynamic_batch" in options)
    tv = VideoSwinConfig(depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=(8, 7, 7))
    for name, clip in (("torchvision", TV_CLIP), ("torchvision-long", TV_LONG)):
        found[name] = (_torchvision_export(clip, folder / f"{name}.onnx"), tv.with_(clip_size=clip), False)
    return found


# ---- what the model computes, block by block -------------------------------------------------------------------

def _blocks(config: VideoSwinConfig) -> list[dict]:
    """Per block: its map, effective window and shift (the model's own window_geometry), the padded grid, and
    whether its bias is a relative position bias of the effective window (Video Swin gathers a shrunk window's
    bias from the full window's index: a true relative bias only where each relative offset of the shrunk
    window reads one entry of the full table, e.g. where only T shrank)."""
    blocks = []
    for stage_size, depth in zip(config.stage_sizes(), config.depths):
        for j in range(depth):
            shift = tuple(w // 2 for w in config.window_size) if j % 2 else (0, 0, 0)
            window, shift = window_geometry(stage_size, config.window_size, shift)
            full = block_position_index(config.window_size, window).ravel()
            own = relative_position_index(window).ravel()
            reads = collections.defaultdict(set)
            for offset, entry in zip(own, full):
                reads[offset].add(entry)
            blocks.append(dict(size=stage_size, window=window, shift=shift,
                               grid=tuple(math.ceil(s / w) * w for s, w in zip(stage_size, window)),
                               relative=all(len(entries) == 1 for entries in reads.values())))
    return blocks


def _attrs(report, op) -> list[dict]:
    return [r.attrs for r in report.replacements if r.op == op]


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _clips(clip, batch: int) -> list[np.ndarray]:
    """Two real-ish contents: normal noise with a per-clip scale, and a panning photo (the probes' clip photo),
    normalised as the preprocessing does (per channel mean / std of ImageNet)."""
    noise = np.random.default_rng(7).standard_normal((batch, 3, *clip)).astype(np.float32)
    noise *= np.linspace(0.5, 2.0, batch, dtype=np.float32)[:, None, None, None, None]
    photo = probes._pixels([batch, 3, *clip], np.dtype(np.float32), 2).copy()
    photo[1:] = photo[1:, :, ::-1, :, ::-1]  # the other clips of the batch: played backwards, mirrored
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    photo = ((photo - mean[:, None, None, None]) / std[:, None, None, None]).astype(np.float32)
    return [noise, np.ascontiguousarray(photo)]


def _assert_equal_in_onnxruntime(source: onnx.ModelProto, rewritten: onnx.ModelProto, clip, batch: int) -> float:
    lowered = lower_plugins(rewritten)
    worst = 0.0
    for x in _clips(clip, batch):
        expected, got = _run(source, x), _run(lowered, x)
        assert got.shape == expected.shape
        if batch > 1:
            assert np.abs(expected[0] - expected[1]).max() > 1e-3  # the clips of the batch give different answers
        diff = float(np.abs(got - expected).max())
        assert diff <= min(CAP, rounding_atol(expected)), diff
        worst = max(worst, diff)
    return worst


def _assert_windows(report, blocks) -> None:
    """One partition and one reverse per block, in block order, with the block's 3D window and shift; the
    reverse carries the map's frames, height and width, the partition none (it reads them off its input)."""
    partitions, reverses = _attrs(report, schema.PARTITION), _attrs(report, schema.REVERSE)
    assert len(partitions) == len(reverses) == len(blocks)
    for block, partition, reverse in zip(blocks, partitions, reverses):
        for attrs in (partition, reverse):
            assert attrs["window_size"] == list(block["window"]) and attrs["shift_size"] == list(block["shift"])
            assert attrs["pad_first"] == 1
        assert not {"frames", "height", "width"} & set(partition)
        assert (reverse["frames"], reverse["height"], reverse["width"]) == block["size"]


# ---- ours: swin3d_pico_test ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["torchscript", "torchscript-padded", "torchscript-static", "dynamo"])
def test_pico_rewrites_strict_with_fused_3d_attention(sources, name):
    path, config, dynamic = sources[name]
    source = onnx.load(path)
    blocks = _blocks(config)
    assert all(b["relative"] and math.prod(b["window"]) <= schema.MAX_TOKENS for b in blocks)
    rewritten, report = rewrite(source, fuse_attention=True, strict=True)
    counts = collections.Counter(n.op_type for n in rewritten.graph.node)
    assert counts[schema.PARTITION] == counts[schema.REVERSE] == counts[schema.ATTENTION] == len(blocks) == 4
    assert not report.unmatched
    _assert_windows(report, blocks)
    for block, attrs in zip(blocks, _attrs(report, schema.ATTENTION)):
        assert attrs["window_size"] == list(block["window"]) and attrs["shift_size"] == list(block["shift"])
        assert (attrs["frames"], attrs["height"], attrs["width"]) == block["grid"]  # the padded grid
    if name == "torchscript-padded":
        assert [b["shift"] for b in blocks] == [(0, 0, 0), (1, 2, 2)] * 2  # shifted in T too
    assert report.equivalence.sizes == ([{"batch": 1}, {"batch": 2}] if dynamic else [{}])
    assert max(report.equivalence.max_abs_diff.values()) <= CAP
    _assert_equal_in_onnxruntime(source, rewritten, config.clip_size, 2 if dynamic else 1)


def test_pico_windows_only_and_the_cli(sources, cli, tmp_path):
    """Without --fuse-attention the attention stays native (by choice, not unmatched); the CLI's --strict."""
    path, config, _ = sources["torchscript"]
    rewritten, report = rewrite(onnx.load(path), strict=True)
    assert report.counts() == {schema.PARTITION: 4, schema.REVERSE: 4} and not report.unmatched
    _assert_windows(report, _blocks(config))
    _assert_equal_in_onnxruntime(onnx.load(path), rewritten, config.clip_size, 2)
    result = cli("rewrite", path, "--strict", "--fuse-attention", "-o", tmp_path / "rw.onnx")
    assert "found 12 window ops: 4 SwinWindowAttention, 4 SwinWindowPartition, 4 SwinWindowReverse" in result.output


# ---- torchvision's swin3d_t, exported by a user ----------------------------------------------------------------

def test_torchvision_swin3d_t_windows_strict(sources):
    path, config, _ = sources["torchvision"]
    source = onnx.load(path)
    blocks = _blocks(config)
    rewritten, report = rewrite(source, strict=True)
    assert report.counts() == {schema.PARTITION: 12, schema.REVERSE: 12} and not report.unmatched
    _assert_windows(report, blocks)
    assert report.equivalence.max_abs_diff and max(report.equivalence.max_abs_diff.values()) <= CAP
    _assert_equal_in_onnxruntime(source, rewritten, config.clip_size, 1)


def _dense_expected(source: onnx.ModelProto, config: VideoSwinConfig, blocks: list[dict]) -> list[np.ndarray]:
    """Per block: the (heads, N, N) bias the model adds, from its own table and its own index (the full window's
    index, cut to the effective window: block_position_index)."""
    tables = [onnx.numpy_helper.to_array(i) for i in source.graph.initializer
              if i.name.endswith("relative_position_bias_table")]
    assert len(tables) == len(blocks)
    return [table[block_position_index(config.window_size, block["window"])].transpose(2, 0, 1)
            for table, block in zip(tables, blocks)]


@pytest.fixture(scope="module")
def tv_fused(sources, tmp_path_factory):
    """torchvision's swin3d_t at 8x64x64 rewritten with --strict --fuse-attention, written beside its source."""
    path, _, _ = sources["torchvision"]
    source = onnx.load(path)
    rewritten, report = rewrite(source, fuse_attention=True, strict=True)
    out = tmp_path_factory.mktemp("tv_fused") / "video.rw.onnx"
    onnx.save(rewritten, out)
    return source, rewritten, report, out


def test_torchvision_swin3d_t_attention_fused_strict(sources, tv_fused):
    """Every block's attention is fused. Stages 1-2 (window 4x7x7: only T shrank) get a table of the 4x7x7
    window; stages 3-4 (H and W shrunk: Video Swin gathers the full window's index, which no table of the
    shrunk window's offsets gives) get the contract's dense (heads, N, N) bias, equal to the model's own."""
    _, config, _ = sources["torchvision"]
    source, rewritten, report, _ = tv_fused
    blocks = _blocks(config)
    assert [b["relative"] for b in blocks] == [True] * 4 + [False] * 8
    attention = _attrs(report, schema.ATTENTION)
    assert len(attention) == 12 and report.counts()[schema.PARTITION] == 12 and not report.unmatched
    for block, attrs in zip(blocks, attention):
        assert attrs["window_size"] == list(block["window"]) and attrs["shift_size"] == list(block["shift"])
        assert (attrs["frames"], attrs["height"], attrs["width"]) == block["grid"]
    biases = [onnx.numpy_helper.to_array(i) for i in rewritten.graph.initializer
              if i.name.endswith(("relative_position_bias_table", "relative_position_bias"))]
    assert [b.shape for b in biases[:4]] == [(7 * 13 * 13, heads) for heads in (3, 3, 6, 6)]
    assert [b.shape for b in biases[4:]] == [(12, 64, 64)] * 6 + [(24, 16, 16)] * 2
    for got, expected in zip(biases[4:], _dense_expected(source, config, blocks)[4:]):
        # read back through bias + mask: bias - 100 rounds to float32 at the mask's magnitude, within one ulp there
        np.testing.assert_allclose(got, expected, rtol=0,
                                   atol=float(np.spacing(np.float32(100 + np.abs(expected).max()))))
    _assert_equal_in_onnxruntime(source, rewritten, config.clip_size, 1)


def test_torchvision_swin3d_t_392_token_windows_fused(sources):
    """8x7x7 = 392 tokens per window in stages 1-2: within the CUDA kernel's limit (MAX_TOKENS)."""
    path, config, _ = sources["torchvision-long"]
    blocks = _blocks(config)
    assert [b["window"] for b in blocks[:4]] == [(8, 7, 7)] * 4 and schema.MAX_TOKENS >= 392
    source = onnx.load(path)
    rewritten, report = rewrite(source, fuse_attention=True, strict=True)
    assert report.counts() == {schema.PARTITION: 12, schema.REVERSE: 12, schema.ATTENTION: 12}
    _assert_windows(report, blocks)
    assert [a["window_size"] for a in _attrs(report, schema.ATTENTION)[:4]] == [[8, 7, 7]] * 4
    assert max(report.equivalence.max_abs_diff.values()) <= CAP
    _assert_equal_in_onnxruntime(source, rewritten, config.clip_size, 1)

def test_torchvision_swin3d_t_calibrates_quantizes_and_validates_on_real_clips(sources, tv_fused, cli, tmp_path):
    """The user's own export, rewritten (--strict --fuse-attention), then calibrate, quantize int8 and validate
    on the bundled demo clips (real H.264 video) with no extra flags: the rewritten graph equals its source on
    every clip, and the INT8 graph is measured, not assumed."""
    from swin_trt.models.demo import demo_video_clips_dir

    path, _, _ = sources["torchvision"]
    _, _, _, rewritten = tv_fused
    clips = demo_video_clips_dir()
    cache, int8 = tmp_path / "calib.json", tmp_path / "video.int8.onnx"
    cli("calibrate", rewritten, "--data", clips, "-o", cache, "--quiet")
    cli("quantize", rewritten, "--precision", "int8", "--calib", cache, "-o", int8)
    report = json.loads(cli("validate", "--reference", path, "--candidate", rewritten, "--candidate", int8,
                            "--data", clips, "--json").stdout)
    assert report["dataset"]["clips"] == {"clips": 16, "videos": 16, "clip_len": 8, "clip_stride": 8}
    same, quantized = report["candidates"]
    assert same["images"] == quantized["images"] == 16
    assert same["max_abs_err"] <= CAP and same["top1_agreement"] == 1.0
    assert quantized["precision"] == "int8" and 0 < quantized["max_abs_err"] and quantized["cosine"] > 0.99
