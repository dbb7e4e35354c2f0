"""The calibrate stage on files: a graph and real images or video in, the calibration cache out.

Every check that can fail on user input (missing preprocessing, too few images) runs before anything is
written, so a failed command leaves no output behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..graph import load_onnx
from ..data.model_input import PreprocessOptions, log_note, resolve_input
from ..errors import UserError
from ..io import atomic_output, sha256_file
from . import cache as cache_io
from .calibration import collect
from .defaults import DEFAULT_CALIB_BATCH, DEFAULT_CALIB_IMAGES
from .methods import DEFAULT_METHOD, DEFAULT_PERCENTILE, METHODS, compute_amax
from .sources import CalibrationSource

DEFAULT_MIN_IMAGES = 16


def calibrate_file(model_path: Path, data: Path, output: Path, *, num: int = DEFAULT_CALIB_IMAGES,
                   batch: int = DEFAULT_CALIB_BATCH, method: str = DEFAULT_METHOD,
                   percentile: float = DEFAULT_PERCENTILE, min_images: int | None = None,
                   progress: bool = True, preprocess: PreprocessOptions | None = None,
                   note: Callable[[str], None] | None = log_note, threads: int | None = None) -> dict:
    """Write the calibration cache of ``model_path`` measured on ``data``; returns the cache."""
    if method not in METHODS:
        raise UserError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    if num < 1 or batch < 1:
        raise UserError("--num and --batch must be >= 1")
    if not 0 < percentile <= 100:
        raise UserError(f"--percentile {percentile} is not in (0, 100]")
    min_images = min(num, DEFAULT_MIN_IMAGES) if min_images is None else min_images
    model = load_onnx(model_path)
    preprocessor = resolve_input(model_path, preprocess, proto=model, note=note).preprocessor
    source = CalibrationSource(data, num)
    histograms, seen = collect(model, source.crops(preprocessor), preprocessor, batch=batch,
                               total=source.candidates, progress=progress, threads=threads)
    if seen < min_images:
        skipped = f" ({len(source.skipped)} unreadable file(s) skipped)" if source.skipped else ""
        raise UserError(f"only {seen} usable calibration image(s) in {data}{skipped}, fewer than --min-images "
                        f"{min_images}: add images (a few hundred, varied, see calibration/README.md) or lower "
                        f"--min-images")
    amax = {name: compute_amax(hist, method, percentile) for name, hist in histograms.items()}
    result = cache_io.make_cache(
        amax, method=method, percentile=percentile, model_sha256=sha256_file(model_path),
        data={"kind": source.kind, "images": seen, "fingerprint": source.fingerprint(),
              "skipped": sorted(source.skipped), "sha256": source.image_sha256()},
        preprocessing=preprocessor.to_dict())
    with atomic_output(output) as temporary:
        temporary.write_text(cache_io.dumps(result))
    return result
