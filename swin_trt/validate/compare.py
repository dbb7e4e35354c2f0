"""Run a reference and candidates on the same preprocessed images and compare their outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..backends import Backend
from ..data.images import ImageItem, open_rgb
from ..data.preprocess import Preprocessor
from ..errors import UserError
from .metrics import Agreement


@dataclass
class Labelled:
    items: list[ImageItem]
    labels: np.ndarray  # class index per item, -1 where unknown


def label_items(items: list[ImageItem], class_names: list[str]) -> Labelled:
    index = {name: i for i, name in enumerate(class_names)}
    labels = []
    for item in items:
        label = item.label
        if label in index:
            labels.append(index[label])
        elif label is not None and label.isdigit():
            labels.append(int(label))
        else:
            labels.append(-1)
    return Labelled(items, np.asarray(labels, dtype=np.int64))


def batches(data: Labelled, preprocessor: Preprocessor, batch: int, progress: bool = True):
    """Yield ``(pixels (B,3,H,W) float32, labels)``; unreadable files are skipped with a warning."""
    pending, pending_labels = [], []
    bar = tqdm(total=len(data.items), desc="validate", unit="img", disable=not progress, leave=False)
    for item, label in zip(data.items, data.labels):
        image = open_rgb(item.path)
        bar.update(1)
        if image is None:
            continue
        pending.append(preprocessor.to_uint8(image))
        pending_labels.append(label)
        if len(pending) == batch:
            yield preprocessor.normalize(np.stack(pending)), np.asarray(pending_labels)
            pending, pending_labels = [], []
    if pending:
        yield preprocessor.normalize(np.stack(pending)), np.asarray(pending_labels)
    bar.close()


def compare(reference: Backend, candidates: dict[str, Backend], data: Labelled, preprocessor: Preprocessor,
            batch: int = 8, progress: bool = True) -> dict:
    """Metrics per candidate (keys of ``candidates``) against ``reference``, plus the reference's accuracy."""
    ref_metrics = Agreement()
    metrics = {name: Agreement() for name in candidates}
    has_labels = bool((data.labels >= 0).any())
    for pixels, labels in batches(data, preprocessor, batch, progress):
        expected = reference.infer_padded(pixels)[0]
        ref_metrics.update(expected, expected, labels if has_labels else None)
        for name, backend in candidates.items():
            metrics[name].update(expected, backend.infer_padded(pixels)[0], labels if has_labels else None)
    if ref_metrics.count == 0:
        raise UserError("no readable images in the data source: every file was skipped (see the warnings)")
    reference_result = {k: v for k, v in ref_metrics.result().items() if k in ("images", "acc1", "acc5")}
    results = {}
    for name, agreement in metrics.items():
        result = agreement.result()
        if has_labels and "acc1" in reference_result:
            result["acc1_change"] = result["acc1"] - reference_result["acc1"]
            result["acc5_change"] = result["acc5"] - reference_result["acc5"]
        results[name] = result
    return {"reference": reference_result, "candidates": results}


def resolve_preprocessing(*model_paths: str | Path) -> tuple[Preprocessor, list[str]]:
    """Preprocessing and class names from the first model that has an export sidecar."""
    from ..io import read_sidecar

    for path in model_paths:
        sidecar = read_sidecar(path) if str(path).endswith(".onnx") else None
        if sidecar and "preprocessing" in sidecar:
            return Preprocessor.from_sidecar(sidecar), list(sidecar.get("config", {}).get("class_names", []))
    raise UserError(f"none of {', '.join(map(str, model_paths))} has an export sidecar (<model>.onnx.json) "
                    f"saying how to preprocess images: export with `swin-trt export`, or copy the sidecar")
