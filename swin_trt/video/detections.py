"""A detector's outputs for one frame: its boxes taken back to the frame's own pixels, with labels and scores.

The model sees the frame fitted to its input (:class:`~swin_trt.preprocess.Preprocessor`: the whole frame
stretched, or resized and centre-cropped), and answers in that input's pixels. A box goes back through the
same fit, as validate maps boxes for COCO (:func:`swin_trt.validate.coco.to_source_pixels`): scaled from the
input to the part of the frame the model saw and moved to where that part lies, so ``box_space`` "frame" means
x1, y1, x2, y2 in pixels of the frame as decoded (0..width, 0..height). With a centre crop, nothing outside the
crop is seen, and a box stops at its edge.

Which outputs are the boxes, scores and labels is found by name and shape, as ``validate`` finds them
(:mod:`swin_trt.data.detection_outputs`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..preprocess import Preprocessor
from ..validate.coco import to_source_pixels
from ..data.detection_outputs import DetectionOutputs, find_detection_outputs

# infer --score-threshold: what a deployment acts on (torchvision's and detectron2's demos draw from 0.5);
# validate compares detections from 0.05 down, where COCO evaluation starts.
DEFAULT_SCORE_THRESHOLD = 0.5
BOX_SPACE = "frame"  # boxes are x1, y1, x2, y2 in pixels of the decoded frame


@dataclass(frozen=True)
class FrameDetections:
    """One frame's detections above the threshold, best first, boxes in the frame's pixels."""

    boxes: np.ndarray  # (N, 4) float64: x1, y1, x2, y2
    scores: np.ndarray  # (N,)
    class_ids: np.ndarray  # (N,) int64
    frame_size: tuple[int, int]  # (width, height)

    def __len__(self) -> int:
        return len(self.scores)


def detection_layout(names: list[str], outputs: list[np.ndarray]) -> DetectionOutputs | None:
    """Where a detector's boxes, scores and labels are among one frame's ``outputs``; ``None`` for a model
    whose outputs are not detections (a classifier's (1, classes) logits, a segmentation map)."""
    if len(outputs) < 2:
        return None
    return find_detection_outputs(names, outputs)


def frame_detections(layout: DetectionOutputs, names: list[str], outputs: list[np.ndarray],
                     preprocessor: Preprocessor, frame_size: tuple[int, int], threshold: float) -> FrameDetections:
    """The detections of one frame at or above ``threshold``, best first, in the frame's pixels."""
    found = layout.detections(outputs, names).above(threshold)
    order = np.argsort(-found.scores, kind="stable")
    width, height = frame_size
    return FrameDetections(to_source_pixels(found.boxes[order], preprocessor, width, height), found.scores[order],
                           found.labels[order], (width, height))


def label_name(labels: list[str] | None, class_id: int) -> str:
    """A class id's name: line ``class_id`` of the labels (torchvision's ids count the background as 0)."""
    return labels[class_id] if labels is not None and 0 <= class_id < len(labels) else f"class_{class_id}"
