"""Annotated video output, encoded with PyAV: each frame with its top-1 label and score, for a segmentation
model its class map blended over the frame in a fixed palette, with the largest classes, or for a detector its
boxes, each with its label and score, in its class's colour."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .codecs import add_video_stream

# Class i is drawn in PALETTE[i] (matplotlib's tab10, then tab20's light tones): the same colour in every frame
# and every video. Classes beyond 20 take PASCAL VOC's bit-interleaved colours.
PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
           (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
           (219, 219, 141), (158, 218, 229))
OVERLAY_ALPHA = 0.5  # how much of a pixel's colour is its class's


def _voc_colour(index: int) -> tuple[int, int, int]:
    r = g = b = 0
    for bit in range(8):
        r |= ((index >> 0) & 1) << (7 - bit)
        g |= ((index >> 1) & 1) << (7 - bit)
        b |= ((index >> 2) & 1) << (7 - bit)
        index >>= 3
    return r, g, b


def palette(classes: int) -> np.ndarray:
    """``(classes, 3)`` uint8: the colour of each class."""
    colours = [PALETTE[i] if i < len(PALETTE) else _voc_colour(i) for i in range(classes)]
    return np.asarray(colours, dtype=np.uint8).reshape(-1, 3)


def overlay_class_map(image: Image.Image, class_map: np.ndarray, box=None, alpha: float = OVERLAY_ALPHA,
                      classes: int | None = None) -> Image.Image:
    """``image`` with ``class_map`` ((H, W) class indices) blended over ``box`` (left, top, right, bottom: the part
    of the image the model saw; default the whole image), each class in its palette colour."""
    image = image.convert("RGB")
    left, top, right, bottom = box or (0, 0, image.width, image.height)
    left, top, right, bottom = round(left), round(top), round(right), round(bottom)
    colours = palette(max(int(class_map.max()) + 1, classes or 0))
    painted = Image.fromarray(colours[class_map]).resize((right - left, bottom - top), Image.Resampling.NEAREST)
    region = image.crop((left, top, right, bottom))
    image.paste(Image.blend(region, painted, alpha), (left, top))
    return image


def class_map_frame(prediction, labels: list[str], box=None, shown: int = 3):
    """A segmentation prediction drawn: its frame with the class map blended over ``box``, and the legend of
    its ``shown`` largest classes (colour, "name share") for :meth:`AnnotatedVideoWriter.write`."""
    colours = palette(len(labels))
    frame = overlay_class_map(prediction.image, prediction.class_map, box, classes=len(labels))
    legend = [(colours[labels.index(name)], f"{name} {share:.0%}")
              for name, share in zip(prediction.classes[:shown], prediction.scores[:shown])]
    return frame, legend


def draw_detections(image: Image.Image, detections, names: list[str], font=None) -> Image.Image:
    """A copy of ``image`` with each detection's box (``detections``: boxes in the image's pixels, class ids,
    scores) outlined in its class's palette colour, and ``name score`` on a box of that colour above it."""
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    font = font or _font(image.height)
    line = max(1, round(min(image.size) / 240))
    colours = palette(int(max(detections.class_ids, default=0)) + 1)
    for box, class_id, score, name in zip(detections.boxes, detections.class_ids, detections.scores, names):
        colour = tuple(int(c) for c in colours[int(class_id)])
        left, top, right, bottom = (float(v) for v in box)
        draw.rectangle((left, top, right, bottom), outline=colour, width=line)
        text = f"{name} {score:.2f}"
        _, text_top, text_right, text_bottom = draw.textbbox((left, top), text, font=font)
        width, height = text_right - left + 2 * line, text_bottom - text_top + 2 * line
        x = max(0.0, min(left, image.width - width))  # inside the frame, even for a box at its right edge
        y = top - height if top - height >= 0 else top  # above the box, or inside it at the top
        draw.rectangle((x, y, x + width, y + height), fill=colour)
        draw.text((x + line, y + line - (text_top - top)), text, fill=(255, 255, 255), font=font)
    return image


def _font(height: int):
    size = max(10, height // 18)
    try:
        return ImageFont.load_default(size=size)  # scalable with FreeType (Pillow >= 10.1)
    except TypeError:
        return ImageFont.load_default()


def draw_label(image: Image.Image, text: str, font=None) -> Image.Image:
    """A copy of ``image`` with ``text`` on a dark box in the top-left corner."""
    return draw_legend(image, [(None, text)], font)


def draw_legend(image: Image.Image, entries, font=None) -> Image.Image:
    """A copy of ``image`` with ``entries`` ((RGB colour or None, text) pairs) on one line on a dark box in
    the top-left corner, each text after a square of its colour: the legend of a class-map overlay."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    font = font or _font(image.height)
    margin = max(2, image.height // 60)
    _, top, _, bottom = draw.textbbox((margin, margin), "Ag", font=font)
    side = bottom - top
    placed, x = [], margin
    for colour, text in entries:
        swatch = x if colour is not None else None
        x += side + margin // 2 if colour is not None else 0
        placed.append((swatch, colour, x, text))
        x = draw.textbbox((x, margin), text, font=font)[2] + 2 * margin
    right = max(x - margin, margin)
    bottom = max(bottom, *(draw.textbbox((t[2], margin), t[3], font=font)[3] for t in placed))
    draw.rectangle((0, 0, right, bottom + margin), fill=(0, 0, 0))
    for swatch, colour, left, text in placed:
        if swatch is not None:
            draw.rectangle((swatch, top, swatch + side, top + side), fill=tuple(int(c) for c in colour))
        draw.text((left, margin), text, fill=(255, 255, 255), font=font)
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

    def write(self, image: Image.Image, text: str, legend=None) -> None:
        """One frame with ``text``, or with ``legend`` ((colour, text) pairs, :func:`draw_legend`) instead."""
        if self.container is None:
            self._open(image)
        size = (self.stream.width, self.stream.height)
        if image.size != size:
            image = image.resize(size, Image.Resampling.BILINEAR)
        labelled = draw_legend(image, legend, self.font) if legend else draw_label(image, text, self.font)
        frame = av.VideoFrame.from_image(labelled)
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
