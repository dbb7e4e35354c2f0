"""``amax`` (the clipping threshold; scale = amax / 127) from an |x| histogram, by four methods.

* ``max``: the largest |x| seen. No clipping; one outlier costs resolution everywhere.
* ``percentile``: the value below which ``percentile`` % of |x| lies (interpolated within its bin).
* ``entropy``: TensorRT's entropy calibrator (the KL-divergence search of "8-bit Inference with TensorRT",
  Migacz 2017, as NVIDIA's pytorch-quantization reimplements it): for every candidate of i bins
  (128..2048) the reference P is the histogram up to i with the outliers folded into bin i-1, Q is the
  same i bins merged evenly into 128 levels and spread back over their non-empty bins; the i with the
  least KL(P || Q) (the largest i on ties) gives amax = i * bin width. A candidate whose bin i-1 is empty
  while outliers lie beyond it has infinite divergence (Q is 0 where P is not), as in pytorch-quantization.
* ``mse``: the amax that minimises the expected squared error: rounding (step^2 / 12) inside, clipping
  (x - amax)^2 outside, with x at the bin centres.

Every search is vectorised over all candidates with cumulative sums; nothing loops over bins in Python.
"""

from __future__ import annotations

import numpy as np

from .histogram import AbsHistogram

METHODS = ("percentile", "entropy", "mse", "max")
LEVELS = 127  # int8, symmetric: scale = amax / 127
ENTROPY_LEVELS = 128  # the quantized distribution Q of the KL search has 128 levels (7 bits of magnitude)
ENTROPY_START = 128
DEFAULT_PERCENTILE = 99.99
# The default: on the trained demo Swin, entropy clipped the GELU outputs (fc2 inputs: asymmetric, long positive
# tail) and cost 20-30x the logit error (1 - cosine) of percentile/mse/max (benchmarks/results/precision.json).
DEFAULT_METHOD = "percentile"


def amax_max(hist: AbsHistogram) -> float:
    return hist.amax


def amax_percentile(hist: AbsHistogram, percentile: float = DEFAULT_PERCENTILE) -> float:
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile {percentile} is not in (0, 100]")
    total = hist.total
    if total == 0 or percentile == 100:
        return hist.amax
    cdf = np.cumsum(hist.counts)
    target = total * percentile / 100.0
    j = int(np.searchsorted(cdf, target, side="left"))  # first bin whose cdf reaches the target
    below = cdf[j - 1] if j > 0 else 0
    fraction = (target - below) / hist.counts[j]
    return min(hist.amax, (j + fraction) * hist.width)


def kl_divergences(counts: np.ndarray, levels: int = ENTROPY_LEVELS, start: int = ENTROPY_START):
    """``(candidates, KL(P_i || Q_i))`` for i = start..len(counts), as TensorRT's entropy calibrator.

    Within each of the 128 merged chunks every non-empty bin of Q has the same value, so the KL sum splits
    into per-chunk terms computed from cumulative sums of h, h*log(h) and (h > 0): O(128) per candidate.
    """
    h = counts.astype(np.float64)
    nbins = len(h)
    s = np.concatenate([[0.0], np.cumsum(h)])  # sum of h[:k]
    hlogh = np.where(h > 0, h * np.log(np.where(h > 0, h, 1.0)), 0.0)
    l = np.concatenate([[0.0], np.cumsum(hlogh)])
    z = np.concatenate([[0], np.cumsum(h > 0)])
    cand = np.arange(start, nbins + 1)
    # level c holds bins j with floor(j * levels / i) == c, i.e. j in [ceil(c*i/levels), ceil((c+1)*i/levels))
    chunk = np.arange(levels + 1)
    edges = (chunk[None, :] * cand[:, None] + levels - 1) // levels
    lo, hi = edges[:, :-1], edges[:, 1:]
    mass, nonzero = s[hi] - s[lo], z[hi] - z[lo]
    outliers = s[nbins] - s[cand]
    last = h[cand - 1]
    # sum of p log p over P (bin i-1 carries the outliers) and sum of p log q, chunk by chunk
    p_log_p = l[cand] - np.where(last > 0, last * np.log(np.where(last > 0, last, 1.0)), 0.0)
    p_last = last + outliers
    p_log_p = p_log_p + np.where(p_last > 0, p_last * np.log(np.where(p_last > 0, p_last, 1.0)), 0.0)
    q = np.where(nonzero > 0, mass / np.maximum(nonzero, 1), 1.0)
    p_mass = mass.copy()
    p_mass[:, -1] += outliers
    p_log_q = np.sum(np.where(p_mass > 0, p_mass * np.log(q), 0.0), axis=1)
    total_p, total_q = s[nbins], s[cand]
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = (p_log_p - p_log_q) / total_p - np.log(total_p) + np.log(total_q)
    # Q is 0 at bin i-1 when that bin is empty but outliers land there: infinite divergence
    kl = np.where((last == 0) & (outliers > 0), np.inf, kl)
    kl = np.where(total_q > 0, kl, np.inf)
    return cand, kl


def amax_entropy(hist: AbsHistogram) -> float:
    if hist.total == 0:
        return hist.amax
    cand, kl = kl_divergences(hist.counts)
    best = int(cand[len(kl) - 1 - int(np.argmin(kl[::-1]))])  # the last minimum, as pytorch-quantization
    return min(hist.amax, best * hist.width)


def amax_mse(hist: AbsHistogram) -> float:
    if hist.total == 0:
        return hist.amax
    h = hist.counts.astype(np.float64)
    centres = (np.arange(hist.bins) + 0.5) * hist.width
    candidates = np.arange(1, hist.bins + 1) * hist.width  # upper bin edges
    # suffix sums over bins j >= k (those clipped by candidate k, whose edge is k+1 bins up)
    def suffix(values):
        return np.concatenate([np.cumsum(values[::-1])[::-1], [0.0]])

    n_sfx, c_sfx, c2_sfx = suffix(h), suffix(h * centres), suffix(h * centres ** 2)
    k = np.arange(1, hist.bins + 1)
    inside = (hist.total - n_sfx[k]) * (candidates / LEVELS) ** 2 / 12.0
    clipped = c2_sfx[k] - 2 * candidates * c_sfx[k] + candidates ** 2 * n_sfx[k]
    return min(hist.amax, float(candidates[int(np.argmin(inside + clipped))]))


def compute_amax(hist: AbsHistogram, method: str, percentile: float = DEFAULT_PERCENTILE) -> float:
    if method == "max":
        return amax_max(hist)
    if method == "percentile":
        return amax_percentile(hist, percentile)
    if method == "entropy":
        return amax_entropy(hist)
    if method == "mse":
        return amax_mse(hist)
    raise ValueError(f"unknown calibration method {method!r}: choose one of {', '.join(METHODS)}")
