"""Real-looking test videos: slow pans and zooms over real photos (scikit-image's sample images).

Used by the tests, the pipeline benchmark and users' smoke tests; nothing is downloaded. Every frame is one
crop and one resize (Pillow) of a photo, so a 10,000-frame clip takes seconds. The default photos need
scikit-image (``pip install 'swin-trt[synth]'``); with ``images=`` nothing beyond the core is needed.

Example::

    from swin_trt.video.synth import make_pan_zoom_video
    make_pan_zoom_video("clip.mp4", frames=250, size=(320, 240), fps=25)
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import av
import numpy as np
from PIL import Image

from ..errors import UserError
from ..io import atomic_output
from .codecs import add_video_stream, muxer_for

DEFAULT_IMAGES = ("astronaut", "chelsea", "coffee")


def sample_images(names: Sequence[str] = DEFAULT_IMAGES) -> list[np.ndarray]:
    """scikit-image's bundled sample photos as ``(H, W, 3)`` uint8 RGB (greyscale/RGBA converted)."""
    try:
        import skimage.data
    except ImportError:
        raise UserError("the sample photos come from scikit-image: pip install 'swin-trt[synth]', or pass your "
                        "own images (make_pan_zoom_video(..., images=[...]))") from None

    return [np.asarray(Image.fromarray(getattr(skimage.data, name)()).convert("RGB")) for name in names]


def _even(value: int) -> int:
    return max(2, value - value % 2)


def _shrunk(image: Image.Image, width: int, height: int) -> Image.Image:
    scale = max(width / image.width, height / image.height)
    if scale >= 1:
        return image
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)


def pan_zoom_frame(image: Image.Image, t: float, size: tuple[int, int]) -> Image.Image:
    """The view of ``image`` at ``t`` in [0, 1]: a window that zooms in 1.0x -> 1.6x while panning across."""
    width, height = size
    aspect = width / height
    # The largest window of the output's aspect that fits the photo, shrunk as we zoom in.
    base_w = min(image.width, image.height * aspect)
    zoom = 1.0 + 0.6 * t
    crop_w, crop_h = base_w / zoom, base_w / zoom / aspect
    left = (image.width - crop_w) * t
    top = (image.height - crop_h) * (0.5 + 0.5 * np.sin(np.pi * t)) / 2 + (image.height - crop_h) / 4 * t
    box = (left, top, left + crop_w, top + crop_h)
    return image.resize((width, height), Image.Resampling.BILINEAR, box=box)


def make_pan_zoom_video(path: str | Path, frames: int = 100, size: int | tuple[int, int] = (160, 120),
                        fps: float = 25.0, images: Sequence[np.ndarray | Image.Image] | None = None, *,
                        seconds_per_image: float = 2.0, bit_rate: int | None = None,
                        faststart: bool = True, preset: str = "ultrafast") -> Path:
    """Write ``frames`` frames of ``size`` (W, H, or one int for a square) at ``fps`` to ``path``.

    The photos take turns, each for ``seconds_per_image``. ``faststart`` puts an MP4's index first, so a
    truncated file still opens (as a stream cut off mid-recording would). ``preset`` is libx264's (fast by
    default: these are test clips). Written atomically.
    """
    path = Path(path)
    width, height = (size, size) if isinstance(size, int) else size
    width, height = _even(width), _even(height)
    photos = [Image.fromarray(np.asarray(im)) if not isinstance(im, Image.Image) else im
              for im in (images if images is not None else sample_images())]
    # Shrink each photo once to twice the output size: per-frame resizes then read few pixels.
    photos = [_shrunk(photo.convert("RGB"), 2 * width, 2 * height) for photo in photos]
    per_image = max(1, round(seconds_per_image * fps))
    muxer = muxer_for(path)
    container_options = {"movflags": "+faststart"} if faststart and muxer in ("mp4", "mov") else {}
    with atomic_output(path) as temporary:
        with av.open(str(temporary), "w", format=muxer, container_options=container_options) as container:
            stream = add_video_stream(container, width, height, fps, bit_rate, preset)
            for index in range(frames):
                photo = photos[(index // per_image) % len(photos)]
                view = pan_zoom_frame(photo, (index % per_image) / per_image, (width, height))
                frame = av.VideoFrame.from_image(view)
                frame.pts = index
                frame.time_base = stream.codec_context.time_base
                container.mux(stream.encode(frame))
            container.mux(stream.encode(None))
    return path
