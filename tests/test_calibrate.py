"""INT8 calibration: the four range methods on distributions with known answers, the histogram, the sources
(folder, text list, video), the cache's determinism and the errors of `swin-trt calibrate`."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from swin_trt.precision.histogram import AbsHistogram
from swin_trt.precision.methods import compute_amax, kl_divergences

ROOT = Path(__file__).resolve().parents[1]


def _hist(values, parts=4) -> AbsHistogram:
    hist = AbsHistogram()
    for part in np.array_split(np.asarray(values, np.float32), parts):
        hist.update(part)
    return hist


# ---- methods on synthetic data -------------------------------------------------------------------------


def test_max_is_the_largest_magnitude():
    values = np.random.default_rng(0).uniform(-3, 2, 100_000)
    assert compute_amax(_hist(values), "max") == pytest.approx(float(np.abs(values).max()), rel=1e-6)


def test_percentile_of_a_normal_distribution():
    values = np.random.default_rng(1).standard_normal(2_000_000)
    hist = _hist(values)
    # |N(0, 1)|: P(|x| < t) = p  <=>  t = Phi^-1((1 + p) / 2)
    assert compute_amax(hist, "percentile", 99.0) == pytest.approx(2.5758, rel=0.01)
    assert compute_amax(hist, "percentile", 99.99) == pytest.approx(3.8906, rel=0.03)
    assert compute_amax(hist, "percentile", 100.0) == hist.amax


def test_uniform_data_is_not_clipped():
    hist = _hist(np.random.default_rng(2).uniform(-3, 3, 500_000))
    for method in ("entropy", "mse", "percentile"):
        assert compute_amax(hist, method) == pytest.approx(3.0, rel=0.01), method


def test_entropy_and_mse_clip_outliers():
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.standard_normal(1_000_000), [50.0, -50.0] * 5])
    hist = _hist(values)
    assert hist.amax == pytest.approx(50.0)
    entropy, mse = compute_amax(hist, "entropy"), compute_amax(hist, "mse")
    assert 3.0 < entropy < 10.0, entropy  # clips to the Gaussian body
    # MSE weighs the 10 outliers' squared clipping error against 1M rounding errors: clips less, but clips
    assert 10.0 < mse < 0.8 * hist.amax, mse


def test_entropy_matches_tensorrt_reference_loop():
    """The vectorised KL search equals NVIDIA's pytorch-quantization loop (P with outliers folded into bin
    i-1, Q merged into 128 levels over non-empty bins, expanded, both normalised)."""
    rng = np.random.default_rng(4)
    counts = _hist(np.concatenate([rng.laplace(size=200_000), rng.standard_normal(50) * 15])).counts
    candidates, kl = kl_divergences(counts)

    def reference(i, levels=128):
        bins = counts[:i].astype(np.float64)
        space = np.linspace(0, i, num=levels + 1)
        digitized = np.digitize(range(i), space) - 1
        digitized[bins == 0] = -1
        merged = np.zeros(levels)
        for index, level in enumerate(digitized):
            if level != -1:
                merged[level] += bins[index]
        sizes = Counter(digitized)
        q = np.array([merged[level] / sizes[level] if level != -1 else 0.0 for level in digitized])
        p = bins.copy()
        p[-1] += counts[i:].sum()
        p, q = p / p.sum(), q / q.sum()
        if np.any((p > 0) & (q == 0)):
            return np.inf
        mask = p > 0
        return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))

    for i in (128, 129, 200, 256, 300, 777, 1024, 1999, 2048):
        expected = reference(i)
        got = kl[i - candidates[0]]
        assert (np.isinf(got) and np.isinf(expected)) or got == pytest.approx(expected, rel=1e-9, abs=1e-12), i


def test_histogram_widens_by_merging_whole_bins():
    rng = np.random.default_rng(5)
    batches = [rng.standard_normal(10_000) * scale for scale in (1.0, 3.0, 2.0, 10.0)]
    hist = AbsHistogram()
    for batch in batches:
        hist.update(batch)
    values = np.abs(np.concatenate(batches))
    assert hist.total == values.size and hist.amax == pytest.approx(values.max())
    direct = np.bincount(np.minimum((values / hist.width).astype(np.int64), hist.bins - 1), minlength=hist.bins)
    assert np.abs(direct - hist.counts).sum() <= 4  # only float rounding at bin edges may differ


# ---- the command ---------------------------------------------------------------------------------------


def _calibrate(cli, model, data, out, *extra, expect=0):
    return cli("calibrate", model, "--data", data, "--min-images", 2, "--quiet", "-o", out, *extra, expect=expect)


def test_calibrate_folder_is_deterministic(cli, pico_rewritten, photo_dir, tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    result = _calibrate(cli, pico_rewritten, photo_dir, first, "--batch", 4)
    _calibrate(cli, pico_rewritten, photo_dir, second, "--batch", 4)
    assert first.read_bytes() == second.read_bytes()
    assert "6 images (folder)" in result.output
    cache = json.loads(first.read_text())
    from swin_trt.io import sha256_file

    assert cache["model_sha256"] == sha256_file(pico_rewritten) and cache["method"] == "percentile"
    assert cache["data"]["images"] == 6 and len(cache["data"]["fingerprint"]) == 64
    import onnx

    graph = onnx.load(pico_rewritten).graph
    matmul_inputs = {n.input[0] for n in graph.node if n.op_type == "MatMul"}
    partition_inputs = {n.input[0] for n in graph.node if n.op_type == "SwinWindowPartition"}
    reverse_inputs = {n.input[0] for n in graph.node if n.op_type == "SwinWindowReverse"}
    assert matmul_inputs | partition_inputs | reverse_inputs <= set(cache["tensors"])
    for entry in cache["tensors"].values():
        assert entry["amax"] > 0 and entry["scale"] == pytest.approx(entry["amax"] / 127, rel=1e-6)


def test_methods_order_on_real_activations(cli, pico_rewritten, photo_dir, tmp_path):
    amax = {}
    for method in ("max", "entropy", "mse"):
        _calibrate(cli, pico_rewritten, photo_dir, tmp_path / f"{method}.json", "--method", method)
        amax[method] = {k: v["amax"] for k, v in json.loads((tmp_path / f"{method}.json").read_text())["tensors"].items()}
    for name, top in amax["max"].items():
        assert amax["entropy"][name] <= top * (1 + 1e-6) and amax["mse"][name] <= top * (1 + 1e-6)


def test_text_file_source(cli, pico_rewritten, photo_dir, tmp_path):
    listing = tmp_path / "list.txt"
    names = sorted(p.name for p in photo_dir.iterdir())
    listing.write_text("# calibration images\n" + "\n".join(str(photo_dir / n) for n in names[:4]) + "\n")
    out = tmp_path / "calib.json"
    _calibrate(cli, pico_rewritten, listing, out)
    data = json.loads(out.read_text())["data"]
    assert data["kind"] == "list" and data["images"] == 4


def _write_video(path: Path, photo_dir: Path, frames: int = 24) -> None:
    import av
    from PIL import Image

    photos = [np.asarray(Image.open(p).convert("RGB").resize((96, 64))) for p in sorted(photo_dir.iterdir())]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=12)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(photos[index * len(photos) // frames], format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def test_video_source_samples_frames_evenly(cli, pico_rewritten, photo_dir, tmp_path):
    from swin_trt.data.video_frames import sample_frames

    video = tmp_path / "clip.mp4"
    _write_video(video, photo_dir)
    frames = sample_frames(video, 6)
    times = [f.time for f in frames]
    assert len(frames) == 6 and times == sorted(times) and times[0] < 0.5 and times[-1] > 1.4  # 2 s of video
    assert [f.time for f in sample_frames(video, 6)] == times  # deterministic
    assert len(sample_frames(video, 100)) == 24  # a short video gives each frame once
    out = tmp_path / "calib.json"
    result = _calibrate(cli, pico_rewritten, video, out, "--num", 6)
    assert "6 images (video)" in result.output
    assert json.loads(out.read_text())["data"]["kind"] == "video"


def test_unreadable_files_are_named_and_skipped(cli, pico_rewritten, photo_dir, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    for photo in sorted(photo_dir.iterdir())[:3]:
        (folder / photo.name).write_bytes(photo.read_bytes())
    (folder / "broken.jpg").write_bytes(b"this is not a jpeg")
    (folder / "notes.txt").write_text("not an image")
    out = tmp_path / "calib.json"
    result = _calibrate(cli, pico_rewritten, folder, out)
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipping")]
    messages = " ".join(warnings)  # warnings on the swin_trt logger: `warning: ...` on the CLI's stderr
    assert "broken.jpg" in messages and "notes.txt" in messages
    data = json.loads(out.read_text())["data"]
    assert data["images"] == 3 and data["skipped"] == ["broken.jpg"]


def test_too_few_images_is_exit_2_and_writes_nothing(cli, pico_rewritten, photo_dir, tmp_path):
    out = tmp_path / "calib.json"
    result = cli("calibrate", pico_rewritten, "--data", photo_dir, "--quiet", "-o", out, expect=2)  # default min: 16
    assert "fewer than --min-images 16" in result.output and not out.exists()
    assert not list(tmp_path.iterdir())


def test_model_without_sidecar_is_exit_2(cli, pico_rewritten, photo_dir, tmp_path):
    bare = tmp_path / "bare.onnx"
    bare.write_bytes(pico_rewritten.read_bytes())
    result = cli("calibrate", bare, "--data", photo_dir, "-o", tmp_path / "c.json", expect=2)
    assert "sidecar" in result.output and not (tmp_path / "c.json").exists()


def test_make_calib_set_is_deterministic(photo_dir, tmp_path):
    video = tmp_path / "clip.mp4"
    _write_video(video, photo_dir)
    script = ROOT / "calibration" / "make_calib_set.py"
    outputs = []
    for name in ("one", "two"):
        subprocess.run([sys.executable, str(script), str(photo_dir), str(video), "--num", "7", "-o",
                        str(tmp_path / name)], check=True, capture_output=True)
        outputs.append({p.name: p.read_bytes() for p in sorted((tmp_path / name).iterdir())})
    assert outputs[0] == outputs[1] and len(outputs[0]) == 7  # 4 photos + 3 frames


def test_calibrate_validate_and_infer_read_the_same_images(tmp_path):
    """One lister for every command: a TIFF and a sub-folder's images count everywhere, a text file nowhere."""
    from PIL import Image

    from swin_trt.data.images import list_images
    from swin_trt.precision.sources import CalibrationSource
    from swin_trt.video.sources import open_source

    folder = tmp_path / "mixed"
    (folder / "sub").mkdir(parents=True)
    expected = [folder / "a.png", folder / "b.tif", folder / "sub" / "c.jpg"]
    for path in expected:
        Image.new("RGB", (8, 8), "red").save(path)
    (folder / "notes.txt").write_text("not an image")
    assert [item.path for item in list_images(folder)] == expected
    assert CalibrationSource(folder, 10)._paths == expected
    source = open_source(str(folder))
    assert source.paths == expected
    source.close()
