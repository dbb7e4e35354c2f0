"""compile's build on a machine with TensorRT and a GPU: every plugin variant, timed, the fastest kept.

A plugin is not faster than TensorRT alone by construction, so compile builds each variant of the export
(:data:`swin_trt.engine.compare.VARIANTS`: partition/reverse and attention, each plugin or native), each in
the precision asked for: rewritten, calibrated on the same images and quantized, in ``OUTDIR/variants/``.
:func:`~swin_trt.engine.compare.compare_variants` times them and keeps the fastest as ``model.engine``; its
manifest and the validation report list every variant's time. The CPU artifacts (``model.rewritten.onnx``,
``model.<precision>.onnx``) stay those of the default variant, which is what the CPU validates.
"""

from __future__ import annotations

from pathlib import Path


def _prepare(graph: Path, precision: str, calib_data, val_data, options) -> Path:
    """``graph`` (one rewritten variant) in the precision asked for."""
    if precision == "fp32":
        return graph
    from ..precision.calibrate_stage import calibrate_file
    from ..precision.quantize_stage import QuantizeRequest, quantize_file

    calib = None
    if options.needs_calibration:  # a cache is tied to its graph: each variant is calibrated on the same images
        calib = graph.with_suffix(".calib.json")
        calibrate_file(graph, calib_data, calib, num=options.calib_num, method=options.calib_method,
                       preprocess=options.preprocess, progress=False, note=None)
    final = graph.with_name(f"{graph.stem}.{precision}.onnx")
    request = QuantizeRequest(precision, calib=calib, data=val_data if precision == "best" else None,
                              preprocess=options.preprocess)
    quantize_file(graph, final, request, log=lambda line: None)
    return final


def build_fastest(options, files, calib_data, val_data, build_options: dict, echo) -> str:
    """Build and time every variant; keep the fastest engine at ``files.engine``. Returns the stage summary."""
    from ..engine.compare import compare_variants, comparison_rows, make_variants

    graphs = make_variants(files.exported, files.outdir / "variants", strict=True)
    finals = {name: _prepare(graph, options.precision, calib_data, val_data, options)
              for name, graph in graphs.items()}
    result = compare_variants(finals, files.engine, echo=echo, **build_options)
    rows = comparison_rows(result.manifest)
    times = ", ".join(f"{row['variant']} {row['median_ms']:.3f} ms" for row in rows)
    return f"fastest: {result.manifest['compare']['chosen']} ({times}), TensorRT {result.manifest['tensorrt']}"
