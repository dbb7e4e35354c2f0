"""Validation streams: memory does not grow with the number of images (10,000 must fit like 100)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image

from swin_trt.backends.base import Backend
from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
from swin_trt.data.images import list_images
from swin_trt.preprocess import Preprocessor
from swin_trt.validate.compare import compare
from swin_trt.validate.labels import label_items
from swin_trt.validate.latency import TimedBackend, latency_stats


@pytest.fixture(scope="module")
def crops(tmp_path_factory, photo_dir):
    """300 64x64 crops of the real photos, in two class folders."""
    folder = tmp_path_factory.mktemp("crops")
    rng = np.random.default_rng(0)
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(photo_dir.iterdir())]
    for i in range(300):
        photo = photos[i % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - 64), rng.integers(0, photo.shape[1] - 64)
        (folder / f"c{i % 2}").mkdir(exist_ok=True)
        Image.fromarray(photo[top:top + 64, left:left + 64]).save(folder / f"c{i % 2}" / f"{i:04d}.png")
    return folder


class Widened(Backend):
    """The pico model with its 5 logits tiled to 2,000: 8 KB of output per image, so that holding the
    outputs of 300 images would show (the real logits alone are too small to see next to allocator noise)."""

    def __init__(self, inner: Backend):
        self.inner, self.input_shape, self.output_names = inner, inner.input_shape, inner.output_names

    def infer(self, batch):
        return [np.tile(self.inner.infer(batch)[0], (1, 400))]


def _peak(reference, candidates, data, preprocessor) -> tuple[int, dict]:
    tracemalloc.start()
    try:
        result = compare(reference, candidates, data, preprocessor, batch=8, progress=False)
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_image_count(crops, pico_models):
    models = pico_models
    preprocessor = Preprocessor((64, 64))
    reference = Widened(OnnxRuntimeBackend(models["fp32"]))
    candidates = {"rw": TimedBackend(Widened(OnnxRuntimeBackend(models["rewritten"])))}
    items = list_images(crops)
    assert len(items) == 300
    _peak(reference, candidates, label_items(items[:8], []), preprocessor)  # one-time allocations
    small, _ = _peak(reference, candidates, label_items(items[:40], []), preprocessor)
    large, result = _peak(reference, candidates, label_items(items, []), preprocessor)
    assert result["candidates"]["rw"]["images"] == 300 and "acc1" in result["candidates"]["rw"]
    # Holding every batch's pixels (300 x 48 KiB) or outputs (2 x 300 x 8 KiB) would add megabytes;
    # streaming adds nothing but the latency floats. The margin absorbs allocator noise.
    assert large - small < 256 * 1024, (small, large)
    # A batch-1 model: one timed call per image (the warm-up call dropped).
    assert latency_stats(candidates["rw"].samples)["calls"] == 8 + 40 + 300 - 1
