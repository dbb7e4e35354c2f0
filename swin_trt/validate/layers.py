"""Per-layer error attribution: which layers of an FP16 / INT8 graph lose the signal.

Both graphs (the FP32 one and the candidate) run in ONNX Runtime with their intermediate tensors added as
graph outputs; tensors with the same name (and, at run time, the same shape) are compared side by side on
a few images. A tensor's SNR is the error accumulated up to it, so ranking by it would blame everything
downstream of the real culprit. What a layer adds is measured against the worst compared tensor feeding it:

* ``snr_lost_db``: its input's SNR minus its own, in dB;
* ``layer_snr_db``: the SNR of the noise the layer adds by itself (relative noise power out minus in). This
  ranks the layers: the dB drop alone would always put the first layer on top (its input is exact, an
  infinite SNR), while the noise added compares a first layer and a deep one on the same scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx

from ..backends.onnxruntime import create_session
from ..graph import QUANTIZE_OPS, SHAPE_OPS, with_outputs
from ..ops.lowering import lower_plugins
from ..ops.schema import MOVE_OPS
from .metrics import capped, cosine_rows, snr_db

# Ops that only move, slice or re-type values: their outputs repeat an upstream tensor's error, so listing
# them would bury the layers that compute.
LAYOUT_OPS = {
    "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast", "CastLike", "Slice", "Concat",
    "Gather", "GatherElements", "Pad", "Expand", "Split", "Tile", "Constant", "ConstantOfShape",
    *SHAPE_OPS, *QUANTIZE_OPS, *MOVE_OPS,
}
FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
               onnx.TensorProto.DOUBLE}
INPUT = "<input>"


@dataclass
class LayerGraph:
    """The FP32 graph's compute tensors in topological order and, per tensor, the compared tensors feeding it."""

    order: list[str]
    ops: dict[str, tuple[str, str]]  # tensor -> (op type, node name)
    parents: dict[str, set[str]] = field(default_factory=dict)


def compute_tensors(model: onnx.ModelProto) -> LayerGraph:
    """Outputs of compute nodes that depend on the graph input (constant subgraphs are not layers)."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    live = {i.name for i in graph.input if i.name not in initializers}
    order, ops = [], {}
    for node in graph.node:
        # What follows Shape/Size is shape arithmetic or masks built from it, not data.
        if node.op_type in SHAPE_OPS or not any(name in live for name in node.input):
            continue
        live.update(o for o in node.output if o)
        if node.op_type in LAYOUT_OPS:
            continue
        for output in node.output:
            if output:
                order.append(output)
                ops[output] = (node.op_type, node.name)
    return LayerGraph(order, ops)


def link_parents(model: onnx.ModelProto, layer_graph: LayerGraph, compared: set[str]) -> None:
    """For each compared tensor, the nearest compared tensors (or the graph input) upstream of it."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    frontier = {i.name: {INPUT} for i in graph.input if i.name not in initializers}
    for node in graph.node:
        if node.op_type in SHAPE_OPS:
            continue
        feeding = set()
        for name in node.input:
            feeding |= {name} if name in compared else frontier.get(name, set())
        for output in node.output:
            if output in compared:
                layer_graph.parents[output] = feeding
                frontier[output] = {output}
            elif feeding:
                frontier[output] = feeding


def expose(model: onnx.ModelProto, names: list[str]) -> tuple[onnx.ModelProto, dict[str, int]]:
    """The lowered model with every float tensor of ``names`` that it has as a graph output.

    Returns the model and {exposed name: element type}. Types come from ONNX shape inference on the lowered
    graph (plugin nodes would stop it on the original one).
    """
    return with_outputs(lower_plugins(model), names, keep=FLOAT_TYPES.__contains__)


class _Runner:
    def __init__(self, model: onnx.ModelProto):
        self.session = create_session(model, int8="exact", lowered=True)  # the same arithmetic as the candidate's metrics
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.dtype = np.float16 if first.type == "tensor(float16)" else np.float32
        self.batch = first.shape[0] if isinstance(first.shape[0], int) else 1

    def run(self, names: list[str], image: np.ndarray) -> list[np.ndarray]:
        x = np.repeat(image[None], self.batch, axis=0).astype(self.dtype)
        # Cast on our side: an FP16 graph's tensors come back as float16.
        return [np.asarray(out[:1], dtype=np.float64) for out in self.session.run(names, {self.input_name: x})]


class _Stats:
    __slots__ = ("signal", "noise", "max_abs", "sum_abs", "elements", "cosine_sum", "count", "shape")

    def __init__(self, shape):
        self.signal = self.noise = self.max_abs = self.sum_abs = self.cosine_sum = 0.0
        self.elements = self.count = 0
        self.shape = shape

    def update(self, ref: np.ndarray, cand: np.ndarray) -> None:
        diff = cand - ref
        self.signal += float(np.sum(ref * ref))
        self.noise += float(np.sum(diff * diff))
        self.max_abs = max(self.max_abs, float(np.max(np.abs(diff))) if diff.size else 0.0)
        self.sum_abs += float(np.sum(np.abs(diff)))
        self.elements += diff.size
        self.cosine_sum += float(cosine_rows(ref.reshape(1, -1), cand.reshape(1, -1))[0])
        self.count += 1


def attribute_layers(fp32: onnx.ModelProto, candidate: onnx.ModelProto, images, top: int = 10) -> dict:
    """Compare ``candidate``'s intermediate tensors with ``fp32``'s on ``images`` ((3, H, W) float32 each).

    Returns ``{"compared", "shape_mismatches", "images", "tensors": [...] (FP32 graph order),
    "worst": [names, worst first]}``.
    """
    layer_graph = compute_tensors(fp32)
    fp32_model, fp32_exposed = expose(fp32, layer_graph.order)
    cand_model, cand_exposed = expose(candidate, layer_graph.order)
    names = [n for n in layer_graph.order if n in fp32_exposed and n in cand_exposed]
    if not names:
        return {"compared": 0, "shape_mismatches": 0, "images": 0, "tensors": [], "worst": []}
    ref_runner, cand_runner = _Runner(fp32_model), _Runner(cand_model)
    stats: dict[str, _Stats] = {}
    mismatched: set[str] = set()
    count = 0
    for image in images:  # one image at a time: a Swin's intermediates for a batch would not fit
        count += 1
        for name, ref, cand in zip(names, ref_runner.run(names, image), cand_runner.run(names, image)):
            if ref.shape != cand.shape:
                mismatched.add(name)
                continue
            stats.setdefault(name, _Stats(list(ref.shape[1:]))).update(ref, cand)
    compared = [n for n in names if n in stats and n not in mismatched]
    link_parents(fp32, layer_graph, set(compared))
    snr = {INPUT: np.inf, **{n: snr_db(stats[n].signal, stats[n].noise) for n in compared}}
    tensors = []
    for index, name in enumerate(compared):
        s = stats[name]
        snr_in = min((snr[p] for p in layer_graph.parents.get(name, ()) if p in snr), default=np.inf)
        op, node = layer_graph.ops[name]
        added = 10 ** (-capped(snr[name]) / 10) - 10 ** (-capped(snr_in) / 10)  # relative noise power
        tensors.append({"index": index, "name": name, "op": op, "node": node, "shape": s.shape,
                        "snr_db": snr[name], "snr_in_db": snr_in,
                        "snr_lost_db": capped(snr_in) - capped(snr[name]),
                        "layer_snr_db": -10 * math.log10(added) if added > 0 else math.inf,
                        "cosine": s.cosine_sum / s.count, "max_abs_err": s.max_abs,
                        "mean_abs_err": s.sum_abs / max(s.elements, 1)})
    worst = sorted(tensors, key=lambda t: t["layer_snr_db"])[:top]
    return {"compared": len(compared), "shape_mismatches": len(mismatched), "images": count,
            "tensors": tensors, "worst": [t["name"] for t in worst]}
