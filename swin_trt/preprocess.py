"""How an image becomes a network input: the recipe (presets, sidecar form) and the vectorised transform.

* :class:`Preprocessing` is the recipe without a size: what a checkpoint was trained with (mean/std,
  interpolation, crop_pct) and how the image is fitted (``crop``: resize the shorter side and centre-crop,
  as timm's eval transform; ``stretch``: resize the whole image, as dense models see it).
* :class:`Preprocessor` is a recipe at one input size. One resize (Pillow) and one fused normalisation (numpy)
  per image; nothing loops over pixels in Python.

Every Swin checkpoint (timm, Microsoft, torchvision, Hugging Face) uses the ImageNet recipe, so that is the
default wherever a model does not say otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from .errors import UserError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
            "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}
INTERPOLATIONS = tuple(_FILTERS)
RESIZE_MODES = ("crop", "stretch")
# std 1/255 with mean 0 feeds the pixels' own 0-255 values: for graphs that normalise inside
# (`export --fold-normalization`, :mod:`.input_format`).
PIXEL_STD = 1.0 / 255.0


@dataclass(frozen=True)
class Preprocessing:
    """The recipe: ``x = (pixel / 255 - mean) / std`` after fitting the image to the input size."""

    crop_pct: float = 0.875  # crop: the shorter side is resized to size / crop_pct first
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    resize: str = "crop"

    def check(self, where: str = "preprocessing") -> "Preprocessing":
        if self.interpolation not in _FILTERS:
            raise UserError(f"{where}: interpolation {self.interpolation!r} is not one of {', '.join(_FILTERS)}")
        if self.resize not in RESIZE_MODES:
            raise UserError(f"{where}: resize {self.resize!r} is not one of {', '.join(RESIZE_MODES)}")
        if not 0 < self.crop_pct <= 1:
            raise UserError(f"{where}: crop_pct {self.crop_pct} is not in (0, 1]")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise UserError(f"{where}: mean and std need three values each, std > 0 (got {self.mean}, {self.std})")
        return self

    def at(self, size: tuple[int, int]) -> "Preprocessor":
        return Preprocessor(tuple(size), self)

    def to_dict(self, img_size: tuple[int, int] | None) -> dict:
        """The sidecar form (``preprocessing`` of model.onnx.json), at ``img_size`` (``None``: any size)."""
        data = {"crop_pct": self.crop_pct, "interpolation": self.interpolation, "mean": list(self.mean),
                "std": list(self.std), "fit": self.resize, "layout": "NCHW", "color": "RGB", "scale": "0..1"}
        if img_size is not None:
            resize = [round(s / self.crop_pct) for s in img_size] if self.resize == "crop" else list(img_size)
            data = {"resize": resize, "crop": list(img_size), **data}
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "Preprocessing":
        defaults = cls()
        return cls(float(data.get("crop_pct", defaults.crop_pct)), data.get("interpolation", defaults.interpolation),
                   tuple(data.get("mean", defaults.mean)), tuple(data.get("std", defaults.std)),
                   data.get("fit", defaults.resize))


PRESETS = {
    "imagenet": Preprocessing(),
    "inception": Preprocessing(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)),  # timm's *_inception, many HF ViTs
    "unit": Preprocessing(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),  # pixels / 255, nothing else
    "none": Preprocessing(mean=(0.0, 0.0, 0.0), std=(PIXEL_STD,) * 3),  # 0-255 as they are: the graph normalises
}


@dataclass(frozen=True)
class Preprocessor:
    crop: tuple[int, int] | None  # (H, W) network input; None: not fixed yet (a dynamic graph's recipe)
    recipe: Preprocessing = Preprocessing()

    @classmethod
    def from_sidecar(cls, sidecar: dict) -> "Preprocessor":
        pre = sidecar["preprocessing"]
        return cls(tuple(pre["crop"]) if pre.get("crop") else None, Preprocessing.from_dict(pre))

    def with_size(self, size: tuple[int, int]) -> "Preprocessor":
        return replace(self, crop=tuple(size))

    def to_dict(self) -> dict:
        return self.recipe.to_dict(self.crop)

    def describe(self) -> str:
        r = self.recipe
        preset = next((name for name, p in PRESETS.items() if (p.mean, p.std) == (r.mean, r.std)), None)
        values = (f"{preset} mean/std" if preset else
                  f"mean {tuple(round(m, 4) for m in r.mean)}, std {tuple(round(s, 4) for s in r.std)}")
        fit = f"crop_pct {r.crop_pct}" if r.resize == "crop" else "whole image stretched"
        size = f"{self.crop[0]}x{self.crop[1]}" if self.crop else "the size given by `img_size`"
        return f"{values}, {r.interpolation}, {fit}, {size}"

    def _fitted(self, image: Image.Image, resample=None) -> Image.Image:
        crop_h, crop_w = self.crop
        resample = _FILTERS[self.recipe.interpolation] if resample is None else resample
        if self.recipe.resize == "stretch":
            return image.resize((crop_w, crop_h), resample)
        # Scale so that the crop covers crop_pct of the image in both directions, keeping the aspect.
        pct = self.recipe.crop_pct
        scale = max(crop_h / pct / image.height, crop_w / pct / image.width)
        size = (max(crop_w, round(image.width * scale)), max(crop_h, round(image.height * scale)))
        image = image.resize(size, resample)
        left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
        return image.crop((left, top, left + crop_w, top + crop_h))

    def to_uint8(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """Fit to an ``(H, W, 3)`` uint8 RGB array (resize + centre crop, or stretch)."""
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        return np.asarray(self._fitted(image.convert("RGB")))

    def fit_mask(self, mask: Image.Image) -> Image.Image:
        """A label mask fitted exactly as its image is (same crop or stretch), by nearest neighbour: every
        pixel keeps a class index of the source, none is blended."""
        return self._fitted(mask, Image.Resampling.NEAREST)

    def source_box(self, width: int, height: int) -> tuple[float, float, float, float]:
        """The part of a ``width x height`` image the network sees, in its pixels (left, top, right, bottom):
        where a dense output lies on the original image."""
        if self.recipe.resize == "stretch":
            return 0.0, 0.0, float(width), float(height)
        crop_h, crop_w = self.crop
        pct = self.recipe.crop_pct
        scale = max(crop_h / pct / height, crop_w / pct / width)
        resized_w, resized_h = max(crop_w, round(width * scale)), max(crop_h, round(height * scale))
        left, top = (resized_w - crop_w) // 2, (resized_h - crop_h) // 2
        sx, sy = width / resized_w, height / resized_h
        return left * sx, top * sy, (left + crop_w) * sx, (top + crop_h) * sy

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """``(..., H, W, 3)`` uint8 -> ``(..., 3, H, W)`` float32, normalised."""
        std = np.asarray(self.recipe.std, dtype=np.float32)
        scale = np.float32(1.0 / 255.0) / std
        offset = np.asarray(self.recipe.mean, dtype=np.float32) / std
        out = pixels.astype(np.float32) * scale - offset
        return np.ascontiguousarray(np.moveaxis(out, -1, -3))

    def __call__(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """One image -> ``(3, H, W)`` float32."""
        return self.normalize(self.to_uint8(image))
