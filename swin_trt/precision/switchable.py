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
from onnx import TensorProto, helper, numpy_helper

from .int8 import _weight_axis, quantize_weight
from .points import COMPUTE_OPS, MOVE_OPS, constant_names, node_name, quant_points

FLAG_PREFIX = "precision_probe/"


def build_probe(model: onnx.ModelProto, scales: dict[str, float], layers: list[str]) -> onnx.ModelProto:
    """``model`` with a switch per layer in ``layers`` (node names); layers lacking a range are left out."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    wanted = set(layers)
    scales = dict(scales)
    for node in probe.graph.node:  # as in the INT8 graph, a plugin's output carries its input's scale
        if node.op_type in MOVE_OPS and node.input[0] in scales:
            scales[node.output[0]] = scales[node.input[0]]
    points = [p for p in quant_points(probe) if p.node in wanted]
    constants = constant_names(probe)
    inits = {i.name: i for i in probe.graph.initializer}
    new_inits, fake = [], {}
    nodes = []

    def fake_quant(tensor: str, before: list) -> str:
        if tensor not in fake:
            s, z = f"{tensor}/probe_scale", f"{tensor}/probe_zero"
            new_inits.extend([numpy_helper.from_array(np.array(scales[tensor], np.float32), s),
                              numpy_helper.from_array(np.array(0, np.int8), z)])
            before.append(helper.make_node("QuantizeLinear", [tensor, s, z], [f"{tensor}/probe_q"]))
            before.append(helper.make_node("DequantizeLinear", [f"{tensor}/probe_q", s, z], [f"{tensor}/probe_dq"]))
            fake[tensor] = f"{tensor}/probe_dq"
        return fake[tensor]

    by_node: dict[str, list] = {}
    for point in points:
        by_node.setdefault(point.node, []).append(point)
    for position, node in enumerate(probe.graph.node):
        before = []
        name = node_name(node, position)
        node_points = by_node.get(name, [])
        if node_points and all(p.tensor in scales for p in node_points):
            flag = FLAG_PREFIX + name
            probe.graph.input.append(helper.make_tensor_value_info(flag, TensorProto.BOOL, []))
            for point in node_points:
                switched = f"{point.tensor}/probe/{name}/{point.index}"
                before.append(helper.make_node("Where", [flag, fake_quant(point.tensor, before), point.tensor],
                                               [switched]))
                node.input[point.index] = switched
            if node.op_type in COMPUTE_OPS and len(node.input) > 1 and node.input[1] in inits \
                    and node.input[1] in constants:
                weight = numpy_helper.to_array(inits[node.input[1]])
                axis = _weight_axis(node, weight.ndim)
                q, scale = quantize_weight(weight, axis)
                shape = [1] * weight.ndim
                shape[axis] = -1
                dq = (q.astype(np.float32) * scale.reshape(shape)).astype(np.float32)
                dq_name = f"{node.input[1]}/probe_dq/{name}"
                new_inits.append(numpy_helper.from_array(dq, dq_name))
                switched = f"{dq_name}/switched"
                before.append(helper.make_node("Where", [flag, dq_name, node.input[1]], [switched]))
                node.input[1] = switched
        nodes += before + [node]
    del probe.graph.node[:]
    probe.graph.node.extend(nodes)
    probe.graph.initializer.extend(new_inits)
    return probe


def flags(probe: onnx.ModelProto, on: set[str] | frozenset[str]) -> dict[str, np.ndarray]:
    """The feeds that quantize exactly the layers in ``on``."""
    return {i.name: np.array(i.name[len(FLAG_PREFIX):] in on)
            for i in probe.graph.input if i.name.startswith(FLAG_PREFIX)}


def probe_layers(probe: onnx.ModelProto) -> list[str]:
    return [i.name[len(FLAG_PREFIX):] for i in probe.graph.input if i.name.startswith(FLAG_PREFIX)]
