"""Run a reference and candidates on the same preprocessed images and compare every output they have.

Outputs are matched by position (a rewritten or quantized graph keeps its outputs in order; names may be
whatever the user exported). Each output gets a kind from its shape per image:

* ``logits`` ``(classes,)``: top-1/top-5 agreement per image, accuracy with labels;
* ``class_map`` ``(classes, H, W)``, the only output of a dense model: agreement of the argmax per pixel
  (``pixel_agreement``), mean-IoU agreement with the reference, and with label masks (``--masks``) the true
  mIoU and its change (:mod:`.segmentation`);
* ``features``: anything else (several stage maps, token sequences): error metrics only.

The candidate's top-level metrics are those of its first output; ``outputs`` has them for every output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends import Backend
from ..data.images import open_rgb
from ..data.preprocess import Preprocessor
from ..errors import UserError
from ..progress import progress_bar
from .labels import Labelled
from .metrics import Agreement, ErrorHistogram
from .segmentation import REFERENCE_SEGMENTATION_KEYS, MaskSet, SegmentationMetrics

OUTPUT_KINDS = ("logits", "class_map", "features")


def output_kind(per_image_shape: tuple, outputs: int) -> str:
    if len(per_image_shape) == 1:
        return "logits"
    if len(per_image_shape) == 3 and outputs == 1:
        return "class_map"
    return "features"


def batches(data: Labelled, preprocessor: Preprocessor, batch: int, progress: bool = True):
    """Yield ``(pixels (B,3,H,W) float32, labels, paths)``; unreadable files are skipped with a warning."""
    pending, pending_labels, pending_paths = [], [], []
    with progress_bar(len(data.items), "validate", "img", enabled=progress) as bar:
        for item, label in zip(data.items, data.labels):
            image = open_rgb(item.path)
            bar.update(1)
            if image is None:
                continue
            pending.append(preprocessor.to_uint8(image))
            pending_labels.append(label)
            pending_paths.append(item.path)
            if len(pending) == batch:
                yield preprocessor.normalize(np.stack(pending)), np.asarray(pending_labels), pending_paths
                pending, pending_labels, pending_paths = [], [], []
        if pending:
            yield preprocessor.normalize(np.stack(pending)), np.asarray(pending_labels), pending_paths


@dataclass
class _Output:
    name: str
    kind: str
    shape: tuple  # per image


class _CandidateMetrics:
    """Running metrics of one candidate: an Agreement per output, confusion matrices per class map, a
    histogram of the first output's errors."""

    def __init__(self, outputs: list[_Output]):
        self.outputs = outputs
        self.agreements = [Agreement(classes=o.kind != "features") for o in outputs]
        self.segmentation = [SegmentationMetrics(o.shape[0]) if o.kind == "class_map" else None for o in outputs]
        self.histogram = ErrorHistogram()

    def update(self, expected: list[np.ndarray], got: list[np.ndarray], labels, masks=None) -> None:
        for index, (agreement, ref, cand) in enumerate(zip(self.agreements, expected, got)):
            agreement.update(ref, cand, labels if index == 0 else None)
            if self.segmentation[index] is not None:
                self.segmentation[index].update(ref, cand, masks)
        self.histogram.update(expected[0], got[0])

    def result(self, class_names: list[str] | None = None) -> dict:
        per_output = []
        for output, agreement, segmentation in zip(self.outputs, self.agreements, self.segmentation):
            values = agreement.result()
            values.pop("images")
            values = {k: v for k, v in values.items() if k not in ("labelled", "acc1", "acc5")}
            if segmentation is not None:
                values.update(segmentation.result(class_names))
            per_output.append({"name": output.name, "kind": output.kind, "shape": list(output.shape), **values})
        primary = self.agreements[0].result()
        if self.segmentation[0] is not None:
            primary.update(self.segmentation[0].result(class_names))
        return {**primary, "output_kind": self.outputs[0].kind, "outputs": per_output,
                "error_histogram": self.histogram.result()}


def _describe_outputs(name: str, backend: Backend, outputs: list[np.ndarray]) -> list[_Output]:
    names = list(getattr(backend, "output_names", None) or [])
    names += [f"output{i}" for i in range(len(names), len(outputs))]
    return [_Output(n, output_kind(o.shape[1:], len(outputs)), tuple(o.shape[1:])) for n, o in zip(names, outputs)]


def _check_like(name: str, got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    if len(got) != len(expected):
        raise UserError(f"{name} has {len(got)} output(s), the reference {len(expected)}: compare models with the "
                        f"same outputs (the same head, or the same feature stages)")
    for index, (g, e) in enumerate(zip(got, expected)):
        if g.shape[1:] != e.shape[1:]:
            raise UserError(f"{name} output {index} has shape {list(g.shape[1:])} per image, the reference's "
                            f"{list(e.shape[1:])}: compare models of the same head and input size")


def _masks_for(masks: MaskSet, outputs: list[_Output]) -> tuple[int, int]:
    """The (H, W) the label masks are read at: the class map's. Models without one cannot use masks."""
    if outputs[0].kind != "class_map":
        shapes = ", ".join(f"{o.name} {list(o.shape)}" for o in outputs)
        raise UserError(f"--masks needs a segmentation model, whose one output is a class map (batch, classes, H, W);"
                        f" this one outputs {shapes}: drop --masks, or validate the model with its segmentation head")
    masks.classes = outputs[0].shape[0]
    return tuple(outputs[0].shape[1:])


def compare(reference: Backend, candidates: dict[str, Backend], data: Labelled, preprocessor: Preprocessor,
            batch: int = 8, progress: bool = True, masks: MaskSet | None = None,
            class_names: list[str] | None = None) -> dict:
    """Metrics per candidate (keys of ``candidates``) against ``reference``, plus the reference's accuracy.

    ``masks``: label masks for a class-map output, read batch by batch (true mIoU of reference and candidates).
    Only running sums live across batches (see :mod:`.metrics`, :mod:`.segmentation`), so memory does not
    grow with the data.
    """
    has_labels = bool((data.labels >= 0).any())
    ref_metrics, metrics, mask_size = None, {}, None
    for pixels, labels, paths in batches(data, preprocessor, batch, progress):
        expected = reference.infer_padded(pixels)
        labels = labels if has_labels else None
        if ref_metrics is None:
            outputs = _describe_outputs("reference", reference, expected)
            mask_size = _masks_for(masks, outputs) if masks is not None else None
            ref_metrics = _CandidateMetrics(outputs)
            metrics = {name: _CandidateMetrics(outputs) for name in candidates}
        truth = masks.batch(paths, preprocessor, mask_size) if masks is not None else None
        ref_metrics.update(expected, expected, labels, truth)
        for name, backend in candidates.items():
            got = backend.infer_padded(pixels)
            _check_like(name, got, expected)
            metrics[name].update(expected, got, labels, truth)
    if ref_metrics is None:
        raise UserError("no readable images in the data source: every file was skipped (see the warnings)")
    reference_all = ref_metrics.result(class_names)
    reference_result = {k: v for k, v in reference_all.items() if k in ("images", "labelled", "acc1", "acc5")
                        or k in REFERENCE_SEGMENTATION_KEYS}
    reference_result["outputs"] = [{k: o[k] for k in ("name", "kind", "shape")} for o in reference_all["outputs"]]
    results = {}
    for name, running in metrics.items():
        result = running.result(class_names)
        if "acc1" in reference_result and "acc1" in result:
            result["acc1_change"] = result["acc1"] - reference_result["acc1"]
            result["acc5_change"] = result["acc5"] - reference_result["acc5"]
        if reference_result.get("miou") is not None and result.get("miou") is not None:
            result["miou_change"] = result["miou"] - reference_result["miou"]
            result["pixel_accuracy_change"] = result["pixel_accuracy"] - reference_result["pixel_accuracy"]
        results[name] = result
    return {"reference": reference_result, "candidates": results}
