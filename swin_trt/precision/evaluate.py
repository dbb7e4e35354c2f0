"""Held-out images in memory and the logits of one model on them: what mixed precision and the benchmark
compare against FP32."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..backends.base import padded_chunks
from ..errors import UserError
from ..preprocess import Preprocessor
from ..validate.metrics import Agreement
from .sources import CalibrationSource


def load_pixels(data: str | Path, preprocessor: Preprocessor, num: int, min_images: int = 1) -> np.ndarray:
    """``(N, 3, H, W)`` float32 for up to ``num`` images spread evenly over ``data``."""
    source = CalibrationSource(data, num)
    crops = list(source.crops(preprocessor))
    if len(crops) < min_images:
        raise UserError(f"only {len(crops)} usable image(s) in {data}, fewer than {min_images}: add images")
    return preprocessor.normalize(np.stack(crops))


def run_logits(session, pixels: np.ndarray, batch: int = 8, feeds: dict | None = None) -> np.ndarray:
    """The first output over ``pixels``, batch by batch (a fixed-batch model gets its own batch size)."""
    first = session.get_inputs()[0]
    fixed = first.shape[0] if isinstance(first.shape[0], int) else None
    outputs = [session.run(None, {first.name: chunk, **(feeds or {})})[0][:real].astype(np.float32)
               for chunk, real in padded_chunks(pixels, fixed or batch, pad=fixed is not None)]
    return np.concatenate(outputs)


def agreement(reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None) -> dict:
    metric = Agreement()
    metric.update(reference, candidate, labels)
    return metric.result()
