"""INT8 as explicit QuantizeLinear/DequantizeLinear pairs, where TensorRT fuses them into INT8 kernels.

* Activations: per tensor, symmetric (int8 zero point 0), scale from the calibration cache. One Q/DQ pair per
  tensor, shared by all its quantized consumers.
* Weights of MatMul/Gemm/Conv: per output channel, symmetric, from the weights themselves, stored as int8
  initializers behind a DequantizeLinear (axis 1 for a MatMul's (K, N), 0 for Conv, 0/1 for Gemm by transB).
* Window partition/reverse: Q before, DQ after, so the plugin moves int8 (its output keeps its input's
  scale: moving values does not change them). A partition's DQ then also feeds its qkv MatMul. A block's
  feature map (reverse's and attention's dims-only input) is then the partition's int8 input.
* Everything else (LayerNorm, Softmax, GELU, residual adds, the attention plugin's qkv) stays float.
* A detector's head (:mod:`.detection_head`: the RPN/ROI or dense heads, box decoding, NMS) stays float unless
  ``keep_head`` is off: INT8 goes into the backbone and the neck. Quantizing the head too lost 1.5 to 5 more
  points of the FP32 detections found on four torchvision detectors (README, "Detectors").
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from .. import graph as graphs
from ..errors import UserError
from ..ops import schema
from .detection_head import find_detection_head
from .methods import LEVELS
from .points import COMPUTE_OPS, MOVE_OPS, Point, node_name, point_nodes, quant_points

MIN_OPSET = 13  # per-channel DequantizeLinear (axis)


@dataclass
class Int8Options:
    exclude: tuple[str, ...] = ()  # fnmatch globs of node names left unquantized
    keep_first: bool = True  # the patch-embedding Conv
    keep_last: bool = True  # the classifier
    keep_head: bool = True  # a detector's head (everything after the neck)
    skip: frozenset[str] = frozenset()  # node names left unquantized (mixed precision's fallbacks)


@dataclass
class Int8Report:
    activation_pairs: int = 0  # Q/DQ pairs on activations (incl. those around plugins)
    weight_dq: int = 0
    int8_plugins: list[str] = field(default_factory=list)
    quantized: list[str] = field(default_factory=list)  # node names with int8 inputs
    left_float: dict[str, str] = field(default_factory=dict)  # node name -> why
    head: dict | None = None  # a detector's head (DetectionHead.to_dict and whether it was quantized)

    def to_dict(self) -> dict:
        report = {"qdq_pairs": self.activation_pairs, "weight_dequantize": self.weight_dq,
                  "int8_plugins": len(self.int8_plugins), "quantized_nodes": len(self.quantized),
                  "left_float": self.left_float}
        return report | ({"detection_head": self.head} if self.head else {})


def opset_of(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def quantizable_nodes(model: onnx.ModelProto) -> list[str]:
    """Node names with quantization points, in graph order (the 'layers' of mixed precision)."""
    return point_nodes(quant_points(gs.import_onnx(model)))


def _left_float(options: Int8Options, points: list[Point], head: frozenset[str] = frozenset()) -> dict[str, str]:
    reasons = {}
    compute = [p.node for p in points if p.op in COMPUTE_OPS]
    if options.keep_first and compute:
        reasons[compute[0]] = "keep-first"
    if options.keep_last and compute:
        reasons[compute[-1]] = "keep-last"
    for point in points:
        if options.keep_head and point.node in head:
            reasons[point.node] = "detection head"  # also for the last layer: the whole head is one choice
        if point.node in options.skip:
            reasons.setdefault(point.node, "fallback")
        if any(fnmatch.fnmatchcase(point.node, glob) for glob in options.exclude):
            reasons[point.node] = "excluded"
    return reasons


def weight_axis(node: gs.Node, rank: int) -> int:
    """The output-channel axis of ``node``'s weight: one scale per output channel."""
    if node.op == "Conv":
        return 0
    if node.op == "Gemm":
        return 0 if node.attrs.get("transB", 0) else 1
    return rank - 1  # MatMul: (..., K, N), one scale per output column


def quantize_weight(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-channel int8: ``(int8 weight, float32 scale per channel)``."""
    reduce = tuple(i for i in range(weight.ndim) if i != axis)
    amax = np.max(np.abs(weight), axis=reduce) if reduce else np.abs(weight)
    scale = (np.maximum(amax, 1e-12) / LEVELS).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    q = np.clip(np.round(weight / scale.reshape(shape)), -LEVELS, LEVELS).astype(np.int8)
    return q, scale


def is_weight(node: gs.Node) -> bool:
    """``node`` is a MatMul/Gemm/Conv whose second input is an initializer (quantized per channel)."""
    return node.op in COMPUTE_OPS and len(node.inputs) > 1 and isinstance(node.inputs[1], gs.Constant)


class _Inserter:
    """Makes the Q/DQ nodes and their constants; remembers tensors already quantized so pairs are shared."""

    def __init__(self, scales: dict[str, float]):
        self.scales = scales
        self.constants: dict[str, tuple[gs.Constant, gs.Constant]] = {}  # tensor -> (scale, zero point)
        self.dequantized: dict[str, gs.Variable] = {}  # float tensor -> its Q/DQ'd copy
        self.quantized: dict[str, gs.Variable] = {}  # float tensor -> its int8 tensor
        self.weights: dict[str, gs.Variable] = {}
        self.report = Int8Report()

    def _scale(self, tensor: str) -> tuple[gs.Constant, gs.Constant]:
        if tensor not in self.constants:
            self.constants[tensor] = (gs.Constant(f"{tensor}/scale", np.array(self.scales[tensor], np.float32)),
                                      gs.Constant(f"{tensor}/zero_point", np.array(0, np.int8)))
        return self.constants[tensor]

    def quantize(self, tensor: gs.Variable, before: list) -> gs.Variable:
        """The int8 copy of ``tensor`` (a QuantizeLinear appended to ``before``)."""
        if tensor.name not in self.quantized:
            out = gs.Variable(f"{tensor.name}/int8", dtype=np.int8)
            before.append(gs.Node("QuantizeLinear", f"{tensor.name}/QuantizeLinear",
                                  inputs=[tensor, *self._scale(tensor.name)], outputs=[out]))
            self.quantized[tensor.name] = out
        return self.quantized[tensor.name]

    def dequantize(self, int8: gs.Variable, tensor: str, out: gs.Variable, before: list) -> None:
        before.append(gs.Node("DequantizeLinear", f"{out.name}/DequantizeLinear",
                              inputs=[int8, *self._scale(tensor)], outputs=[out]))

    def fake_quantize(self, tensor: gs.Variable, before: list) -> gs.Variable:
        """``tensor`` through a shared Q/DQ pair; returns the dequantized tensor."""
        if tensor.name not in self.dequantized:
            int8 = self.quantize(tensor, before)
            out = gs.Variable(f"{tensor.name}/dequantized")
            self.dequantize(int8, tensor.name, out, before)
            self.dequantized[tensor.name] = out
            self.report.activation_pairs += 1
        return self.dequantized[tensor.name]

    def weight(self, node: gs.Node, weight: gs.Constant, before: list) -> gs.Variable:
        name = weight.name
        if name not in self.weights:
            array = weight.values
            axis = weight_axis(node, array.ndim)
            q, scale = quantize_weight(array, axis)
            inputs = [gs.Constant(f"{name}/int8", q), gs.Constant(f"{name}/scale", scale),
                      gs.Constant(f"{name}/zero_point", np.zeros(scale.shape, np.int8))]
            out = gs.Variable(f"{name}/dequantized")
            before.append(gs.Node("DequantizeLinear", f"{name}/DequantizeLinear", attrs={"axis": axis},
                                  inputs=inputs, outputs=[out]))
            self.weights[name] = out
            self.report.weight_dq += 1
        return self.weights[name]


def quantize_int8(model: onnx.ModelProto, scales: dict[str, float], options: Int8Options | None = None):
    """A copy of ``model`` with Q/DQ inserted; ``scales`` maps tensor names to activation scales.

    Returns ``(model, Int8Report)``.
    """
    options = options or Int8Options()
    if opset_of(model) < MIN_OPSET:
        raise UserError(f"the model has ONNX opset {opset_of(model)}; INT8 with per-channel weights needs opset "
                        f">= {MIN_OPSET}: re-export with `opset` 17 (the export stage, `swin-trt export`)")
    graph = gs.import_onnx(model)
    points = quant_points(graph)
    head = find_detection_head(graph)
    reasons = _left_float(options, points, head.nodes)
    by_node: dict[str, list[Point]] = {}
    for point in points:
        by_node.setdefault(point.node, []).append(point)
    edit = _Inserter(scales)
    if head.found:
        edit.report.head = {**head.to_dict(), "quantized": not options.keep_head}
    nodes = []
    for position, node in enumerate(graph.nodes):
        name = node.name = node_name(node, position)  # unnamed nodes get one: reports and FP16 blocks use it
        before: list[gs.Node] = []
        after: list[gs.Node] = []
        node_points = by_node.get(name, [])
        missing = [p.tensor for p in node_points if p.tensor not in scales and p.tensor not in edit.dequantized]
        if node_points and name not in reasons and missing:
            reasons[name] = f"no range in the calibration cache for {missing[0]}"
        if node_points and name not in reasons:
            if node.op in MOVE_OPS:
                _int8_plugin(node, edit, before, after)
            else:
                for point in node_points:  # a tensor already dequantized (a plugin's output) is taken as it is
                    node.inputs[point.index] = edit.fake_quantize(node.inputs[point.index], before)
                if is_weight(node):
                    node.inputs[1] = edit.weight(node, node.inputs[1], before)
            edit.report.quantized.append(name)
        nodes += before + [node] + after
    _feature_maps_from_int8(nodes, edit.quantized)
    graph.nodes = nodes
    edit.report.left_float = {name: reasons[name] for name in point_nodes(points) if name in reasons}
    return graphs.export(graph, like=model), edit.report


def _feature_maps_from_int8(nodes: list[gs.Node], quantized: dict[str, gs.Variable]) -> None:
    """A reverse's or attention's feature map (read for its dims only) is its block's partition input; where
    that was quantized, the node reads the int8 copy, so the float tensor is not kept alive for its dims."""
    for node in nodes:
        index = schema.FEATURE_MAP_INPUT.get(node.op)
        if index is not None and schema.has_feature_map(node.op, len(node.inputs)):
            node.inputs[index] = quantized.get(node.inputs[index].name, node.inputs[index])


def _int8_plugin(node: gs.Node, edit: _Inserter, before: list, after: list) -> None:
    """Q -> plugin (int8 in, int8 out) -> DQ: the output tensor stays, so consumers are untouched."""
    tensor, out = node.inputs[0], node.outputs[0]
    node.inputs[0] = edit.quantize(tensor, before)
    int8_out = gs.Variable(f"{out.name}/int8", dtype=np.int8)
    node.outputs[0] = int8_out
    edit.dequantize(int8_out, tensor.name, out, after)
    edit.dequantized[out.name] = out  # already dequantized: its MatMul consumer takes it as it is
    edit.report.activation_pairs += 1
    edit.report.int8_plugins.append(node.name)
