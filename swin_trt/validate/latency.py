"""Latency that means what it says: the path a deployment runs, timed on its own.

Accuracy is measured with INT8 (Q/DQ) graphs run exactly, as fake quantization, which is what TensorRT's
INT8 kernels compute; but that emulation is slower than the integer kernels ``infer`` uses, so timing the
validation calls would show INT8 slower than FP32. So every model is also timed on the path ``infer`` runs
(:func:`deployable_latency`): ONNX Runtime's fast integer kernels for a Q/DQ graph on the CPU, the engine
on a GPU, the graph as it is otherwise; same batch of real images, same threads, warm-up runs dropped.
The emulation's own timing (:class:`TimedBackend` around the validation calls) is kept as a labelled extra.
"""

from __future__ import annotations

import time
from collections import Counter

import numpy as np

from ..backends.base import Backend


class TimedBackend(Backend):
    """Wraps a backend; ``infer_padded`` (inherited) goes through the timed ``infer``, one sample per call."""

    def __init__(self, inner: Backend):
        self.inner = inner
        self.name = inner.name
        self.input_name = inner.input_name
        self.input_shape = inner.input_shape
        self.output_names = inner.output_names
        self.samples: list[tuple[int, float]] = []  # (batch size, seconds)

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        started = time.perf_counter()
        outputs = self.inner.infer(batch)
        self.samples.append((len(batch), time.perf_counter() - started))
        return outputs

    def close(self) -> None:
        self.inner.close()


def latency_stats(samples: list[tuple[int, float]], drop_first: bool = True) -> dict | None:
    """Median and p95 per call at the most frequent batch size (a short last batch would skew them).

    The first call of that size is dropped as warm-up (lazy allocation, kernel selection) when others remain
    (``drop_first=False``: the caller ran its warm-up untimed already).
    """
    if not samples:
        return None
    batch, _ = Counter(size for size, _ in samples).most_common(1)[0]
    seconds = [s for size, s in samples if size == batch]
    if drop_first and len(seconds) > 1:
        seconds = seconds[1:]
    ms = np.asarray(seconds) * 1e3
    return {"batch": int(batch), "calls": len(ms), "median_ms": float(np.median(ms)),
            "p95_ms": float(np.percentile(ms, 95)), "per_image_median_ms": float(np.median(ms)) / batch}


LATENCY_RUNS = 10
LATENCY_WARMUP = 2


def time_calls(backend: Backend, pixels: np.ndarray, runs: int = LATENCY_RUNS,
               warmup: int = LATENCY_WARMUP) -> list[tuple[int, float]]:
    """``runs`` timed ``infer_padded`` calls on ``pixels`` after ``warmup`` untimed ones."""
    for _ in range(warmup):
        backend.infer_padded(pixels)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        backend.infer_padded(pixels)
        samples.append((len(pixels), time.perf_counter() - started))
    return samples


def deployable_latency(name: str, backend: Backend, proto, pixels: np.ndarray, threads: int | None) -> dict | None:
    """``latency_stats`` of ``name`` on the path ``infer`` runs, labelled with that path.

    ``backend`` is the model as validation opened it; an INT8 ONNX graph (``proto`` with Q/DQ nodes) is
    opened again with ONNX Runtime's fast integer kernels, which is what ``infer`` would run.
    """
    from ..backends.ort_int8 import has_qdq

    pixels = pixels[:backend.fixed_batch] if backend.fixed_batch else pixels  # one call of the model's batch
    path = {"ort": "ONNX Runtime CPU", "trt": "TensorRT engine", "torch": "PyTorch CPU"}.get(backend.name,
                                                                                           backend.name)
    if proto is not None and has_qdq(proto):
        from ..backends.onnxruntime import OnnxRuntimeBackend

        with OnnxRuntimeBackend(proto, threads=threads, int8="fast") as fast:
            samples = time_calls(fast, pixels)
        path += ", INT8 fast integer kernels (as infer runs it)"
    else:
        samples = time_calls(backend, pixels)
    stats = latency_stats(samples, drop_first=False)
    return {**stats, "path": path} if stats else None
