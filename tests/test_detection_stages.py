"""Detectors through calibrate, quantize, build, infer and package (issue 23, part 3).

The detector is torchvision's Faster R-CNN on a Swin-T + FPN (``detector_onnx`` in conftest: random weights,
plain torch.onnx.export at 320x320, NMS, NonZero and If inside), fed real photos. The head boundary is also
checked on FCOS, whose head is a tower shared across pyramid levels rather than an RPN and ROI heads.

Nothing stands in for TensorRT: the engine test builds and runs a real engine and skips, with the reason, where
TensorRT, pycuda or a GPU is missing; on the CPU only the pure logic of the runner is tested.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from swin_trt.backends.tensorrt import data_dependent_outputs
from swin_trt.cli.main import main
from swin_trt.precision.detection_head import find_detection_head

UNIT = ("--preprocess", "unit", "--resize", "stretch")  # the detectors take 0..1 pixels, the whole image


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_user_error(result, *words):
    assert result.exit_code == 2, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


@pytest.fixture(scope="module")
def frcnn(detector_onnx):
    return detector_onnx("faster_rcnn")


@pytest.fixture(scope="module")
def few_photos(photo_dir, tmp_path_factory):
    """Three real photos of different shapes (512x512, 451x300, 400x600)."""
    folder = tmp_path_factory.mktemp("few")
    for name in ("astronaut", "chelsea", "coffee"):
        (folder / f"{name}.png").write_bytes((photo_dir / f"{name}.png").read_bytes())
    return folder


@pytest.fixture(scope="module")
def calibrated(frcnn, few_photos, tmp_path_factory):
    """The CLI's calibration cache of the detector, and the INT8 graph (head kept float32) made from it."""
    folder = tmp_path_factory.mktemp("calibrated")
    calib, int8 = folder / "calib.json", folder / "det.int8.onnx"
    result = run("calibrate", frcnn, "--data", few_photos, "-o", calib, "--min-images", 3, "--quiet", *UNIT)
    assert result.exit_code == 0, result.output
    result = run("quantize", frcnn, "--precision", "int8", "--calib", calib, "-o", int8, *UNIT)
    assert result.exit_code == 0, result.output
    return calib, int8, result.output


def _quantized_readers(model: onnx.ModelProto) -> set[str]:
    """Names of the nodes that read a DequantizeLinear's output: the layers that run in INT8."""
    dequantized = {n.output[0] for n in model.graph.node if n.op_type == "DequantizeLinear"}
    return {n.name for n in model.graph.node if n.op_type != "QuantizeLinear" and set(n.input) & dequantized}


# ---- the head boundary ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, head_layers", [("faster_rcnn", "/model/rpn/"), ("fcos", "/model/head/")])
def test_the_head_starts_after_the_neck(detector_onnx, kind, head_layers):
    """Found from the graph's structure (shared weights, data-dependent ops), checked here against the names
    torchvision gives its modules: every Swin and FPN layer outside the head, every head layer inside it."""
    model = onnx.load(str(detector_onnx(kind)))
    head = find_detection_head(model)
    layers = [n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    body = [name for name in layers if name not in head.nodes]
    assert body and all(name.startswith("/model/backbone/") for name in body)
    assert any("/fpn/" in name for name in body) and any("/body." in name for name in body)
    assert all(not name.startswith("/model/backbone/") for name in layers if name in head.nodes)
    assert any(name.startswith(head_layers) for name in head.nodes)
    assert head.variable_outputs and set(head.outputs) == {"boxes", "scores", "labels"}
    assert head.selection < head.nodes  # the towers/RPN convs run before any data-dependent op


def test_a_classifier_has_no_head(pico_dynamic):
    head = find_detection_head(onnx.load(str(pico_dynamic)))
    assert not head.found and not head.variable_outputs


# ---- calibrate, quantize, validate ----------------------------------------------------------------------

def test_calibrate_measures_the_detector_on_photos(calibrated, frcnn):
    calib, _, _ = calibrated
    cache = json.loads(calib.read_text())
    assert cache["data"]["images"] == 3 and cache["preprocessing"]["fit"] == "stretch"
    tensors = cache["tensors"]
    head = find_detection_head(onnx.load(str(frcnn), load_external_data=False))
    assert len(tensors) > 100 and all(entry["scale"] > 0 for entry in tensors.values())
    # the box head's input changes shape with the proposals kept for each photo: measured all the same
    box_head = [n for n in onnx.load(str(frcnn), load_external_data=False).graph.node
                if n.op_type == "Gemm" and n.name in head.selection]
    assert box_head and all(n.input[0] in tensors for n in box_head)


def test_int8_goes_into_the_backbone_and_neck_only(calibrated, frcnn, photo_dir):
    _, int8, output = calibrated
    model = onnx.load(str(int8))
    quantized = _quantized_readers(model)
    head = find_detection_head(onnx.load(str(frcnn), load_external_data=False))
    assert len(quantized) > 50 and not quantized & head.nodes
    assert all(name.startswith("/model/backbone/") for name in quantized)
    assert "INT8 detection head" in output and "kept float32" in output
    sidecar = json.loads(int8.with_name(int8.name + ".json").read_text())
    assert sidecar["quantize"]["int8"]["detection_head"]["quantized"] is False
    from swin_trt.backends.onnxruntime import OnnxRuntimeBackend

    image = np.asarray(Image.open(photo_dir / "rocket.png").convert("RGB").resize((320, 320)), np.float32)
    boxes, scores, labels = OnnxRuntimeBackend(int8).infer(np.moveaxis(image / 255, -1, 0)[None])
    assert boxes.shape == (len(scores), 4) and labels.shape == scores.shape and len(scores) > 0


def test_quantize_head_puts_int8_into_the_head_too(calibrated, frcnn):
    from swin_trt.precision.int8 import Int8Options, quantize_int8

    calib, _, _ = calibrated
    scales = {name: entry["scale"] for name, entry in json.loads(calib.read_text())["tensors"].items()}
    model = onnx.load(str(frcnn))
    head = find_detection_head(model)
    everywhere, report = quantize_int8(model, scales, Int8Options(keep_head=False))  # --quantize-head
    assert _quantized_readers(everywhere) & head.nodes  # the RPN convs and the box head's Gemms
    assert report.to_dict()["detection_head"]["quantized"] is True


def test_fp16_detector_runs_with_its_head_in_float32(frcnn, tmp_path):
    """quantize runs the FP16 graph in ONNX Runtime before writing it (quantize_stage.verify: it must run, its
    outputs finite); here, where float16 went."""
    out = tmp_path / "det.fp16.onnx"
    result = run("quantize", frcnn, "--precision", "fp16", "-o", out)
    assert result.exit_code == 0, result.output
    assert "FP16 detection head" in result.output and "kept float32" in result.output
    model = onnx.load(str(out))
    head = find_detection_head(onnx.load(str(frcnn), load_external_data=False))
    halves = {i.name for i in model.graph.initializer if i.data_type == TensorProto.FLOAT16}
    convs = [n for n in model.graph.node if n.op_type in ("Conv", "MatMul", "Gemm") and len(n.input) > 1]
    assert any(n.input[1] in halves for n in convs if n.name not in head.nodes)  # the backbone is float16
    assert not any(set(n.input) & halves for n in model.graph.node if n.name in head.nodes)
    assert [o.type.tensor_type.elem_type for o in model.graph.output] == [TensorProto.FLOAT, TensorProto.FLOAT,
                                                                         TensorProto.INT64]


def test_calibrate_quantize_validate_has_no_traceback(calibrated, frcnn, few_photos, tmp_path):
    _, int8, _ = calibrated
    result = run("validate", "--reference", frcnn, "--candidate", int8, "--data", few_photos, "-o", tmp_path,
                 "--score-threshold", "0.2", "--layer-images", 0, "--limit", 2, *UNIT)
    assert result.exit_code in (0, 1), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


# ---- bad input: exit 2, said plainly, nothing written ------------------------------------------------------

def _fails_on_real_images(path):
    """A one-Conv model that also expands a constant to the count of pixels above 0.5: "invalid expand shape"
    on almost any real photo, as the issue's corrupted Faster R-CNN did."""
    bright = [helper.make_node("Greater", ["images", "half"], ["bright"]),
              helper.make_node("NonZero", ["bright"], ["where"]),
              helper.make_node("Shape", ["where"], ["where_shape"]),
              helper.make_node("Slice", ["where_shape", "one", "two"], ["count"]),
              helper.make_node("Expand", ["pair", "count"], ["expanded"]),
              helper.make_node("ReduceSum", ["expanded"], ["total"], keepdims=0),
              helper.make_node("Conv", ["images", "weight"], ["features"]),
              helper.make_node("Add", ["features", "total"], ["out"])]
    graph = helper.make_graph(
        bright, "fails", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.array(0.5, np.float32), "half"),
         numpy_helper.from_array(np.array([1], np.int64), "one"),
         numpy_helper.from_array(np.array([2], np.int64), "two"),
         numpy_helper.from_array(np.ones(2, np.float32), "pair"),
         numpy_helper.from_array(np.ones((4, 3, 3, 3), np.float32), "weight")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def test_calibrate_says_which_image_the_model_fails_on(few_photos, tmp_path):
    model = _fails_on_real_images(tmp_path / "broken.onnx")
    out = tmp_path / "calib.json"
    result = run("calibrate", model, "--data", few_photos, "-o", out, "--min-images", 1, "--quiet", *UNIT)
    assert_user_error(result, "fails in ONNX Runtime on calibration image 1", "validate")
    assert not out.exists()


def test_best_and_io_fp16_refuse_a_detector(calibrated, frcnn, few_photos, tmp_path):
    calib, _, _ = calibrated
    out = tmp_path / "best.onnx"
    result = run("quantize", frcnn, "--precision", "best", "--calib", calib, "--data", few_photos, "-o", out)
    assert_user_error(result, "detector", "--precision int8 or fp16")
    result = run("quantize", frcnn, "--precision", "fp16", "--io-fp16", "-o", out)
    assert_user_error(result, "--io-fp16", "float32")
    assert list(tmp_path.iterdir()) == []


# ---- infer -----------------------------------------------------------------------------------------------

def test_infer_writes_detections_in_frame_pixels(frcnn, few_photos, tmp_path):
    from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
    from swin_trt.data.model_input import PreprocessOptions, resolve_input

    out, video = tmp_path / "det.jsonl", tmp_path / "det.mp4"
    result = run("infer", few_photos, "-m", frcnn, "--score-threshold", 0.2, "--out", out, "--save-video", video,
                 *UNIT)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["name"] for line in lines] == ["astronaut.png", "chelsea.png", "coffee.png"]
    preprocessor = resolve_input(frcnn, PreprocessOptions("unit", resize="stretch"), note=None).preprocessor
    session = OnnxRuntimeBackend(frcnn)
    for line in lines:
        image = Image.open(few_photos / line["name"]).convert("RGB")
        assert line["box_space"] == "frame" and line["frame_size"] == list(image.size)
        boxes = np.array(line["boxes"]).reshape(-1, 4)
        assert len(boxes) == len(line["labels"]) == len(line["label_ids"]) == len(line["scores"]) > 0
        assert line["scores"] == sorted(line["scores"], reverse=True) and min(line["scores"]) >= 0.2
        width, height = image.size
        assert boxes.min() >= 0 and boxes[:, [0, 2]].max() <= width and boxes[:, [1, 3]].max() <= height
        # the model's own best box, in its 320x320 input, scaled back to the photo
        raw_boxes, raw_scores, _ = session.infer(preprocessor(image)[None])
        best = raw_boxes[int(np.argmax(raw_scores))]
        expected = best * np.array([width / 320, height / 320] * 2)
        assert boxes[0] == pytest.approx(expected, abs=0.02)
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3


def test_infer_maps_boxes_back_through_the_centre_crop(frcnn, few_photos, tmp_path):
    out = tmp_path / "crop.jsonl"
    result = run("infer", few_photos / "coffee.png", "-m", frcnn, "--score-threshold", 0.2, "--out", out,
                 "--preprocess", "unit", "--resize", "crop", "--crop-pct", 1.0)
    assert result.exit_code == 0, result.output
    line = json.loads(out.read_text())
    boxes = np.array(line["boxes"])  # coffee is 600x400: the crop keeps x from 100 to 500
    assert line["frame_size"] == [600, 400]
    assert boxes[:, [0, 2]].min() >= 100 - 1e-6 and boxes[:, [0, 2]].max() <= 500 + 1e-6


def test_infer_runs_a_detector_frame_by_frame(frcnn, few_photos, tmp_path):
    out = tmp_path / "batch.jsonl"
    result = run("infer", few_photos, "-m", frcnn, "--batch", 2, "--out", out, *UNIT)
    assert_user_error(result, "batch")
    assert not out.exists()


# ---- package ---------------------------------------------------------------------------------------------

def test_triton_declares_variable_length_outputs_and_deepstream_refuses(calibrated, tmp_path):
    from swin_trt.triton_config import read_config

    _, int8, _ = calibrated
    result = run("package", int8, "--triton", "-o", tmp_path / "repo")
    assert result.exit_code == 0, result.output
    config = read_config(tmp_path / "repo" / "det_int8" / "config.pbtxt")
    assert config.max_batch_size == 0
    assert {o.name: list(o.dims) for o in config.output} == {"boxes": [-1, 4], "scores": [-1], "labels": [-1]}
    assert not any(o.label_filename for o in config.output)
    result = run("package", int8, "--deepstream", "-o", tmp_path / "ds")
    assert_user_error(result, "bbox parser", "parse-bbox-func-name", "--triton")
    assert not (tmp_path / "ds").exists()


# ---- TensorRT --------------------------------------------------------------------------------------------

def test_outputs_left_at_minus_one_are_the_data_dependent_ones():
    shapes = {"boxes": (-1, 4), "scores": (-1,), "labels": (-1,), "logits": (1, 1000), "map": (1, 5, 80, 80)}
    assert data_dependent_outputs(shapes) == ["boxes", "scores", "labels"]
    assert data_dependent_outputs({"logits": (8, 1000)}) == []


def test_the_output_allocator_uses_names_tensorrt_has():
    """scripts/check_tensorrt_names.py (run by hand against the 10.3 and 11.4 bindings) sees the allocator."""
    from conftest import load_script

    script = load_script(Path(__file__).resolve().parents[1] / "scripts" / "check_tensorrt_names.py", "check_names")
    names = set(script.collect_names(script.SOURCES))
    assert {"IOutputAllocator", "set_output_allocator", "reallocate_output_async", "notify_shape"} <= names


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_detector_engine_allocates_its_outputs_from_the_sizes_tensorrt_reports(frcnn, photo_dir, tmp_path):
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    pytest.importorskip("polygraphy", reason="Polygraphy is not installed (pip install 'swin-trt[trt]')")
    from swin_trt.device import gpu_info

    if gpu_info() is None:
        pytest.skip("no CUDA GPU")
    from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
    from swin_trt.backends.tensorrt import TensorRTBackend
    from swin_trt.engine import build_engine
    from swin_trt.validate.detection import DetectionAgreement
    from swin_trt.data.detection_outputs import Detections

    built = build_engine(frcnn, tmp_path / "det.engine", tf32=False, progress=False)
    assert {t["name"]: t["shape"][0] for t in built.manifest["io"] if t["mode"] == "output"} == \
        {"boxes": -1, "scores": -1, "labels": -1}
    reference = OnnxRuntimeBackend(frcnn)
    agreement = DetectionAgreement(0.0)
    with TensorRTBackend(built.path) as engine:
        assert engine.data_dependent == ["boxes", "scores", "labels"]
        for name in ("astronaut", "chelsea", "coffee", "rocket"):
            image = np.asarray(Image.open(photo_dir / f"{name}.png").convert("RGB").resize((320, 320)), np.float32)
            pixels = np.moveaxis(image / 255, -1, 0)[None]
            got, want = engine.infer(pixels), reference.infer(pixels)
            assert [g.shape for g in got] == [w.shape for w in want]  # the count NMS kept, as ONNX Runtime's
            agreement.update(Detections(*want[:2], want[2].astype(np.int64)),
                             Detections(*got[:2], got[2].astype(np.int64)))
    assert agreement.result()["found"] >= 0.95
