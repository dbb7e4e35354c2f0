"""A switchable INT8 graph for sensitivity analysis: one session, any subset of layers quantized per run.

Every quantizable node ``L`` gets a boolean graph input ``precision_probe/<L>``; its quantized inputs pass
through ``Where(flag, DQ(Q(x)), x)`` (weights: ``Where(flag, DQ(W_int8), W)``). For a window plugin the
switch sits on its input: moving values commutes with quantizing them, so ``QDQ(x) -> plugin`` equals
``Q -> plugin -> DQ``. Building one ONNX Runtime session instead of one per layer is what makes
quantize-one-layer-at-a-time affordable: a configuration costs one pass over the held-out images.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from .. import graph as graphs
from .int8 import is_weight, quantize_weight, weight_axis
from .points import MOVE_OPS, node_name, quant_points

FLAG_PREFIX = "precision_probe/"


def build_probe(model: onnx.ModelProto, scales: dict[str, float], layers: list[str]) -> onnx.ModelProto:
    """``model`` with a switch per layer in ``layers`` (node names); layers lacking a range are left out."""
    graph = gs.import_onnx(model)
    wanted = set(layers)
    scales = dict(scales)
    for node in graph.nodes:  # as in the INT8 graph, a plugin's output carries its input's scale
        if node.op in MOVE_OPS and node.inputs[0].name in scales:
            scales[node.outputs[0].name] = scales[node.inputs[0].name]
    by_node: dict[str, list] = {}
    for point in quant_points(graph):
        if point.node in wanted:
            by_node.setdefault(point.node, []).append(point)
    fake: dict[str, gs.Variable] = {}
    nodes = []

    def fake_quant(tensor: gs.Variable, before: list) -> gs.Variable:
        if tensor.name not in fake:
            scale = gs.Constant(f"{tensor.name}/probe_scale", np.array(scales[tensor.name], np.float32))
            zero = gs.Constant(f"{tensor.name}/probe_zero", np.array(0, np.int8))
            quantized, dequantized = gs.Variable(f"{tensor.name}/probe_q"), gs.Variable(f"{tensor.name}/probe_dq")
            before.append(gs.Node("QuantizeLinear", inputs=[tensor, scale, zero], outputs=[quantized]))
            before.append(gs.Node("DequantizeLinear", inputs=[quantized, scale, zero], outputs=[dequantized]))
            fake[tensor.name] = dequantized
        return fake[tensor.name]

    for position, node in enumerate(graph.nodes):
        before = []
        name = node_name(node, position)
        node_points = by_node.get(name, [])
        if node_points and all(p.tensor in scales for p in node_points):
            flag = gs.Variable(FLAG_PREFIX + name, dtype=np.bool_, shape=[])
            graph.inputs.append(flag)
            for point in node_points:
                tensor = node.inputs[point.index]
                switched = gs.Variable(f"{point.tensor}/probe/{name}/{point.index}")
                before.append(gs.Node("Where", inputs=[flag, fake_quant(tensor, before), tensor], outputs=[switched]))
                node.inputs[point.index] = switched
            if is_weight(node):
                weight = node.inputs[1]
                array = weight.values
                axis = weight_axis(node, array.ndim)
                q, scale = quantize_weight(array, axis)
                shape = [1] * array.ndim
                shape[axis] = -1
                dq = gs.Constant(f"{weight.name}/probe_dq/{name}",
                                 (q.astype(np.float32) * scale.reshape(shape)).astype(np.float32))
                switched = gs.Variable(f"{dq.name}/switched")
                before.append(gs.Node("Where", inputs=[flag, dq, weight], outputs=[switched]))
                node.inputs[1] = switched
        nodes += before + [node]
    graph.nodes = nodes
    return graphs.export(graph, like=model)


def flags(probe: onnx.ModelProto, on: set[str] | frozenset[str]) -> dict[str, np.ndarray]:
    """The feeds that quantize exactly the layers in ``on``."""
    return {i.name: np.array(i.name[len(FLAG_PREFIX):] in on)
            for i in probe.graph.input if i.name.startswith(FLAG_PREFIX)}


def probe_layers(probe: onnx.ModelProto) -> list[str]:
    return [i.name[len(FLAG_PREFIX):] for i in probe.graph.input if i.name.startswith(FLAG_PREFIX)]
