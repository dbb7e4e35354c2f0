"""The calibration cache: JSON, tensor name -> amax and scale, plus what it was made from.

Deterministic bytes: keys sorted, floats rounded to 8 significant digits (so last-bit noise in a sum cannot
change the file), no timestamps and no absolute paths. ``model_sha256`` ties the cache to one graph:
tensor names of another export may coincide while meaning something else.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError
from ..io import sha256_file
from .methods import LEVELS

FORMAT = "swin-trt-calibration"
VERSION = 1
MIN_AMAX = 1e-8  # an all-zero tensor still needs a positive scale


def _num(value: float) -> float:
    return float(f"{value:.8g}")


def make_cache(amax: dict[str, float], *, method: str, percentile: float | None, model_sha256: str,
               data: dict, preprocessing: dict | None = None) -> dict:
    tensors = {}
    for name, value in amax.items():
        value = _num(max(float(value), MIN_AMAX))
        tensors[name] = {"amax": value, "scale": _num(value / LEVELS)}
    return {"format": FORMAT, "version": VERSION, "method": method,
            "percentile": percentile if method == "percentile" else None,
            "model_sha256": model_sha256, "data": data, "preprocessing": preprocessing, "num_bits": 8,
            "symmetric": True, "tensors": tensors}


def dumps(cache: dict) -> str:
    return json.dumps(cache, indent=2, sort_keys=True) + "\n"


def read_cache(path: str | Path, model_path: str | Path | None = None) -> dict:
    """Read and check a cache; with ``model_path``, refuse a cache made for another model."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"calibration cache {str(path)!r} does not exist: make it with `swin-trt calibrate`")
    try:
        cache = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"calibration cache {str(path)!r} is not JSON ({exc}): make it again with "
                        f"`swin-trt calibrate`") from None
    if not isinstance(cache, dict) or cache.get("format") != FORMAT or "tensors" not in cache:
        raise UserError(f"{str(path)!r} is not a swin-trt calibration cache: make one with `swin-trt calibrate`")
    if model_path is not None:
        actual = sha256_file(model_path)
        if cache.get("model_sha256") != actual:
            raise UserError(f"calibration cache {str(path)!r} was made for another model (sha256 "
                            f"{str(cache.get('model_sha256'))[:12]}..., {Path(model_path).name} is "
                            f"{actual[:12]}...): calibrate this model with `swin-trt calibrate {model_path} ...`")
    return cache
