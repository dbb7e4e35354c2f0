"""The quantize stage on files: FP16, INT8 or mixed precision written into the graph, with its sidecar.

Every check that can fail on user input (a cache for another model, missing held-out images) runs before
anything is written, so a failed command leaves no output behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np
import onnx

from .. import graph as graphs
from ..backends.onnxruntime import create_session
from ..graph import load_onnx
from ..data.model_input import PreprocessOptions, carried_sidecar, resolve_input
from ..errors import UserError
from ..data.images import images_fingerprint
from ..io import atomic_output, sha256_file, sidecar_path, write_json
from ..stage import FINGERPRINT, NOT_IN_KEY, Stage, coerce_paths
from . import cache as cache_io
from .defaults import DEFAULT_EVAL_IMAGES, DEFAULT_INT8_BASE, INT8_BASES, PRECISIONS
from .evaluate import load_pixels
from .detection_head import find_detection_head
from .fp16 import to_fp16
from .int8 import Int8Options, quantize_int8
from .mixed import Budget, Built, mixed_precision


@dataclass(frozen=True)
class QuantizeOptions:
    precision: str
    calib: Path | None = None
    io_fp16: bool = False
    islands: bool = True
    int8_base: str = DEFAULT_INT8_BASE  # float ops around INT8 layers: fp32, or fp16 (always fp16 for best)
    exclude: tuple[str, ...] = ()
    keep_first: bool = True
    keep_last: bool = True
    keep_head: bool = True  # a detector's head stays float32 (README, "Detectors")
    data: Path | None = field(default=None, metadata=FINGERPRINT(images_fingerprint))  # held-out images for best
    eval_num: int = DEFAULT_EVAL_IMAGES
    budget: Budget = field(default_factory=Budget)
    preprocess: PreprocessOptions = field(default_factory=PreprocessOptions)  # best's held-out images
    log: Callable[[str], None] | None = field(default=None, metadata=NOT_IN_KEY)  # best's search steps

    def __post_init__(self):
        coerce_paths(self, "calib", "data")


QuantizeRequest = QuantizeOptions  # its name before the stages had one pattern


class QuantizeStage(Stage[dict]):
    """``model`` -> ``output`` in FP16, INT8 (Q/DQ from the options' calibration cache) or mixed precision,
    with its sidecar. Returns the sidecar's "quantize" section."""

    name = "quantize"

    def __init__(self, model: str | Path, output: str | Path, options: QuantizeOptions):
        super().__init__({"model": Path(model)}, [Path(output), sidecar_path(output)], options)
        self.model, self.output = Path(model), Path(output)

    def environment_facts(self) -> tuple[str, ...]:
        # best's choice of layers follows ONNX Runtime's measurements on the held-out images
        return super().environment_facts() + (("onnxruntime",) if self.options.precision == "best" else ())

    def work(self) -> dict:
        return _quantize(self.model, self.output, self.options)

    def summary(self, section: dict) -> str:
        return ", ".join(f"{k} {v}" for k, v in section.items() if k in ("precision", "method", "qdq_pairs"))


def _scales(cache: dict) -> dict[str, float]:
    return {name: float(entry["scale"]) for name, entry in cache["tensors"].items()}


def quantize_file(model_path: Path, output: Path, request: QuantizeOptions, log=None) -> dict:
    """:class:`QuantizeStage` as one call: write OUTPUT (and OUTPUT.json); returns the "quantize" section."""
    if log is not None:
        request = replace(request, log=log)
    return QuantizeStage(model_path, output, request).run()


def _quantize(model_path: Path, output: Path, request: QuantizeOptions) -> dict:
    if request.precision not in PRECISIONS:
        raise UserError(f"unknown precision {request.precision!r}: choose one of {', '.join(PRECISIONS)}")
    if request.int8_base not in INT8_BASES:
        raise UserError(f"`int8_base` {request.int8_base!r}: choose {' or '.join(INT8_BASES)}")
    model = load_onnx(model_path)
    sidecar = carried_sidecar(model_path, request.preprocess, model)
    section: dict = {"precision": request.precision, "io_types": "float16" if request.io_fp16 else "float32"}
    needs_int8 = request.precision in ("int8", "best")
    if needs_int8:
        if request.calib is None:
            raise UserError(f"`precision` {request.precision} needs `calib`, a calibration cache of this graph "
                            f"(make one with the calibrate stage: `swin-trt calibrate {model_path}`)")
        cache = cache_io.read_cache(request.calib, model_path)
        scales = _scales(cache)
        section.update(method=cache.get("method"), calib=str(request.calib), calib_sha256=sha256_file(request.calib))
    options = Int8Options(tuple(request.exclude), request.keep_first, request.keep_last, request.keep_head)
    fp16_base = request.precision == "best" or request.int8_base == "fp16"

    def build(base_model: onnx.ModelProto, opts: Int8Options) -> Built:
        """The INT8 graph for ``opts`` (on an FP16 base when asked) and its reports for the sidecar."""
        quantized, int8_report = quantize_int8(base_model, scales, opts)
        if not fp16_base:
            return Built(quantized, {"int8": int8_report.to_dict()})
        quantized, fp16_report = to_fp16(quantized, keep_io_types=not request.io_fp16, islands=request.islands,
                                         int8_nodes=int8_report.quantized, keep_head=request.keep_head)
        return Built(quantized, {"int8": int8_report.to_dict(), "fp16": fp16_report})

    if request.precision == "fp16":
        result, section["fp16"] = to_fp16(model, keep_io_types=not request.io_fp16, islands=request.islands,
                                          keep_head=request.keep_head)
    elif request.precision == "int8":
        built = build(model, options)
        result = built.model
        section.update(built.reports)
    else:
        if request.data is None:
            raise UserError("`precision` best needs `data`: held-out images to measure each layer's sensitivity")
        head = find_detection_head(model)
        if head.variable_outputs:
            raise UserError(f"`precision` best measures top-1 agreement and logits cosine, which a detector does "
                            f"not have ({', '.join(head.outputs)} vary in length per image): quantize it with "
                            f"`precision` int8 or fp16, then measure its detection agreement with the validate "
                            f"stage (`swin-trt validate {model_path} OUTPUT`)")
        preprocessor = resolve_input(model_path, request.preprocess, proto=model).preprocessor
        pixels = load_pixels(request.data, preprocessor, request.eval_num, min_images=1)
        built, mixed = mixed_precision(model, scales, pixels, options=options, budget=request.budget,
                                       build=build, log=request.log)
        result = built.model
        section.update(built.reports)
        section["best"] = mixed.to_dict()
        section["best"]["budget"] = {"min_agreement": request.budget.min_agreement,
                                     "min_cosine": request.budget.min_cosine, "eval_images": len(pixels)}
    section["int8_base"] = ("fp16" if fp16_base else "fp32") if needs_int8 else None
    section["excluded"] = list(request.exclude)
    section["counts"] = _op_counts(result)
    verify(result)
    with atomic_output(output) as temporary:
        onnx.save_model(result, str(temporary))
    sidecar.update(stage="quantize", source=str(model_path), source_sha256=sha256_file(model_path),
                   onnx_sha256=sha256_file(output), quantize=section)
    write_json(sidecar_path(output), sidecar)
    return section


def _op_counts(model: onnx.ModelProto) -> dict:
    kinds = (*graphs.QDQ_OPS, "Cast")
    counts = {kind: sum(n.op_type == kind for n in model.graph.node) for kind in kinds}
    elem = {init.name: init.data_type for init in model.graph.initializer}
    counts["float16_initializers"] = sum(t == onnx.TensorProto.FLOAT16 for t in elem.values())
    counts["int8_initializers"] = sum(t == onnx.TensorProto.INT8 for t in elem.values())
    return counts


def verify(model: onnx.ModelProto) -> None:
    """onnx.checker, then one run through ONNX Runtime with the plugins lowered: the types must line up."""
    from ..surgery import probes

    onnx.checker.check_model(model)
    first = model.graph.input[0]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(first.type.tensor_type.elem_type)
    session = create_session(model)
    for sizes in probes.dynamic_dims(model).candidates():  # a dynamic height/width: the first size it runs at
        pixels = np.random.default_rng(0).standard_normal(probes.input_shape(first, sizes)).astype(dtype)
        try:
            outputs = session.run(None, {first.name: pixels})
        except Exception:  # noqa: BLE001 - ONNX Runtime's errors for a size the model does not take
            continue
        if not all(np.isfinite(np.asarray(o, dtype=np.float32)).all() for o in outputs):
            raise RuntimeError("the quantized graph produced non-finite outputs on a test input")
        return
    raise RuntimeError("the quantized graph runs at none of the probe sizes")
