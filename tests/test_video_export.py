"""Video Swin clips to ONNX (`swin-trt export --arch swin3d_*`), and the stages that read data refusing images
for a clip graph: it reads clips of videos (swin_trt.data.clips; tests/test_video_clips.py runs them).

Parity: the export against the PyTorch reference in ONNX Runtime at batch 2 (a dynamic-batch graph), within
the float32 rounding bound of conftest.rounding_atol (capped), at a clip the window divides and one that is
padded to the patch and window.
"""

import json
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from swin_trt.export import INPUT_NAME, ExportOptions, ExportStage, seeded_model
from swin_trt.precision.cache import dumps, make_cache
from swin_trt.io import sha256_file

from conftest import rounding_atol

CAP = 1e-4  # the derived tolerance is never looser than this
# (T, H, W) of swin3d_pico_test (patch 2x4x4, window 2x4x4) and what each exercises (stage token maps):
DIVIDES = (4, 32, 32)  # [2x8x8, 2x4x4]: the window divides every stage
PADDED = (7, 38, 54)  # [4x10x14, 4x5x7]: the clip padded to the patch, the stages to the window
REFUSED = "holds 6 image(s) and no video, but the model takes clips (B, 3, T, H, W) of 4 frames of 32x32"


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: x})[0]


def reference(clip, x: np.ndarray, seed: int = 0, **options) -> np.ndarray:
    """The PyTorch model an export of ``clip`` without a checkpoint holds (random weights from ``seed``)."""
    t, h, w = clip
    model = seeded_model("swin3d_pico_test", seed, config_overrides={"clip_size": (t, h, w)}, **options)[0]
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def clip_batch(clip, batch: int = 2, seed: int = 1) -> np.ndarray:
    """Normal noise, with a per-clip offset and scale so that the clips of the batch differ in kind."""
    x = np.random.default_rng(seed).standard_normal((batch, 3, *clip)).astype(np.float32)
    return (x * np.linspace(0.5, 2.0, batch, dtype=np.float32)[:, None, None, None, None]).astype(np.float32)


@pytest.fixture(scope="module")
def exports(tmp_path_factory, cli) -> dict:
    """Dynamic-batch clip exports: DIVIDES through ExportStage, PADDED through the CLI."""
    folder = tmp_path_factory.mktemp("video_export")
    stage = ExportStage(folder / "divides.onnx", ExportOptions("swin3d_pico_test", img_size=DIVIDES[1:],
                                                               clip_len=DIVIDES[0], dynamic_batch=4))
    stage_result = stage.run()
    cli_result = cli("export", "--arch", "swin3d_pico_test", "--img-size", f"{PADDED[1]}x{PADDED[2]}",
                     "--clip-len", PADDED[0], "--dynamic-batch", 4, "-o", folder / "padded.onnx")
    return {DIVIDES: (folder / "divides.onnx", stage_result.max_abs_err),
            PADDED: (folder / "padded.onnx", cli_result.output)}


@pytest.mark.parametrize("clip", [DIVIDES, PADDED], ids=["window-divides", "padded"])
def test_clip_export_equals_pytorch_at_batch_2(exports, clip):
    path, _ = exports[clip]
    graph_input = onnx.load(path).graph.input[0]
    dims = [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim]
    assert graph_input.name == INPUT_NAME and dims == ["batch", 3, *clip]
    x = clip_batch(clip)
    expected = reference(clip, x)
    got = run_onnx(path, x)
    assert got.shape == (2, 5) and np.abs(expected[0] - expected[1]).max() > 1e-3  # two different answers
    assert np.abs(got - expected).max() <= min(CAP, rounding_atol(expected))


def test_clip_sidecar_records_the_layout_and_preprocessing(exports):
    path, err = exports[DIVIDES]
    sidecar = json.loads(path.with_name(path.name + ".json").read_text())
    assert sidecar["arch"] == "swin3d_pico_test" and sidecar["family"] == "video_swin"
    assert sidecar["layout"] == "NCTHW" and sidecar["clip_size"] == list(DIVIDES)
    assert sidecar["img_size"] == list(DIVIDES[1:]) and sidecar["config"]["clip_size"] == list(DIVIDES)
    assert sidecar["inputs"] == [{"name": INPUT_NAME, "shape": ["batch", 3, *DIVIDES]}]
    assert sidecar["batch"] is None and sidecar["dynamic_batch_max"] == 4
    pre = sidecar["preprocessing"]  # each frame's, as torchvision's swin3d transforms (bilinear, crop)
    assert pre["layout"] == "NCTHW" and pre["crop"] == list(DIVIDES[1:]) and pre["fit"] == "crop"
    assert pre["interpolation"] == "bilinear" and pre["mean"] == [0.485, 0.456, 0.406]
    assert sidecar["check"]["onnxruntime_max_abs_err"] == err and err <= CAP
    _, output = exports[PADDED]
    assert "RANDOM" in output and f"input  input: ['batch', 3, {PADDED[0]}, {PADDED[1]}, {PADDED[2]}]" in output


def test_dynamo_features_and_folded_clips(tmp_path):
    """The dynamo exporter, the stage maps (B, C, T, H, W) and uint8 pixels work on clips as on images."""
    dynamo = ExportStage(tmp_path / "dynamo.onnx", ExportOptions("swin3d_pico_test", exporter="dynamo",
                                                                 dynamic_batch=2)).run()
    x = clip_batch(DIVIDES)
    expected = reference(DIVIDES, x)
    assert dynamo.inputs == [(INPUT_NAME, ["batch", 3, *DIVIDES])] and dynamo.max_abs_err <= CAP
    assert np.abs(run_onnx(tmp_path / "dynamo.onnx", x) - expected).max() <= min(CAP, rounding_atol(expected))
    features = ExportStage(tmp_path / "f.onnx", ExportOptions("swin3d_pico_test", features=True)).run()
    assert features.outputs == [("stage1", [1, 16, 2, 8, 8]), ("stage2", [1, 32, 2, 4, 4])]
    assert features.max_abs_err <= CAP and features.sidecar["preprocessing"]["fit"] == "stretch"
    folded = ExportStage(tmp_path / "u8.onnx", ExportOptions("swin3d_pico_test", fold_normalization="uint8")).run()
    assert folded.max_abs_err <= CAP and folded.sidecar["preprocessing"]["dtype"] == "uint8"
    assert onnx.load(tmp_path / "u8.onnx").graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8


@pytest.mark.parametrize("args, message", [
    (["--arch", "swin3d_pico_test", "--dynamic-size"], "--dynamic-size is not supported for video models yet"),
    (["--arch", "swin_pico_test", "--clip-len", "8"], "--clip-len is the frames of a Video Swin clip"),
    (["--arch", "swin3d_pico_test", "--convention", "timm"], "one convention"),
], ids=["dynamic-size", "clip-len-on-images", "convention"])
def test_export_refusals_exit_2_with_the_flag_and_no_output(cli, tmp_path, args, message):
    result = cli("export", *args, "-o", tmp_path / "v.onnx", expect=2)
    assert message in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


# ---- the stages that read data take clips of videos for a clip graph, and refuse images ----------------------

@pytest.fixture(scope="module")
def clip_graph(exports, tmp_path_factory) -> dict:
    """The exported clip graph, copied to a folder of its own, and a calibration cache made for it (quantize
    asks for one before it reads images)."""
    folder = tmp_path_factory.mktemp("clip_graph")
    source, _ = exports[DIVIDES]
    path = folder / "clip.onnx"
    path.write_bytes(source.read_bytes())
    (folder / "clip.onnx.json").write_bytes(source.with_name(source.name + ".json").read_bytes())
    cache = folder / "clip.calib.json"
    cache.write_text(dumps(make_cache({}, method="max", percentile=None, model_sha256=sha256_file(path), data={})))
    return {"onnx": path, "cache": cache}


def _refusals(model, cache, images, out):
    return {
        "calibrate": ["calibrate", model, "--data", images, "-o", out / "calib.json"],
        "quantize-best": ["quantize", model, "--precision", "best", "--calib", cache, "--data", images,
                          "-o", out / "best.onnx"],
        "validate": ["validate", "--reference", model, "--candidate", model, "--data", images,
                     "-o", out / "report"],
        "infer": ["infer", images, "-m", model],
    }


@pytest.mark.parametrize("stage", ["calibrate", "quantize-best", "validate", "infer"])
def test_stages_that_read_data_refuse_images_for_a_clip_graph(cli, clip_graph, photo_dir, tmp_path, stage):
    args = _refusals(clip_graph["onnx"], clip_graph["cache"], photo_dir, tmp_path)[stage]
    result = cli(*args, expect=2)
    if stage == "infer":
        assert "the model takes clips of 4 frames (B, 3, T, H, W), but the source is 6 images" in result.output
    elif stage == "validate":
        assert REFUSED in result.output
    else:
        assert "holds no video (it has 6 image(s)), but the model takes clips (B, 3, T, H, W) of 4 frames" \
            in result.output
    assert "pass a video" in result.output
    assert "Traceback" not in result.output and list(tmp_path.iterdir()) == []



def test_a_torch_video_reference_takes_clips_and_refuses_images(cli, clip_graph, photo_dir):
    result = cli("validate", "--reference", "torch:swin3d_pico_test", "--candidate", clip_graph["onnx"],
                 "--data", photo_dir, expect=2)
    assert REFUSED in result.output


def test_a_users_torchvision_clip_export_takes_clips_and_refuses_images(cli, photo_dir, tmp_path):
    """A plain torch.onnx.export of torchvision's swin3d_t (no sidecar) is a clip model too (T and the frame
    size from its input), and gets the same clear error for images."""
    from unittest import mock

    from torchvision.models.video import swin3d_t

    with mock.patch("torch.nn.init.trunc_normal_", lambda tensor, *args, **kwargs: tensor):  # 2.5 s of init
        model = swin3d_t(weights=None).eval()
    path = tmp_path / "models" / "tv_swin3d_t.onnx"
    path.parent.mkdir()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(model, (torch.randn(1, 3, 4, 64, 64),), str(path), dynamo=False, opset_version=17,
                          input_names=["clip"])
    out = tmp_path / "out"
    result = cli("validate", "--reference", path, "--candidate", path, "--data", photo_dir, "-o", out, expect=2)
    assert REFUSED.replace("32x32", "64x64") in result.output
    assert "Traceback" not in result.output and not out.exists()
