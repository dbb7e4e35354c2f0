"""Calibration images from a folder (recursive), a text file of paths, or a video (frames sampled evenly).

Yields preprocessed ``(H, W, 3)`` uint8 crops one at a time, skipping (with a warning that names the file)
anything that is not a readable image. :meth:`CalibrationSource.fingerprint` is the content of exactly the
files the source selects: sha256 over the sorted ``name, size, sha256(content)`` lines. It can be taken
before any image is decoded (``compile`` keys its calibrate stage on it), gives the same value wherever the
data lies and whatever the files' times say, and changes when a single pixel of a selected image changes.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..data.images import list_images, other_files, suffixes_text
from ..preprocess import Preprocessor
from ..data.video_frames import VIDEO_SUFFIXES, is_video, sample_frames
from ..errors import UserError
from ..io import content_fingerprint, sha256_file

log = logging.getLogger(__name__)


def evenly(count: int, wanted: int) -> list[int]:
    """``wanted`` indices spread evenly over ``range(count)`` (all of them when ``wanted >= count``)."""
    if wanted >= count:
        return list(range(count))
    return [int((k + 0.5) * count / wanted) for k in range(wanted)]


def _warn(message: str) -> None:
    log.warning("%s", message)


class CalibrationSource:
    """``source`` -> ``num`` images; iterate :meth:`crops`, then read ``used``, ``skipped``, :meth:`fingerprint`."""

    def __init__(self, source: str | Path, num: int):
        self.source = Path(source)
        self.num = num
        self.used: list[str] = []
        self.skipped: list[str] = []
        if not self.source.exists():
            raise UserError(f"calibration data {str(self.source)!r} does not exist: pass a folder of images, "
                            f"a video file or a .txt file with one image path per line")
        if self.source.is_dir():
            self.kind = "folder"
            paths = self._folder_images()
        elif is_video(self.source):
            self.kind = "video"
            paths = []
        elif self.source.suffix.lower() in (".txt", ".lst", ".list"):
            self.kind = "list"
            paths = [item.path for item in list_images(self.source)]
        else:
            raise UserError(f"calibration data {str(self.source)!r} is neither a folder, a video "
                            f"({', '.join(sorted(s.lstrip('.') for s in VIDEO_SUFFIXES))}) nor a .txt list")
        self._paths = [paths[index] for index in evenly(len(paths), num)]  # what this source will read

    def _folder_images(self) -> list[Path]:
        others = other_files(self.source)
        if others:
            shown = ", ".join(str(p.relative_to(self.source)) for p in others[:5])
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            _warn(f"skipping {len(others)} non-image file(s) in {self.source}: {shown}{more} "
                  f"(images are {suffixes_text()})")
        return [item.path for item in list_images(self.source, labelled=False)]

    def _name(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.source if self.kind == "folder" else self.source.parent))
        except ValueError:
            return str(path)

    def crops(self, preprocessor: Preprocessor) -> Iterator[np.ndarray]:
        if self.kind == "video":
            yield from self._video_crops(preprocessor)
            return
        for path in self._paths:
            name = self._name(path)
            try:
                with Image.open(path) as image:
                    rgb = image.convert("RGB")
            except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
                _warn(f"skipping {path}: not a readable image ({type(exc).__name__}: {exc})")
                self.skipped.append(name)
                continue
            self.used.append(name)
            yield preprocessor.to_uint8(rgb)

    def _video_crops(self, preprocessor: Preprocessor) -> Iterator[np.ndarray]:
        for frame in sample_frames(self.source, self.num):
            self.used.append(f"{self.source.name}@{frame.time:.6f}s")
            yield preprocessor.to_uint8(frame.rgb)

    @property
    def candidates(self) -> int:
        return self.num if self.kind == "video" else len(self._paths)

    def image_sha256(self) -> list[str]:
        """The content hashes of the images this source selects (sorted), to spot them in other data sets."""
        hashes = set()
        for path in self._paths:
            try:
                hashes.add(sha256_file(path))
            except OSError:
                continue
        return sorted(hashes)

    def fingerprint(self) -> str:
        """The selected files' content (a video: the file and how many frames are sampled from it)."""
        if self.kind == "video":
            return content_fingerprint([(self.source.name, self.source)], extra=f"\n{self.num} frames")
        return content_fingerprint((self._name(p), p) for p in self._paths)
