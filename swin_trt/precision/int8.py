"""INT8 as explicit QuantizeLinear/DequantizeLinear pairs, where TensorRT fuses them into INT8 kernels.

* Activations: per tensor, symmetric (int8 zero point 0), scale from the calibration cache. One Q/DQ pair per
  tensor, shared by all its quantized consumers.
* Weights of MatMul/Gemm/Conv: per output channel, symmetric, from the weights themselves, stored as int8
  initializers behind a DequantizeLinear (axis 1 for a MatMul's (K, N), 0 for Conv, 0/1 for Gemm by transB).
* Window partition/reverse: Q before, DQ after, so the plugin moves int8 (its output keeps its input's
  scale: moving values does not change them). A partition's DQ then also feeds its qkv MatMul.
* Everything else (LayerNorm, Softmax, GELU, residual adds, the attention plugin's qkv) stays float.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import UserError
from .points import COMPUTE_OPS, MOVE_OPS, Point, constant_names, node_name, quant_points

MIN_OPSET = 13  # per-channel DequantizeLinear (axis)


@dataclass
class Int8Options:
    exclude: tuple[str, ...] = ()  # fnmatch globs of node names left unquantized
    keep_first: bool = True  # the patch-embedding Conv
    keep_last: bool = True  # the classifier
    skip: frozenset[str] = frozenset()  # node names left unquantized (mixed precision's fallbacks)


@dataclass
class Int8Report:
    activation_pairs: int = 0  # Q/DQ pairs on activations (incl. those around plugins)
    weight_dq: int = 0
    int8_plugins: list[str] = field(default_factory=list)
    quantized: list[str] = field(default_factory=list)  # node names with int8 inputs
    left_float: dict[str, str] = field(default_factory=dict)  # node name -> why

    def to_dict(self) -> dict:
        return {"qdq_pairs": self.activation_pairs, "weight_dequantize": self.weight_dq,
                "int8_plugins": len(self.int8_plugins), "quantized_nodes": len(self.quantized),
                "left_float": self.left_float}


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def quantizable_nodes(model: onnx.ModelProto) -> list[str]:
    """Node names with quantization points, in graph order (the 'layers' of mixed precision)."""
    seen, names = set(), []
    for point in quant_points(model):
        if point.node not in seen:
            seen.add(point.node)
            names.append(point.node)
    return names


def _left_float(options: Int8Options, points: list[Point]) -> dict[str, str]:
    reasons = {}
    compute = [p.node for p in points if p.op in COMPUTE_OPS]
    if options.keep_first and compute:
        reasons[compute[0]] = "keep-first"
    if options.keep_last and compute:
        reasons[compute[-1]] = "keep-last"
    for point in points:
        if point.node in options.skip:
            reasons.setdefault(point.node, "fallback")
        if any(fnmatch.fnmatchcase(point.node, glob) for glob in options.exclude):
            reasons[point.node] = "excluded"
    return reasons


def _weight_axis(node: onnx.NodeProto, rank: int) -> int:
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return rank - 1  # MatMul: (..., K, N), one scale per output column


def quantize_weight(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8: ``(int8 weight, float32 scale per channel)``."""
    reduce = tuple(i for i in range(weight.ndim) if i != axis)
    amax = np.max(np.abs(weight), axis=reduce) if reduce else np.abs(weight)
    scale = (np.maximum(amax, 1e-12) / 127.0).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.clip(np.round(weight / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


class _Inserter:
    """Collects new nodes and initializers; remembers tensors already quantized so pairs are shared."""

    def __init__(self, model: onnx.ModelProto, scales: dict[str, float]):
        self.model, self.scales = model, scales
        self.inits = {i.name: i for i in model.graph.initializer}
        self.new_inits: list[TensorProto] = []
        self.value_info: list[onnx.ValueInfoProto] = []
        self.dequantized: dict[str, str] = {}  # float tensor -> its Q/DQ'd copy
        self.quantized: dict[str, str] = {}  # float tensor -> its int8 tensor
        self.weights: dict[str, str] = {}
        self.report = Int8Report()

    def _scale_inits(self, tensor: str) -> tuple[str, str]:
        scale, zero = f"{tensor}/scale", f"{tensor}/zero_point"
        if scale not in {i.name for i in self.new_inits}:
            self.new_inits += [numpy_helper.from_array(np.array(self.scales[tensor], np.float32), scale),
                               numpy_helper.from_array(np.array(0, np.int8), zero)]
        return scale, zero

    def quantize(self, tensor: str, before: list) -> str:
        """The int8 copy of ``tensor`` (a QuantizeLinear appended to ``before``)."""
        if tensor not in self.quantized:
            scale, zero = self._scale_inits(tensor)
            out = f"{tensor}/int8"
            before.append(helper.make_node("QuantizeLinear", [tensor, scale, zero], [out],
                                           name=f"{tensor}/QuantizeLinear"))
            self.value_info.append(helper.make_tensor_value_info(out, TensorProto.INT8, None))
            self.quantized[tensor] = out
        return self.quantized[tensor]

    def dequantize(self, int8: str, tensor: str, out: str, before: list) -> None:
        scale, zero = self._scale_inits(tensor)
        before.append(helper.make_node("DequantizeLinear", [int8, scale, zero], [out],
                                       name=f"{out}/DequantizeLinear"))

    def fake_quantize(self, tensor: str, before: list) -> str:
        """``tensor`` through a shared Q/DQ pair; returns the dequantized name."""
        if tensor not in self.dequantized:
            int8 = self.quantize(tensor, before)
            out = f"{tensor}/dequantized"
            self.dequantize(int8, tensor, out, before)
            self.dequantized[tensor] = out
            self.report.activation_pairs += 1
        return self.dequantized[tensor]

    def weight(self, node: onnx.NodeProto, name: str, before: list) -> str:
        if name not in self.weights:
            array = numpy_helper.to_array(self.inits[name])
            axis = _weight_axis(node, array.ndim)
            q, scale = quantize_weight(array, axis)
            names = (f"{name}/int8", f"{name}/scale", f"{name}/zero_point", f"{name}/dequantized")
            self.new_inits += [numpy_helper.from_array(q, names[0]), numpy_helper.from_array(scale, names[1]),
                               numpy_helper.from_array(np.zeros(scale.shape, np.int8), names[2])]
            before.append(helper.make_node("DequantizeLinear", list(names[:3]), [names[3]],
                                           name=f"{name}/DequantizeLinear", axis=axis))
            self.weights[name] = names[3]
            self.report.weight_dq += 1
        return self.weights[name]


def quantize_int8(model: onnx.ModelProto, scales: dict[str, float], options: Int8Options | None = None):
    """A copy of ``model`` with Q/DQ inserted; ``scales`` maps tensor names to activation scales.

    Returns ``(model, Int8Report)``.
    """
    options = options or Int8Options()
    if opset_of(model) < MIN_OPSET:
        raise UserError(f"the model has ONNX opset {opset_of(model)}; INT8 with per-channel weights needs opset "
                        f">= {MIN_OPSET}: re-export with `swin-trt export --opset 17`")
    model = _copy(model)
    points = quant_points(model)
    reasons = _left_float(options, points)
    by_node: dict[str, list[Point]] = {}
    for point in points:
        by_node.setdefault(point.node, []).append(point)
    constants = constant_names(model)
    edit = _Inserter(model, scales)
    nodes = []
    for position, node in enumerate(model.graph.node):
        name = node.name = node_name(node, position)  # unnamed nodes get one: reports and FP16 blocks use it
        before: list[onnx.NodeProto] = []
        after: list[onnx.NodeProto] = []
        node_points = by_node.get(name, [])
        missing = [p.tensor for p in node_points if p.tensor not in scales and p.tensor not in edit.dequantized]
        if node_points and name not in reasons and missing:
            reasons[name] = f"no range in the calibration cache for {missing[0]}"
        if node_points and name not in reasons:
            if node.op_type in MOVE_OPS:
                _int8_plugin(node, edit, before, after)
            else:
                for point in node_points:
                    tensor = node.input[point.index]
                    node.input[point.index] = edit.dequantized.get(tensor) or edit.fake_quantize(tensor, before)
                if len(node.input) > 1 and node.input[1] in edit.inits and node.input[1] in constants:
                    node.input[1] = edit.weight(node, node.input[1], before)
            edit.report.quantized.append(name)
        nodes += before + [node] + after
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    model.graph.initializer.extend(edit.new_inits)
    model.graph.value_info.extend(edit.value_info)
    _drop_unused_initializers(model)
    edit.report.left_float = {name: reasons[name] for name in quantizable_nodes(model) if name in reasons}
    return model, edit.report


def _int8_plugin(node: onnx.NodeProto, edit: _Inserter, before: list, after: list) -> None:
    """Q -> plugin (int8 in, int8 out) -> DQ: the output name stays, so consumers are untouched."""
    tensor, out = node.input[0], node.output[0]
    node.input[0] = edit.quantize(tensor, before)
    int8_out = f"{out}/int8"
    node.output[0] = int8_out
    edit.value_info.append(helper.make_tensor_value_info(int8_out, TensorProto.INT8, None))
    edit.dequantize(int8_out, tensor, out, after)
    edit.dequantized[out] = out  # already dequantized: its MatMul consumer takes it as it is
    edit.report.activation_pairs += 1
    edit.report.int8_plugins.append(node.name)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def _drop_unused_initializers(model: onnx.ModelProto) -> None:
    used = {name for node in model.graph.node for name in node.input}
    used |= {o.name for o in model.graph.output}
    kept = [i for i in model.graph.initializer if i.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
