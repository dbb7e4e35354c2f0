"""Latency of each backend's ``infer`` calls, measured while validation runs them anyway.

Timing the calls validate already makes costs nothing extra; the price is noise from a shared machine,
which the report states. Only the durations (floats) are kept, never the outputs.
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


def latency_stats(samples: list[tuple[int, float]]) -> dict | None:
    """Median and p95 per call at the most frequent batch size (a short last batch would skew them).

    The first call of that size is dropped as warm-up (lazy allocation, kernel selection) when others remain.
    """
    if not samples:
        return None
    batch, _ = Counter(size for size, _ in samples).most_common(1)[0]
    seconds = [s for size, s in samples if size == batch]
    if len(seconds) > 1:
        seconds = seconds[1:]
    ms = np.asarray(seconds) * 1e3
    return {"batch": int(batch), "calls": len(ms), "median_ms": float(np.median(ms)),
            "p95_ms": float(np.percentile(ms, 95)), "per_image_median_ms": float(np.median(ms)) / batch}
