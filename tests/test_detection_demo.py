"""The bundled detector ``swin_demo_det`` (scripts/train_detection_demo.py): it loads through the checkpoint import,
finds the objects of its bundled held-out mosaics with a mAP that random weights do not reach, exports boxes,
scores and labels that ONNX Runtime reproduces (rewritten too), ships valid COCO annotations, the README's mAP
table comes out of the pipeline, and the training script is reproducible and keeps the held-out regions out of
training."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swin_trt.errors import UserError
from swin_trt.io import sha256_file
from swin_trt.models import SwinConfig, create_model, get_arch
from swin_trt.models.checkpoint import apply_state, load_checkpoint
from swin_trt.models.demo import (DEMO_DET_CONFIG, DEMO_DET_DIR, DEMO_DET_WEIGHTS, assets_dir,
                                  demo_det_images_dir)
from swin_trt.models.detection import PREPROCESSING, SwinDetector

from conftest import (BoxRecorder, assert_quick_refused, assert_split_kept, load_script, quick_runs,
                      readme_precision_table)

pytest.importorskip("torchvision", reason="swin_demo_det needs torchvision: pip install 'swin-trt[detection]'")
pytest.importorskip("pycocotools", reason="its mAP needs pycocotools: pip install pycocotools")

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_detection_demo.py"
# The bundled model scores 0.42 mAP on its mosaics (its JSON); random weights score 0, even given every box they
# have (no score threshold). 0.25 separates them widely.
MAP_FLOOR = 0.25
README_TOLERANCE = 0.002  # another CPU's rounding may move a box or a score; the numbers themselves are measured


def readme_table() -> dict[str, list]:
    """The README's detection rows: label -> [mAP, change, AP50, found, extra, mean IoU, max score drift]."""
    return readme_precision_table("The detection demo model")


@pytest.fixture(scope="module")
def script():
    return load_script(SCRIPT, "train_detection_demo")


@pytest.fixture(scope="module")
def bundled():
    for name in (DEMO_DET_CONFIG, DEMO_DET_WEIGHTS):
        assert (assets_dir() / name).is_file(), f"{name} missing: run python scripts/train_detection_demo.py"
    model, spec, report = create_model("swin_demo_det")
    return model, spec, report, json.loads((assets_dir() / DEMO_DET_CONFIG).read_text())


@pytest.fixture(scope="module")
def mosaics(script):
    return script.read_mosaics(assets_dir() / DEMO_DET_DIR)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, cli):
    """``swin-trt export --arch swin_demo_det``: the graph and what the command printed."""
    output = tmp_path_factory.mktemp("det") / "det.onnx"
    return output, cli("export", "--arch", "swin_demo_det", "-o", output).output


def _run_graph(session, preprocessor, images) -> list[tuple[np.ndarray, ...]]:
    return [tuple(session.run(None, {"input": preprocessor(image)[None]})) for image in images]


def test_bundled_detector_loads_through_checkpoint_import(bundled, cli):
    model, spec, report, document = bundled
    assert isinstance(model, SwinDetector) and spec.task == "detection" and get_arch("swin_demo_det") is spec
    assert report is not None and report.format == "timm" and report.loaded == len(model.state_dict())
    assert report.sha256 == sha256_file(assets_dir() / DEMO_DET_WEIGHTS)
    assert model.config.to_dict() == document["config"] and model.config.img_size == (224, 224)
    assert spec.preprocessing == PREPROCESSING and document["preprocessing"]["fit"] == "stretch"
    assert document["preprocessing"]["mean"] == [0.0] * 3 and document["preprocessing"]["std"] == [1.0] * 3
    fresh = SwinDetector(SwinConfig.from_dict(document["config"]))
    apply_state(fresh, load_checkpoint(assets_dir() / DEMO_DET_WEIGHTS))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)
    with torch.no_grad():  # features mode: the backbone's stage maps
        maps = type(model)(model.config, features=True).eval()(torch.zeros(1, 3, 224, 224))
    assert [tuple(m.shape[1:]) for m in maps] == [(48, 56, 56), (96, 28, 28), (192, 14, 14)]
    assert any(line.startswith("swin_demo_det ") for line in cli("archs").output.splitlines())


def test_bundled_map_is_what_the_json_says_and_random_weights_fail(bundled, script, mosaics):
    model, spec, _, document = bundled
    images, annotations = mosaics
    preprocessor = spec.preprocessing.at(model.config.img_size)
    trained = script.coco_map(annotations, script.detect(model, preprocessor, images))
    assert trained["map"] >= MAP_FLOOR, f"swin_demo_det mAP on its mosaics is {trained['map']:.3f}"
    assert abs(trained["map"] - document["metrics"]["val_map"]) <= 1e-3
    assert abs(trained["ap50"] - document["metrics"]["val_ap50"]) <= 1e-3
    torch.manual_seed(0)
    random_weights = SwinDetector(model.config)
    random_weights.detector.score_thresh = 0.0  # its scores (about 0.1) would all fall under the threshold
    found = script.detect(random_weights, preprocessor, images)
    assert all(len(boxes) == 100 for boxes, _, _ in found)  # a full set of boxes to score ...
    assert script.coco_map(annotations, found)["map"] < MAP_FLOOR / 5  # ... that finds nothing


def test_bundled_annotations_are_valid_coco(bundled, mosaics):
    from pycocotools.coco import COCO

    _, _, _, document = bundled
    images, data = mosaics
    coco = COCO()
    coco.dataset = data
    coco.createIndex()  # pycocotools' own index: duplicate ids or dangling image ids would break it
    names = document["config"]["class_names"]
    assert [(c["id"], c["name"]) for c in data["categories"]] == list(enumerate(names))
    assert 24 <= len(data["images"]) == len(images) == len(list(demo_det_images_dir().glob("*.png")))
    assert sorted(coco.getImgIds()) == list(range(1, len(images) + 1))
    assert sorted(a["id"] for a in data["annotations"]) == list(range(1, len(data["annotations"]) + 1))
    for entry, image in zip(data["images"], images):
        assert image.size == (entry["width"], entry["height"])
        boxes = coco.loadAnns(coco.getAnnIds(imgIds=[entry["id"]]))
        assert 1 <= len(boxes) <= 4, entry
        for box in boxes:
            x, y, w, h = box["bbox"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= entry["width"] and y + h <= entry["height"]
            assert box["area"] == w * h and box["iscrowd"] == 0 and 0 <= box["category_id"] < len(names)
    bundle_bytes = sum(p.stat().st_size for p in (assets_dir() / DEMO_DET_DIR).rglob("*") if p.is_file())
    assert bundle_bytes < 3e6


def test_export_bundled_detector(tmp_path, cli, bundled, script, mosaics, exported):
    import onnxruntime as ort

    _, spec, _, document = bundled
    output, printed = exported
    assert "RANDOM" not in printed.upper() and "detections and labels" in printed
    sidecar = json.loads(output.with_name(output.name + ".json").read_text())
    assert sidecar["task"] == "detection" and sidecar["weights"]["source"] == "bundled"
    assert [(o["name"], o["shape"]) for o in sidecar["outputs"]] == [
        ("boxes", ["detections", 4]), ("scores", ["detections"]), ("labels", ["detections"])]
    assert sidecar["inputs"][0]["shape"] == [1, 3, 224, 224]
    pre = sidecar["preprocessing"]
    assert (pre["mean"], pre["std"], pre["fit"], pre["scale"]) == ([0.0] * 3, [1.0] * 3, "stretch", "0..1")
    assert sidecar["detector"]["type"] == "fcos" and sidecar["check"]["detections"] > 0
    assert sidecar["check"]["onnxruntime_max_abs_err"] < 1e-3
    # The graph alone (NMS and top-k inside) scores the model's mAP on the held-out mosaics.
    session = ort.InferenceSession(str(output), providers=["CPUExecutionProvider"])
    images, annotations = mosaics
    found = _run_graph(session, spec.preprocessing.at((224, 224)), images)
    assert len({len(boxes) for boxes, _, _ in found}) > 1  # the count depends on the image: the NMS path is live
    assert abs(script.coco_map(annotations, found)["map"] - document["metrics"]["val_map"]) <= 2e-3
    refused = cli("export", "--arch", "swin_demo_det", "--dynamic-batch", "4", "-o", tmp_path / "b.onnx", expect=2)
    assert "detector" in refused.output and not (tmp_path / "b.onnx").exists()


def test_rewritten_export_finds_the_same_detections(tmp_path, bundled, mosaics, exported):
    """``rewrite`` on a detector whose number of boxes, and whose candidates per FPN level, depend on the image
    (some levels have none above the score threshold): the same detections on every bundled mosaic, run as the
    later stages run graphs (the package's ONNX Runtime session, its optimisations on)."""
    import onnx

    from swin_trt.backends.onnxruntime import create_session
    from swin_trt.surgery.rewrite_stage import rewrite_file

    _, spec, _, _ = bundled
    output, _ = exported
    rewritten = tmp_path / "det.rewritten.onnx"
    rewrite_file(output, rewritten, strict=True)
    preprocessor = spec.preprocessing.at((224, 224))
    images, _ = mosaics
    source = _run_graph(create_session(onnx.load(output)), preprocessor, images)
    for index, (expected, got) in enumerate(zip(source, _run_graph(create_session(onnx.load(rewritten)),
                                                                   preprocessor, images))):
        assert len(got[0]) == len(expected[0]) and np.array_equal(got[2], expected[2]), index
        np.testing.assert_allclose(got[0], expected[0], atol=1e-2, rtol=0)
        np.testing.assert_allclose(got[1], expected[1], atol=1e-4, rtol=0)


def test_pytorch_reference_validates_its_export(cli, exported):
    """``validate --reference torch:swin_demo_det``: the PyTorch detector runs one image per call, its outputs
    named as the export's; the export finds every one of its detections on the bundled mosaics."""
    output, _ = exported
    document = json.loads(cli("validate", "--reference", "torch:swin_demo_det", "--candidate", output,
                              "--limit", 4, "--layer-images", 0, "--json").stdout)
    assert [o["kind"] for o in document["reference_metrics"]["outputs"]] == ["boxes", "scores", "labels"]
    detection = document["candidates"][0]["detection"]
    assert detection["reference"] > 0 and (detection["found"], detection["extra"]) == (1.0, 0)


@pytest.mark.slow
def test_readme_numbers_come_out_of_the_pipeline(tmp_path):
    """benchmarks/bench_detection.py, the README table's source, run again: export, rewrite, calibrate, quantize,
    validate --annotations."""
    measured = load_script(ROOT / "benchmarks" / "bench_detection.py", "bench_detection").measure(tmp_path)["models"]
    claims = readme_table()
    for label, name in (("FP32 (export)", "fp32"), ("FP32 rewritten (plugin ops)", "rewritten"), ("FP16", "fp16"),
                        ("INT8", "int8")):
        claimed, got = claims[label], measured[name]
        assert abs(got["map"] - claimed[0]) <= README_TOLERANCE, (label, got["map"], claimed[0])
        assert abs(got["ap50"] - claimed[2]) <= README_TOLERANCE, label
        if name != "fp32":
            assert abs(got["detection"]["found"] - claimed[3]) <= README_TOLERANCE, label
    assert measured["rewritten"]["detection"]["found"] == 1.0 and measured["rewritten"]["map_change"] == 0.0
    assert measured["int8"]["detection"]["found"] < 1.0  # INT8 moves real detections: the yardstick can see it


def test_missing_torchvision_names_the_extra(monkeypatch):
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")] + ["torchvision"]:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: "import torchvision" fails
    with pytest.raises(UserError, match=r"pip install 'swin-trt\[detection\]'"):
        SwinDetector(SwinConfig(img_size=(64, 64), embed_dim=16, depths=(2, 2, 2), num_heads=(1, 2, 4),
                                window_size=4, num_classes=3))


def test_mosaics_keep_training_and_held_out_regions_apart(script):
    classification = script.classification
    samplers = [BoxRecorder(classification.CropSampler(photo)) for photo in classification.load_photos()]
    rng = np.random.default_rng(0)
    for validation in (False, True):
        for _ in range(20):
            pixels, boxes, labels = script.mosaic(samplers, rng, script.SIZE, validation)
            assert pixels.shape == (*script.SIZE, 3) and boxes.shape == (len(labels), 4)
            assert 1 <= len(labels) <= script.OBJECTS[1] and labels.max() < len(samplers)
            assert (boxes[:, :2] >= 0).all() and (boxes[:, 2] <= script.SIZE[1]).all() \
                and (boxes[:, 3] <= script.SIZE[0]).all()
            for i in range(len(boxes)):  # side by side, never overlapping: each box is its whole object
                for j in range(i):
                    a, b = boxes[i], boxes[j]
                    assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1])
    assert_split_kept(samplers, classification.is_training_box)


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != DEMO_DET_CONFIG):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_quick_training_runs_are_reproducible(tmp_path):
    before = {n: sha256_file(assets_dir() / n) for n in (DEMO_DET_CONFIG, DEMO_DET_WEIGHTS)}
    runs = quick_runs(SCRIPT, tmp_path)
    assert _digest(runs[0]) == _digest(runs[1])  # weights, mosaics and annotations, byte for byte
    document = json.loads((runs[0] / DEMO_DET_CONFIG).read_text())
    assert document["metrics"]["quick"] is True and document["metrics"]["steps"] == 3
    model = SwinDetector(SwinConfig.from_dict(document["config"]))
    assert apply_state(model, load_checkpoint(runs[0] / DEMO_DET_WEIGHTS)).format == "timm"
    saved = json.loads((runs[0] / DEMO_DET_DIR / "annotations.json").read_text())
    assert [i["file_name"] for i in saved["images"]] == sorted(p.name for p in (runs[0] / DEMO_DET_DIR / "images").iterdir())
    assert all(Image.open(runs[0] / DEMO_DET_DIR / "images" / i["file_name"]).size == (224, 224)
               for i in saved["images"])
    assert not list(runs[0].glob(".*")), "staging or temporary files left behind"
    assert_quick_refused(SCRIPT, before)
