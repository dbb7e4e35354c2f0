"""What precision a model runs in, read from the model itself (not from its file name)."""

from __future__ import annotations

from pathlib import Path

import onnx

from ..graph import QUANTIZE_OPS
from ..model_ref import ModelRef

FLOAT16 = onnx.TensorProto.FLOAT16


def _has_float16(model: onnx.ModelProto) -> bool:
    graph = model.graph
    if any(t.data_type == FLOAT16 for t in graph.initializer):
        return True
    infos = [*graph.input, *graph.output, *graph.value_info]
    if any(i.type.tensor_type.elem_type == FLOAT16 for i in infos):
        return True
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == FLOAT16:
                return True
            if node.op_type == "Constant" and attr.name == "value" and attr.t.data_type == FLOAT16:
                return True
    return False


def onnx_precision(model: onnx.ModelProto) -> str:
    """``"int8"`` (Q/DQ nodes), ``"int8+fp16"``, ``"fp16"`` (float16 tensors) or ``"fp32"``."""
    quantized = any(node.op_type in QUANTIZE_OPS for node in model.graph.node)
    half = _has_float16(model)
    if quantized:
        return "int8+fp16" if half else "int8"
    return "fp16" if half else "fp32"


def model_precision(model: str | Path, proto: onnx.ModelProto | None = None) -> str:
    """Precision of an ONNX file, a TensorRT engine (from its manifest) or a ``torch:`` spec."""
    ref = ModelRef.parse(model)
    if ref.kind == "torch":
        return "fp32"
    if ref.kind == "engine":
        mode = ((ref.sidecar() or {}).get("precision") or {}).get("mode")
        return f"engine: {mode}" if mode else "engine"
    proto = proto if proto is not None else onnx.load(ref.text, load_external_data=False)
    return onnx_precision(proto)


def needs_layer_attribution(precision: str) -> bool:
    """FP16 or INT8 anywhere (an engine's mode too: it is then skipped with the reason, not silently)."""
    return "fp16" in precision or "int8" in precision
