"""Detection agreement: a candidate's detections against the reference's, image by image, in constant memory.

Above a score threshold (``score_threshold``, validate ``--score-threshold``, default 0.05: torchvision's
``box_score_thresh`` and the usual cut before COCO evaluation), the candidate's detections are taken in
descending score order and each is matched to the unmatched reference detection of the same label with the
highest IoU, if that IoU is at least 0.5: the greedy rule COCO's evaluation uses for ground truth. Two
detections that swap places in the list, or differ in the last bits of a box, still match; a box that moved,
a detection lost or one that appeared does not.

Per candidate (report.json ``candidates[i]["detection"]``): the reference's and the candidate's detection
counts, ``matched``, ``found`` (the share of the reference's detections matched), ``extra`` (the candidate's
detections left unmatched), ``mean_iou`` of the matches, and ``score_drift`` / ``max_score_drift`` (mean and
largest ``|candidate score - reference score|`` over the matches). Only running sums are kept.
"""

from __future__ import annotations

import numpy as np

from ..data.detection_outputs import Detections

DEFAULT_SCORE_THRESHOLD = 0.05
MATCH_IOU = 0.5
# A box narrower or lower than this (input pixels) is widened to it about its centre before IoU is taken: a
# zero-width box has no area and so no IoU with anything, itself included, yet detectors do output them (an
# untrained head, a box clipped at the border). One pixel is below any object worth detecting, so real boxes
# keep their IoU exactly; degenerate ones match where they are, to float noise.
MIN_BOX_SIZE = 1.0


def _at_least(boxes: np.ndarray, size: float) -> np.ndarray:
    boxes = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    for low, high in ((0, 2), (1, 3)):
        thin = boxes[:, high] - boxes[:, low] < size
        centre = (boxes[thin, low] + boxes[thin, high]) / 2
        boxes[thin, low], boxes[thin, high] = centre - size / 2, centre + size / 2
    return boxes


def box_iou(a: np.ndarray, b: np.ndarray, min_size: float = MIN_BOX_SIZE) -> np.ndarray:
    """``(len(a), len(b))`` IoU of x1, y1, x2, y2 boxes, each first made at least ``min_size`` wide and high
    (see MIN_BOX_SIZE)."""
    a, b = _at_least(a, min_size), _at_least(b, min_size)
    left = np.maximum(a[:, None, 0], b[None, :, 0])
    top = np.maximum(a[:, None, 1], b[None, :, 1])
    right = np.minimum(a[:, None, 2], b[None, :, 2])
    bottom = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(right - left, 0, None) * np.clip(bottom - top, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area_a[:, None] + area_b[None, :] - inter)  # > 0: every box has an area now


def match(reference: Detections, candidate: Detections, iou_threshold: float = MATCH_IOU) -> list[tuple[int, int]]:
    """``(candidate index, reference index)`` pairs, greedily by descending candidate score (stable for ties):
    each candidate detection takes the unmatched reference detection of its label with the highest IoU, when
    that IoU is at least ``iou_threshold``."""
    order = np.argsort(-candidate.scores, kind="stable")
    iou = box_iou(candidate.boxes[order], reference.boxes)
    eligible = (iou >= iou_threshold) & (candidate.labels[order][:, None] == reference.labels[None, :])
    taken = np.zeros(len(reference), dtype=bool)
    pairs = []
    for row, index in enumerate(order):
        options = np.where(eligible[row] & ~taken, iou[row], -1.0)
        if options.size and options.max() >= 0:
            best = int(options.argmax())
            taken[best] = True
            pairs.append((int(index), best))
    return pairs


class DetectionAgreement:
    """The running sums of one candidate's detection agreement with the reference (module docstring)."""

    def __init__(self, score_threshold: float = DEFAULT_SCORE_THRESHOLD):
        self.score_threshold = score_threshold
        self.images = 0
        self.reference = 0
        self.candidate = 0
        self.matched = 0
        self.iou_sum = 0.0
        self.drift_sum = 0.0
        self.max_drift = 0.0

    def update(self, reference: Detections, candidate: Detections) -> None:
        reference, candidate = reference.above(self.score_threshold), candidate.above(self.score_threshold)
        pairs = match(reference, candidate)
        self.images += 1
        self.reference += len(reference)
        self.candidate += len(candidate)
        self.matched += len(pairs)
        for c, r in pairs:
            self.iou_sum += float(box_iou(candidate.boxes[c], reference.boxes[r])[0, 0])
            drift = abs(float(candidate.scores[c]) - float(reference.scores[r]))
            self.drift_sum += drift
            self.max_drift = max(self.max_drift, drift)

    def result(self) -> dict:
        matched = self.matched
        return {"score_threshold": self.score_threshold, "iou_threshold": MATCH_IOU, "images": self.images,
                "reference": self.reference, "candidate": self.candidate, "matched": matched,
                "found": matched / self.reference if self.reference else None,
                "extra": self.candidate - matched,
                "mean_iou": self.iou_sum / matched if matched else None,
                "score_drift": self.drift_sum / matched if matched else None,
                "max_score_drift": self.max_drift if matched else None}
