"""The video pipeline on real (generated) videos: sources, pacing and drops, damaged files, flat memory."""

from __future__ import annotations

import os
import sys
import time

import av
import numpy as np
import pytest
from PIL import Image

from swin_trt.backends.base import Backend
from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
from swin_trt.preprocess import Preprocessor
from swin_trt.errors import UserError
from swin_trt.io import read_sidecar
from swin_trt.video.classes import read_labels, top_k
from swin_trt.video.inference_loop import Pipeline, PipelineOptions
from swin_trt.video.sources import classify, open_source
from swin_trt.video.stats import LatencyHistogram
from swin_trt.video.synth import make_pan_zoom_video, sample_images

from conftest import finishes_within, rounding_atol, sum_atol


@pytest.fixture(scope="module")
def preprocessor(pico_dynamic):
    return Preprocessor.from_sidecar(read_sidecar(pico_dynamic))


@pytest.fixture(scope="module")
def backend(pico_dynamic):
    with OnnxRuntimeBackend(pico_dynamic, threads=1) as opened:
        yield opened


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_pan_zoom_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames=50, size=(160, 120), fps=25)


class SlowBackend(Backend):
    """A real backend that takes ``delay`` seconds longer per call: a model too slow for the source. It
    records how long its slowest call took, the yardstick for latencies on a machine of any speed."""

    name = "slow"

    def __init__(self, inner: Backend, delay: float):
        self.inner, self.delay = inner, delay
        self.input_shape, self.output_names = inner.input_shape, inner.output_names
        self.slowest_call = 0.0

    def infer(self, batch):
        start = time.perf_counter()
        time.sleep(self.delay)
        outputs = self.inner.infer(batch)
        self.slowest_call = max(self.slowest_call, time.perf_counter() - start)
        return outputs


class FailingBackend(SlowBackend):
    def infer(self, batch):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls > 3:
            raise RuntimeError("device lost")
        return self.inner.infer(batch)


def run(source, backend, preprocessor, **options):
    predictions = []
    pipeline = Pipeline(source, backend, preprocessor, options=PipelineOptions(**options))
    try:
        stats = pipeline.run(predictions.append)
    finally:
        source.close()
    return stats, predictions


# -- synth and sources ------------------------------------------------------------------------------------
def test_synth_video_is_real_footage(clip):
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        assert float(stream.average_rate) == 25
    assert len(frames) == 50 and frames[0].shape == (120, 160, 3)
    assert frames[0].std() > 20  # a photo, not a flat test pattern
    assert np.abs(frames[1].astype(int) - frames[0]).mean() > 0.5  # the camera moves
    assert np.abs(frames[1].astype(int) - frames[0]).mean() < 40  # ... smoothly


def test_sample_photos_without_scikit_image_say_how_to_get_them(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)  # as if it were not installed (the synth extra)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(UserError, match=r"pip install 'swin-trt\[synth\]'"):
        sample_images()


def test_classify_sources(tmp_path):
    (tmp_path / "a.png").touch()
    assert classify(str(tmp_path)) == "folder"
    assert classify(str(tmp_path / "a.png")) == "image"
    assert classify("clip.mkv") == "file"
    assert classify("/dev/video0") == "camera"
    assert classify("rtsp://host/stream") == classify("https://host/x.m3u8") == "stream"


def test_video_source_timestamps_and_every(clip):
    source = open_source(str(clip))
    frames = list(source.frames(every=3))
    source.close()
    assert [f.index for f in frames] == list(range(0, 50, 3))
    assert [f.timestamp for f in frames] == pytest.approx([i / 25 for i in range(0, 50, 3)])
    assert source.decoded == 50 and source.corrupt == 0 and source.fps == 25


def test_max_frames_counts_source_frames(clip):
    source = open_source(str(clip))
    assert len(list(source.frames(every=2, limit=10))) == 5
    source.close()


@pytest.mark.parametrize("spec, message", [("missing.mp4", "does not exist"), ("/dev/video97", "camera"),
                                           ("rtsp://127.0.0.1:9/x", "cannot open stream")])
def test_unopenable_sources_are_user_errors(tmp_path, spec, message):
    spec = spec if "://" in spec or spec.startswith("/dev") else str(tmp_path / spec)
    with pytest.raises(UserError, match=message):
        finishes_within(60, lambda: open_source(spec, timeout=2))


def test_silent_server_times_out():
    import socket

    with socket.socket() as server:  # accepts connections, never answers
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/live"
        with pytest.raises(UserError, match="no answer within 1 s"):  # the timeout, not a refusal, ended it
            finishes_within(30, lambda: open_source(url, timeout=1))


def test_not_a_video_is_a_user_error(tmp_path):
    junk = tmp_path / "notes.mp4"
    junk.write_bytes(b"these are not the frames you are looking for" * 100)
    with pytest.raises(UserError, match="cannot open file"):
        open_source(str(junk))


# -- pipeline ---------------------------------------------------------------------------------------------
def test_pipeline_predicts_every_frame_in_order(clip, backend, preprocessor):
    stats, predictions = run(open_source(str(clip)), backend, preprocessor, batch=8, topk=3)
    assert [p.index for p in predictions] == list(range(50))
    assert all(len(p.classes) == len(p.scores) == 3 for p in predictions)
    assert all(p.scores == sorted(p.scores, reverse=True) for p in predictions)
    assert stats.frames == 50 and stats.dropped == 0 and stats.corrupt == 0
    assert stats.decode_s > 0 and stats.preprocess_s > 0 and stats.infer_s > 0
    assert 0 < stats.latency.percentile(50) <= stats.latency.percentile(99)


def test_pipeline_matches_direct_inference(clip, backend, preprocessor):
    """Batching and threads change nothing: the same scores as one frame at a time."""
    _, predictions = run(open_source(str(clip)), backend, preprocessor, batch=8, every=7, topk=5)
    source = open_source(str(clip))
    images = [f.image for f in source.frames(every=7)]
    source.close()
    logits = np.concatenate([backend.infer(preprocessor(image)[None])[0] for image in images])
    best, scores = top_k(logits, 5)
    assert [p.index for p in predictions] == list(range(0, 50, 7))
    for prediction, row, expected in zip(predictions, best, scores):
        assert prediction.classes == [f"class_{c}" for c in row]
        np.testing.assert_allclose(prediction.scores, expected, rtol=0, atol=rounding_atol(expected))


def test_realtime_drops_frames_when_inference_is_slow(clip, backend, preprocessor):
    """50 frames at 25 fps (2 s) against a model that needs 100 ms a frame: frames are dropped, none pile up."""
    slow = SlowBackend(backend, delay=0.1)
    stats, predictions = run(open_source(str(clip)), slow, preprocessor, batch=1, realtime=True)
    assert stats.dropped > 0
    assert stats.frames + stats.dropped == 50  # each frame is predicted or counted as dropped
    assert stats.wall_s > 1.8  # decoded at the file's own rate, not as fast as possible
    indices = [p.index for p in predictions]
    assert indices == sorted(indices) and indices[-1] == 49  # always the newest frame, up to the last
    # No queue of stale frames: a frame waits for at most the call in progress, then takes its own. Measured
    # against this run's own calls, so a loaded machine (slower calls) moves both sides.
    assert stats.latency.percentile(99) < 3 * slow.slowest_call


def test_without_realtime_slow_inference_drops_nothing(clip, backend, preprocessor):
    slow = SlowBackend(backend, delay=0.02)
    stats, predictions = run(open_source(str(clip)), slow, preprocessor, batch=4, max_frames=20)
    assert stats.dropped == 0 and [p.index for p in predictions] == list(range(20))


def test_backend_failure_propagates_and_stops_the_worker(clip, backend, preprocessor):
    failing = FailingBackend(backend, delay=0)
    with pytest.raises(RuntimeError, match="device lost"):
        run(open_source(str(clip)), failing, preprocessor, batch=2)


def test_corrupted_video_skips_and_counts_bad_frames(tmp_path, backend, preprocessor):
    path = make_pan_zoom_video(tmp_path / "damaged.mp4", frames=200, size=(160, 120), fps=25)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    stats, predictions = run(open_source(str(path)), backend, preprocessor, batch=8)
    assert stats.corrupt > 0  # the damaged frames were noticed and counted, not passed on
    assert stats.frames > 100  # the frames before and after the damage still count
    assert stats.frames + stats.corrupt <= 200 and stats.frames == len(predictions)


def test_truncated_video_ends_with_what_was_decoded(tmp_path, backend, preprocessor):
    path = make_pan_zoom_video(tmp_path / "cut.mp4", frames=100, size=(160, 120), fps=25)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    stats, predictions = run(open_source(str(path)), backend, preprocessor, batch=8)
    assert 10 < stats.frames < 100
    assert [p.index for p in predictions] == list(range(stats.frames))


def test_folder_skips_unreadable_images(tmp_path, backend, preprocessor):
    for name, image in zip(("a.png", "b.jpg", "c.png"), sample_images()):
        Image.fromarray(image).save(tmp_path / name)
    (tmp_path / "b2.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (tmp_path / "notes.txt").write_text("ignored")
    stats, predictions = run(open_source(str(tmp_path)), backend, preprocessor, batch=8, realtime=True)
    assert [p.name for p in predictions] == ["a.png", "b.jpg", "c.png"]  # realtime ignored: no rate
    assert stats.corrupt == 1 and stats.dropped == 0
    assert all(p.timestamp is None for p in predictions)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux) to read the RSS")
def test_memory_stays_flat_over_10000_frames(tmp_path, backend, preprocessor):
    path = make_pan_zoom_video(tmp_path / "long.mp4", frames=10_000, size=64, fps=25, bit_rate=100_000)
    rss = {}

    def record(prediction):
        if prediction.index in (999, 9_999):
            rss[prediction.index] = _rss_bytes()

    pipeline = Pipeline(open_source(str(path)), backend, preprocessor, options=PipelineOptions(batch=8))
    stats = pipeline.run(record)
    pipeline.source.close()
    assert stats.frames == 10_000
    growth = rss[9_999] - rss[999]
    assert growth < 50 * 2**20, f"RSS grew {growth / 2**20:.1f} MiB between frame 1,000 and 10,000"


# -- helpers ----------------------------------------------------------------------------------------------
def test_latency_histogram_percentiles():
    values = np.random.default_rng(1).lognormal(np.log(0.02), 0.5, 5000)
    histogram = LatencyHistogram()
    for value in values:
        histogram.add(float(value))
    for q in (50, 95, 99):
        assert histogram.percentile(q) == pytest.approx(np.percentile(values, q), rel=0.01)
    assert LatencyHistogram().percentile(50) is None


def test_top_k_is_softmax_order():
    logits = np.array([[0.0, 3.0, 1.0], [2.0, 2.0, -1.0]], dtype=np.float32)
    best, scores = top_k(logits, 5)
    assert best.tolist() == [[1, 2, 0], [0, 1, 2]]
    np.testing.assert_allclose(scores.sum(axis=1), 1, rtol=sum_atol(1.0, logits.shape[1]))  # 3 float32 shares


def test_read_labels(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("cat\n dog \n\n")
    assert read_labels(path) == ["cat", "dog"]
    path.write_text("\n")
    with pytest.raises(UserError, match="empty"):
        read_labels(path)
