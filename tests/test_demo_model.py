"""The bundled demo model ``swin_demo`` (scripts/train_demo.py): it loads through the checkpoint import, it is
accurate on its held-out images through the users' eval path, it exports without the random-weights warning,
and the training script's pipeline runs end to end (``--quick``)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from swin_trt.preprocess import Preprocessor
from swin_trt.models import SwinConfig, SwinTransformer, create_model, get_arch
from swin_trt.io import sha256_file as file_sha256
from swin_trt.models.checkpoint import apply_state, load_checkpoint
from swin_trt.models.demo import DEMO_CONFIG, DEMO_WEIGHTS, assets_dir, demo_images_dir

from conftest import assert_quick_refused, load_script

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "train_demo.py"


def _train_demo_module():
    return load_script(SCRIPT, "train_demo")


def _image_folder(root: Path, class_names):
    images, labels = [], []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.glob("*.png")):
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
            labels.append(class_names.index(folder.name))
    return images, np.array(labels)


@pytest.fixture(scope="module")
def bundled():
    for name in (DEMO_CONFIG, DEMO_WEIGHTS):
        assert (assets_dir() / name).is_file(), f"{name} missing: run python scripts/train_demo.py"
    model, spec, report = create_model("swin_demo")
    return model, spec, report, json.loads((assets_dir() / DEMO_CONFIG).read_text())


def test_bundled_model_loads_through_checkpoint_import(bundled):
    model, spec, report, document = bundled
    assert get_arch("swin_demo") is spec and spec.weights == DEMO_WEIGHTS
    assert report is not None, "swin_demo was built without its bundled weights"
    assert report.format == "timm" and Path(report.path).name == DEMO_WEIGHTS
    assert report.sha256 == file_sha256(assets_dir() / DEMO_WEIGHTS)
    assert report.loaded == len(model.state_dict())
    config = model.config
    assert config.to_dict() == document["config"]
    assert len(config.class_names) == config.num_classes >= 10
    assert config.img_size == (112, 112)
    assert document["preprocessing"]["crop_pct"] == 0.875
    # The same import as any user checkpoint: the file alone, into a model built from the JSON config.
    fresh = SwinTransformer(SwinConfig.from_dict(document["config"]))
    apply_state(fresh, load_checkpoint(assets_dir() / DEMO_WEIGHTS))
    for key, value in model.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[key], value, rtol=0, atol=0)
    assert (assets_dir() / DEMO_WEIGHTS).stat().st_size < 6 * 2 ** 20


def test_bundled_accuracy_on_demo_images(bundled):
    model, spec, _, document = bundled
    names = list(model.config.class_names)
    assert sorted(p.name for p in demo_images_dir().iterdir() if p.is_dir()) == sorted(names)
    images, labels = _image_folder(demo_images_dir(), names)
    assert np.bincount(labels, minlength=len(names)).min() >= 5
    preprocessor = spec.preprocessing.at(model.config.img_size)
    with torch.no_grad():
        logits = model(torch.from_numpy(np.stack([preprocessor(image) for image in images])))
    accuracy = float((logits.argmax(1).numpy() == labels).mean())
    assert accuracy >= 0.9, f"swin_demo top-1 on its demo_images is {accuracy:.3f}"
    # The number the JSON reports is this measurement (one image of slack for another CPU's rounding).
    assert abs(accuracy - document["metrics"]["val_top1"]) <= 1.0 / len(labels) + 1e-9


def test_export_bundled_demo_has_no_random_warning(tmp_path):
    from click.testing import CliRunner

    from swin_trt.cli import main

    output = tmp_path / "demo.onnx"
    result = CliRunner().invoke(main, ["export", "--arch", "swin_demo", "-o", str(output)])
    assert result.exit_code == 0, result.output
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert "RANDOM" not in text.upper(), text
    sidecar = json.loads(output.with_name(output.name + ".json").read_text())
    assert sidecar["weights"]["source"] == "bundled"
    assert sidecar["weights"]["sha256"] == file_sha256(assets_dir() / DEMO_WEIGHTS)
    assert sidecar["check"]["onnxruntime_max_abs_err"] < 1e-3


def test_training_crops_never_touch_the_validation_cells():
    module = _train_demo_module()
    rng = np.random.default_rng(0)
    for photo in module.load_photos():
        sampler = module.CropSampler(photo)
        width, height = photo.size
        gap = round(module.GAP * min(width, height))
        cells = sampler.val_cells
        assert len(cells) == len(module.VAL_CELLS) >= 2
        for _ in range(100):
            left, top, right, bottom = sampler.train_box(rng)
            assert 0 <= left < right <= width and 0 <= top < bottom <= height
            for x0, y0, x1, y1 in cells:  # separated by at least the gap in x or in y
                assert right + gap <= x0 or left >= x1 + gap or bottom + gap <= y0 or top >= y1 + gap
        for index, cell in enumerate(cells):
            left, top, right, bottom = sampler.val_box(rng, cell)
            assert cell[0] <= left < right <= cell[2] and cell[1] <= top < bottom <= cell[3]


def test_quick_training_run_end_to_end(tmp_path):
    before = {n: file_sha256(assets_dir() / n) for n in (DEMO_CONFIG, DEMO_WEIGHTS)}
    out = tmp_path / "assets"
    run = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    document = json.loads((out / DEMO_CONFIG).read_text())
    assert document["metrics"]["quick"] is True and document["metrics"]["steps"] == 3
    assert document["preprocessing"]["crop_pct"] == 0.875
    config = SwinConfig.from_dict(document["config"])
    model = SwinTransformer(config)
    report = apply_state(model, load_checkpoint(out / DEMO_WEIGHTS))
    assert report.format == "timm"
    folders = sorted(p for p in (out / "demo_images").iterdir() if p.is_dir())
    assert [p.name for p in folders] == sorted(config.class_names)
    for folder in folders:
        pngs = list(folder.glob("*.png"))
        assert pngs and all(Image.open(p).size == (128, 128) for p in pngs)
    assert not list(out.glob(".*")), "staging or temporary files left behind"
    # --quick never touches the bundled model, and refuses to overwrite it.
    assert_quick_refused(SCRIPT, before)
