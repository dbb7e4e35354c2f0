"""``swin-trt infer`` end to end, through the CLI, on generated videos and real photos."""

from __future__ import annotations

import json
import shutil
import time

import av
import pytest
from click.testing import CliRunner
from PIL import Image

from swin_trt.cli.main import main
from swin_trt.video.synth import make_pan_zoom_video, sample_images

from conftest import finishes_within

FRAMES, FPS = 40, 25


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_pan_zoom_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames=FRAMES, size=(160, 120),
                               fps=FPS)


def infer(*args):
    return CliRunner().invoke(main, ["infer", *map(str, args)])


def read_lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_no_output(directory, name):
    """Neither the output nor its temporary file is left behind."""
    assert not [p for p in directory.iterdir() if name in p.name]


def test_video_file_to_jsonl(tmp_path, clip, pico_dynamic):
    out = tmp_path / "preds.jsonl"
    result = infer(clip, "--model", pico_dynamic, "--batch", 8, "--topk", 3, "--out", out)
    assert result.exit_code == 0, result.output
    lines = read_lines(out)
    assert [line["index"] for line in lines] == list(range(FRAMES))
    stamps = [line["timestamp"] for line in lines]
    assert stamps == sorted(set(stamps)) and stamps[1] == pytest.approx(1 / FPS)
    for line in lines:
        assert len(line["classes"]) == len(line["scores"]) == 3
        assert all(name.startswith("class_") for name in line["classes"])  # random weights: no names
        assert 1 >= line["scores"][0] >= line["scores"][1] >= line["scores"][2] > 0
        assert line["latency_ms"] > 0
    for word in ("frames 40", "dropped 0", "corrupt 0", "fps", "p50/p95/p99", "decode", "preprocess", "infer"):
        assert word in result.output


def test_every_second_frame(tmp_path, clip, pico_dynamic):
    out = tmp_path / "preds.jsonl"
    result = infer(clip, "--model", pico_dynamic, "--every", 2, "--threads", 1, "--out", out)
    assert result.exit_code == 0, result.output
    lines = read_lines(out)
    assert [line["index"] for line in lines] == list(range(0, FRAMES, 2))
    assert [line["timestamp"] for line in lines] == pytest.approx([i / FPS for i in range(0, FRAMES, 2)])
    assert all(len(line["classes"]) == 5 for line in lines)  # --topk 5 (default) of 5 classes


def test_jsonl_on_stdout_without_out(clip, pico_dynamic):
    result = CliRunner().invoke(main, ["infer", str(clip), "--model", str(pico_dynamic), "--max-frames", "6"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["index"] for line in lines] == list(range(6))


def test_folder_source(tmp_path, pico_dynamic):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name, image in zip(("astronaut.png", "chelsea.jpg", "coffee.png"), sample_images()):
        Image.fromarray(image).save(folder / name)
    out = tmp_path / "preds.jsonl"
    result = infer(folder, "--model", pico_dynamic, "--batch", 2, "--out", out)
    assert result.exit_code == 0, result.output
    lines = read_lines(out)
    assert [line["name"] for line in lines] == ["astronaut.png", "chelsea.jpg", "coffee.png"]
    assert [line["index"] for line in lines] == [0, 1, 2]


def test_single_image_with_torch_spec(tmp_path):
    image = tmp_path / "chelsea.jpg"
    Image.fromarray(sample_images(["chelsea"])[0]).save(image)
    result = CliRunner().invoke(main, ["infer", str(image), "--model", "torch:swin_pico_test", "--topk", "2"])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(text) for text in result.stdout.splitlines()]
    assert line["index"] == 0 and line["timestamp"] is None and line["name"] == "chelsea.jpg"
    assert len(line["classes"]) == 2


def test_labels_from_file_and_from_sidecar(tmp_path, clip, pico_dynamic):
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(["cat", "coffee", "rocket", "astronaut", "coin"]) + "\n")
    out = tmp_path / "preds.jsonl"
    result = infer(clip, "--model", pico_dynamic, "--labels", labels, "--max-frames", 4, "--out", out)
    assert result.exit_code == 0, result.output
    assert all(set(line["classes"]) == {"cat", "coffee", "rocket", "astronaut", "coin"} for line in read_lines(out))
    # Names in the sidecar's config are the default.
    named = tmp_path / "named.onnx"
    shutil.copy(pico_dynamic, named)
    sidecar = json.loads(pico_dynamic.with_name(pico_dynamic.name + ".json").read_text())
    sidecar["config"]["class_names"] = ["a", "b", "c", "d", "e"]
    named.with_name(named.name + ".json").write_text(json.dumps(sidecar))
    result = infer(clip, "--model", named, "--max-frames", 2, "--out", out)
    assert result.exit_code == 0, result.output
    assert set(read_lines(out)[0]["classes"]) == {"a", "b", "c", "d", "e"}


def test_wrong_number_of_labels_is_exit_2(tmp_path, clip, pico_dynamic):
    labels = tmp_path / "labels.txt"
    labels.write_text("cat\ndog\n")
    result = infer(clip, "--model", pico_dynamic, "--labels", labels, "--out", tmp_path / "preds.jsonl")
    assert result.exit_code == 2
    assert "2 labels for a model with 5 classes" in result.output
    assert_no_output(tmp_path, "preds.jsonl")


def test_save_video_is_decodable_with_one_frame_per_prediction(tmp_path, clip, pico_dynamic):
    out, video = tmp_path / "preds.jsonl", tmp_path / "annotated.mp4"
    result = infer(clip, "--model", pico_dynamic, "--every", 3, "--out", out, "--save-video", video)
    assert result.exit_code == 0, result.output
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert float(stream.average_rate) == pytest.approx(FPS / 3, rel=0.01)
    assert len(frames) == len(read_lines(out)) == len(range(0, FRAMES, 3))
    assert (frames[0].width, frames[0].height) == (160, 120)
    label_box = frames[0].to_ndarray(format="rgb24")[:4, :20]
    assert label_box.mean() < 40  # the dark box the label is drawn on


def test_realtime_flag_paces_a_file(tmp_path, clip, pico_dynamic):
    start = time.monotonic()
    result = infer(clip, "--model", pico_dynamic, "--realtime", "--out", tmp_path / "preds.jsonl")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - start > (FRAMES - 1) / FPS * 0.9  # decoded at 25 fps, not faster
    assert "dropped" in result.output


def test_corrupted_file_is_skipped_not_fatal(tmp_path, pico_dynamic):
    path = make_pan_zoom_video(tmp_path / "damaged.mp4", frames=200, size=(160, 120), fps=FPS)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 4000] = bytes((i * 131 + 7) % 256 for i in range(4000))
    path.write_bytes(bytes(data))
    out = tmp_path / "preds.jsonl"
    result = infer(path, "--model", pico_dynamic, "--batch", 8, "--out", out)
    assert result.exit_code == 0, result.output
    frames = len(read_lines(out))
    corrupt = int(result.output.split("corrupt ")[1].split()[0])
    assert corrupt > 0  # the damaged frames were noticed and counted in the summary
    assert 100 < frames and frames + corrupt <= 200 and f"frames {frames}" in result.output


def test_truncated_file_ends_cleanly(tmp_path, pico_dynamic):
    path = make_pan_zoom_video(tmp_path / "cut.mp4", frames=100, size=(160, 120), fps=FPS)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    out = tmp_path / "preds.jsonl"
    result = infer(path, "--model", pico_dynamic, "--out", out)
    assert result.exit_code == 0, result.output
    assert 10 < len(read_lines(out)) < 100


@pytest.mark.parametrize("source, message", [
    ("missing.mp4", "does not exist"),
    ("rtsp://127.0.0.1:9/x", "cannot open stream 'rtsp://127.0.0.1:9/x'"),
    ("/dev/video97", "camera '/dev/video97' does not exist"),
])
def test_unopenable_source_is_exit_2_without_output(tmp_path, pico_dynamic, source, message):
    source = str(tmp_path / source) if source == "missing.mp4" else source
    result = finishes_within(60, lambda: infer(source, "--model", pico_dynamic, "--timeout", 2,
                                               "--out", tmp_path / "preds.jsonl",
                                               "--save-video", tmp_path / "annotated.mp4"))
    assert result.exit_code == 2
    assert message in result.output and "error:" in result.output
    assert "Traceback" not in result.output
    assert_no_output(tmp_path, "preds.jsonl")
    assert_no_output(tmp_path, "annotated.mp4")


def test_mp4_cut_before_its_index_is_exit_2(tmp_path, pico_dynamic):
    path = make_pan_zoom_video(tmp_path / "cut.mp4", frames=50, size=(160, 120), fps=FPS, faststart=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    result = infer(path, "--model", pico_dynamic, "--out", tmp_path / "preds.jsonl")
    assert result.exit_code == 2 and "cannot open file" in result.output
    assert_no_output(tmp_path, "preds.jsonl")


def test_bad_model_and_video_suffix_are_exit_2(tmp_path, clip, pico_dynamic):
    result = infer(clip, "--model", tmp_path / "nope.onnx")
    assert result.exit_code == 2 and "does not exist" in result.output
    result = infer(clip, "--model", pico_dynamic, "--save-video", tmp_path / "annotated.gif")
    assert result.exit_code == 2 and "cannot write video" in result.output


def test_model_without_sidecar_runs_on_the_imagenet_defaults(tmp_path, clip, pico_dynamic):
    bare = tmp_path / "bare.onnx"
    shutil.copy(pico_dynamic, bare)  # what a user brings: an ONNX file and nothing else
    out = tmp_path / "preds.jsonl"
    result = infer(clip, "--model", bare, "--max-frames", "5", "--out", out)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("assuming the ImageNet recipe") == 1
    assert len(read_lines(out)) == 5


def test_http_stream_source(tmp_path, clip, pico_dynamic):
    """A stream URL goes through PyAV's network input (here a loopback HTTP server, nothing external)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(clip.parent))
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            out = tmp_path / "preds.jsonl"
            url = f"http://127.0.0.1:{server.server_address[1]}/{clip.name}"
            result = infer(url, "--model", pico_dynamic, "--batch", 8, "--timeout", 5, "--out", out)
        finally:
            server.shutdown()
    assert result.exit_code == 0, result.output
    assert [line["index"] for line in read_lines(out)] == list(range(FRAMES))
