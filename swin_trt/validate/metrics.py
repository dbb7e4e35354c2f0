"""Streaming comparison metrics: outputs are folded in batch by batch, never all held in memory."""

from __future__ import annotations

import math

import numpy as np


class Agreement:
    """Candidate logits against reference logits (and labels when known), accumulated per batch."""

    def __init__(self):
        self.count = 0
        self.max_abs_err = 0.0
        self.sum_abs_err = 0.0
        self.elements = 0
        self.cosine_sum = 0.0
        self.cosine_min = 1.0
        self.top1_same = 0
        self.top5_same = 0
        self.signal = 0.0
        self.noise = 0.0
        self.correct1 = 0
        self.correct5 = 0
        self.labelled = 0

    def update(self, reference: np.ndarray, candidate: np.ndarray, labels: np.ndarray | None = None) -> None:
        reference = reference.reshape(len(reference), -1).astype(np.float64)
        candidate = candidate.reshape(len(candidate), -1).astype(np.float64)
        diff = np.abs(candidate - reference)
        self.count += len(reference)
        self.max_abs_err = max(self.max_abs_err, float(diff.max()))
        self.sum_abs_err += float(diff.sum())
        self.elements += diff.size
        norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
        cosine = np.sum(reference * candidate, axis=1) / np.maximum(norms, 1e-30)
        self.cosine_sum += float(cosine.sum())
        self.cosine_min = min(self.cosine_min, float(cosine.min()))
        self.signal += float(np.sum(reference ** 2))
        self.noise += float(np.sum((candidate - reference) ** 2))
        ref_top1 = reference.argmax(axis=1)
        self.top1_same += int(np.sum(candidate.argmax(axis=1) == ref_top1))
        k = min(5, reference.shape[1])
        cand_top5 = np.argsort(-candidate, axis=1)[:, :k]
        self.top5_same += int(np.sum(np.any(cand_top5 == ref_top1[:, None], axis=1)))
        if labels is not None:
            known = labels >= 0
            self.labelled += int(known.sum())
            self.correct1 += int(np.sum((candidate.argmax(axis=1) == labels) & known))
            self.correct5 += int(np.sum(np.any(cand_top5 == labels[:, None], axis=1) & known))

    def result(self) -> dict:
        count = max(self.count, 1)
        snr = math.inf if self.noise == 0 else 10 * math.log10(self.signal / self.noise) if self.signal else 0.0
        out = {"images": self.count, "max_abs_err": self.max_abs_err,
               "mean_abs_err": self.sum_abs_err / max(self.elements, 1),
               "cosine": self.cosine_sum / count, "cosine_min": self.cosine_min,
               "top1_agreement": self.top1_same / count, "top5_agreement": self.top5_same / count,
               "snr_db": snr}
        if self.labelled:
            out["acc1"] = self.correct1 / self.labelled
            out["acc5"] = self.correct5 / self.labelled
        return out
