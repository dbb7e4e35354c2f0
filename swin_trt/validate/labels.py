"""Labels for validation images (or, for a clip model, videos): ImageFolder class folders or a labels file,
mapped to class indices."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.clips import list_videos
from ..data.images import ImageItem, list_images
from ..errors import UserError

log = logging.getLogger(__name__)


@dataclass
class Labelled:
    items: list[ImageItem]
    labels: np.ndarray  # class index per item, -1 where unknown
    mapping: str | None = None  # how labels became indices: "class_names", "index" or "imagefolder"
    no_clips: set = field(default_factory=set)  # a clip model's videos that gave no clip (unreadable, too short)


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


def list_videos_labelled(data: str | Path, labelled: bool = True) -> list[ImageItem]:
    """The videos under ``data`` (a folder, recursive, or one video), labelled by their folder's name as images
    are (ImageFolder)."""
    source = Path(data)
    return [ImageItem(p, p.parent.name if labelled and p.parent != source else None) for p in list_videos(source)]


def list_labelled(data: str | Path, labels_file: str | Path | None = None,
                  videos: bool = False) -> tuple[list[ImageItem], str | None]:
    """The images of ``data`` with their labels, and where the labels came from (``None``: unlabelled).
    ``videos``: the video files instead (a clip model's data), labelled the same ways."""
    if labels_file is None:
        items = list_videos_labelled(data) if videos else list_images(data)
        return items, ("folders" if any(i.label is not None for i in items) else None)
    labels = read_labels_file(labels_file, data)
    listed = list_videos_labelled(data, labelled=False) if videos else list_images(data, labelled=False)
    items = [ImageItem(i.path, labels.get(Path(i.path).resolve())) for i in listed]
    missing = len(labels) - sum(i.label is not None for i in items)
    if missing:
        log.warning("%d entries of %s name no %s under %s", missing, labels_file, "video" if videos else "image",
                    data)
    return items, "labels_file"
