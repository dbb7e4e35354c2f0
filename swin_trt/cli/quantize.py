"""``swin-trt quantize``."""

import logging
from pathlib import Path

import click

from ..errors import UserError
from ..precision.defaults import (DEFAULT_EVAL_IMAGES, DEFAULT_INT8_BASE, DEFAULT_MIN_AGREEMENT, DEFAULT_MIN_COSINE,
                                   INT8_BASES, PRECISIONS)
from .options import preprocess_options

log = logging.getLogger(__name__)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--precision", required=True, type=click.Choice(PRECISIONS),
              help="fp16: float16 graph with float32 islands; int8: Q/DQ from a calibration cache; best: INT8 "
                   "where the accuracy budget allows, FP16 elsewhere.")
@click.option("--calib", type=click.Path(dir_okay=False, path_type=Path),
              help="Calibration cache from `swin-trt calibrate` on the same MODEL (int8, best).")
@click.option("--io-fp16", is_flag=True, help="Make the graph's inputs and outputs float16 too (default: float32).")
@click.option("--no-fp32-islands", "no_islands", is_flag=True,
              help="Cast LayerNorm, Softmax, reductions and the GELU's erf to float16 as well (for measuring "
                   "what the islands buy; hurts accuracy).")
@click.option("--int8-base", type=click.Choice(INT8_BASES), default=DEFAULT_INT8_BASE, show_default=True,
              help="Precision of the ops between INT8 layers for --precision int8 (best always uses fp16).")
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Node names (fnmatch globs) to leave unquantized, e.g. '*/mlp/fc2/*' or 'SwinWindowReverse_*'. "
                   "Repeatable.")
@click.option("--keep-first/--quantize-first", default=True, show_default=True,
              help="Keep the first layer (the patch-embedding Conv) in higher precision.")
@click.option("--keep-last/--quantize-last", default=True, show_default=True,
              help="Keep the last layer (the classifier) in higher precision.")
@click.option("--keep-head/--quantize-head", default=True, show_default=True,
              help="Keep a detector's head (everything after the FPN: RPN/ROI or dense heads, box decoding, NMS) "
                   "in float32; INT8 and FP16 go into the backbone and neck. --quantize-head also quantizes the "
                   "head's layers (FP16: all but the box selection after NMS/top-k, which stays float32).")
@click.option("--data", type=click.Path(path_type=Path),
              help="best: held-out images (folder, video or .txt list) to measure sensitivity and the budget on; "
                   "preferably not the calibration images.")
@click.option("--eval-num", type=int, default=DEFAULT_EVAL_IMAGES, show_default=True,
              help="best: held-out images to use.")
@click.option("--min-agreement", type=float, default=DEFAULT_MIN_AGREEMENT, show_default=True,
              help="best: top-1 agreement with FP32 the result must keep.")
@click.option("--min-cosine", type=float, default=DEFAULT_MIN_COSINE, show_default=True,
              help="best: mean cosine similarity of the logits with FP32 the result must keep.")
@click.option("--max-drop", type=click.FloatRange(0, 1),
              help="best: the share of top-1 predictions allowed to change vs FP32 (sets --min-agreement to "
                   "1 - MAX_DROP), e.g. 0.005.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The ONNX file to write; its sidecar goes to OUTPUT.json.")
@preprocess_options
def quantize(model, precision, calib, io_fp16, no_islands, int8_base, exclude, keep_first, keep_last, keep_head,
             data, eval_num, min_agreement, min_cosine, max_drop, output, preprocess):
    """Put FP16, INT8 or mixed precision into MODEL's graph, as explicit types.

    TensorRT 11 builds strongly typed networks only: the precision of every layer comes from the ONNX
    graph (float16 tensors, QuantizeLinear/DequantizeLinear pairs), not from builder flags. The same graph
    runs in ONNX Runtime on the CPU, so its accuracy can be checked here before building.

    \b
    Examples:
      swin-trt quantize out/demo.rw.onnx --precision fp16 -o out/demo.fp16.onnx
      swin-trt quantize out/demo.rw.onnx --precision int8 --calib out/calib.json -o out/demo.int8.onnx
      swin-trt quantize out/demo.rw.onnx --precision int8 --calib out/calib.json \\
          --exclude 'SwinWindowReverse_*' --quantize-last -o out/demo.int8.onnx
      swin-trt quantize out/demo.rw.onnx --precision best --calib out/calib.json --data heldout/ \\
          --min-agreement 0.995 --min-cosine 0.999 -o out/demo.best.onnx
    """
    from ..precision.mixed import Budget
    from ..precision.quantize_stage import QuantizeOptions, QuantizeStage

    if output.suffix != ".onnx":
        raise UserError(f"output {str(output)!r} should end in .onnx")
    if precision == "fp16" and calib:
        log.info("--calib is not used by --precision fp16")
    if max_drop is not None:
        min_agreement = 1.0 - max_drop
    options = QuantizeOptions(precision, calib, io_fp16, not no_islands, int8_base, tuple(exclude), keep_first,
                              keep_last, keep_head, data, eval_num, Budget(min_agreement, min_cosine), preprocess)
    section = QuantizeStage(model, output, options).run()  # its search steps: notes on the swin_trt logger
    click.echo(_describe(output, section))


def _describe(output: Path, section: dict) -> str:
    lines = [f"wrote {output} ({section['precision']}, inputs/outputs {section['io_types']})"]
    int8 = section.get("int8")
    if int8:
        lines.append(f"  INT8: {int8['quantized_nodes']} layers, {int8['qdq_pairs']} activation Q/DQ pairs, "
                     f"{int8['weight_dequantize']} per-channel weights, {int8['int8_plugins']} int8 window plugins "
                     f"(ranges: {section.get('method')}; float between layers: {section['int8_base']})")
        for name, why in int8["left_float"].items():
            if why not in ("fallback", "detection head"):
                lines.append(f"    kept float: {name} ({why})")
    for part in ("int8", "fp16"):
        head = (section.get(part) or {}).get("detection_head")
        if head:
            converted = head["quantized"] if part == "int8" else head["float16"]
            where = (f"{head['nodes']} nodes after the neck: {head['shared_weight_layers']} layers shared across "
                     f"pyramid levels, {head['data_dependent_ops']} data-dependent ops from "
                     f"{head['first_data_dependent']}")
            kept = ("quantized too (--quantize-head)" if part == "int8" else
                    f"float16 but for its box selection, {head['selection_nodes']} nodes (--quantize-head)")
            lines.append(f"  {part.upper()} detection head ({where}): "
                         + (kept if converted else "kept float32 (--quantize-head to change)"))
    fp16 = section.get("fp16")
    if fp16:
        lines.append(f"  FP16: {fp16['fp32_nodes']} nodes kept float32"
                     + ("" if fp16["fp32_islands"] else " (--no-fp32-islands)"))
    best = section.get("best")
    if best:
        final = best["final"]
        lines.append(f"  best: {len(best['fallback'])} of {best['layers_measured'] or 'all'} layers fell back to FP16; "
                     f"result cosine {final['cosine']:.6f}, top-1 agreement {final['top1_agreement']:.4f} "
                     f"({'budget met' if best['budget_met'] else 'BUDGET NOT MET even with every layer in FP16'})")
        for entry in best["fallback"]:
            lines.append(f"    fell back: {entry['layer']}: alone in INT8 it gives cosine {entry['cosine']:.6f}, "
                         f"top-1 agreement {entry['top1_agreement']:.4f}")
    return "\n".join(lines)
