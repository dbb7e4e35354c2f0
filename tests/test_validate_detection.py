"""validate on detectors and on outputs without a batch axis: every element compared, detections matched with
the reference's, the true mAP by pycocotools with boxes mapped back to the original image."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from swin_trt.backends.base import Backend
from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
from swin_trt.data.images import list_images
from swin_trt.preprocess import PRESETS, Preprocessing, Preprocessor
from swin_trt.errors import UserError
from swin_trt.validate.coco import CocoAnnotations, to_source_pixels
from swin_trt.validate.compare import DetectionRequest, compare
from swin_trt.validate.detection import DetectionAgreement, box_iou
from swin_trt.data.detection_outputs import Detections, find_detection_outputs, parse_outputs
from swin_trt.validate.gates import Gates, check
from swin_trt.validate.labels import label_items


def _save(nodes, inputs, outputs, initializers, path: Path) -> Path:
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializers)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


# ---- outputs without a batch axis ----------------------------------------------------------------------------

def _rows_graph(path: Path, last_row_offset: float) -> Path:
    """A fixed-batch-1 graph whose output ``rows (3, 32)`` has no batch axis: the image's mean over its height,
    one row per channel; ``last_row_offset`` is added to the last row only."""
    offset = np.zeros((3, 32), np.float32)
    offset[2] = last_row_offset
    nodes = [helper.make_node("ReduceMean", ["x"], ["mean"], axes=[2], keepdims=0),
             helper.make_node("Reshape", ["mean", "shape"], ["flat"]),
             helper.make_node("Add", ["flat", "offset"], ["rows"])]
    return _save(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                 [helper.make_tensor_value_info("rows", TensorProto.FLOAT, [3, 32])],
                 [numpy_helper.from_array(np.array([3, 32], np.int64), "shape"),
                  numpy_helper.from_array(offset, "offset")], path)


def test_fixed_batch_output_without_batch_axis_is_compared_whole(cli, photo_dir, tmp_path):
    """The bug of issue 23: batches of 8 on a batch-1 model kept row 0 of every output. A difference in the
    last row must show, on every image."""
    reference = _rows_graph(tmp_path / "rows.onnx", 0.0)
    candidate = _rows_graph(tmp_path / "rows_changed.onnx", 0.5)
    document = json.loads(cli("validate", "--reference", reference, "--candidate", candidate, "--data", photo_dir,
                              "--batch", 8, "--layer-images", 0, "--json").stdout)
    entry = document["candidates"][0]
    assert document["reference_metrics"]["outputs"] == [{"name": "rows", "kind": "features", "shape": [3, 32],
                                                         "batch_axis": False}]
    assert entry["images"] == 6 and entry["max_abs_err"] == pytest.approx(0.5, abs=1e-6)
    assert sum(entry["error_histogram"]["counts"]) == 6 * 3 * 32  # every element of every image
    assert entry["mean_abs_err"] == pytest.approx(0.5 / 3, abs=1e-6)


class _TwoOutputs(Backend):
    """A fixed batch of 2: ``scores (2, 5)`` has a batch axis, ``boxes (7, 4)`` does not."""

    input_shape = (2, 3, 8, 8)
    output_names = ["scores", "boxes"]

    def infer(self, batch):
        return [batch[:, 0, 0, :5], np.zeros((7, 4), np.float32)]


def test_infer_padded_refuses_to_cut_an_output_without_batch_axis():
    pixels = np.arange(3 * 3 * 8 * 8, dtype=np.float32).reshape(3, 3, 8, 8)
    with pytest.raises(UserError, match=r"'boxes' has shape \[7, 4\] for a batch of 2: it has no batch axis"):
        _TwoOutputs().infer_padded(pixels)

    class ScoresOnly(_TwoOutputs):
        def infer(self, batch):
            return super().infer(batch)[:1]

    scores = ScoresOnly().infer_padded(pixels)[0]
    assert scores.shape == (3, 5) and np.array_equal(scores, pixels[:, 0, 0, :5])  # padding cut off


class _Points(Backend):
    """A batch-1 model whose ``points (N, 2)`` has as many rows as the pixels say (``extra`` more for a
    candidate that finds more), and a detector's outputs that stay empty."""

    input_shape = (1, 3, 32, 32)
    output_names = ["points", "boxes", "scores", "labels"]

    def __init__(self, extra: int = 0):
        self.extra = extra

    def infer(self, batch):
        count = 2 + 3 * int(batch.mean() > 0) + self.extra
        return [np.full((count, 2), batch.mean(), np.float32), np.zeros((0, 4), np.float32),
                np.zeros(0, np.float32), np.zeros(0, np.float32)]


def test_shapes_that_follow_the_pixels_never_pass_silently(photo_dir):
    result = compare(_Points(), {"same": _Points(), "more": _Points(extra=1)}, label_items(list_images(photo_dir), []),
                     Preprocessor((32, 32)), progress=False)
    same, more = result["candidates"]["same"], result["candidates"]["more"]
    assert [o["kind"] for o in result["reference"]["outputs"]] == ["features", "boxes", "scores", "labels"]
    assert same["shape_mismatches"] == 0 and same["cosine"] == 1.0 and same["images"] == 6
    assert more["shape_mismatches"] == 6 and more["cosine"] == 0.0 and more["cosine_min"] == 0.0
    assert more["outputs"][1]["shape_mismatches"] == 0  # no boxes at all, on both sides: equal
    assert more["detection"]["reference"] == 0 and more["detection"]["found"] is None
    assert [f["metric"] for f in check(Gates(atol=1.0), {"name": "more", **more})] == ["shape_mismatches"]


# ---- which outputs are a detector's ---------------------------------------------------------------------------

def test_detection_outputs_by_name_and_shape():
    boxes, scores, labels = np.zeros((3, 4)), np.array([0.9, 0.5, 0.2]), np.array([1.0, 3.0, 1.0])
    found = find_detection_outputs(["det_classes", "det_boxes", "det_scores"], [labels, boxes, scores])
    assert (found.boxes, found.scores, found.labels) == (1, 2, 0)
    found = find_detection_outputs(["output0", "output1", "output2"], [boxes, labels, scores])  # whole numbers
    assert (found.boxes, found.scores, found.labels) == (0, 2, 1)
    found = find_detection_outputs(["dets", "labels"], [np.zeros((3, 5)), labels])  # mmdeploy: score in column 5
    assert (found.boxes, found.scores, found.labels) == (0, None, 1)
    assert find_detection_outputs(["a", "b", "c"], [boxes, scores, scores / 2]) is None  # nothing tells them apart
    assert find_detection_outputs(["logits"], [np.zeros(10)]) is None
    assert parse_outputs("boxes=a, scores=b,labels=c") == {"boxes": "a", "scores": "b", "labels": "c"}
    for bad in ("boxes", "boxes=a,boxes=b", "masks=a"):
        with pytest.raises(UserError, match="boxes=NAME,scores=NAME,labels=NAME"):
            parse_outputs(bad)


def test_matching_is_greedy_by_score_with_same_label():
    reference = Detections(np.array([[0, 0, 10, 10], [20, 20, 30, 30], [50, 50, 60, 60]], float),
                           np.array([0.9, 0.8, 0.7]), np.array([1, 1, 2]))
    # The first box moved by 1 px (IoU 0.82), the second lost, the third with another label; one extra box.
    candidate = Detections(np.array([[1, 0, 11, 10], [50, 50, 60, 60], [80, 80, 90, 90]], float),
                           np.array([0.85, 0.7, 0.6]), np.array([1, 3, 1]))
    agreement = DetectionAgreement(0.05)
    agreement.update(reference, candidate)
    result = agreement.result()
    assert (result["reference"], result["candidate"], result["matched"], result["extra"]) == (3, 3, 1, 2)
    assert result["found"] == pytest.approx(1 / 3) and result["mean_iou"] == pytest.approx(90 / 110)
    assert result["score_drift"] == pytest.approx(0.05) and result["max_score_drift"] == pytest.approx(0.05)
    # Zero-width boxes (an untrained head outputs them) still match themselves.
    thin = np.array([[5, 5, 5, 9]], float)
    assert box_iou(thin, thin)[0, 0] == 1.0 and box_iou(thin, thin + [0, 0, 1e-4, 0])[0, 0] > 0.99


# ---- COCO: boxes mapped back to the original image -----------------------------------------------------------

def test_boxes_map_back_through_crop_and_stretch():
    box = np.array([[10.0, 20.0, 110.0, 120.0]])
    # 400x300 image, 200x200 input, crop_pct 1: the shorter side 300 -> 200 (x 2/3), width 400 -> 267, 33 px
    # cropped on the left.
    crop = Preprocessor((200, 200), Preprocessing(crop_pct=1.0))
    expected = [(33 + 10) * 400 / 267, 20 * 1.5, (33 + 110) * 400 / 267, 120 * 1.5]
    assert to_source_pixels(box, crop, 400, 300)[0] == pytest.approx(expected)
    stretch = Preprocessor((200, 200), Preprocessing(resize="stretch"))
    assert to_source_pixels(box, stretch, 400, 300)[0] == pytest.approx([20, 30, 220, 180])


def _constant_detector(path: Path, first_box_shift: float = 0.0) -> Path:
    """A batch-1 "detector" of 200x200 images whose boxes (2, 4), scores (2,) and labels (2,) are constants
    (plus 0 x the image, so that the image is an input that is used)."""
    boxes = np.array([[10 + first_box_shift, 20, 110 + first_box_shift, 120], [150, 150, 190, 190]], np.float32)
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
             helper.make_node("Add", ["boxes_const", "nothing"], ["boxes"]),
             helper.make_node("Add", ["scores_const", "nothing"], ["scores"]),
             helper.make_node("Identity", ["labels_const"], ["labels"])]
    return _save(nodes, [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 200, 200])],
                 [helper.make_tensor_value_info("boxes", TensorProto.FLOAT, [2, 4]),
                  helper.make_tensor_value_info("scores", TensorProto.FLOAT, [2]),
                  helper.make_tensor_value_info("labels", TensorProto.INT64, [2])],
                 [numpy_helper.from_array(np.array(0, np.float32), "zero"),
                  numpy_helper.from_array(boxes, "boxes_const"),
                  numpy_helper.from_array(np.array([0.9, 0.3], np.float32), "scores_const"),
                  numpy_helper.from_array(np.array([1, 2], np.int64), "labels_const")], path)


def _coco(path: Path, file_name: str, boxes: list, size=(400, 300)) -> Path:
    path.write_text(json.dumps({
        "images": [{"id": 7, "file_name": f"some/folder/{file_name}", "width": size[0], "height": size[1]}],
        "annotations": [{"id": i + 1, "image_id": 7, "category_id": c, "bbox": b} for i, (c, b) in enumerate(boxes)],
        "categories": [{"id": 1, "name": "thing"}, {"id": 2, "name": "other"}]}))
    return path


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("scene")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (300, 400, 3), dtype=np.uint8)).save(folder / "scene.png")
    return folder


def test_map_by_pycocotools_with_boxes_mapped_through_the_crop(cli, scene, tmp_path):
    """One annotated box where the first detection lands once mapped back through the centre crop (worked
    out by hand): AP 1 at every IoU threshold. A candidate whose box is 10 px off (IoU 0.82) keeps AP50 but
    loses the thresholds above 0.8: mAP 0.7, which --max-map-drop catches."""
    reference = _constant_detector(tmp_path / "det.onnx")
    shifted = _constant_detector(tmp_path / "det_shifted.onnx", first_box_shift=10)
    x1, x2 = (33 + 10) * 400 / 267, (33 + 110) * 400 / 267
    annotations = _coco(tmp_path / "instances.json", "scene.png", [(1, [x1, 30, x2 - x1, 150])])
    out = tmp_path / "report"
    result = cli("validate", "--reference", reference, "--candidate", reference, "--candidate", shifted,
                 "--data", scene, "--resize", "crop", "--crop-pct", 1.0, "--annotations", annotations,
                 "--max-map-drop", 0.1, "-o", out, expect=1)
    document = json.loads((out / "report.json").read_text())
    same, moved = document["candidates"]
    assert document["reference_metrics"]["map"] == pytest.approx(1.0)
    assert same["map"] == pytest.approx(1.0) and same["map_change"] == 0 and same["ap50_change"] == 0
    assert moved["ap50"] == pytest.approx(1.0) and moved["map"] == pytest.approx(0.7)
    assert moved["map_change"] == pytest.approx(-0.3)
    # Both detections still match the reference's: the moved one (IoU 90/110) and the other (IoU 1).
    assert moved["detection"]["found"] == 1.0 and moved["detection"]["mean_iou"] == pytest.approx((1 + 90 / 110) / 2)
    assert [f["metric"] for f in document["gates"]["failures"]] == ["map_drop"]
    assert "det_shifted.onnx: map_drop 0.3 > --max-map-drop 0.1" in result.output
    assert document["dataset"]["annotations"]["images"] == 1 and document["dataset"]["annotations"]["boxes"] == 1
    assert "mAP (chg)" in result.output and "Detections" in (out / "report.html").read_text()


def test_a_detector_without_sidecar_is_fed_whole_images_in_0_to_1(cli, scene, tmp_path):
    """Torchvision's detectors normalise inside: a graph with detection outputs and no recorded preprocessing
    gets pixels / 255 of the whole image, not the ImageNet crop, and the run says so."""
    model = _constant_detector(tmp_path / "det.onnx")
    result = cli("validate", "--reference", model, "--candidate", model, "--data", scene, "--json")
    pre = json.loads(result.stdout)["dataset"]["preprocessing"]
    assert (pre["origin"], pre["fit"], pre["mean"], pre["std"]) == ("defaults", "stretch", [0, 0, 0], [1, 1, 1])
    assert "says nothing about its preprocessing: feeding it as torchvision's detectors are fed" in result.stderr


@pytest.mark.parametrize("make,message", [
    (lambda tmp: tmp / "missing.json", "does not exist"),
    (lambda tmp: _coco(tmp / "other.json", "elsewhere.png", [(1, [0, 0, 10, 10])]), "match none of the 1 images"),
    (lambda tmp: (tmp / "bad.json").write_text("{}") and tmp / "bad.json", "has no images, annotations, categories"),
])
def test_bad_annotations_are_user_errors(cli, scene, tmp_path, make, message):
    reference = _constant_detector(tmp_path / "det.onnx")
    result = cli("validate", "--reference", reference, "--candidate", reference, "--data", scene,
                 "--annotations", make(tmp_path), expect=2)
    assert message in result.output and "Traceback" not in result.output


def _unnamed_detector(path: Path) -> Path:
    """Outputs ``a (2, 4)``, ``b (2,)``, ``c (2,)``: neither names nor values say which is which."""
    nodes = [helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"])]
    consts = {"a": np.array([[10, 10, 50, 50], [60, 60, 90, 90]], np.float32), "b": np.array([0.9, 0.4], np.float32),
              "c": np.array([0.5, 0.25], np.float32)}
    nodes += [helper.make_node("Add", [f"{name}_const", "nothing"], [name]) for name in consts]
    return _save(nodes, [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 200, 200])],
                 [helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape))
                  for name, value in consts.items()],
                 [numpy_helper.from_array(np.array(0, np.float32), "zero")]
                 + [numpy_helper.from_array(value, f"{name}_const") for name, value in consts.items()], path)


def test_outputs_flag_names_what_shapes_cannot_tell(cli, scene, tmp_path):
    model = _unnamed_detector(tmp_path / "unnamed.onnx")
    common = ("validate", "--reference", model, "--candidate", model, "--data", scene)
    refused = cli(*common, "--score-threshold", 0.1, expect=2)
    assert "a [2, 4], b [2], c [2]" in refused.output and "--outputs boxes=NAME" in refused.output
    document = json.loads(cli(*common, "--outputs", "boxes=a,scores=b,labels=c", "--json").stdout)
    assert [o["kind"] for o in document["reference_metrics"]["outputs"]] == ["boxes", "scores", "labels"]
    assert document["candidates"][0]["detection"]["found"] == 1.0
    assert "detection" not in json.loads(cli(*common, "--json").stdout)["candidates"][0]  # not asked: compared only
    assert "not an output of the model; its outputs are a [2, 4], b [2], c [2]" in \
        cli(*common, "--outputs", "boxes=x,scores=b,labels=c", expect=2).output
    assert "Invalid value for '--outputs'" in cli(*common, "--outputs", "boxes", expect=2).output


# ---- a real detector: torchvision FCOS on a Swin-T + FPN backbone (random weights) -----------------------------

class _Rerun(Backend):
    """The same ONNX Runtime session again, as a candidate (one 115 MB graph loaded once, not three times);
    ``moved_row`` shifts that detection's box 1000 px to the right after the model: one detection deep in the
    list, whatever NMS left."""

    def __init__(self, inner: Backend, moved_row: int | None = None):
        self.inner, self.moved_row = inner, moved_row
        self.input_shape, self.output_names = inner.input_shape, inner.output_names

    def infer(self, batch):
        boxes, *rest = self.inner.infer(batch)
        if self.moved_row is not None:
            boxes = boxes.copy()
            boxes[self.moved_row, [0, 2]] += 1000.0
        return [boxes, *rest]


def _stretched(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """320x320 input pixels -> the photo's, worked out by hand for the stretch."""
    return boxes * [width / 320, height / 320, width / 320, height / 320]


def _pycocotools_map(truth: dict, detections: list[dict]) -> tuple[float, float]:
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        ground = COCO()
        ground.dataset = json.loads(json.dumps(truth))
        ground.createIndex()
        evaluation = COCOeval(ground, ground.loadRes(detections), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0]), float(evaluation.stats[1])


@pytest.fixture(scope="module")
def fcos_run(detector_onnx, photo_dir, tmp_path_factory):
    """FCOS against itself and against itself with row 60 of its 100 detections moved, on two photos, with COCO
    annotations made of the reference's own five best boxes per photo; and the mAP pycocotools gives the
    reference's detections mapped to the photos by hand."""
    folder = tmp_path_factory.mktemp("fcos")
    for name in ("astronaut.png", "chelsea.png"):
        os.symlink(photo_dir / name, folder / name)
    reference = OnnxRuntimeBackend(detector_onnx("fcos"))
    preprocessor = Preprocessing(mean=PRESETS["unit"].mean, std=PRESETS["unit"].std, resize="stretch").at((320, 320))
    images, truth, found = [], [], []
    for index, path in enumerate(sorted(folder.glob("*.png"))):
        photo = Image.open(path).convert("RGB")
        boxes, scores, labels = reference.infer(preprocessor(photo)[None])
        boxes = _stretched(boxes, *photo.size)
        images.append({"id": index + 1, "file_name": path.name, "width": photo.size[0], "height": photo.size[1]})
        wide = [i for i in np.argsort(-scores) if min(boxes[i, 2] - boxes[i, 0], boxes[i, 3] - boxes[i, 1]) > 4]
        for i in range(len(scores)):
            x1, y1, x2, y2 = (float(v) for v in boxes[i])
            if i in wide[:5]:
                truth.append({"id": len(truth) + 1, "image_id": index + 1, "category_id": int(labels[i]),
                              "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
            found.append({"image_id": index + 1, "category_id": int(labels[i]), "score": float(scores[i]),
                          "bbox": [x1, y1, x2 - x1, y2 - y1]})
    instances = {"images": images, "annotations": truth,
                 "categories": [{"id": c, "name": f"class {c}"} for c in range(5)]}
    (folder / "instances.json").write_text(json.dumps(instances))
    request = DetectionRequest(annotations=CocoAnnotations(folder / "instances.json"))
    result = compare(reference, {"same": _Rerun(reference), "moved": _Rerun(reference, moved_row=60)},
                     label_items(list_images(folder), []), preprocessor, progress=False, detection=request)
    reference.close()
    return result, _pycocotools_map(instances, found)


def test_detector_against_itself_finds_every_detection(fcos_run):
    result, _ = fcos_run
    reference, same = result["reference"], result["candidates"]["same"]
    assert [(o["name"], o["kind"], o["batch_axis"]) for o in reference["outputs"]] == [
        ("boxes", "boxes", False), ("scores", "scores", False), ("labels", "labels", False)]
    detection = same["detection"]
    assert detection["reference"] == detection["candidate"] == detection["matched"] > 100  # 2 photos, 100 each
    assert (detection["found"], detection["extra"], detection["mean_iou"]) == (1.0, 0, 1.0)
    assert detection["score_drift"] == 0 and same["max_abs_err"] == 0


def test_a_detection_moved_deep_in_the_list_shows(fcos_run):
    moved = fcos_run[0]["candidates"]["moved"]
    assert moved["output_kind"] == "boxes" and moved["max_abs_err"] == pytest.approx(1000, abs=1)
    assert moved["detection"]["found"] < 1 and moved["detection"]["extra"] >= 1
    assert moved["outputs"][1]["max_abs_err"] == 0  # the scores did not change


def test_map_of_the_reference_equals_an_identical_candidate(fcos_run):
    result, (expected_map, expected_ap50) = fcos_run
    reference, same = result["reference"], result["candidates"]["same"]
    # pycocotools on the reference's detections mapped to the photos by hand: the mapping back from the 320x320
    # input and the evaluation wiring give the same numbers.
    assert expected_map > 0 and reference["map"] == pytest.approx(expected_map, abs=1e-12)
    assert reference["ap50"] == pytest.approx(expected_ap50, abs=1e-12)
    assert same["map"] == reference["map"] and same["ap50"] == reference["ap50"] and same["map_change"] == 0
    assert result["annotations"]["images"] == 2 and result["annotations"]["boxes"] == 10
