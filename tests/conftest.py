"""Shared fixtures: tiny configs, real photos from scikit-image, and a CLI runner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

TINY = dict(embed_dim=32, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=7, num_classes=10)


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """Real photos that scikit-image ships, written as files (a folder source for the CLI)."""
    from PIL import Image
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    for name in ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field"):
        image = np.asarray(getattr(data, name)())
        Image.fromarray(image).save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="session")
def cli():
    from swin_trt.cli import main

    def invoke(*args, expect=0):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == expect, f"exit {result.exit_code} != {expect}:\n{result.output}"
        return result

    return invoke


@pytest.fixture(scope="session")
def crops_dir(tmp_path_factory, photo_dir) -> Path:
    """24 real-photo crops (4 corners of each photo): enough images to calibrate INT8 on."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("crops")
    for path in sorted(photo_dir.iterdir()):
        image = Image.open(path).convert("RGB")
        w, h = image.size
        for i, (x, y) in enumerate(((0, 0), (w // 2, 0), (0, h // 2), (w // 2, h // 2))):
            image.crop((x, y, x + w // 2, y + h // 2)).save(folder / f"{path.stem}_{i}.png")
    return folder
