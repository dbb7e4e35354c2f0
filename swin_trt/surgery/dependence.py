"""Which tensors of a graph the pixel values can change: in value, or in shape.

Shape folding may turn a tensor into a constant only where no input can change it. Two ways a tensor depends
on the pixels, both followed through the graph from the inputs:

* its **value**: anything computed from the pixels. ``Shape``/``Size`` read only their input's shape, so
  they cut this chain, unless that shape itself depends on the pixels (below);
* its **shape**: the outputs of ops whose output size is decided by values (``NonZero``,
  ``NonMaxSuppression``, ``Unique``, ``Compress``, control flow), of ops that take a size, count or index
  as an input that depends on the pixels (``TopK``'s k, ``Reshape``/``Expand``/``Tile``/``Slice``/``Range``
  /``ConstantOfShape``/``Resize``/``Pad`` targets), and of any op reading a tensor whose shape depends on
  the pixels. A detector's box count is such a shape: its ``Shape`` must stay computed.

Control-flow ops (``If``, ``Loop``, ``Scan``) can read any tensor of the outer graph from their bodies, so
their outputs always count as depending on the pixels. Random ops are never constant either.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx_graphsurgeon as gs

from ..graph import SHAPE_OPS

# Output shape decided by input values, whatever the inputs are.
DATA_DEPENDENT_SHAPE_OPS = frozenset({"NonZero", "NonMaxSuppression", "Unique", "Compress", "If", "Loop", "Scan",
                                      "StringSplit"})
CONTROL_FLOW_OPS = frozenset({"If", "Loop", "Scan"})
RANDOM_OPS = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
                        "Bernoulli"})
_REDUCTIONS = ("ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2",
               "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare")
# Inputs whose *value* sets the output's size: where one depends on the pixels, so does the output's shape.
SIZE_INPUTS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "Slice": (1, 2, 3, 4), "TopK": (1,), "Range": (0, 1, 2),
    "ConstantOfShape": (0,), "Resize": (1, 2, 3), "Upsample": (1,), "Pad": (1, 2, 3), "OneHot": (1,),
    "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "CenterCropPad": (1,), "MaxUnpool": (2,),
    "Col2Im": (1, 2), "DFT": (1, 2), "STFT": (2, 3), **{op: (1,) for op in _REDUCTIONS},
}


@dataclass(frozen=True)
class Dependence:
    """``pixel_values``: tensors whose value the pixels can change; ``pixel_shapes``: whose shape they can."""

    pixel_values: frozenset[str]
    pixel_shapes: frozenset[str]

    def foldable(self, tensor: gs.Tensor) -> bool:
        """Computed from constants and input sizes alone: a candidate for folding (a graph input is not)."""
        return isinstance(tensor, gs.Constant) or (tensor.name not in self.pixel_values and bool(tensor.inputs))


def analyse(graph: gs.Graph) -> Dependence:
    """Follow the pixels through ``graph`` (its nodes are toposorted on the way)."""
    values = {t.name for t in graph.inputs}
    shapes: set[str] = set()
    for node in graph.toposort().nodes:
        inputs = [t for t in node.inputs if t.name]
        reads_value = [t.name in values for t in inputs]
        reads_shape = any(t.name in shapes for t in inputs)
        if node.op in SHAPE_OPS:
            value_changes = reads_shape
        else:
            value_changes = (node.op in CONTROL_FLOW_OPS or node.op in RANDOM_OPS or any(reads_value))
        sized_by_value = any(index < len(node.inputs) and node.inputs[index].name in values
                             for index in SIZE_INPUTS.get(node.op, ()))
        shape_changes = node.op in DATA_DEPENDENT_SHAPE_OPS or reads_shape or sized_by_value
        names = [t.name for t in node.outputs]
        if value_changes:
            values.update(names)
        if shape_changes:
            shapes.update(names)
    return Dependence(frozenset(values), frozenset(shapes))
