"""Image sources: a folder (recursive), a text file of paths, or one image; labels from folder names."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import UserError
from ..io import content_fingerprint

log = logging.getLogger(__name__)

# What every command reads as an image (calibrate, validate, infer alike), all formats Pillow decodes.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")


def suffixes_text() -> str:
    """``jpg, jpeg, png, ...``: the image formats, for messages."""
    return ", ".join(s.lstrip(".") for s in IMAGE_SUFFIXES)


@dataclass(frozen=True)
class ImageItem:
    path: Path
    label: str | None = None  # the class folder's name in an ImageFolder layout


def list_images(source: str | Path, labelled: bool = True) -> list[ImageItem]:
    """Every image under ``source`` in a stable (sorted) order.

    ``source`` is a folder (searched recursively; files directly in class sub-folders get that folder's name
    as label), a ``.txt`` file with one path per line (relative to the file; an optional second
    whitespace-separated column is the label), or a single image file.
    """
    source = Path(source)
    if not source.exists():
        raise UserError(f"data source {str(source)!r} does not exist: pass a folder of images, a .txt list of "
                        f"paths, or an image")
    if source.is_file() and source.suffix.lower() == ".txt":
        items = []
        for number, line in enumerate(source.read_text().splitlines(), 1):
            parts = line.split()
            if not parts or parts[0].startswith("#"):
                continue
            path = Path(parts[0]) if Path(parts[0]).is_absolute() else source.parent / parts[0]
            items.append(ImageItem(path, parts[1] if len(parts) > 1 else None))
        return items
    if source.is_file():
        return [ImageItem(source)]
    files = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    return [ImageItem(p, p.parent.name if labelled and p.parent != source else None) for p in files]


def images_fingerprint(source: str | Path, limit: int | None = None) -> str:
    """The content of the images :func:`list_images` reads from ``source`` (the first ``limit``), and their
    labels: what a stage that reads them depends on, wherever they lie. Videos under ``source`` (what a clip
    model reads, :mod:`.clips`) count too, by content, with their folders' names."""
    from .clips import videos_fingerprint

    items = list_images(source)
    items = items[:limit] if limit else items
    labels = "\n".join(f"{item.path.name}\t{item.label}" for item in items if item.label)
    videos = videos_fingerprint(source) if Path(source).exists() else None
    extra = labels + (f"\nvideos {videos}" if videos else "")
    from .volumes import volumes_fingerprint  # a volume model's .npy/NIfTI files count too

    volumes = volumes_fingerprint(source)
    extra += f"\nvolumes {volumes}" if volumes else ""
    return content_fingerprint(((str(item.path), item.path) for item in items), extra=extra)


def other_files(folder: Path) -> list[Path]:
    """The files under ``folder`` that :func:`list_images` passes over (not images by their suffix)."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() not in IMAGE_SUFFIXES)


def open_rgb(path: Path) -> Image.Image | None:
    """The image as RGB, or ``None`` with a warning naming the file when it cannot be decoded."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        log.warning("skipping %s: not a readable image (%s)", path, exc)
        return None
