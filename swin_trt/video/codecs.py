"""Which encoder and container to write with: chosen from what the installed PyAV/FFmpeg provides."""

from __future__ import annotations

from pathlib import Path

import av

from ..errors import UserError

# Output suffix -> FFmpeg muxer. Named explicitly because we write to a temporary name first (atomic output),
# whose ".tmp" suffix FFmpeg cannot guess a format from.
_MUXERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".ts": "mpegts"}
# Preferred first: H.264 plays everywhere; MPEG-4 part 2 is in every FFmpeg build.
_ENCODERS = ("libx264", "h264", "libopenh264", "mpeg4")


def muxer_for(path: str | Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in _MUXERS:
        raise UserError(f"cannot write video {str(path)!r}: use one of {', '.join(sorted(_MUXERS))}")
    return _MUXERS[suffix]


def pick_encoder() -> str:
    """The first video encoder of ``_ENCODERS`` this FFmpeg build can open for writing."""
    for name in _ENCODERS:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # UnknownCodecError, or a decoder-only build of the codec
            continue
        return name
    raise UserError("the installed PyAV has no H.264 or MPEG-4 encoder: install the `av` wheel from PyPI")


def add_video_stream(container, width: int, height: int, fps: float, bit_rate: int | None = None,
                     preset: str = "veryfast"):
    """An encoder stream at ``fps`` for ``width``x``height`` (both even: yuv420p needs it).

    ``preset`` is libx264's speed/size trade-off; other encoders ignore it.
    """
    from fractions import Fraction

    name = pick_encoder()
    rate = Fraction(fps).limit_denominator(1001)
    stream = container.add_stream(name, rate=rate)
    stream.width, stream.height = width, height
    stream.pix_fmt = "yuv420p"
    stream.codec_context.time_base = 1 / rate
    if bit_rate:
        stream.bit_rate = bit_rate
    if name == "libx264":
        stream.options = {"preset": preset}
    return stream
