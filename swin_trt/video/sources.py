"""Frame sources: an image, a folder of images, a video file, a camera or a stream URL, as one iterator.

Everything that can go wrong when *opening* a source is a :class:`UserError` raised by :func:`open_source`,
before any output file exists. Once open, a frame that fails to decode is skipped and counted
(``Source.corrupt``), and a file that ends early (truncated) simply ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
from PIL import Image, ImageOps

from ..data.images import IMAGE_SUFFIXES, list_images, suffixes_text
from ..errors import UserError

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "http", "https", "udp", "tcp", "srt", "hls")
LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt")  # http(s) may serve a plain file
# A demuxer error mid-stream is retried (it resyncs on the next packet) this many times in a row, then the
# source ends: a dead network stream must not spin forever.
MAX_DEMUX_ERRORS = 3


@dataclass
class Frame:
    index: int  # position in the source, counting every decoded frame (also those --every skips)
    timestamp: float | None  # seconds, from pts * time_base; None for still images
    image: Image.Image  # RGB
    decoded_at: float  # time.perf_counter() when decoding finished: latency is measured from here
    name: str | None = None  # the file name, for image sources


class Source:
    """Iterate with :meth:`frames`; read ``corrupt`` and ``decode_s`` afterwards."""

    kind = "source"  # image | folder | file | camera | stream
    fps: float | None = None
    live = False  # frames arrive in real time by themselves (camera, stream): never paced

    def __init__(self, description: str):
        self.description = description
        self.corrupt = 0  # frames (or packets) that failed to decode, skipped
        self.decoded = 0  # frames decoded, including those --every skips
        self.decode_s = 0.0

    def frames(self, every: int = 1, limit: int | None = None) -> Iterator[Frame]:
        """Every ``every``-th frame, stopping after ``limit`` decoded frames."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class ImageSource(Source):
    def __init__(self, paths: list[Path], kind: str, description: str):
        super().__init__(description)
        self.paths, self.kind = paths, kind

    def frames(self, every: int = 1, limit: int | None = None) -> Iterator[Frame]:
        for index, path in enumerate(self.paths[:limit]):
            self.decoded += 1
            if index % every:
                continue  # a skipped image need not be read at all
            start = time.perf_counter()
            try:
                with Image.open(path) as image:
                    image = ImageOps.exif_transpose(image).convert("RGB")  # as a viewer shows the photo
            except (OSError, ValueError, Image.DecompressionBombError):
                self.corrupt += 1
                continue
            done = time.perf_counter()
            self.decode_s += done - start
            yield Frame(index, None, image, done, path.name)


class AVSource(Source):
    """A video file, camera or network stream through PyAV (FFmpeg)."""

    def __init__(self, container, kind: str, description: str, live: bool = False):
        super().__init__(description)
        self.container, self.kind, self.live = container, kind, live
        self.stream = container.streams.video[0]
        rate = self.stream.average_rate or self.stream.guessed_rate or self.stream.base_rate
        self.fps = float(rate) if rate else None

    def _packets(self):
        errors = 0
        while True:
            try:
                for packet in self.container.demux(self.stream):
                    errors = 0
                    yield packet
                return
            except av.error.EOFError:
                return
            except av.error.FFmpegError:
                errors += 1
                self.corrupt += 1
                if errors >= MAX_DEMUX_ERRORS:
                    return

    def frames(self, every: int = 1, limit: int | None = None) -> Iterator[Frame]:
        start = time.perf_counter()
        for packet in self._packets():
            try:
                decoded = packet.decode()
            except av.error.FFmpegError:  # a damaged packet: skip it, the decoder resyncs on the next
                self.corrupt += 1
                continue
            for frame in decoded:
                if frame.is_corrupt:
                    self.corrupt += 1
                    continue
                index = self.decoded
                self.decoded += 1
                keep = index % every == 0
                image = frame.to_image() if keep else None  # RGB conversion only for frames we use
                done = time.perf_counter()
                self.decode_s += done - start
                if keep:
                    timestamp = frame.time if frame.time is not None else (
                        index / self.fps if self.fps else None)
                    yield Frame(index, timestamp, image, done)
                if limit is not None and self.decoded >= limit:
                    return
                start = time.perf_counter()

    def close(self) -> None:
        self.container.close()


def classify(spec: str) -> str:
    """What ``spec`` names: image, folder, file, camera or stream (without touching it)."""
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else None
    if scheme in URL_SCHEMES:
        return "stream"
    if spec.startswith("/dev/video"):
        return "camera"
    path = Path(spec)
    if path.is_dir():
        return "folder"
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    return "file"


def _open_images(spec: str, kind: str) -> ImageSource:
    path = Path(spec)
    if kind == "folder":
        paths = [item.path for item in list_images(path, labelled=False)]  # as calibrate and validate list them
        if not paths:
            raise UserError(f"folder {spec!r} has no images ({suffixes_text()}): "
                            f"point SOURCE at a folder of images, an image or a video")
        return ImageSource(paths, kind, f"{len(paths)} images in {spec}")
    if not path.is_file():
        raise UserError(f"image {spec!r} does not exist: check the path")
    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as exc:  # PIL raises many types for bad bytes
        raise UserError(f"cannot read image {spec!r} ({exc}): pass a JPEG, PNG, ... file") from None
    return ImageSource([path], kind, f"image {spec}")


_HINTS = {
    "file": "check that it is a video FFmpeg can read (an MP4 cut off before its index cannot be opened)",
    "camera": "check that the device exists and no other program holds it (v4l2-ctl --list-devices)",
    "stream": "check the URL and credentials, and that the server is up and reachable from here",
}


def _open_av(spec: str, kind: str, timeout: float) -> AVSource:
    if kind == "file" and not Path(spec).is_file():
        raise UserError(f"source {spec!r} does not exist: pass an image, a folder, a video file, "
                        f"a camera (/dev/video0) or a stream URL (rtsp://...)")
    if kind == "camera" and not Path(spec).exists():
        raise UserError(f"camera {spec!r} does not exist: {_HINTS['camera']}")
    kwargs = {}
    if kind == "camera":
        kwargs["format"] = "v4l2"
    if kind != "file":
        kwargs["timeout"] = (timeout, timeout)  # open and per-read: a dead host fails instead of hanging
    start = time.monotonic()
    try:
        container = av.open(spec, **kwargs)
    except Exception as exc:  # FFmpegError, OSError (connection refused), ... all mean "cannot open"
        # An interrupted open reports "Immediate exit requested" or "Invalid data": say what happened.
        reason = (f"no answer within {timeout:g} s" if kind != "file" and time.monotonic() - start >= 0.9 * timeout
                  else _reason(exc))
        raise UserError(f"cannot open {kind} {spec!r} ({reason}): {_HINTS[kind]}") from None
    if not container.streams.video:
        container.close()
        raise UserError(f"{kind} {spec!r} has no video stream: pass a video, an image or a folder")
    # A live source delivers frames at its own pace; an http(s) URL of a file (it has a duration) does not.
    live = kind == "camera" or (kind == "stream" and (spec.split("://", 1)[0].lower() in LIVE_SCHEMES
                                                      or container.duration is None))
    name = {"file": "video"}.get(kind, kind)
    return AVSource(container, kind, f"{name} {spec}", live)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.split("; last error log")[0]


def open_source(spec: str, timeout: float = 10.0) -> Source:
    """Open ``spec``; ``timeout`` (seconds) bounds opening and each read of a camera or stream."""
    kind = classify(str(spec))
    if kind in ("image", "folder"):
        return _open_images(str(spec), kind)
    return _open_av(str(spec), kind, timeout)
