"""The calibrate stage on files: a graph and real images or video in, the calibration cache out. A clip model
(a Video Swin graph, input ``(B, 3, T, H, W)``) calibrates on clips of a video or a folder of videos
(``clip_len``, ``clip_stride``: :mod:`swin_trt.data.clips`); ``num`` then counts clips.

Every check that can fail on user input (missing preprocessing, too few images) runs before anything is
written, so a failed command leaves no output behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..graph import load_onnx
from ..data.clips import ClipOptions
from ..data.model_input import PreprocessOptions, log_note, resolve_input
from ..errors import UserError
from ..io import atomic_output, sha256_file
from ..stage import NOT_IN_KEY, Stage
from . import cache as cache_io
from .calibration import collect
from .defaults import DEFAULT_CALIB_BATCH, DEFAULT_CALIB_IMAGES
from .methods import DEFAULT_METHOD, DEFAULT_PERCENTILE, METHODS, compute_amax
from .sources import CalibrationSource

DEFAULT_MIN_IMAGES = 16


@dataclass(frozen=True)
class CalibrateOptions:
    num: int = DEFAULT_CALIB_IMAGES
    batch: int = DEFAULT_CALIB_BATCH
    method: str = DEFAULT_METHOD
    percentile: float = DEFAULT_PERCENTILE
    min_images: int | None = None  # default: min(num, 16)
    preprocess: PreprocessOptions | None = None
    threads: int | None = None  # ONNX Runtime threads: the order of its sums, so part of the key
    clip_len: int | None = None  # a clip model: frames per clip (default: the model's T)
    clip_stride: int | None = None  # a clip model: frames between the starts of clips (default: clip_len)
    progress: bool = field(default=True, metadata=NOT_IN_KEY)
    note: Callable[[str], None] | None = field(default=log_note, metadata=NOT_IN_KEY)


@dataclass(frozen=True)
class CalibrationData:
    """The images (or video frames) a calibration reads from ``source``: the key's view of them."""

    source: Path
    num: int
    clips: ClipOptions = ClipOptions()

    def fingerprint(self) -> str:
        return CalibrationSource(self.source, self.num, self.clips).fingerprint()


class CalibrateStage(Stage[dict]):
    """``model`` and real images or video -> ``output``, the calibration cache (INT8 ranges of ``model``)."""

    name = "calibrate"
    environment = ("onnxruntime",)

    def __init__(self, model: str | Path, data: str | Path, output: str | Path,
                 options: CalibrateOptions | None = None):
        options = options or CalibrateOptions()
        clips = ClipOptions(options.clip_len, options.clip_stride)
        super().__init__({"model": Path(model), "data": CalibrationData(Path(data), options.num, clips)},
                         [Path(output)], options)
        self.model, self.data, self.output = Path(model), Path(data), Path(output)

    def work(self) -> dict:
        options = self.options
        if options.method not in METHODS:
            raise UserError(f"unknown method {options.method!r}: choose one of {', '.join(METHODS)}")
        if options.num < 1 or options.batch < 1:
            raise UserError("`num` and `batch` must be >= 1")
        if not 0 < options.percentile <= 100:
            raise UserError(f"`percentile` {options.percentile} is not in (0, 100]")
        num = options.num
        min_images = min(num, DEFAULT_MIN_IMAGES) if options.min_images is None else options.min_images
        model = load_onnx(self.model)
        clips = ClipOptions(options.clip_len, options.clip_stride)
        model_input = resolve_input(self.model, options.preprocess, proto=model, note=options.note, clips=clips)
        preprocessor = model_input.preprocessor
        source = CalibrationSource(self.data, num, clips)
        if model_input.clips:
            source.check_clips(preprocessor)  # images for a clip model: said before any work
        histograms, seen = collect(model, source.crops(preprocessor), preprocessor, batch=options.batch,
                                   total=num if model_input.clips else source.candidates,
                                   progress=options.progress, threads=options.threads)
        if seen < min_images:
            unit = "clip" if model_input.clips else "image"
            skipped = f" ({len(source.skipped)} unreadable or too short file(s) skipped)" if source.skipped else ""
            raise UserError(f"only {seen} usable calibration {unit}(s) in {self.data}{skipped}, fewer than "
                            f"`min_images` {min_images}: add {unit}s (a few hundred, varied, see "
                            f"calibration/README.md) or lower `min_images`")
        amax = {name: compute_amax(hist, options.method, options.percentile) for name, hist in histograms.items()}
        result = cache_io.make_cache(
            amax, method=options.method, percentile=options.percentile, model_sha256=sha256_file(self.model),
            data={"kind": source.kind, "images": seen, **({"clips": seen} if model_input.clips else {}), "fingerprint": source.fingerprint(),
                  "skipped": sorted(source.skipped), "sha256": source.image_sha256()},
            preprocessing=preprocessor.to_dict())
        with atomic_output(self.output) as temporary:
            temporary.write_text(cache_io.dumps(result))
        return result

    def summary(self, cache: dict) -> str:
        return f"{len(cache['tensors'])} tensors, {self.options.method}, {cache['data']['images']} images"


def calibrate_file(model_path: Path, data: Path, output: Path, **options) -> dict:
    """:class:`CalibrateStage` as one call (``options``: :class:`CalibrateOptions`' fields)."""
    return CalibrateStage(model_path, data, output, CalibrateOptions(**options)).run()
