"""Streaming comparison metrics: outputs are folded in batch by batch, never all held in memory."""

from __future__ import annotations

import math

import numpy as np

# SNRs are capped here when differences are taken: float32 rounding alone gives ~140 dB, so "identical"
# (infinite SNR) and 140 dB mean the same thing to a user and subtract sensibly.
SNR_CEILING_DB = 140.0


def snr_db(signal: float, noise: float) -> float:
    """``10 log10(signal / noise)``; ``inf`` when there is no noise at all."""
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10 * math.log10(signal / noise)


def capped(snr: float) -> float:
    """``snr`` clamped to +-SNR_CEILING_DB (-inf only happens for an all-zero reference)."""
    return max(min(snr, SNR_CEILING_DB), -SNR_CEILING_DB)


def cosine_rows(reference: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """The cosine similarity of each row of ``reference`` with the same row of ``candidate`` (2-D arrays).

    Zero vectors have no direction, so the formula alone is undefined for them; the rule here is that two
    all-zero rows are identical (1.0), and an all-zero row against a non-zero one has nothing in common (0.0).
    """
    dots = np.sum(reference * candidate, axis=1)
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    cosine = dots / np.where(norms > 0, norms, 1.0)  # 0 where a row is all zeros: its dot product is 0
    both_zero = ~np.any(reference, axis=1) & ~np.any(candidate, axis=1)
    return np.where(both_zero, 1.0, cosine)


class Agreement:
    """Candidate outputs against reference outputs (and labels when known), accumulated per batch.

    Outputs are ``(B, classes)`` logits or ``(B, classes, ...)`` class maps: top-1/top-5 agreement is taken
    on axis 1, per image for logits and per pixel for maps. ``top5_agreement`` is the fraction of samples
    whose reference top-1 class is among the candidate's top 5. Cosine and SNR are per image over every
    element, whatever the shape; accuracy needs labels and logits. ``classes=False`` (feature maps: no class
    axis) keeps only the error metrics.
    """

    def __init__(self, classes: bool = True):
        self.classes = classes
        self.count = 0
        self.max_abs_err = 0.0
        self.sum_abs_err = 0.0
        self.elements = 0
        self.cosine_sum = 0.0
        self.cosine_min = 1.0
        self.samples = 0  # top-k samples: images (logits) or pixels (class maps)
        self.top1_same = 0
        self.top5_same = 0
        self.signal = 0.0
        self.noise = 0.0
        self.correct1 = 0
        self.correct5 = 0
        self.labelled = 0
        self.shape_mismatches = 0

    def count_shape_mismatch(self) -> None:
        """One image whose candidate output has another shape than the reference's (another number of
        detections): no element lines up with another, so the image counts as having nothing in common
        (cosine 0) and is left out of the element errors. A disagreement, never a silent pass."""
        self.count += 1
        self.shape_mismatches += 1
        self.cosine_min = 0.0

    def update(self, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None) -> None:
        flat_ref = reference.reshape(len(reference), -1).astype(np.float64)
        flat_cand = candidate.reshape(len(candidate), -1).astype(np.float64)
        diff = np.abs(flat_cand - flat_ref)
        self.count += len(reference)
        self.max_abs_err = max(self.max_abs_err, float(diff.max()) if diff.size else 0.0)  # (0, 4): no box
        self.sum_abs_err += float(diff.sum())
        self.elements += diff.size
        cosine = cosine_rows(flat_ref, flat_cand)
        self.cosine_sum += float(cosine.sum())
        self.cosine_min = min(self.cosine_min, float(cosine.min()))
        self.signal += float(np.sum(flat_ref ** 2))
        self.noise += float(np.sum(diff ** 2))
        if not self.classes or reference.ndim < 2:
            return
        classes = reference.shape[1]
        ref_scores = np.moveaxis(reference, 1, -1).reshape(-1, classes)  # one row per image or pixel
        cand_scores = np.moveaxis(candidate, 1, -1).reshape(-1, classes)
        ref_top1 = ref_scores.argmax(axis=1)
        self.samples += len(ref_top1)
        self.top1_same += int(np.sum(cand_scores.argmax(axis=1) == ref_top1))
        k = min(5, classes)
        cand_top5 = np.argpartition(-cand_scores, k - 1, axis=1)[:, :k] if k < classes else \
            np.broadcast_to(np.arange(classes), cand_scores.shape)
        self.top5_same += int(np.sum(np.any(cand_top5 == ref_top1[:, None], axis=1)))
        if labels is not None and reference.ndim == 2:
            known = labels >= 0
            self.labelled += int(known.sum())
            self.correct1 += int(np.sum((cand_scores.argmax(axis=1) == labels) & known))
            self.correct5 += int(np.sum(np.any(cand_top5 == labels[:, None], axis=1) & known))

    def result(self) -> dict:
        count = max(self.count, 1)
        out = {"images": self.count, "max_abs_err": self.max_abs_err,
               "mean_abs_err": self.sum_abs_err / max(self.elements, 1),
               "cosine": self.cosine_sum / count, "cosine_min": self.cosine_min,
               "top1_agreement": self.top1_same / self.samples if self.samples else None,
               "top5_agreement": self.top5_same / self.samples if self.samples else None,
               "snr_db": snr_db(self.signal, self.noise) if self.signal else 0.0}
        if self.labelled:
            out["labelled"] = self.labelled
            out["acc1"] = self.correct1 / self.labelled
            out["acc5"] = self.correct5 / self.labelled
        return out


class ErrorHistogram:
    """Counts of ``|candidate - reference|`` per element in fixed log-spaced bins (constant memory).

    Fixed edges (1e-9 .. 1e3) rather than data-driven ones so that candidates share one axis and a
    batch never needs the whole data set's range. Bin 0 holds exact zeros and errors below 1e-9; the
    last bin everything above 1e3.
    """

    EDGES = np.logspace(-9, 3, 49)

    def __init__(self):
        self.counts = np.zeros(len(self.EDGES) + 1, dtype=np.int64)

    def update(self, reference: np.ndarray, candidate: np.ndarray) -> None:
        diff = np.abs(candidate.astype(np.float64) - reference.astype(np.float64)).ravel()
        self.counts += np.bincount(np.searchsorted(self.EDGES, diff, side="right"), minlength=len(self.counts))

    def result(self) -> dict:
        return {"bin_edges": [float(e) for e in self.EDGES], "counts": [int(c) for c in self.counts]}
