"""Where INT8 goes: the activation inputs of MatMul/Gemm/Conv and the inputs of the window data-movement plugins.

These are the tensors calibration measures and QDQ insertion quantizes. TensorRT fuses DequantizeLinear into
the MatMul/Gemm/Conv that consumes it (an INT8 kernel); the partition and reverse plugins accept int8 and
just move bytes, so a Q before them and a DQ after them halves their memory traffic (the TensorRT plugin
contract: float32, float16, int8). The attention plugin's qkv input is float by contract: never quantized.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx
import onnx_graphsurgeon as gs

from ..graph import is_constant
from ..ops import schema

COMPUTE_OPS = ("MatMul", "Gemm", "Conv")
MOVE_OPS = schema.MOVE_OPS


@dataclass(frozen=True)
class Point:
    node: str  # node name (what --exclude matches)
    op: str
    index: int  # which input
    tensor: str  # the activation tensor's name


def node_name(node: gs.Node, index: int) -> str:
    """The node's name, or ``<op>_<index>`` for an unnamed node (names key exclusions and fallbacks)."""
    return node.name or f"{node.op}_{index}"


def quant_points(graph: gs.Graph) -> list[Point]:
    """Every activation input to quantize, in graph order."""
    points = []
    for position, node in enumerate(graph.nodes):
        if node.op == "MatMul":
            indices = (0, 1)
        elif node.op in ("Gemm", "Conv") or node.op in MOVE_OPS:
            indices = (0,)
        else:
            continue
        for index in indices:
            if index < len(node.inputs) and node.inputs[index].name and not is_constant(node.inputs[index]):
                points.append(Point(node_name(node, position), node.op, index, node.inputs[index].name))
    return points


def point_nodes(points: list[Point]) -> list[str]:
    """The names of the nodes ``points`` belong to, each once, in graph order."""
    return list(dict.fromkeys(point.node for point in points))


def calibration_tensors(model: onnx.ModelProto) -> list[str]:
    """The tensors whose ranges the cache holds. A partition's output is also its MatMul's input, so an
    excluded partition still leaves that MatMul a range of its own."""
    return sorted({p.tensor for p in quant_points(gs.import_onnx(model))})
