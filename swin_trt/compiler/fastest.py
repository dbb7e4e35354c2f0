"""compile's build on a machine with TensorRT and a GPU: every plugin variant, timed, the fastest kept.

A plugin is not faster than TensorRT alone by construction, so compile builds each plugin variant of the
export (:data:`swin_trt.surgery.variant.VARIANTS`), each through the same stages as its own graph: a
:class:`~swin_trt.surgery.rewrite_stage.RewriteStage`, then calibrated on the same images and quantized
(:func:`.chain.precision_stages`), in ``OUTDIR/variants/``. :func:`~swin_trt.engine.compare.compare_variants`
builds each with a :class:`~swin_trt.engine.build.BuildStage`, times them and keeps the fastest as
``model.engine``; its manifest and the validation report list every variant's time. The CPU artifacts
(``model.rewritten.onnx``, ``model.<precision>.onnx``) stay those of the default variant, which is what the
CPU validates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..engine.build import BuildOptions, BuildStage
from ..precision.calibrate_stage import CalibrationData
from ..io import sidecar_path
from ..stage import Stage
from .chain import precision_stages


@dataclass(frozen=True)
class FastestOptions:
    build: BuildOptions
    calibrate: Any = None  # CalibrateOptions: every variant is calibrated the same way (int8, best)
    quantize: Any = None  # QuantizeOptions (without its cache: each variant has its own)


class FastestBuildStage(Stage[str]):
    """``export`` -> every plugin variant in its precision -> the fastest engine at ``engine``."""

    name = "build"
    environment = ("tensorrt",)
    skipped_note = BuildStage.skipped_note

    def __init__(self, export: Path, engine: Path, calib_data: Path | None, held_out: Path | None,
                 options: FastestOptions, echo: Callable[[str], None] | None = None):
        calibrating = options.calibrate is not None
        inputs = {"export": export, "plugin_library": BuildStage.plugin_input(options.build),
                  "calib_data": CalibrationData(calib_data, options.calibrate.num) if calibrating else None,
                  "held_out": held_out if options.quantize is not None and options.quantize.precision == "best"
                  else None}
        super().__init__(inputs, [engine, sidecar_path(engine)], options)
        self.export, self.engine, self.calib_data, self.held_out, self.echo = export, engine, calib_data, held_out, echo

    def unavailable(self) -> str | None:
        return self.skip_reason or BuildStage.tensorrt_missing()

    def work(self) -> str:
        from ..engine.compare import compare_variants, comparison_rows, make_variants

        graphs = make_variants(self.export, self.engine.parent / "variants", strict=True)
        finals = {name: self._in_precision(graph) for name, graph in graphs.items()}
        result = compare_variants(finals, self.engine, echo=self.echo, **self.options.build.build_kwargs())
        rows = comparison_rows(result.manifest)
        times = ", ".join(f"{row['variant']} {row['median_ms']:.3f} ms" for row in rows)
        return f"fastest: {result.manifest['compare']['chosen']} ({times}), TensorRT {result.manifest['tensorrt']}"

    def _in_precision(self, graph: Path) -> Path:
        """``graph`` (one rewritten variant) in the precision asked for."""
        options = self.options
        if options.quantize is None:
            return graph
        final = graph.with_name(f"{graph.stem}.{options.quantize.precision}.onnx")
        for stage in precision_stages(graph, final, graph.with_suffix(".calib.json"), self.calib_data,
                                      self.held_out, options.calibrate, options.quantize):
            stage.run()
        return final

    def summary(self, result: str) -> str:
        return result
