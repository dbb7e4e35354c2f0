"""Frames sampled evenly across a video file (PyAV), for calibration sets: every scene, not the first seconds.

Frame ``k`` of ``n`` is the first frame at or after time ``(k + phase) / n * duration``, phase 0.5 by default
(``phase=0`` picks frames between those, for a held-out set from the same video). With a known
duration the reader seeks to each target (from the preceding keyframe), so a long video costs ``n`` short
decodes rather than one full decode; without a duration (some streams do not say) it decodes through once,
counting frames first. Either way the same file and ``n`` give the same frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm", ".ts", ".mpg", ".mpeg", ".wmv", ".flv"}


@dataclass(frozen=True)
class VideoFrame:
    index: int  # k of n
    time: float  # seconds from the start of the stream
    rgb: np.ndarray  # (H, W, 3) uint8


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def open_video(path: Path):
    """The container of the video at ``path`` (a UserError when it cannot be opened or has no video)."""
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:  # av.error.* for missing codecs, non-video bytes, ...
        raise UserError(f"cannot open video {str(path)!r}: {exc}") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{str(path)!r} has no video stream")
    return container


def _duration(container, stream) -> float | None:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / 1_000_000  # av.time_base: microseconds
    return None


def sample_frames(path: str | Path, count: int, phase: float = 0.5) -> list[VideoFrame]:
    """``count`` frames spread evenly over the video (fewer if the video is shorter)."""
    path = Path(path)
    if count < 1:
        return []
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        duration = _duration(container, stream)
        if duration:
            frames = _by_seeking(container, stream, duration, count, phase)
            if len(frames) == count:
                return frames
        # no duration, or fewer frames than asked (a short video): count them and pick by position
        return _by_decoding(path, count, phase)
    finally:
        container.close()


def _seconds(frame, stream) -> float:
    return float(frame.pts * (frame.time_base or stream.time_base)) if frame.pts is not None else 0.0


def _by_seeking(container, stream, duration: float, count: int, phase: float) -> list[VideoFrame]:
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    frames, last_time = [], None
    for k in range(count):
        target = start + (k + phase) / count * duration
        container.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
        picked = None
        for frame in container.decode(stream):
            if _seconds(frame, stream) + 1e-6 >= target:
                picked = frame
                break
        if picked is None:
            break  # past the last frame
        time = _seconds(picked, stream)
        if time == last_time:
            continue  # a video with fewer frames than count: no duplicates
        last_time = time
        frames.append(VideoFrame(k, time, picked.to_ndarray(format="rgb24")))
    return frames


def _by_decoding(path: Path, count: int, phase: float) -> list[VideoFrame]:
    container = open_video(path)
    try:
        total = sum(1 for _ in container.decode(video=0))
    finally:
        container.close()
    wanted = sorted({min(total - 1, int((k + phase) * total / count)) for k in range(count)}) if total else []
    wanted_set, frames = set(wanted), []
    container = open_video(path)
    try:
        stream = container.streams.video[0]
        for position, frame in enumerate(container.decode(stream)):
            if position in wanted_set:
                frames.append(VideoFrame(len(frames), _seconds(frame, stream), frame.to_ndarray(format="rgb24")))
                if len(frames) == len(wanted):
                    break
    finally:
        container.close()
    return frames
