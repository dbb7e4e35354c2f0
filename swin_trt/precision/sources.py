"""Calibration images from a folder (recursive), a text file of paths, or a video (frames sampled evenly); for a
clip model (a :class:`~swin_trt.data.clips.ClipPreprocessor`), clips from a video or a folder of videos
(recursive), spread evenly over the videos and over each video's clips.

Yields preprocessed ``(H, W, 3)`` uint8 crops (a clip: ``(T, H, W, 3)``) one at a time, skipping (with a
warning that names the file) anything that is not a readable image. :meth:`CalibrationSource.fingerprint` is the content of exactly the
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

from ..data.clips import (ClipOptions, ClipPreprocessor, clip_starts, frame_count, list_videos, not_clips_error,
                          read_clips, videos_fingerprint)
from ..data.images import list_images, other_files, suffixes_text
from ..data.volumes import VolumePreprocessor, is_volume, list_volumes, read_fitted, volume_suffixes_text
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

    def __init__(self, source: str | Path, num: int, clips: ClipOptions | None = None):
        self.source = Path(source)
        self.num = num
        self.clips = clips or ClipOptions()  # what the key counts; the clips read follow the preprocessor
        self.used: list[str] = []
        self.skipped: list[str] = []
        if not self.source.exists():
            raise UserError(f"calibration data {str(self.source)!r} does not exist: pass a folder of images, "
                            f"a video file or a .txt file with one image path per line")
        if self.source.is_dir() or is_volume(self.source):
            self.kind = "folder"
            paths = [item.path for item in list_images(self.source, labelled=False)] if self.source.is_dir() else []
            if not paths and list_volumes(self.source):  # .npy/.nii volumes of a 3D model (data/volumes.py)
                self.kind, paths = "volumes", list_volumes(self.source)
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

    def _warn_other_files(self) -> None:
        others = other_files(self.source)
        if others:
            shown = ", ".join(str(p.relative_to(self.source)) for p in others[:5])
            more = f" and {len(others) - 5} more" if len(others) > 5 else ""
            _warn(f"skipping {len(others)} non-image file(s) in {self.source}: {shown}{more} "
                  f"(images are {suffixes_text()})")

    def _name(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.source if self.kind == "folder" else self.source.parent))
        except ValueError:
            return str(path)

    def crops(self, preprocessor: Preprocessor | ClipPreprocessor) -> Iterator[np.ndarray]:
        if isinstance(preprocessor, VolumePreprocessor) or self.kind == "volumes":
            yield from self._volumes(preprocessor)
            return
        if isinstance(preprocessor, ClipPreprocessor):
            yield from self._clips(preprocessor)
            return
        if self.kind == "folder":
            self._warn_other_files()
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

    def _volumes(self, preprocessor) -> Iterator[np.ndarray]:
        """The volumes of a volume model, ``(C, D, H, W)``, each checked against the graph's input."""
        if not isinstance(preprocessor, VolumePreprocessor):
            raise UserError(f"calibration data {str(self.source)!r} holds volumes ({volume_suffixes_text()}), but "
                            f"the model takes {'clips' if isinstance(preprocessor, ClipPreprocessor) else 'images'}")
        if self.kind != "volumes":
            raise UserError(f"calibration data {str(self.source)!r}: no volumes ({volume_suffixes_text()}) in it, "
                            f"but the model takes volumes {preprocessor.describe_shape()} (C, D, H, W): pass a "
                            f"volume or a folder of them")
        names = [self._name(p) for p in self._paths]
        for path, volume in read_fitted(self._paths, preprocessor, names, self.skipped):
            self.used.append(self._name(path))
            yield volume

    def check_clips(self, preprocessor: ClipPreprocessor) -> list[Path]:
        """The videos a clip model reads from this source; images instead are an error."""
        videos = list_videos(self.source) if self.kind in ("folder", "video") else []
        if not videos:
            what = {"list": "a list of images", "folder": f"no video (it has {len(self._paths)} image(s))"}
            raise not_clips_error(self.source, what.get(self.kind, "no video"), preprocessor)
        return videos

    def _clips(self, preprocessor: ClipPreprocessor) -> Iterator[np.ndarray]:
        """``num`` clips spread evenly over the videos, and evenly over each video's clips."""
        videos = self.check_clips(preprocessor)
        self._clip_videos = videos
        counts = [frame_count(path) for path in videos]
        starts = [clip_starts(count, preprocessor.length, preprocessor.stride) for count in counts]
        every = [(v, s) for v, video_starts in enumerate(starts) for s in video_starts]
        chosen = [every[i] for i in evenly(len(every), self.num)]
        for index, path in enumerate(videos):
            wanted = {s for v, s in chosen if v == index}
            if not starts[index]:
                _warn(f"skipping {path}: {counts[index]} frame(s), fewer than a clip of {preprocessor.length}")
                self.skipped.append(self._name(path))
                continue
            if not wanted:
                continue
            for clip in read_clips(path, preprocessor, wanted):
                self.used.append(f"{self._name(path)}@{clip.first}-{clip.last}")
                yield clip.pixels

    @property
    def candidates(self) -> int:
        return self.num if self.kind == "video" else len(self._paths)

    def image_sha256(self) -> list[str]:
        """The content hashes of the images (or the videos clips were read from) this source selects (sorted),
        to spot them in other data sets."""
        hashes = set()
        for path in getattr(self, "_clip_videos", None) or self._paths:
            try:
                hashes.add(sha256_file(path))
            except OSError:
                continue
        return sorted(hashes)

    def fingerprint(self) -> str:
        """The selected files' content (a video: the file and how many frames are sampled from it); a folder
        with videos also counts the videos' content (what a clip model reads), and clip options given count
        too."""
        clips = f"\nclips {self.clips.length} {self.clips.stride}" if self.clips.given else ""
        if self.kind == "video":
            return content_fingerprint([(self.source.name, self.source)], extra=f"\n{self.num} frames{clips}")
        videos = videos_fingerprint(self.source) if self.kind == "folder" else None
        extra = (f"\nvideos {videos}" if videos else "") + clips
        return content_fingerprint(((self._name(p), p) for p in self._paths), extra=extra)
