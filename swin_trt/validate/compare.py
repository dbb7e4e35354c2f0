"""Run a reference and candidates on the same preprocessed images and compare their outputs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..backends import Backend
from ..data.images import ImageItem, list_images, open_rgb
from ..data.preprocess import Preprocessor
from ..errors import UserError
from .metrics import Agreement, ErrorHistogram


@dataclass
class Labelled:
    items: list[ImageItem]
    labels: np.ndarray  # class index per item, -1 where unknown
    mapping: str | None = None  # how labels became indices: "class_names", "index" or "imagefolder"


def label_items(items: list[ImageItem], class_names: list[str]) -> Labelled:
    """Labels -> class indices: the model's class names, else numeric labels, else ImageFolder's rule.

    ImageFolder's rule (sorted folder names -> 0..N-1) applies only when the model has no class names and
    the labels are not numbers: it is what torchvision trained such a model with.
    """
    names = [item.label for item in items if item.label is not None]
    index, mapping = {name: i for i, name in enumerate(class_names)}, "class_names"
    if not class_names and names and not all(n.isdigit() for n in names):
        index, mapping = {name: i for i, name in enumerate(sorted(set(names)))}, "imagefolder"
    labels, used = [], set()
    for item in items:
        label = item.label
        if label in index:
            labels.append(index[label])
            used.add(mapping)
        elif label is not None and label.isdigit():
            labels.append(int(label))
            used.add("index")
        else:
            labels.append(-1)
    return Labelled(items, np.asarray(labels, dtype=np.int64), "+".join(sorted(used)) or None)


def read_labels_file(labels_file: str | Path, data: str | Path) -> dict[Path, str]:
    """``relative/path label`` per line (``#`` comments) -> {resolved path: label}.

    Paths are relative to the data folder (or to the labels file when the data is not a folder); the
    label is the last whitespace-separated word, so paths may contain spaces.
    """
    labels_file, data = Path(labels_file), Path(data)
    if not labels_file.is_file():
        raise UserError(f"labels file {str(labels_file)!r} does not exist")
    base = data if data.is_dir() else labels_file.parent
    labels = {}
    for number, line in enumerate(labels_file.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.rsplit(None, 1)
        if len(parts) != 2:
            raise UserError(f"{labels_file}:{number}: expected 'relative/path label', got {line!r}")
        labels[(base / parts[0]).resolve()] = parts[1]
    return labels


def list_labelled(data: str | Path, labels_file: str | Path | None = None) -> tuple[list[ImageItem], str | None]:
    """The images of ``data`` with their labels, and where the labels came from (``None``: unlabelled)."""
    if labels_file is None:
        items = list_images(data)
        return items, ("folders" if any(i.label is not None for i in items) else None)
    labels = read_labels_file(labels_file, data)
    items = [ImageItem(i.path, labels.get(Path(i.path).resolve())) for i in list_images(data, labelled=False)]
    missing = len(labels) - sum(i.label is not None for i in items)
    if missing:
        warnings.warn(f"{missing} entries of {labels_file} name no image under {data}", stacklevel=2)
    return items, "labels_file"


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
    """Metrics per candidate (keys of ``candidates``) against ``reference``, plus the reference's accuracy.

    Only running sums live across batches (see :mod:`.metrics`), so memory does not grow with the data.
    """
    ref_metrics = Agreement()
    metrics = {name: Agreement() for name in candidates}
    histograms = {name: ErrorHistogram() for name in candidates}
    has_labels = bool((data.labels >= 0).any())
    for pixels, labels in batches(data, preprocessor, batch, progress):
        expected = reference.infer_padded(pixels)[0]
        ref_metrics.update(expected, expected, labels if has_labels else None)
        for name, backend in candidates.items():
            got = backend.infer_padded(pixels)[0]
            if got.shape != expected.shape:
                raise UserError(f"{name} outputs shape {got.shape[1:]} per image, the reference "
                                f"{expected.shape[1:]}: compare models of the same head")
            metrics[name].update(expected, got, labels if has_labels else None)
            histograms[name].update(expected, got)
    if ref_metrics.count == 0:
        raise UserError("no readable images in the data source: every file was skipped (see the warnings)")
    reference_result = {k: v for k, v in ref_metrics.result().items() if k in ("images", "labelled", "acc1", "acc5")}
    results = {}
    for name, agreement in metrics.items():
        result = agreement.result()
        if has_labels and "acc1" in reference_result:
            result["acc1_change"] = result["acc1"] - reference_result["acc1"]
            result["acc5_change"] = result["acc5"] - reference_result["acc5"]
        result["error_histogram"] = histograms[name].result()
        results[name] = result
    return {"reference": reference_result, "candidates": results}


def _torch_preprocessing(spec: str) -> tuple[Preprocessor, list[str]]:
    from ..models import get_arch

    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[1]:
        raise UserError(f"reference {spec!r}: write torch:<arch> or torch:<arch>:<checkpoint>")
    arch = get_arch(parts[1])
    config = arch.config
    preprocessor = Preprocessor.from_sidecar({"preprocessing": arch.preprocessing.to_dict(config.img_size)})
    return preprocessor, list(config.class_names)


def resolve_preprocessing(*models: str | Path) -> tuple[Preprocessor, list[str]]:
    """Preprocessing and class names from the first model that records them.

    An ONNX model's export sidecar (``<model>.onnx.json``) or an engine's manifest (``<model>.engine.json``)
    records them; a ``torch:<arch>`` spec has them in the arch's registry entry.
    """
    from ..io import read_sidecar

    for model in models:
        if str(model).startswith("torch:"):
            return _torch_preprocessing(str(model))
        sidecar = read_sidecar(model) if Path(model).is_file() else None
        if sidecar and "preprocessing" in sidecar:
            return Preprocessor.from_sidecar(sidecar), list(sidecar.get("config", {}).get("class_names") or [])
    raise UserError(f"none of {', '.join(map(str, models))} has a sidecar (<model>.onnx.json or "
                    f"<model>.engine.json) saying how to preprocess images: export with `swin-trt export`, "
                    f"or copy the sidecar")
