"""Clips through calibrate, quantize's `best`, validate and infer (swin_trt.data.clips): a Video Swin graph reads
T frames at a stride from video files, on the bundled video demo (swin3d_demo) and its 16 held-out clips."""

import json
import threading
from fractions import Fraction
import time

import av
import numpy as np
import pytest

from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
from swin_trt.data.clips import ClipOptions, ClipPreprocessor, ClipWindow, read_clips
from swin_trt.data.model_input import resolve_input
from swin_trt.errors import UserError
from swin_trt.models.demo import DEMO_VIDEO_CONFIG, assets_dir, demo_video_clips_dir
from swin_trt.precision.calibrate_stage import CalibrateOptions, CalibrateStage
from swin_trt.precision.evaluate import load_pixels
from swin_trt.video.inference_loop import Pipeline, PipelineOptions
from swin_trt.video.sources import Frame, Source

from tolerances import rounding_atol

T = 8  # swin3d_demo's clip: 8 frames of 64x64
PANS = ("pan_left", "pan_right", "pan_up")  # classified right in every held-out clip (README: 0.99-1.00)


@pytest.fixture(scope="module")
def demo_graph(tmp_path_factory):
    """swin3d_demo exported (batch 1, its sidecar records NCTHW clips of 8x64x64)."""
    from swin_trt.export import export_model

    path = tmp_path_factory.mktemp("clips") / "video" / "demo.onnx"
    path.parent.mkdir()
    export_model("swin3d_demo", path, check=False)
    return path


@pytest.fixture(scope="module")
def joined_video(tmp_path_factory):
    """pan_left, pan_right and pan_up's first bundled clips one after the other: 24 frames, re-encoded losslessly
    (FFV1 on the decoded YUV planes), so that each 8-frame third is exactly its bundled clip."""
    path = tmp_path_factory.mktemp("joined") / "pans.mkv"
    with av.open(str(path), "w", format="matroska") as output:
        stream = output.add_stream("ffv1", rate=8)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "yuv420p"
        count = 0
        for name in PANS:
            with av.open(str(demo_video_clips_dir() / name / "000.mp4")) as clip:
                for frame in clip.decode(video=0):
                    frame.pts, frame.time_base = count, Fraction(1, 8)
                    frame.pict_type = av.video.frame.PictureType.NONE
                    output.mux(stream.encode(frame))
                    count += 1
        output.mux(stream.encode(None))
    return path


def test_the_clip_window_cuts_clips_at_the_stride():
    def clips(length, stride, frames=12):
        window = ClipWindow(length, stride)
        return [clip for clip in (window.push(i) for i in range(frames)) if clip is not None]

    assert clips(4, 4) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]  # the default: no overlap
    assert clips(4, 2) == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9], [8, 9, 10, 11]]
    assert clips(3, 5) == [[0, 1, 2], [5, 6, 7]]  # frames 3, 4, 8, 9 belong to no clip; 10, 11 to no whole one


def test_calibrate_reads_the_bundled_clips_and_keys_on_the_videos_and_clip_options(cli, demo_graph, tmp_path):
    clips_dir = demo_video_clips_dir()
    result = cli("calibrate", demo_graph, "--data", clips_dir, "--num", 8, "--clip-stride", 4, "--quiet",
                 "-o", tmp_path / "calib.json")
    assert "8 clips (folder)" in result.output
    cache = json.loads((tmp_path / "calib.json").read_text())
    assert cache["data"]["clips"] == 8 and len(cache["data"]["sha256"]) == 16 and cache["tensors"]

    def key(data=clips_dir, **options):
        return json.dumps(CalibrateStage(demo_graph, data, tmp_path / "c.json", CalibrateOptions(**options)).key())

    changed = tmp_path / "changed"
    for path in sorted(clips_dir.rglob("*.mp4")):
        (changed / path.parent.name).mkdir(parents=True, exist_ok=True)
        (changed / path.parent.name / path.name).write_bytes(path.read_bytes())
    assert key() == key(data=changed)  # the same videos elsewhere
    first = sorted(changed.rglob("*.mp4"))[0]
    first.write_bytes(first.read_bytes() + b"\0")
    assert len({key(), key(clip_stride=4), key(clip_len=8), key(data=changed)}) == 4


def test_validate_on_the_bundled_clip_folder_scores_the_demo_and_agrees_with_the_reference(cli, demo_graph):
    """Against the PyTorch reference: its top-1 on the 16 bundled clips is the demo's recorded one (14 of 16),
    and the exported graph agrees with it on every clip."""
    recorded = json.loads((assets_dir() / DEMO_VIDEO_CONFIG).read_text())["metrics"]
    result = cli("validate", "--reference", "torch:swin3d_demo", "--candidate", demo_graph, "--data",
                 demo_video_clips_dir(), "--layer-images", 0, "--batch", 1, "--json")
    document = json.loads(result.output[result.output.index("{"):])
    reference, (candidate,) = document["reference_metrics"], document["candidates"]
    assert document["dataset"]["clips"] == {"clips": 16, "videos": 16, "clip_len": T, "clip_stride": T}
    assert document["dataset"]["labelled"] == 16 and document["dataset"]["label_mapping"] == "class_names"
    assert reference["acc1"] == recorded["clips_top1"] == 14 / 16
    assert candidate["acc1"] == reference["acc1"] and candidate["top1_agreement"] == 1.0
    assert candidate["cosine"] > 0.99999 and candidate["max_abs_err"] < 1e-4


def test_infer_prints_one_line_per_clip_at_the_stride(cli, demo_graph, joined_video, tmp_path):
    out, annotated = tmp_path / "clips.jsonl", tmp_path / "annotated.mp4"
    result = cli("infer", joined_video, "-m", demo_graph, "--clip-stride", 4, "--topk", 3, "--out", out,
                 "--save-video", annotated)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(c["clip"], c["first"], c["last"]) for c in lines] == [(k, 4 * k, 4 * k + T - 1) for k in range(5)]
    assert [lines[k]["classes"][0] for k in (0, 2, 4)] == list(PANS)  # the whole clips of each pan
    assert all(len(c["classes"]) == 3 and c["latency_ms"] > 0 for c in lines)
    assert lines[0]["timestamp"] == pytest.approx(7 / 8)
    assert "clips 5  dropped 0" in result.output
    with av.open(str(annotated)) as container:  # every frame, each with the label of the clip it completes
        assert sum(1 for _ in container.decode(video=0)) == 24
    result = cli("infer", demo_video_clips_dir() / "pan_up" / "001.mp4", "-m", demo_graph, "--topk", 1)
    (line,) = [json.loads(text) for text in result.output.splitlines() if text.startswith("{")]
    assert (line["clip"], line["first"], line["last"], line["classes"]) == (0, 0, T - 1, ["pan_up"])


class _GatedFrames(Source):
    """A live source of grey frames (frame i has the value 5 i) that holds back after the first clip until the
    model has started on it, then delivers every other frame at once: the model falls behind deterministically."""

    kind, live = "camera", True

    def __init__(self, count: int, started: threading.Event, delivered: threading.Event):
        super().__init__("gated test frames")
        self.count, self.started, self.delivered = count, started, delivered

    def frames(self, every=1, limit=None):
        from PIL import Image

        for index in range(self.count):
            if index == T:
                assert self.started.wait(10), "the model never started"
            self.decoded += 1
            yield Frame(index, index / 8, Image.new("RGB", (64, 64), (5 * index,) * 3), time.perf_counter())
        self.delivered.set()


class _SlowUntilDelivered(OnnxRuntimeBackend):
    """The demo graph, whose first clip (after the warm-up call) takes until the source has delivered every
    frame: a model too slow for its source. Records the frames each call saw (from the grey values)."""

    def __init__(self, path, started, delivered):
        super().__init__(str(path))
        self.started, self.delivered, self.calls, self.seen = started, delivered, 0, []

    def infer(self, batch):
        self.calls += 1
        if self.calls > 1:
            grey = batch[:, 0, :, 0, 0] * 0.229 + 0.485  # (B, T): the frames' values / 255
            self.seen += [list(np.rint(g * 255 / 5).astype(int)) for g in grey]
        if self.calls == 2:
            self.started.set()
            assert self.delivered.wait(10), "the source never finished"
        return super().infer(batch)


def test_realtime_drops_whole_clips_never_frames_of_a_clip(demo_graph):
    started, delivered = threading.Event(), threading.Event()
    backend = _SlowUntilDelivered(demo_graph, started, delivered)
    preprocessor = resolve_input(str(demo_graph), clips=ClipOptions(stride=4)).preprocessor
    predictions = []
    pipeline = Pipeline(_GatedFrames(40, started, delivered), backend, preprocessor, None,
                        PipelineOptions(batch=1, realtime=True))
    stats = pipeline.run(predictions.append)
    # 9 clips of 8 frames every 4 in 40 frames: the first, then the newest once the model is free again
    assert [(p.clip, p.first, p.index) for p in predictions] == [(0, 0, 7), (8, 32, 39)]
    assert stats.frames == 2 and stats.dropped == 7 and stats.unit == "clips"
    assert backend.seen == [list(range(0, 8)), list(range(32, 40))]  # whole clips of consecutive frames


def test_best_reads_clips_like_calibrate(demo_graph):
    preprocessor = resolve_input(str(demo_graph)).preprocessor
    assert isinstance(preprocessor, ClipPreprocessor) and (preprocessor.length, preprocessor.stride) == (T, T)
    pixels = load_pixels(demo_video_clips_dir(), preprocessor, 4)
    assert pixels.shape == (4, 3, T, 64, 64) and pixels.dtype == np.float32
    clip = next(read_clips(demo_video_clips_dir() / "pan_left" / "000.mp4", preprocessor))
    with av.open(str(clip.path)) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    expected = (frames / 255.0 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    expected = expected.transpose(3, 0, 1, 2)  # float32 scaling, centring and division: a few roundings each
    np.testing.assert_allclose(preprocessor.normalize(clip.pixels[None])[0], expected, rtol=0,
                               atol=rounding_atol(expected, ulps=8))


@pytest.mark.parametrize("stage", ["calibrate", "quantize-best", "validate", "infer"])
def test_images_given_to_a_clip_model_exit_2_saying_what_to_pass(cli, demo_graph, photo_dir, tmp_path, stage):
    from swin_trt.io import sha256_file
    from swin_trt.precision.cache import dumps, make_cache

    cache = demo_graph.parent / "empty.calib.json"
    cache.write_text(dumps(make_cache({}, method="max", percentile=None, model_sha256=sha256_file(demo_graph),
                                      data={})))
    out = tmp_path / "out"
    args = {
        "calibrate": ["calibrate", demo_graph, "--data", photo_dir, "-o", out / "calib.json"],
        "quantize-best": ["quantize", demo_graph, "--precision", "best", "--calib", cache, "--data", photo_dir,
                          "-o", out / "best.onnx"],
        "validate": ["validate", "--reference", demo_graph, "--candidate", demo_graph, "--data", photo_dir,
                     "-o", out / "report"],
        "infer": ["infer", photo_dir, "-m", demo_graph, "--out", out / "p.jsonl"],
    }[stage]
    result = cli(*args, expect=2)
    assert "the model takes clips" in result.output and "Traceback" not in result.output
    assert "video" in result.output and not out.exists()


def test_clip_options_on_an_image_model_and_a_wrong_clip_len_exit_2(cli, pico_dynamic, demo_graph, tmp_path):
    result = cli("infer", demo_video_clips_dir() / "pan_left" / "000.mp4", "-m", pico_dynamic, "--clip-len", 8,
                 expect=2)
    assert "--clip-len is for a video clip model" in result.output and "Traceback" not in result.output
    result = cli("validate", "--reference", demo_graph, "--candidate", demo_graph, "--data",
                 demo_video_clips_dir(), "--clip-len", 4, "-o", tmp_path / "r", expect=2)
    assert "--clip-len 4" in result.output and "takes clips of 8 frames" in result.output
    assert not (tmp_path / "r").exists()
    with pytest.raises(UserError, match="`clip_stride` must be"):
        ClipOptions(stride=0).check()


def test_compile_holds_whole_videos_out_for_a_clip_model(tmp_path):
    """compile without `val_data`: a clip model's held-out data are whole videos (every 4th, class folders
    kept), never frames of the calibration videos; one video cannot be split."""
    from swin_trt.compiler.holdout import split

    parts = split(demo_video_clips_dir(), tmp_path, 64, clips=True)
    held, kept = (sorted(p.relative_to(folder) for p in folder.rglob("*.mp4"))
                  for folder in (parts.validation, parts.calibration))
    assert len(held) == 4 and len(kept) == 12 and not set(held) & set(kept)
    assert all(len(p.parts) == 2 for p in held)  # <motion>/<clip>.mp4: the labels stay
    assert all((parts.validation / p).resolve() == (demo_video_clips_dir() / p).resolve() for p in held)
    again = split(demo_video_clips_dir(), tmp_path, 64, clips=True)  # a rerun replaces the links
    assert sorted(p.relative_to(again.validation) for p in again.validation.rglob("*.mp4")) == held
    one = next(demo_video_clips_dir().rglob("*.mp4"))
    with pytest.raises(UserError, match="1 video"):
        split(one, tmp_path / "one", 64, clips=True)
