"""Which outputs of a model are a detector's boxes, scores and labels, found by name and shape.

Per image (after the batch axis, where there is one, is taken off):

* ``boxes``: ``(N, 4)`` x1, y1, x2, y2 in the model's input pixels; or ``(N, 5)`` with the score as the fifth
  column (mmdeploy's ``dets``), then there is no separate scores output;
* ``scores``: ``(N,)``, the same N;
* ``labels``: ``(N,)``, the same N, integer class ids.

Names decide first (``boxes``/``bboxes``/``dets``, ``scores``/``conf``, ``labels``/``classes``/``class_ids``,
as words of the name: ``detection_boxes``, ``pred_labels``); where names do not, shapes do, and between two
``(N,)`` outputs the one that holds only whole numbers is the labels. A graph where that still leaves a doubt
has no detection outputs as far as this module can tell: ``outputs={"boxes": NAME, ...}`` (validate
``--outputs``) says which are which.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..errors import UserError

ROLES = ("boxes", "scores", "labels")
# Words that name a role, matched against the words of an output's name.
NAME_WORDS = {
    "boxes": {"boxes", "box", "bboxes", "bbox", "dets", "detections"},
    "scores": {"scores", "score", "conf", "confs", "confidence", "confidences"},
    "labels": {"labels", "label", "classes", "class", "cls", "ids", "categories", "category"},
}
OUTPUTS_HELP = "boxes=NAME,scores=NAME,labels=NAME"


@dataclass(frozen=True)
class Detections:
    """One image's detections: ``boxes (N, 4)`` x1, y1, x2, y2, ``scores (N,)``, ``labels (N,)`` int64."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def above(self, threshold: float) -> "Detections":
        keep = self.scores >= threshold
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep])


@dataclass(frozen=True)
class DetectionOutputs:
    """Output positions of boxes, scores and labels; ``scores`` is ``None`` when the boxes carry the score as
    their fifth column."""

    boxes: int
    scores: int | None
    labels: int

    def role_of(self, index: int) -> str | None:
        return {self.boxes: "boxes", self.scores: "scores", self.labels: "labels"}.get(index)

    def detections(self, outputs: list[np.ndarray], names: list[str]) -> Detections:
        """One image's detections from its outputs (in the model's order)."""
        boxes = np.asarray(outputs[self.boxes], dtype=np.float64)
        scores = boxes[:, 4] if self.scores is None else np.asarray(outputs[self.scores], dtype=np.float64)
        labels = np.asarray(outputs[self.labels])
        if boxes.ndim != 2 or not len(boxes) == len(scores) == len(labels):
            shown = ", ".join(f"{names[i]} {list(np.shape(outputs[i]))}"
                              for i in (self.boxes, self.scores, self.labels) if i is not None)
            raise UserError(f"the detection outputs disagree on the number of detections for an image ({shown}): "
                            f"boxes (N, 4), scores (N,) and labels (N,) need the same N")
        return Detections(boxes[:, :4], scores, np.rint(labels).astype(np.int64))


def _words(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower())) - {""}


def _named(role: str, name: str) -> bool:
    return bool(_words(name) & NAME_WORDS[role])


def _whole_numbers(values: np.ndarray) -> bool:
    values = np.asarray(values, dtype=np.float64)
    return values.size > 0 and bool(np.all(values == np.rint(values)) and np.all(values >= 0))


def _one(indices: list[int], names: list[str], role: str) -> int | None:
    """The single index among ``indices``: the only one, or the only one named for ``role``."""
    if len(indices) == 1:
        return indices[0]
    named = [i for i in indices if _named(role, names[i])]
    return named[0] if len(named) == 1 else None


def find_detection_outputs(names: list[str], outputs: list[np.ndarray]) -> DetectionOutputs | None:
    """The detection outputs among one image's ``outputs`` (per-image arrays, in order), or ``None`` where
    there are none or they cannot be told apart (see the module docstring)."""
    shapes = [np.shape(o) for o in outputs]
    boxes = _one([i for i, s in enumerate(shapes) if len(s) == 2 and s[1] in (4, 5)], names, "boxes")
    if boxes is None:
        return None
    count, columns = shapes[boxes]
    vectors = [i for i, s in enumerate(shapes) if s == (count,)]
    scores = _one([i for i in vectors if _named("scores", names[i])], names, "scores")
    labels = _one([i for i in vectors if _named("labels", names[i]) and i != scores], names, "labels")
    if columns == 5 and len(vectors) == 1:  # dets (N, 5) with the score inside, and one (N,): the labels
        return DetectionOutputs(boxes, None, vectors[0])
    if scores is not None and labels is not None:
        return DetectionOutputs(boxes, scores, labels)
    unnamed = [i for i in vectors if i not in (scores, labels)]
    if scores is None and labels is not None and len(unnamed) == 1:
        return DetectionOutputs(boxes, unnamed[0], labels)
    if labels is None and scores is not None and len(unnamed) == 1:
        return DetectionOutputs(boxes, scores, unnamed[0])
    if scores is None and labels is None and len(unnamed) == 2:
        whole = [i for i in unnamed if _whole_numbers(outputs[i])]
        if len(whole) == 1:  # labels are class ids; scores are not all whole numbers
            return DetectionOutputs(boxes, next(i for i in unnamed if i != whole[0]), whole[0])
    return None


def assigned_outputs(assigned: dict[str, str], names: list[str], outputs: list[np.ndarray]) -> DetectionOutputs:
    """The detection outputs named by ``assigned`` (``{"boxes": NAME, "scores": NAME, "labels": NAME}``;
    scores may be left out when the boxes are ``(N, 5)``), checked against one image's ``outputs``."""
    unknown = sorted(set(assigned) - set(ROLES))
    if unknown:
        raise UserError(f"outputs: unknown role(s) {', '.join(unknown)}: the roles are {', '.join(ROLES)} "
                        f"({OUTPUTS_HELP})")
    listing = outputs_listing(names, outputs)
    index = {}
    for role, name in assigned.items():
        if name not in names:
            raise UserError(f"outputs: {role}={name!r} is not an output of the model; its outputs are {listing}")
        index[role] = names.index(name)
    missing = [r for r in ("boxes", "labels") if r not in index]
    if missing:
        raise UserError(f"outputs: {' and '.join(missing)} not given: name boxes, scores and labels "
                        f"({OUTPUTS_HELP}); the model's outputs are {listing}")
    box_shape = np.shape(outputs[index["boxes"]])
    if len(box_shape) != 2 or box_shape[1] not in (4, 5) or ("scores" not in index and box_shape[1] != 5):
        need = "(N, 4) or (N, 5)" if "scores" in index else "(N, 5) (x1, y1, x2, y2, score) when no scores are named"
        raise UserError(f"outputs: boxes={assigned['boxes']!r} has shape {list(box_shape)} per image, not {need}; "
                        f"the model's outputs are {listing}")
    for role in ("scores", "labels"):
        if role in index and np.shape(outputs[index[role]]) != (box_shape[0],):
            raise UserError(f"outputs: {role}={assigned[role]!r} has shape {list(np.shape(outputs[index[role]]))} "
                            f"per image, not ({box_shape[0]},) like the boxes; the model's outputs are {listing}")
    if len(set(index.values())) != len(index):
        raise UserError(f"outputs: one output is given two roles ({assigned}): name a different output for each")
    return DetectionOutputs(index["boxes"], index.get("scores"), index["labels"])


def declares_detections(model) -> bool:
    """Whether an ONNX graph's declared outputs look like a detector's (see :func:`detection_shapes`)."""
    return detection_shapes([tuple(d.dim_value if d.HasField("dim_value") else None for d in o.type.tensor_type.shape.dim)
                             for o in model.graph.output])


def detection_shapes(shapes: list[tuple]) -> bool:
    """Whether outputs of these declared shapes (None or a negative number where a dim is dynamic) look like a
    detector's, before anything runs: boxes ``(N, 4|5)`` (or ``(B, N, 4|5)``) and, at one rank less, their
    scores and labels (or only labels beside ``(N, 5)`` boxes). Decides the preprocessing a detector gets when
    it records none (:mod:`swin_trt.data.model_input`)."""
    shapes = [tuple(d if isinstance(d, int) and d >= 0 else None for d in shape) for shape in shapes]
    for index, shape in enumerate(shapes):
        if len(shape) not in (2, 3) or shape[-1] not in (4, 5):
            continue
        count = shape[-2]
        companions = [s for i, s in enumerate(shapes) if i != index and len(s) == len(shape) - 1
                      and (s[-1] is None or count is None or s[-1] == count)]
        if len(companions) >= 2 or (companions and shape[-1] == 5):
            return True
    return False


def outputs_listing(names: list[str], outputs: list[np.ndarray]) -> str:
    """``name [shape]`` per output, per image: what an error shows so that ``--outputs`` can be written."""
    return ", ".join(f"{name} {list(np.shape(output))}" for name, output in zip(names, outputs))


def parse_outputs(text: str) -> dict[str, str]:
    """``"boxes=NAME,scores=NAME,labels=NAME"`` -> ``{"boxes": NAME, ...}``."""
    assigned = {}
    for part in (p.strip() for p in text.split(",")):
        role, sep, name = part.partition("=")
        role, name = role.strip().lower(), name.strip()
        if not sep or not name or role not in ROLES:
            raise UserError(f"{text!r} is not {OUTPUTS_HELP}: each part is ROLE=OUTPUT with ROLE one of "
                            f"{', '.join(ROLES)} (scores may be left out for (N, 5) boxes)")
        if role in assigned:
            raise UserError(f"{text!r} names {role} twice: name each role once ({OUTPUTS_HELP})")
        assigned[role] = name
    return assigned
