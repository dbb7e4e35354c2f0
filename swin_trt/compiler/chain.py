"""A rewritten graph into the precision asked for: calibrate (int8, best), then quantize.

The one wiring of the two stages, shared by compile's own graph (:func:`~.job.plan`) and by every plugin
variant it times (:mod:`.fastest`), so both are made the same way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..stage import Stage
from .options import CompileOptions


def precision_options(options: CompileOptions):
    """``(CalibrateOptions or None, QuantizeOptions or None)`` for ``options.precision`` (None: no such stage)."""
    from ..precision.calibrate_stage import CalibrateOptions
    from ..precision.quantize_stage import QuantizeOptions

    if options.precision == "fp32":
        return None, None
    calibrate = CalibrateOptions(num=options.calib_num, method=options.calib_method, preprocess=options.preprocess,
                                 progress=False, note=None) if options.needs_calibration else None
    quantize = QuantizeOptions(options.precision, preprocess=options.preprocess, log=lambda line: None)
    return calibrate, quantize


def precision_stages(graph: Path, final: Path, calib: Path, calib_data: Path | None, held_out: Path | None,
                     calibrate, quantize) -> list[Stage]:
    """``graph`` -> ``final``: a :class:`CalibrateStage` writing ``calib`` from ``calib_data`` (when
    ``calibrate`` is given), then a :class:`QuantizeStage` (best measures on ``held_out``)."""
    from ..precision.calibrate_stage import CalibrateStage
    from ..precision.quantize_stage import QuantizeStage

    if quantize is None:
        return []
    stages: list[Stage] = []
    if calibrate is not None:
        stages.append(CalibrateStage(graph, calib_data, calib, calibrate))
    stages.append(QuantizeStage(graph, final, replace(
        quantize, calib=calib if calibrate is not None else None,
        data=held_out if quantize.precision == "best" else None)))
    return stages
