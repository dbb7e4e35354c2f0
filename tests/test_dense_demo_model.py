"""The bundled dense demo ``swin_demo_seg`` (scripts/train_dense_demo.py): it loads through the checkpoint import,
its mIoU on the bundled held-out mosaics is what its JSON and the README say, the README's FP16/INT8 numbers
come out of the pipeline, compile takes it end to end, and the training script is reproducible and keeps the
held-out regions out of training."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swin_trt.io import sha256_file
from swin_trt.models import SwinConfig, create_model, get_arch
from swin_trt.models.checkpoint import apply_state, load_checkpoint
from swin_trt.models.demo import (DEMO_SEG_CONFIG, DEMO_SEG_WEIGHTS, assets_dir, demo_seg_images_dir,
                                  demo_seg_masks_dir)
from swin_trt.models.segmentation import SwinSegmenter
from swin_trt.validate.segmentation import Confusion

from conftest import (BoxRecorder, assert_quick_refused, assert_split_kept, load_script, quick_runs,
                      readme_precision_table)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_dense_demo.py"
README_TOLERANCE = 0.002  # another CPU's rounding may move a few pixels; the numbers themselves are measured


def readme_table() -> dict[str, list[float]]:
    """The README's dense-demo rows: label -> [mIoU, change, pixel accuracy, pixel agreement, mIoU agreement]."""
    return readme_precision_table("The dense demo model")


@pytest.fixture(scope="module")
def bundled():
    for name in (DEMO_SEG_CONFIG, DEMO_SEG_WEIGHTS):
        assert (assets_dir() / name).is_file(), f"{name} missing: run python scripts/train_dense_demo.py"
    model, spec, report = create_model("swin_demo_seg")
    return model, spec, report, json.loads((assets_dir() / DEMO_SEG_CONFIG).read_text())


def test_bundled_segmenter_loads_through_checkpoint_import(bundled):
    model, spec, report, document = bundled
    assert isinstance(model, SwinSegmenter) and spec.task == "segmentation" and get_arch("swin_demo_seg") is spec
    assert report is not None and report.format == "timm" and report.loaded == len(model.state_dict())
    assert report.sha256 == sha256_file(assets_dir() / DEMO_SEG_WEIGHTS)
    assert model.config.to_dict() == document["config"] and model.config.img_size == (128, 128)
    assert spec.preprocessing.resize == "stretch"
    fresh = SwinSegmenter(SwinConfig.from_dict(document["config"]))
    apply_state(fresh, load_checkpoint(assets_dir() / DEMO_SEG_WEIGHTS))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)
    assert (assets_dir() / DEMO_SEG_WEIGHTS).stat().st_size < 6 * 2 ** 20
    with torch.no_grad():  # features mode: the backbone's stage maps
        maps = type(model)(model.config, features=True).eval()(torch.zeros(1, 3, 128, 128))
    assert [tuple(m.shape[1:]) for m in maps] == [(48, 32, 32), (96, 16, 16), (192, 8, 8)]


def _bundled_confusion(model, spec) -> Confusion:
    preprocessor = spec.preprocessing.at(model.config.img_size)
    confusion = Confusion(model.config.num_classes)
    for path in sorted(demo_seg_images_dir().glob("*.png")):
        with Image.open(path) as image, torch.no_grad():
            predicted = model(torch.from_numpy(preprocessor(image.convert("RGB"))[None])).argmax(1)[0].numpy()
        confusion.update(np.asarray(Image.open(demo_seg_masks_dir() / path.name)), predicted)
    return confusion


def test_bundled_miou_is_what_the_json_and_readme_say(bundled):
    model, spec, _, document = bundled
    images = sorted(demo_seg_images_dir().glob("*.png"))
    assert len(images) >= 24 and all((demo_seg_masks_dir() / p.name).is_file() for p in images)
    confusion = _bundled_confusion(model, spec)
    miou = confusion.miou()
    assert 0.6 <= miou < 0.95, f"swin_demo_seg mIoU on its mosaics is {miou:.3f}"
    assert abs(miou - document["metrics"]["val_miou"]) <= 1e-3
    assert abs(miou - readme_table()["FP32 (export)"][0]) <= README_TOLERANCE


@pytest.mark.slow
def test_readme_fp16_and_int8_numbers_come_out_of_the_pipeline(tmp_path):
    """benchmarks/bench_dense_demo.py, the README table's source, run again: export, rewrite, calibrate,
    quantize, validate --masks."""
    measured = load_script(ROOT / "benchmarks" / "bench_dense_demo.py", "bench_dense_demo").measure(tmp_path)["models"]
    claims = readme_table()
    for label, name in (("FP32 (export)", "fp32"), ("FP16", "fp16"), ("INT8", "int8")):
        claimed, got = claims[label], measured[name]
        assert abs(got["miou"] - claimed[0]) <= README_TOLERANCE, (label, got["miou"], claimed[0])
        assert abs(got["pixel_accuracy"] - claimed[2]) <= README_TOLERANCE, label
        if name != "fp32":
            assert abs(got["pixel_agreement"] - claimed[3]) <= README_TOLERANCE, label
            assert abs(got["miou_agreement"] - claimed[4]) <= README_TOLERANCE, label
    assert measured["int8"]["pixel_agreement"] < 1.0  # INT8 changes real pixels: the yardstick can see it


@pytest.mark.slow
def test_compile_the_dense_demo_to_int8(tmp_path, cli):
    """The README's command: the bundled mosaics split into calibration and held-out images, masks found."""
    outdir = tmp_path / "seg"
    result = cli("compile", "--arch", "swin_demo_seg", "--precision", "int8", "--calib-data", demo_seg_images_dir(),
                 "-o", outdir)
    assert "mIoU" in result.output and "RANDOM" not in result.output
    document = json.loads((outdir / "report.json").read_text())
    assert document["dataset"]["masks"]["folder"] == str(demo_seg_masks_dir())
    assert document["dataset"]["calibration_overlap"]["images"] == 0
    int8 = document["candidates"][-1]
    assert int8["precision"] == "int8" and int8["miou"] > 0.5 and int8["pixel_agreement"] > 0.97


def test_export_bundled_segmenter(tmp_path, cli):
    output = tmp_path / "seg.onnx"
    result = cli("export", "--arch", "swin_demo_seg", "-o", output)
    assert "RANDOM" not in result.output.upper()
    sidecar = json.loads(output.with_name(output.name + ".json").read_text())
    assert sidecar["task"] == "segmentation" and sidecar["weights"]["source"] == "bundled"
    assert sidecar["outputs"][0]["shape"] == [1, 12, 128, 128] and sidecar["preprocessing"]["fit"] == "stretch"
    assert sidecar["check"]["onnxruntime_max_abs_err"] < 1e-3
    # validate without --data: the bundled mosaics and their masks, for this model and what is made from it
    for reference in ("torch:swin_demo_seg", str(output)):
        document = json.loads(cli("validate", "--reference", reference, "--candidate", output, "--json",
                                  "--layer-images", "0").stdout)
        assert document["dataset"]["source"] == str(demo_seg_images_dir())
        assert document["dataset"]["masks"]["folder"] == str(demo_seg_masks_dir())
        candidate = document["candidates"][0]
        assert candidate["pixel_agreement"] >= 0.999 and abs(candidate["miou_change"]) <= 1e-3


def test_mosaics_keep_training_and_held_out_regions_apart():
    script = load_script(SCRIPT, "train_dense_demo")
    classification = script.classification
    samplers = [BoxRecorder(classification.CropSampler(photo)) for photo in classification.load_photos()]
    rng = np.random.default_rng(0)
    for validation in (False, True):
        for _ in range(20):
            pixels, labels = script.mosaic(samplers, rng, script.SIZE, validation)
            assert pixels.shape == (*script.SIZE, 3) and labels.shape == script.SIZE
            assert 1 <= len(np.unique(labels)) <= script.REGIONS[1] and labels.max() < len(samplers)
    assert_split_kept(samplers, classification.is_training_box)


def _digest(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix != ".json"):
        digest.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_quick_training_runs_are_reproducible(tmp_path):
    before = {n: sha256_file(assets_dir() / n) for n in (DEMO_SEG_CONFIG, DEMO_SEG_WEIGHTS)}
    runs = quick_runs(SCRIPT, tmp_path)
    assert _digest(runs[0]) == _digest(runs[1])  # weights and mosaics, byte for byte
    document = json.loads((runs[0] / DEMO_SEG_CONFIG).read_text())
    assert document["metrics"]["quick"] is True and document["metrics"]["steps"] == 3
    assert document["preprocessing"]["fit"] == "stretch"
    model = SwinSegmenter(SwinConfig.from_dict(document["config"]))
    assert apply_state(model, load_checkpoint(runs[0] / DEMO_SEG_WEIGHTS)).format == "timm"
    masks = sorted((runs[0] / "demo_seg" / "masks").glob("*.png"))
    assert masks and [p.name for p in masks] == sorted(p.name for p in (runs[0] / "demo_seg" / "images").glob("*"))
    assert all(Image.open(p).mode == "L" and np.asarray(Image.open(p)).max() < 12 for p in masks)
    assert not list(runs[0].glob(".*")), "staging or temporary files left behind"
    assert_quick_refused(SCRIPT, before)
