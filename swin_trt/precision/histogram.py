"""A streaming histogram of |x| with 2048 bins, built in one pass without knowing the range in advance.

The first batch sets the bin width (its max / 2048). A later batch with a larger max widens the bins by an
integer factor, so old bins merge exactly (``factor`` neighbours -> one bin) and no count is ever split or
interpolated: the result depends only on the data and its order, which keeps calibration deterministic.
"""

from __future__ import annotations

import math

import numpy as np

BINS = 2048
_TINY = 1e-12  # width of an all-zero tensor's histogram: any positive number works


class AbsHistogram:
    def __init__(self, bins: int = BINS):
        self.bins = bins
        self.counts = np.zeros(bins, dtype=np.int64)
        self.width = 0.0  # 0 until the first update
        self.amax = 0.0  # the exact max |x| seen

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    @property
    def edges(self) -> np.ndarray:
        return np.arange(self.bins + 1, dtype=np.float64) * self.width

    def update(self, values: np.ndarray) -> None:
        values = np.abs(np.asarray(values, dtype=np.float32).ravel())
        if values.size == 0:
            return
        batch_max = float(values.max())
        if not math.isfinite(batch_max):
            raise ValueError("non-finite activation (inf/nan): the model or the preprocessing is broken")
        self.amax = max(self.amax, batch_max)
        if self.width == 0.0:
            self.width = max(batch_max, _TINY) / self.bins
        elif batch_max > self.width * self.bins:
            self._widen(math.ceil(batch_max / (self.width * self.bins)))
        index = np.minimum((values / np.float32(self.width)).astype(np.int64), self.bins - 1)
        self.counts += np.bincount(index, minlength=self.bins)

    def _widen(self, factor: int) -> None:
        merged = np.pad(self.counts, (0, (-self.bins) % factor)).reshape(-1, factor).sum(axis=1)
        self.counts = np.pad(merged, (0, self.bins - len(merged)))
        self.width *= factor
