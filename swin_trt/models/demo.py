"""The bundled demo model ``swin_demo``: a small Swin trained here on real photos (scripts/train_demo.py).

Its files live in ``swin_trt/assets/``:

* ``swin_demo.json``: ``{"config": SwinConfig.to_dict(), "preprocessing": {...Preprocessing fields},
  "metrics": {...}}``
* ``swin_demo.safetensors``: the weights, in the reference model's (timm) key layout.
* ``demo_images/``: a small labelled validation set, one folder per class (ImageFolder layout).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

DEMO_NAME = "swin_demo"
DEMO_WEIGHTS = "swin_demo.safetensors"
DEMO_CONFIG = "swin_demo.json"


def assets_dir() -> Path:
    return Path(str(resources.files("swin_trt") / "assets"))


def demo_images_dir() -> Path:
    """The labelled validation images that ship with the package (one folder per class)."""
    return assets_dir() / "demo_images"


def demo_spec():
    """The registry entry of ``swin_demo``, or ``None`` while its weights have not been trained yet."""
    from .registry import ArchSpec, Preprocessing
    from .swin import SwinConfig

    config_path = assets_dir() / DEMO_CONFIG
    if not config_path.is_file() or not (assets_dir() / DEMO_WEIGHTS).is_file():
        return None
    data = json.loads(config_path.read_text())
    preprocessing = Preprocessing.from_dict(data.get("preprocessing", {}))
    return ArchSpec(DEMO_NAME, SwinConfig.from_dict(data["config"]),
                    "demo Swin trained here on scikit-image's photos",
                    preprocessing, weights=DEMO_WEIGHTS)
