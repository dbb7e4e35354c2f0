"""The bundled demo models, small Swins trained here on real photos.

``swin_demo`` (classifier, scripts/train_demo.py); its files live in ``swin_trt/assets/``:

* ``swin_demo.json``: ``{"config": SwinConfig.to_dict(), "preprocessing": {...Preprocessing fields},
  "metrics": {...}}``
* ``swin_demo.safetensors``: the weights, in the reference model's (timm) key layout.
* ``demo_images/``: a small labelled validation set, one folder per class (ImageFolder layout).

``swin_demo_seg`` (segmentation, :class:`~.segmentation.SwinSegmenter`, scripts/train_dense_demo.py):

* ``swin_demo_seg.json``, ``swin_demo_seg.safetensors``: the same forms (backbone keys as timm's, plus
  ``decode_head.*``); its preprocessing stretches the whole image (``fit: stretch``).
* ``demo_seg/images/<nnn>.png`` and ``demo_seg/masks/<nnn>.png``: held-out mosaics and their label masks
  (pixel value = class index), the layout ``validate --masks`` reads.

``swin_demo_det`` (detection, :class:`~.detection.SwinDetector`, scripts/train_detection_demo.py):

* ``swin_demo_det.json``, ``swin_demo_det.safetensors``: the same forms (backbone keys as timm's, plus
  torchvision's FCOS under ``detector.*``); its preprocessing is ``unit`` (pixels / 255, the graph normalises
  inside) with the whole image stretched.
* ``demo_det/images/<nnn>.png`` and ``demo_det/annotations.json``: held-out mosaics and their boxes, COCO
  ``instances`` form (category id = label = class index), what ``validate --annotations`` reads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

DEMO_NAME = "swin_demo"
DEMO_WEIGHTS = "swin_demo.safetensors"
DEMO_CONFIG = "swin_demo.json"
DEMO_SEG_NAME = "swin_demo_seg"
DEMO_SEG_WEIGHTS = "swin_demo_seg.safetensors"
DEMO_SEG_CONFIG = "swin_demo_seg.json"
DEMO_SEG_DIR = "demo_seg"
DEMO_DET_NAME = "swin_demo_det"
DEMO_DET_WEIGHTS = "swin_demo_det.safetensors"
DEMO_DET_CONFIG = "swin_demo_det.json"
DEMO_DET_DIR = "demo_det"
DEMO_VIDEO_NAME = "swin3d_demo"
DEMO_VIDEO_DIR = "demo_video"
DEMO_VIDEO_WEIGHTS = f"{DEMO_VIDEO_DIR}/swin_demo_video.safetensors"
DEMO_VIDEO_CONFIG = f"{DEMO_VIDEO_DIR}/swin_demo_video.json"


def assets_dir() -> Path:
    return Path(str(resources.files("swin_trt") / "assets"))


def demo_images_dir() -> Path:
    """The labelled validation images that ship with the package (one folder per class)."""
    return assets_dir() / "demo_images"


def demo_seg_images_dir() -> Path:
    """The held-out segmentation mosaics that ship with the package (``validate --data``)."""
    return assets_dir() / DEMO_SEG_DIR / "images"


def demo_seg_masks_dir() -> Path:
    """Their label masks, one PNG per image with the same stem (``validate --masks``)."""
    return assets_dir() / DEMO_SEG_DIR / "masks"


def demo_det_images_dir() -> Path:
    """The held-out detection mosaics that ship with the package (``validate --data``)."""
    return assets_dir() / DEMO_DET_DIR / "images"


def demo_det_annotations() -> Path:
    """Their boxes, COCO ``instances`` JSON, images by file name (``validate --annotations``)."""
    return assets_dir() / DEMO_DET_DIR / "annotations.json"


def _bundled_spec(name: str, config_file: str, weights: str, description: str, model_class=None,
                  config_class=None):
    """The registry entry of a bundled model, or ``None`` while its weights have not been trained yet."""
    from .registry import ArchSpec, Preprocessing
    from .swin import SwinConfig

    config_class = config_class or SwinConfig
    config_path = assets_dir() / config_file
    if not config_path.is_file() or not (assets_dir() / weights).is_file():
        return None
    data = json.loads(config_path.read_text())
    preprocessing = Preprocessing.from_dict(data.get("preprocessing", {}))
    return ArchSpec(name, config_class.from_dict(data["config"]), description, preprocessing, weights=weights,
                    model_class=model_class)


def demo_spec():
    """The registry entry of ``swin_demo``, or ``None`` while its weights have not been trained yet."""
    return _bundled_spec(DEMO_NAME, DEMO_CONFIG, DEMO_WEIGHTS, "demo Swin trained here on scikit-image's photos")


def demo_seg_spec():
    """The registry entry of ``swin_demo_seg``, or ``None`` while its weights have not been trained yet."""
    from .segmentation import SwinSegmenter

    return _bundled_spec(DEMO_SEG_NAME, DEMO_SEG_CONFIG, DEMO_SEG_WEIGHTS,
                         "demo Swin segmenter (FPN-lite head) trained here on mosaics of scikit-image's photos",
                         SwinSegmenter)


def demo_det_spec():
    """The registry entry of ``swin_demo_det``, or ``None`` while its weights have not been trained yet."""
    from .detection import SwinDetector

    return _bundled_spec(DEMO_DET_NAME, DEMO_DET_CONFIG, DEMO_DET_WEIGHTS,
                         "demo Swin detector (FCOS head) trained here on mosaics of scikit-image's photos",
                         SwinDetector)


def demo_video_spec():
    """The registry entry of ``swin3d_demo``, or ``None`` while its weights have not been trained yet."""
    from .video_swin import VideoSwinConfig

    return _bundled_spec(DEMO_VIDEO_NAME, DEMO_VIDEO_CONFIG, DEMO_VIDEO_WEIGHTS,
                         "demo Video Swin trained here on motion clips of scikit-image's photos (pan, zoom, "
                         "rotate: 8 motions no single frame tells apart), 8x64x64 clips",
                         config_class=VideoSwinConfig)


def demo_video_clips_dir() -> Path:
    """``swin3d_demo``'s held-out clips: ``<motion>/<nnn>.mp4``, from photos it was not trained on."""
    return assets_dir() / DEMO_VIDEO_DIR / "clips"


def model_arch(model: str | None) -> str | None:
    """The named arch a model argument was made from (``torch:<arch>``, or its sidecar's ``arch``), if any."""
    from ..errors import UserError
    from ..model_ref import ModelRef

    if model is None:
        return None
    ref = ModelRef.parse(model)
    if ref.kind == "torch":
        from .registry import get_arch

        try:
            return get_arch(ref.arch).name
        except UserError:
            return None
    return (ref.sidecar() or {}).get("arch")


@dataclass(frozen=True)
class BundledData:
    """Validation data that ships with the package: images, and what they are labelled with."""

    images: Path  # a folder of images; of videos (class folders) for a clip model
    masks: Path | None = None  # label masks of the segmentation mosaics
    annotations: Path | None = None  # COCO instances JSON of the detection mosaics


def bundled_validation_data(model: str | None = None) -> BundledData:
    """The images (and their ground truth) that ship for validating ``model``: the segmentation mosaics and their
    masks for ``swin_demo_seg``, the detection mosaics and their boxes for ``swin_demo_det``, the held-out clips
    (videos in class folders) for ``swin3d_demo``, each also for what is made from it, the classification demo
    images for anything else."""
    arch = model_arch(model)
    if arch == DEMO_SEG_NAME and demo_seg_images_dir().is_dir():
        return BundledData(demo_seg_images_dir(), masks=demo_seg_masks_dir())
    if arch == DEMO_DET_NAME and demo_det_images_dir().is_dir():
        return BundledData(demo_det_images_dir(), annotations=demo_det_annotations())
    if arch == DEMO_VIDEO_NAME and demo_video_clips_dir().is_dir():
        return BundledData(demo_video_clips_dir())
    return BundledData(demo_images_dir())
