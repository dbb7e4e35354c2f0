"""Annotated video output: each frame with its top-1 label and score, encoded with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

from .codecs import add_video_stream


def _font(height: int):
    size = max(10, height // 18)
    try:
        return ImageFont.load_default(size=size)  # scalable with FreeType (Pillow >= 10.1)
    except TypeError:
        return ImageFont.load_default()


def draw_label(image: Image.Image, text: str, font=None) -> Image.Image:
    """A copy of ``image`` with ``text`` on a dark box in the top-left corner."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    font = font or _font(image.height)
    margin = max(2, image.height // 60)
    left, top, right, bottom = draw.textbbox((margin, margin), text, font=font)
    draw.rectangle((0, 0, right + margin, bottom + margin), fill=(0, 0, 0))
    draw.text((margin, margin), text, fill=(255, 255, 255), font=font)
    return image


class AnnotatedVideoWriter:
    """Frames of any size in, one video out (sized by the first frame, rounded down to even numbers)."""

    def __init__(self, path: str | Path, muxer: str, fps: float):
        self.path, self.muxer, self.fps = Path(path), muxer, fps
        self.container = None
        self.stream = None
        self.font = None
        self.count = 0

    def _open(self, image: Image.Image) -> None:
        width, height = max(2, image.width - image.width % 2), max(2, image.height - image.height % 2)
        self.container = av.open(str(self.path), "w", format=self.muxer)
        self.stream = add_video_stream(self.container, width, height, self.fps)
        self.font = _font(height)

    def write(self, image: Image.Image, text: str) -> None:
        if self.container is None:
            self._open(image)
        size = (self.stream.width, self.stream.height)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        frame = av.VideoFrame.from_image(draw_label(image, text, self.font))
        frame.pts = self.count
        frame.time_base = self.stream.codec_context.time_base
        self.container.mux(self.stream.encode(frame))
        self.count += 1

    def close(self, flush: bool = True) -> None:
        if self.container is None:
            return
        if flush:
            self.container.mux(self.stream.encode(None))  # the encoder's delayed frames
        self.container.close()
        self.container = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *_):
        self.close(flush=exc_type is None)  # after an error the file is discarded: don't mask the error
