"""Preprocessing from an export's sidecar: resize the shorter side, centre-crop, normalise. Vectorised.

One resize (Pillow) and one fused normalisation (numpy) per image; nothing loops over pixels in Python.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

_FILTERS = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
            "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


@dataclass(frozen=True)
class Preprocessor:
    crop: tuple[int, int]  # (H, W) network input
    crop_pct: float = 0.875
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)

    @classmethod
    def from_sidecar(cls, sidecar: dict) -> "Preprocessor":
        pre = sidecar["preprocessing"]
        return cls(tuple(pre["crop"]), pre.get("crop_pct", 0.875), pre.get("interpolation", "bicubic"),
                   tuple(pre["mean"]), tuple(pre["std"]))

    def _resized(self, image: Image.Image) -> Image.Image:
        crop_h, crop_w = self.crop
        # Scale so that the crop covers crop_pct of the image in both directions, keeping the aspect.
        scale = max(crop_h / self.crop_pct / image.height, crop_w / self.crop_pct / image.width)
        size = (max(crop_w, round(image.width * scale)), max(crop_h, round(image.height * scale)))
        return image.resize(size, _FILTERS[self.interpolation])

    def to_uint8(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """Resize and centre-crop to an ``(H, W, 3)`` uint8 RGB array."""
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        image = self._resized(image.convert("RGB"))
        crop_h, crop_w = self.crop
        left, top = (image.width - crop_w) // 2, (image.height - crop_h) // 2
        return np.asarray(image.crop((left, top, left + crop_w, top + crop_h)))

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """``(..., H, W, 3)`` uint8 -> ``(..., 3, H, W)`` float32, normalised."""
        scale = np.float32(1.0 / 255.0) / np.asarray(self.std, dtype=np.float32)
        offset = np.asarray(self.mean, dtype=np.float32) / np.asarray(self.std, dtype=np.float32)
        out = pixels.astype(np.float32) * scale - offset
        return np.ascontiguousarray(np.moveaxis(out, -1, -3))

    def __call__(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """One image -> ``(3, H, W)`` float32."""
        return self.normalize(self.to_uint8(image))
