"""Fuse a block's gathers into its attention: partition -> Linear -> attention -> Linear -> reverse becomes
Linear -> SwinFusedWindowAttention -> Linear on the token-major map (op contract: ``swin_trt/ops/schema.py``).

Runs on a graph that already has the plugin nodes (SwinWindowPartition, SwinWindowAttention,
SwinWindowReverse). The two projections work token by token, so they commute with the gathers: the qkv
Linear moves before the partition and the output Linear after the reverse, and the node in between reads its
windows from the map and writes its rows back. A block is fused only where the graph proves that:

* the partition's output feeds only the qkv projection, ``x @ W (+ b)`` with a constant 2-D ``W`` (and a
  constant bias over the last axis), which feeds only the attention;
* the attention's output feeds only the output projection of the same form, then nothing but Reshapes that
  keep the last axis (pure row regroupings), then the reverse;
* partition, attention and reverse have the same window and shift, partition and reverse the same pad order,
  and all three the same spatial size (the partition's input: the reverse's feature map or ``height``/
  ``width``, the attention's padded grid).

A padded token is zeros *before* the qkv Linear, so its qkv is that Linear's bias: the fused node gets it as
its pad row (zeros where the Linear has no bias). Anything else between the five nodes (a Cast, a quantized
weight, a Reshape that mixes channels) keeps the block as it was, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from ..graph import producer
from ..ops import reference, schema


@dataclass
class Fusion:
    name: str  # the fused node's
    attrs: dict  # the fused node's
    absorbed: tuple[str, str, str]  # the partition, attention and reverse nodes it replaces
    start: str  # the block's token map (the partition's input)
    end: str  # the block's output (the reverse's)


@dataclass
class _Linear:
    x: gs.Variable
    weight: gs.Constant
    bias: np.ndarray | None  # (K,)
    bias_constant: gs.Constant | None
    out: gs.Variable


def _only_consumer(tensor: gs.Variable, graph: gs.Graph):
    """The one node reading ``tensor``, or None (several readers, or a graph output)."""
    if tensor in graph.outputs or len(tensor.outputs) != 1:
        return None
    return tensor.outputs[0]


def _linear_below(tensor: gs.Variable, graph: gs.Graph) -> tuple[_Linear | None, str]:
    """``tensor @ W (+ b)``, a per-token Linear that alone reads ``tensor``, or the reason it is none."""
    matmul = _only_consumer(tensor, graph)
    if matmul is None or matmul.op != "MatMul" or matmul.inputs[0] is not tensor:
        return None, f"{tensor.name} is read by something else than one projection (MatMul)"
    weight = matmul.inputs[1]
    if not isinstance(weight, gs.Constant) or weight.values.ndim != 2:
        return None, f"the projection {matmul.name} has no constant 2-D weight"
    out = matmul.outputs[0]
    add = _only_consumer(out, graph)
    if add is None or add.op != "Add":
        return _Linear(tensor, weight, None, None, out), ""
    constants = [t for t in add.inputs if isinstance(t, gs.Constant)]
    width = weight.values.shape[1]
    if len(constants) != 1 or constants[0].values.size != width or constants[0].values.shape[-1:] != (width,):
        return _Linear(tensor, weight, None, None, out), ""  # an Add that is no bias: not this Linear's
    return _Linear(tensor, weight, constants[0].values.reshape(width), constants[0], add.outputs[0]), ""


def _row_regroupings(tensor: gs.Variable, graph: gs.Graph):
    """Follow Reshapes that keep the last axis; return the tensor after them and the node reading it."""
    while (node := _only_consumer(tensor, graph)) is not None and node.op == "Reshape":
        before, after = tensor.shape, node.outputs[0].shape
        if not (before and after and isinstance(before[-1], int) and after[-1] == before[-1]):
            return tensor, None
        tensor = node.outputs[0]
    return tensor, _only_consumer(tensor, graph)


def _ints(node: gs.Node, name: str) -> tuple[int, ...]:
    return tuple(int(v) for v in node.attrs[name])


def _same_size(partition: gs.Node, attention: gs.Node, reverse: gs.Node) -> str:
    """Why the three nodes may see different spatial sizes ("" where they provably see one)."""
    x = partition.inputs[0]
    window = _ints(partition, "window_size")
    names = schema.SIZE_ATTRIBUTES_3D[3 - len(window):]
    dims = list(x.shape or [])[1:-1]
    static = len(dims) == len(window) and all(isinstance(d, int) for d in dims)
    if len(reverse.inputs) > 1:  # reverse's feature map
        if reverse.inputs[1] is not x:
            return f"{reverse.name} reads its size from another map than {partition.name}'s input"
    elif not static or [int(reverse.attrs[n]) for n in names] != dims:
        return f"{reverse.name}'s size attributes are not {partition.name}'s input size"
    if any(_ints(attention, "shift_size")):  # only a shifted attention has a grid
        if len(attention.inputs) > 2:
            if attention.inputs[2] is not x:
                return f"{attention.name} reads its grid from another map than {partition.name}'s input"
        elif not static or [int(attention.attrs[n]) for n in names] != list(
                reference.padded_size(dims[-2], dims[-1], window, frames=dims[0] if len(dims) == 3 else None)):
            return f"{attention.name}'s grid is not the padded size of {partition.name}'s input"
    return ""


def _block(attention: gs.Node, graph: gs.Graph):
    """``(partition, qkv Linear, proj Linear, reverse)`` of a fusable block, or ``(None, reason)``."""
    partition = producer(attention.inputs[0])  # up through the qkv projection: Add (bias), MatMul
    if partition is not None and partition.op == "Add":
        variables = [t for t in partition.inputs if isinstance(t, gs.Variable)]
        partition = producer(variables[0]) if len(variables) == 1 else None
    if partition is not None and partition.op == "MatMul":
        partition = producer(partition.inputs[0])
    if partition is None or partition.op != schema.PARTITION:
        return None, "its qkv is not a projection of a SwinWindowPartition's windows"
    qkv, why = _linear_below(partition.outputs[0], graph)
    if qkv is None:
        return None, why
    if _only_consumer(qkv.out, graph) is not attention or attention.inputs[0] is not qkv.out:
        return None, f"the qkv projection's output {qkv.out.name} is read by something else than {attention.name}"
    proj, why = _linear_below(attention.outputs[0], graph)
    if proj is None:
        return None, why
    rows, reverse = _row_regroupings(proj.out, graph)
    if reverse is None or reverse.op != schema.REVERSE:
        return None, f"the output projection {proj.out.name} does not lead to a SwinWindowReverse through row " \
                     f"regroupings only"
    if reverse.inputs[0] is not rows:
        return None, f"{reverse.name} reads the projection through its feature-map input"
    for name in ("window_size", "shift_size"):
        if not _ints(partition, name) == _ints(attention, name) == _ints(reverse, name):
            return None, f"{name} differs between {partition.name}, {attention.name} and {reverse.name}"
    if int(partition.attrs["pad_first"]) != int(reverse.attrs["pad_first"]):
        return None, f"pad_first differs between {partition.name} and {reverse.name}"
    channels = (partition.inputs[0].shape or [None])[-1]
    if qkv.weight.values.shape[0] != channels:
        return None, f"the qkv projection's weight {list(qkv.weight.values.shape)} does not take the map's " \
                     f"{channels} channels"
    why = _same_size(partition, attention, reverse)
    if why:
        return None, why
    return (partition, qkv, proj, reverse), ""


def _fused_nodes(name: str, attention: gs.Node, partition: gs.Node, qkv: _Linear, proj: _Linear,
                 reverse: gs.Node) -> list[gs.Node]:
    x, end = partition.inputs[0], reverse.outputs[0]
    lead = list(x.shape[:-1]) if x.shape else None
    three_c = qkv.weight.values.shape[1]

    def variable(label, width):
        return gs.Variable(f"{name}/{label}", dtype=x.dtype, shape=None if lead is None else [*lead, width])

    nodes = []

    def linear(label, source, layer: _Linear, out):
        if layer.bias is None:
            nodes.append(gs.Node("MatMul", f"{name}/{label}/MatMul", inputs=[source, layer.weight], outputs=[out]))
            return
        product = variable(f"{label}/MatMul_output", layer.weight.values.shape[1])
        nodes.append(gs.Node("MatMul", f"{name}/{label}/MatMul", inputs=[source, layer.weight], outputs=[product]))
        nodes.append(gs.Node("Add", f"{name}/{label}/Add", inputs=[product, layer.bias_constant], outputs=[out]))

    qkv_map = variable("qkv", three_c)
    linear("qkv", x, qkv, qkv_map)
    pad_row = (qkv.bias if qkv.bias is not None else np.zeros(three_c, qkv.weight.values.dtype))
    pad_row = gs.Constant(f"{name}/pad_row", np.ascontiguousarray(pad_row))
    fields = {key: value for key, value in attention.attrs.items()
              if key not in schema.SIZE_ATTRIBUTES_3D and not key.startswith("plugin_")}
    fields["pad_first"] = int(partition.attrs["pad_first"])
    attrs = schema.plugin_attributes(schema.FUSED_ATTENTION, len(schema.FUSED_INPUTS), **fields)
    context = variable("output", three_c // 3)
    nodes.append(gs.Node(schema.FUSED_ATTENTION, name, attrs=attrs, inputs=[qkv_map, attention.inputs[1], pad_row],
                         outputs=[context], domain=schema.DOMAIN))
    reverse.outputs.clear()  # the block's output now comes from the output projection on the token map
    linear("proj", context, proj, end)
    return nodes


def fuse_gathers(graph: gs.Graph) -> tuple[list[Fusion], list[tuple[str, str]]]:
    """Fuse every block of ``graph`` that allows it (in place; dead nodes are left for ``graph.cleanup()``).
    Returns the fusions and, per attention left unfused, ``(node name, reason)``."""
    fusions, unfused = [], []
    for attention in [n for n in graph.nodes if n.op == schema.ATTENTION]:
        found, why = _block(attention, graph)
        if found is None:
            unfused.append((attention.name, why))
            continue
        partition, qkv, proj, reverse = found
        name = f"{schema.FUSED_ATTENTION}_{len(fusions)}"
        x, end = partition.inputs[0], reverse.outputs[0]
        nodes = _fused_nodes(name, attention, partition, qkv, proj, reverse)
        graph.nodes.extend(nodes)
        fused = next(n for n in nodes if n.op == schema.FUSED_ATTENTION)
        fusions.append(Fusion(name, dict(fused.attrs), (partition.name, attention.name, reverse.name), x.name,
                              end.name))
    return fusions, unfused
