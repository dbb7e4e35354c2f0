"""Run a reference and candidates on the same preprocessed images and compare every output they have.

Before any number is compared, each model's outputs are laid out (:mod:`.layout`): which have a batch axis,
and so whether the model runs in batches or one image per call. Every element of every output is compared,
per image; an output without a batch axis (a batch-1 detector's ``boxes (N, 4)``) is its image's whole array.

Outputs are matched by position (a rewritten or quantized graph keeps its outputs in order; names may be
whatever the user exported). Each output gets a kind from its shape per image:

* ``boxes``, ``scores``, ``labels``: a detector's outputs, found by name and shape or named by the caller
  (:mod:`swin_trt.data.detection_outputs`): detection agreement with the reference above a score threshold
  (:mod:`.detection`), and with COCO annotations the true mAP and its change (:mod:`.coco`);
* ``logits`` ``(classes,)``: top-1/top-5 agreement per image, accuracy with labels;
* ``class_map`` ``(classes, H, W)``, the only output of a dense model: agreement of the argmax per pixel
  (``pixel_agreement``), mean-IoU agreement with the reference, and with label masks (``--masks``) the true
  mIoU and its change (:mod:`.segmentation`);
* ``features``: anything else (several stage maps, token sequences): error metrics only.

An output whose shape for an image differs between reference and candidate (another number of detections)
has no element to compare with: that image counts as a disagreement (cosine 0, ``shape_mismatches``), never
as a pass. Outputs with a batch axis in both models must have the same shape per image: models of different
heads are refused.

The candidate's top-level metrics are those of its first output; ``outputs`` has them for every output.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..backends import Backend
from ..data.clips import ClipPreprocessor, read_clips
from ..data.images import open_rgb
from ..preprocess import Preprocessor
from ..errors import UserError
from ..progress import progress_bar
from .coco import CocoAnnotations, CocoEvaluation
from .detection import DEFAULT_SCORE_THRESHOLD, DetectionAgreement
from ..data.detection_outputs import (OUTPUTS_HELP, DetectionOutputs, Detections, assigned_outputs,
                                find_detection_outputs, outputs_listing)
from .labels import Labelled
from .layout import OutputLayout, OutputValues, find_layout, run_batch
from .metrics import Agreement, ErrorHistogram
from .segmentation import REFERENCE_SEGMENTATION_KEYS, MaskSet, SegmentationMetrics
from ..data.volumes import VolumePreprocessor
from .volumes import volume_batches, volume_outputs

OUTPUT_KINDS = ("logits", "class_map", "features", "boxes", "scores", "labels")
CLASS_KINDS = ("logits", "class_map")  # the kinds with a class axis to take the argmax of

log = logging.getLogger(__name__)


def output_kind(per_image_shape: tuple, outputs: int) -> str:
    """The kind of an output that is not a detector's, from its shape per image."""
    if len(per_image_shape) == 1:
        return "logits"
    if len(per_image_shape) == 3 and outputs == 1:
        return "class_map"
    return "features"


@dataclass(frozen=True)
class DetectionRequest:
    """What the caller asks of detection outputs.

    ``outputs``: which output is which (``{"boxes": NAME, "scores": NAME, "labels": NAME}``), else found by
    name and shape; ``annotations``: COCO ground truth for the true mAP; ``required``: detection metrics were
    asked for, so a model whose outputs are not a detector's is an error rather than compared as features.
    """

    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    outputs: dict[str, str] | None = None
    annotations: CocoAnnotations | None = None
    required: bool = False


def batches(data: Labelled, preprocessor: Preprocessor | ClipPreprocessor, batch: int, progress: bool = True):
    """Yield ``(pixels (B,3,H,W) float32, labels, paths, sizes)``, ``sizes`` each image's ``(width, height)``
    before preprocessing; unreadable files are skipped with a warning. A clip model's (``preprocessor`` a
    :class:`~swin_trt.data.clips.ClipPreprocessor`): every clip of every video, ``(B, 3, T, H, W)``, each with
    its video's label."""
    if isinstance(preprocessor, ClipPreprocessor):
        yield from _clip_batches(data, preprocessor, batch, progress)
        return
    if isinstance(preprocessor, VolumePreprocessor):  # a volume model's .npy/NIfTI volumes (.volumes)
        yield from volume_batches(data, preprocessor, batch, progress)
        return
    pending, pending_labels, pending_paths, pending_sizes = [], [], [], []
    with progress_bar(len(data.items), "validate", "img", enabled=progress) as bar:
        for item, label in zip(data.items, data.labels):
            image = open_rgb(item.path)
            bar.update(1)
            if image is None:
                continue
            pending.append(preprocessor.to_uint8(image))
            pending_labels.append(label)
            pending_paths.append(item.path)
            pending_sizes.append(image.size)
            if len(pending) == batch:
                yield preprocessor.normalize(np.stack(pending)), np.asarray(pending_labels), pending_paths, \
                    pending_sizes
                pending, pending_labels, pending_paths, pending_sizes = [], [], [], []
        if pending:
            yield preprocessor.normalize(np.stack(pending)), np.asarray(pending_labels), pending_paths, pending_sizes


def _video_clips(path, preprocessor: ClipPreprocessor, data: Labelled):
    """The clips of one video; one that cannot be read, or is shorter than a clip, is skipped with a warning."""
    count, why = 0, f"no clip of {preprocessor.length} frames in it"
    try:
        for clip in read_clips(path, preprocessor):
            count += 1
            yield clip
    except UserError as exc:
        why = str(exc)
    if not count:
        if path not in data.no_clips:  # said once, however often the data are read
            log.warning("skipping %s: %s", path, why)
        data.no_clips.add(path)


def _clip_batches(data: Labelled, preprocessor: ClipPreprocessor, batch: int, progress: bool):
    pending, pending_labels, pending_paths, pending_sizes = [], [], [], []
    with progress_bar(len(data.items), "validate", "video", enabled=progress) as bar:
        for item, label in zip(data.items, data.labels):
            for clip in _video_clips(item.path, preprocessor, data):
                pending.append(clip.pixels)
                pending_labels.append(label)
                pending_paths.append(item.path)
                pending_sizes.append(clip.frame_size)
                if len(pending) == batch:
                    yield preprocessor.normalize(np.stack(pending)), np.asarray(pending_labels), pending_paths, \
                        pending_sizes
                    pending, pending_labels, pending_paths, pending_sizes = [], [], [], []
            bar.update(1)
        if pending:
            yield preprocessor.normalize(np.stack(pending)), np.asarray(pending_labels), pending_paths, pending_sizes


@dataclass
class _Output:
    name: str
    kind: str
    shape: tuple  # per image, on the first image (a detection count may change from image to image)
    batch_axis: bool


def _slice(values, index: int):
    return None if values is None else values[index:index + 1]


class _CandidateMetrics:
    """Running metrics of one candidate: an Agreement per output, confusion matrices per class map, a
    histogram of the first output's errors, and detection agreement where the model is a detector."""

    def __init__(self, outputs: list[_Output], detector: bool, score_threshold: float):
        self.outputs = outputs
        self.agreements = [Agreement(classes=o.kind in CLASS_KINDS) for o in outputs]
        self.segmentation = [SegmentationMetrics(o.shape[0]) if o.kind == "class_map" else None for o in outputs]
        self.histogram = ErrorHistogram()
        self.detection = DetectionAgreement(score_threshold) if detector else None

    def _update_output(self, index: int, reference: np.ndarray, candidate: np.ndarray, labels, masks) -> None:
        self.agreements[index].update(reference, candidate, labels if index == 0 else None)
        if self.segmentation[index] is not None:
            self.segmentation[index].update(reference, candidate, masks)
        if index == 0:
            self.histogram.update(reference, candidate)

    def update(self, expected: list[OutputValues], got: list[OutputValues], labels, masks=None,
               reference_detections: list[Detections] | None = None,
               candidate_detections: list[Detections] | None = None) -> None:
        for index, (ref, cand) in enumerate(zip(expected, got)):
            if ref.stacked is not None and cand.stacked is not None:  # both ran the batch in one go
                self._update_output(index, ref.stacked, cand.stacked, labels, masks)
                continue
            for image, (r, c) in enumerate(zip(ref.images, cand.images)):
                if r.shape == c.shape:
                    self._update_output(index, r[None], c[None], _slice(labels, image), _slice(masks, image))
                else:
                    self.agreements[index].count_shape_mismatch()
        if self.detection is not None:
            for ref, cand in zip(reference_detections, candidate_detections):
                self.detection.update(ref, cand)

    def result(self, class_names: list[str] | None = None) -> dict:
        per_output = []
        for output, agreement, segmentation in zip(self.outputs, self.agreements, self.segmentation):
            values = agreement.result()
            values.pop("images")
            values = {k: v for k, v in values.items() if k not in ("labelled", "acc1", "acc5")}
            if segmentation is not None:
                values.update(segmentation.result(class_names))
            per_output.append({"name": output.name, "kind": output.kind, "shape": list(output.shape),
                               "batch_axis": output.batch_axis, **values,
                               "shape_mismatches": agreement.shape_mismatches})
        primary = self.agreements[0].result()
        if self.segmentation[0] is not None:
            primary.update(self.segmentation[0].result(class_names))
        result = {**primary, "shape_mismatches": self.agreements[0].shape_mismatches,
                  "output_kind": self.outputs[0].kind, "outputs": per_output,
                  "error_histogram": self.histogram.result()}
        if self.detection is not None:
            result["detection"] = self.detection.result()
        return result


def _describe_outputs(layout: OutputLayout, values: list[OutputValues], roles: DetectionOutputs | None):
    described = []
    for index, (name, batch_axis, value) in enumerate(zip(layout.names, layout.batch_axis, values)):
        shape = tuple(value.images[0].shape)
        kind = (roles.role_of(index) if roles is not None else None) or output_kind(shape, len(values))
        described.append(_Output(name, kind, shape, batch_axis))
    return described


def _detection_outputs(names: list[str], first_image: list[np.ndarray],
                       request: DetectionRequest) -> DetectionOutputs | None:
    """The detector's outputs of the reference: as ``request.outputs`` names them, else found by name and
    shape; ``None`` for a model that is no detector, unless detection metrics were asked for."""
    if request.outputs:
        return assigned_outputs(request.outputs, names, first_image)
    roles = find_detection_outputs(names, first_image)
    if roles is None and request.required:
        raise UserError(f"detection metrics were asked for (`score_threshold`, `annotations` or a mAP gate), but "
                        f"the reference's outputs are not recognisable as boxes (N, 4), scores (N,) and labels "
                        f"(N,): its outputs per image are {outputs_listing(names, first_image)}; name them with "
                        f"`outputs` {OUTPUTS_HELP} (in Python a dict, {{'boxes': NAME, ...}})")
    return roles


def _check_like(name: str, reference: OutputLayout, candidate: OutputLayout, expected: list[OutputValues],
                got: list[OutputValues]) -> None:
    if len(got) != len(expected):
        raise UserError(f"{name} has {len(got)} output(s), the reference {len(expected)}: compare models with the "
                        f"same outputs (the same head, or the same feature stages)")
    for index, (g, e) in enumerate(zip(got, expected)):
        # Only where both have a batch axis is the shape per image fixed by the graph: any difference is
        # another head. Without one, the shape may follow the pixels (a detection count): compared per image.
        if reference.batch_axis[index] and candidate.batch_axis[index] and g.images[0].shape != e.images[0].shape:
            raise UserError(f"{name} output {index} has shape {list(g.images[0].shape)} per image, the reference's "
                            f"{list(e.images[0].shape)}: compare models of the same head and input size")


def _masks_for(masks: MaskSet, outputs: list[_Output]) -> tuple[int, int]:
    """The (H, W) the label masks are read at: the class map's. Models without one cannot use masks."""
    if outputs[0].kind != "class_map":
        shapes = ", ".join(f"{o.name} {list(o.shape)}" for o in outputs)
        raise UserError(f"`masks` needs a segmentation model, whose one output is a class map (batch, classes, H, W);"
                        f" this one outputs {shapes}: drop `masks`, or validate the model with its segmentation head")
    masks.classes = outputs[0].shape[0]
    return tuple(outputs[0].shape[1:])


def _detections(roles: DetectionOutputs, values: list[OutputValues], names: list[str]) -> list[Detections]:
    return [roles.detections([v.images[image] for v in values], names) for image in range(len(values[0].images))]


def compare(reference: Backend, candidates: dict[str, Backend], data: Labelled, preprocessor: Preprocessor,
            batch: int = 8, progress: bool = True, masks: MaskSet | None = None,
            class_names: list[str] | None = None, detection: DetectionRequest | None = None) -> dict:
    """Metrics per candidate (keys of ``candidates``) against ``reference``, plus the reference's accuracy.

    ``masks``: label masks for a class-map output, read batch by batch (true mIoU of reference and candidates).
    ``detection``: what to do with a detector's outputs (:class:`DetectionRequest`; found by name and shape by
    default). Only running sums live across batches (see :mod:`.metrics`, :mod:`.segmentation`,
    :mod:`.detection`), so memory does not grow with the data; with COCO annotations, the detections are kept
    for pycocotools to evaluate at the end.
    """
    detection = detection or DetectionRequest()
    has_labels = bool((data.labels >= 0).any())
    ref_metrics, metrics, mask_size, coco = None, {}, None, None
    layouts: dict[str, OutputLayout] = {}
    roles, names = None, []
    for pixels, labels, paths, sizes in batches(data, preprocessor, batch, progress):
        labels = labels if has_labels else None
        if ref_metrics is None:
            layouts = {name: find_layout(backend, pixels)
                       for name, backend in [("reference", reference), *candidates.items()]}
        expected = run_batch(reference, layouts["reference"], pixels)
        if ref_metrics is None:
            names = list(layouts["reference"].names)
            roles = _detection_outputs(names, [v.images[0] for v in expected], detection)
            outputs = _describe_outputs(layouts["reference"], expected, roles)
            if isinstance(preprocessor, VolumePreprocessor):
                outputs = volume_outputs(outputs)
            mask_size = _masks_for(masks, outputs) if masks is not None else None
            ref_metrics = _CandidateMetrics(outputs, roles is not None, detection.score_threshold)
            metrics = {name: _CandidateMetrics(outputs, roles is not None, detection.score_threshold)
                       for name in candidates}
            if detection.annotations is not None and roles is not None:
                coco = CocoEvaluation(detection.annotations, ["reference", *candidates])
        truth = masks.batch(paths, preprocessor, mask_size) if masks is not None else None
        found = _detections(roles, expected, names) if roles is not None else None
        ref_metrics.update(expected, expected, labels, truth, found, found)
        if coco is not None:
            coco.count(paths, sizes)
            coco.add("reference", found, paths, sizes, preprocessor)
        for name, backend in candidates.items():
            got = run_batch(backend, layouts[name], pixels)
            _check_like(name, layouts["reference"], layouts[name], expected, got)
            got_found = _detections(roles, got, names) if roles is not None else None
            metrics[name].update(expected, got, labels, truth, found, got_found)
            if coco is not None:
                coco.add(name, got_found, paths, sizes, preprocessor)
    if ref_metrics is None:
        unit = "clips" if isinstance(preprocessor, ClipPreprocessor) else "images"
        raise UserError(f"no readable {unit} in the data source: every file was skipped (see the warnings)")
    return _results(ref_metrics, metrics, coco, class_names)


def _results(reference: _CandidateMetrics, candidates: dict[str, _CandidateMetrics], coco: CocoEvaluation | None,
             class_names: list[str] | None) -> dict:
    """The reference's own numbers (accuracy, mIoU, detection count, mAP: it agrees with itself by definition)
    and each candidate's metrics with their changes against it."""
    reference_all = reference.result(class_names)
    reference_result = {k: v for k, v in reference_all.items() if k in ("images", "labelled", "acc1", "acc5")
                        or k in REFERENCE_SEGMENTATION_KEYS}
    reference_result["outputs"] = [{k: o[k] for k in ("name", "kind", "shape", "batch_axis")}
                                   for o in reference_all["outputs"]]
    if "detection" in reference_all:
        own = reference_all["detection"]
        reference_result["detection"] = {"score_threshold": own["score_threshold"], "images": own["images"],
                                         "detections": own["reference"]}
    results = {name: running.result(class_names) for name, running in candidates.items()}
    for result in results.values():
        if "acc1" in reference_result and "acc1" in result:
            result["acc1_change"] = result["acc1"] - reference_result["acc1"]
            result["acc5_change"] = result["acc5"] - reference_result["acc5"]
        if reference_result.get("miou") is not None and result.get("miou") is not None:
            result["miou_change"] = result["miou"] - reference_result["miou"]
            result["pixel_accuracy_change"] = result["pixel_accuracy"] - reference_result["pixel_accuracy"]
    document = {"reference": reference_result, "candidates": results}
    if coco is not None:
        reference_result.update(coco.evaluate("reference"))
        for name, result in results.items():
            result.update(coco.evaluate(name))
            for key in ("map", "ap50"):
                both = result[key] is not None and reference_result[key] is not None
                result[f"{key}_change"] = result[key] - reference_result[key] if both else None
        document["annotations"] = coco.summary()
    return document
