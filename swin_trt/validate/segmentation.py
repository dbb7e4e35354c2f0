"""Segmentation metrics in constant memory: confusion matrices of class maps, and label masks read per batch.

A class map ``(B, C, H, W)`` becomes its argmax per pixel. Three confusion matrices per candidate, each
``C x C`` however many images stream through:

* candidate against reference: pixel agreement (the diagonal's share) and mean-IoU agreement (the IoU of the
  candidate's argmax with the reference's, per class, averaged over the classes either predicts);
* candidate against the label masks, and the reference against them (``--masks``): the true mIoU, its change,
  pixel accuracy and the IoU per class.

Masks are one PNG per image with the image's stem (``masks/<stem>.png``), single channel, pixel value = class
index, 255 = ignore. Each is fitted exactly as its image was (the same crop or stretch, nearest neighbour)
and then resized (nearest) to the model's output size, so a mask at the photo's own resolution works.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..preprocess import Preprocessor
from ..errors import UserError

IGNORE_INDEX = 255
MASK_SUFFIX = ".png"
# What the reference's own entry in report.json keeps (its agreement with itself is 1 by definition).
REFERENCE_SEGMENTATION_KEYS = ("miou", "pixel_accuracy", "labelled_pixels", "class_iou", "class_names")


def class_maps(scores: np.ndarray) -> np.ndarray:
    """``(B, C, H, W)`` class scores -> ``(B, H, W)`` class index per pixel (uint8 where the classes fit)."""
    ids = scores.argmax(axis=1)
    return ids.astype(np.uint8) if scores.shape[1] <= 256 else ids


class Confusion:
    """``matrix[t, p]``: pixels of class ``t`` (truth or reference) predicted as ``p``."""

    def __init__(self, classes: int):
        self.classes = classes
        self.matrix = np.zeros((classes, classes), dtype=np.int64)

    def update(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        """Integer maps of the same shape; truth pixels equal to IGNORE_INDEX are left out."""
        truth, predicted = truth.ravel().astype(np.int64), predicted.ravel().astype(np.int64)
        keep = truth != IGNORE_INDEX
        pairs = truth[keep] * self.classes + predicted[keep]
        self.matrix += np.bincount(pairs, minlength=self.classes ** 2).reshape(self.classes, self.classes)

    @property
    def pixels(self) -> int:
        return int(self.matrix.sum())

    def iou(self) -> np.ndarray:
        """IoU per class; NaN for a class neither side has (it says nothing either way)."""
        hits = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(axis=0) + self.matrix.sum(axis=1) - hits
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, hits / np.maximum(union, 1), np.nan)

    def miou(self) -> float | None:
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else None

    def pixel_accuracy(self) -> float | None:
        return float(np.trace(self.matrix) / self.pixels) if self.pixels else None


class SegmentationMetrics:
    """The confusion matrices of one class-map output (see the module docstring)."""

    def __init__(self, classes: int):
        self.classes = classes
        self.agreement = Confusion(classes)  # reference argmax (rows) vs candidate argmax
        self.truth = Confusion(classes)  # label masks (rows) vs candidate argmax
        self.volume = False  # (B, C, D, H, W) class maps of a volume model: Dice per class too (.volumes)

    def update(self, reference: np.ndarray, candidate: np.ndarray, masks: np.ndarray | None) -> None:
        predicted = class_maps(candidate)
        self.volume = self.volume or candidate.ndim == 5
        self.agreement.update(class_maps(reference), predicted)
        if masks is not None:
            self.truth.update(masks, predicted)

    def result(self, class_names: list[str] | None = None) -> dict:
        out = {"pixel_agreement": self.agreement.pixel_accuracy(), "miou_agreement": self.agreement.miou()}
        if self.volume:
            from .volumes import dice_agreement

            out.update(dice_agreement(self.agreement.matrix))
        if self.truth.pixels:
            iou = self.truth.iou()
            out.update(miou=self.truth.miou(), pixel_accuracy=self.truth.pixel_accuracy(),
                       labelled_pixels=self.truth.pixels,
                       class_iou=[None if np.isnan(v) else float(v) for v in iou])
            if class_names and len(class_names) == self.classes:
                out["class_names"] = list(class_names)
        return out


class MaskSet:
    """Label masks for the images of a validation run, read one batch at a time."""

    def __init__(self, folder: str | Path, image_paths: list, classes: int | None = None):
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise UserError(f"`masks` {str(self.folder)!r} is not a folder: pass the folder with one PNG mask per "
                            f"image, named like the image (<stem>.png)")
        self.classes = classes
        missing = [Path(p).name for p in image_paths if not self.path_for(p).is_file()]
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise UserError(f"`masks` {self.folder}: no mask for {len(missing)} of {len(image_paths)} images "
                            f"({', '.join(missing[:3])}{more}); each image needs <stem>{MASK_SUFFIX} there "
                            f"(pixel value = class index, 255 = ignore)")

    def path_for(self, image_path) -> Path:
        return self.folder / (Path(image_path).stem + MASK_SUFFIX)

    def read(self, image_path, preprocessor: Preprocessor, out_size: tuple[int, int]) -> np.ndarray:
        """The mask of one image, fitted as the image was, at ``out_size`` (H, W); uint8 class indices."""
        path = self.path_for(image_path)
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, ValueError) as exc:
            raise UserError(f"mask {str(path)!r} cannot be read ({exc}): save it as a single-channel PNG") from None
        if image.mode not in ("L", "P", "I", "I;16"):
            raise UserError(f"mask {str(path)!r} is {image.mode}, not a single channel of class indices: save "
                            f"it as an 8-bit grey or palette PNG (pixel value = class index, 255 = ignore)")
        mask = preprocessor.fit_mask(image)
        if mask.size != (out_size[1], out_size[0]):
            mask = mask.resize((out_size[1], out_size[0]), Image.Resampling.NEAREST)
        values = np.asarray(mask).astype(np.int64)
        if self.classes is not None:
            bad = (values >= self.classes) & (values != IGNORE_INDEX)
            if bad.any():
                raise UserError(f"mask {str(path)!r} has class index {int(values[bad].max())}, but the model has "
                                f"{self.classes} classes (0..{self.classes - 1}; 255 = ignore): masks and model "
                                f"must number the classes alike")
        return values.astype(np.uint8)

    def batch(self, image_paths: list, preprocessor: Preprocessor, out_size: tuple[int, int]) -> np.ndarray:
        return np.stack([self.read(p, preprocessor, out_size) for p in image_paths])
