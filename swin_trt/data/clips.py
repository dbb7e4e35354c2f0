"""Clips from video files, for a Video Swin graph (input ``(B, 3, T, H, W)``): what calibrate, quantize's
``best``, validate and infer feed a clip model.

A clip is ``T`` consecutive frames of a video (``clip_len``, default the model's own T); consecutive clips
start ``clip_stride`` frames apart (default ``clip_len``: clips that do not overlap; less overlaps them, more
leaves frames out between them). Each frame gets the model's per-frame preprocessing (its sidecar's recipe, as
an image gets it) as it is decoded; :class:`ClipPreprocessor` stacks the frames and lays them out as the graph
takes them. :class:`ClipWindow` is the rolling buffer of the last ``T`` frames that both the file reader here
and ``infer``'s live loop (:mod:`swin_trt.video.inference_loop`) cut clips from, so a file and a camera give the
same clips.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import UserError
from ..io import content_fingerprint
from ..preprocess import Preprocessor
from .video_frames import VIDEO_SUFFIXES, is_video, open_video

log = logging.getLogger(__name__)


def video_suffixes_text() -> str:
    """``avi, flv, m4v, ...``: the video formats, for messages."""
    return ", ".join(sorted(s.lstrip(".") for s in VIDEO_SUFFIXES))


@dataclass(frozen=True)
class ClipOptions:
    """How clips are cut from a video; ``None`` = the model's (``length``: its T; ``stride``: the length)."""

    length: int | None = None  # `clip_len`
    stride: int | None = None  # `clip_stride`

    @property
    def given(self) -> bool:
        return self.length is not None or self.stride is not None

    def check(self) -> "ClipOptions":
        for name, value in (("clip_len", self.length), ("clip_stride", self.stride)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"`{name}` must be a whole number >= 1 (got {value!r})")
        return self

    def describe(self) -> str:
        return f"clip_len {self.length}, clip_stride {self.stride}"


@dataclass(frozen=True)
class ClipPreprocessor:
    """A clip model's input: ``frame`` (the per-frame recipe at the frame size), ``length`` frames per clip,
    clips ``stride`` frames apart. Stands where a :class:`~swin_trt.preprocess.Preprocessor` stands for an image
    model: ``crop``, ``recipe``, ``normalize``, ``to_dict``, ``describe``."""

    frame: Preprocessor
    length: int
    stride: int

    @property
    def crop(self):
        return self.frame.crop

    @property
    def recipe(self):
        return self.frame.recipe

    def input_shape(self, batch: int) -> tuple[int, ...]:
        """The graph's input for ``batch`` clips: ``(B, 3, T, H, W)``."""
        return (batch, 3, self.length, *self.frame.crop)

    def fit(self, image) -> np.ndarray:
        """One frame fitted to the frame size: ``(H, W, 3)`` uint8."""
        return self.frame.to_uint8(image)

    def to_uint8(self, frames: Sequence) -> np.ndarray:
        """``frames`` (images or ``(H, W, 3)`` arrays, already fitted or not) -> ``(T, H, W, 3)`` uint8."""
        fitted = [f if isinstance(f, np.ndarray) and f.shape[:2] == tuple(self.frame.crop) else self.fit(f)
                  for f in frames]
        return np.stack(fitted)

    def normalize(self, pixels: np.ndarray) -> np.ndarray:
        """``(..., T, H, W, 3)`` uint8 -> ``(..., 3, T, H, W)`` float32, each frame normalised."""
        out = self.frame.normalize(pixels)  # (..., T, 3, H, W)
        return np.ascontiguousarray(np.swapaxes(out, -4, -3))

    def source_box(self, width: int, height: int):
        return self.frame.source_box(width, height)

    def to_dict(self) -> dict:
        return {**self.frame.to_dict(), "layout": "NCTHW", "clip_len": self.length, "clip_stride": self.stride}

    def describe(self) -> str:
        return f"{self.frame.describe()}, clips of {self.length} frames every {self.stride} frames"


class ClipWindow:
    """The rolling buffer of the last ``length`` frames: :meth:`push` one frame at a time; it returns the clip
    (the buffered frames, oldest first) each time one is complete, ``stride`` frames after the previous one
    (the first after ``length`` frames). Frames between clips (``stride > length``) are never buffered."""

    def __init__(self, length: int, stride: int):
        self.length, self.stride = length, stride
        self.buffer: collections.deque = collections.deque(maxlen=length)
        self.seen = 0  # frames pushed

    def push(self, frame) -> list | None:
        position = self.seen
        self.seen += 1
        # the frames of the clip starting at k * stride are k * stride .. k * stride + length - 1
        start = position - position % self.stride if self.stride >= self.length else None
        if start is not None and position - start >= self.length:
            return None  # between clips: not part of any
        self.buffer.append(frame)
        done = self.seen - self.length
        if done >= 0 and done % self.stride == 0:
            return list(self.buffer)
        return None


def clip_starts(frames: int, length: int, stride: int) -> list[int]:
    """The first frame of every whole clip in a video of ``frames`` frames."""
    return list(range(0, frames - length + 1, stride)) if frames >= length else []


@dataclass
class Clip:
    """``length`` fitted frames of one video: ``pixels (T, H, W, 3)`` uint8, frames ``first``..``last``."""

    path: Path
    first: int
    last: int
    pixels: np.ndarray
    frame_size: tuple[int, int]  # (width, height) of the frames as decoded


def frame_count(path: str | Path) -> int:
    """The frames of a video: its header's count, else counted by decoding."""
    container = open_video(Path(path))
    try:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for _ in container.decode(stream))
    finally:
        container.close()


def read_clips(path: str | Path, preprocessor: ClipPreprocessor, wanted: set[int] | None = None) -> Iterator[Clip]:
    """Every clip of the video at ``path`` (or those whose first frame is in ``wanted``), in order, decoding
    the video once and fitting only the frames a clip needs. A video shorter than a clip gives none."""
    path = Path(path)
    container = open_video(path)
    length, stride = preprocessor.length, preprocessor.stride
    window = ClipWindow(length, stride)
    last_wanted = max(wanted) + length - 1 if wanted else None
    try:
        for position, frame in enumerate(container.decode(container.streams.video[0])):
            if last_wanted is not None and position > last_wanted:
                break
            needed = wanted is None or any(s in wanted for s in _clips_holding(position, length, stride))
            pixels = preprocessor.fit(frame.to_image()) if needed else None
            size = (frame.width, frame.height)
            clip = window.push((position, pixels))
            if clip is None:
                continue
            first = clip[0][0]
            if wanted is not None and first not in wanted:
                continue
            yield Clip(path, first, clip[-1][0], np.stack([p for _, p in clip]), size)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file: what was read stands, the rest is skipped
        log.warning("%s: decoding stopped early (%s)", path, exc)
    finally:
        container.close()


def _clips_holding(position: int, length: int, stride: int) -> range:
    """The first frames of the clips that frame ``position`` belongs to."""
    lowest = max(0, position - length + 1)
    first = -(-lowest // stride) * stride
    return range(first, position + 1, stride)


def list_videos(source: str | Path) -> list[Path]:
    """The video files of ``source`` (a video, or a folder searched recursively), sorted."""
    source = Path(source)
    if source.is_file():
        return [source] if is_video(source) else []
    if source.is_dir():
        return sorted(p for p in source.rglob("*") if p.is_file() and is_video(p))
    return []


def videos_fingerprint(source: str | Path, extra: str = "") -> str | None:
    """The content of the videos under ``source`` (``None`` when there are none)."""
    source = Path(source)
    videos = list_videos(source)
    if not videos:
        return None
    base = source if source.is_dir() else source.parent
    return content_fingerprint(((str(p.relative_to(base)), p) for p in videos), extra=extra)


def not_clips_error(source, what: str, preprocessor: ClipPreprocessor, parameter: str = "data") -> UserError:
    """What to say when a clip model is given ``what`` (images, a list of images) instead of videos."""
    return UserError(f"`{parameter}` {str(source)!r} holds {what}, but the model takes clips (B, 3, T, H, W) of "
                     f"{preprocessor.length} frames of {preprocessor.crop[0]}x{preprocessor.crop[1]}: pass a video "
                     f"file or a folder of videos ({video_suffixes_text()}); each clip is {preprocessor.length} "
                     f"frames (`clip_len`) every {preprocessor.stride} frames (`clip_stride`)")
