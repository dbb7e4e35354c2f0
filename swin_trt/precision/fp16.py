"""FP16 as graph types: onnxconverter-common's float16 converter, with float32 islands where Swin needs them.

Kept float32 (the converter casts around them):

* LayerNormalization: mean/variance of 100s of channels; float16 sums lose the small variance terms.
* Softmax and reductions (ReduceMean, ...): long sums and exponentials.
* The GELU's Erf path ``Div -> Erf -> Add -> Mul``: erf saturates and x * (1 + erf(x / sqrt 2)) cancels badly
  for negative x in float16. (A fused ``Gelu`` op, opset 20, is kept float32 too.)
* Q/DQ and the nodes that consume DQs when the graph is also INT8 (``int8_nodes``): an INT8 layer's scales
  and float output stay float32 (QuantizeLinear takes float16 only from opset 19).
* A detector's head (:mod:`.detection_head`), unless ``keep_head`` is off: box decoding adds offsets to
  anchors of hundreds of pixels, where float16's step is 0.25 to 0.5 px, and NMS compares IoUs of those boxes
  (README, "Detectors", has the measured cost).

The plugin nodes are custom ops the converter does not know; it converts their float inputs and outputs
like any node, which is what their TensorRT contract supports (partition/reverse: float16; attention:
float16 qkv and context). The attention's relative position bias table is restored to float32 (the plugin
accepts mixed types, and the bias is added to float32 logits anyway).

Lossy round trips the converter leaves between two float32 islands (``f32 -> f16 -> f32``, e.g. one
LayerNorm feeding another) are bypassed. Two things torch.onnx writes and the converter mistypes are undone
first: ``Identity`` aliases of deduplicated weights (:func:`_unalias_weights`) and ``Cast(to=float)``
(:func:`_casts_to_float32`).
"""

from __future__ import annotations

import contextlib
import heapq
import warnings

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import TensorProto
from onnxconverter_common import float16

from .. import graph as graphs
from ..errors import UserError
from ..ops import schema
from .detection_head import find_detection_head
from .points import node_name

ISLAND_OPS = ("LayerNormalization", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare",
              "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
              "ReduceLogSumExp", "Gelu", "Erf")


def gelu_erf_nodes(graph: gs.Graph) -> list[str]:
    """Names of ``Div -> Erf -> Add -> Mul`` (exact GELU as exporters write it), each chain in full."""
    names = []
    for erf in (n for n in graph.nodes if n.op == "Erf"):
        chain = [erf]
        div = graphs.producer(erf.inputs[0])
        if div is not None and div.op == "Div":
            chain.insert(0, div)
        add = [n for n in erf.outputs[0].outputs if n.op == "Add"]
        if len(add) == 1:
            chain.append(add[0])
            chain += [n for n in add[0].outputs[0].outputs if n.op == "Mul"]
        names += [n.name for n in chain if n.name]
    return names


def _convert(model, keep_io_types, op_block_list, node_block_list):
    with warnings.catch_warnings(), _stable_sort_in_one_pass():
        warnings.simplefilter("ignore")  # "the float32 number 1e-9 will be truncated": expected for weights
        return float16.convert_float_to_float16(model, keep_io_types=keep_io_types, op_block_list=op_block_list,
                                                node_block_list=node_block_list, disable_shape_infer=False)


@contextlib.contextmanager
def _stable_sort_in_one_pass():
    """The converter's node sort, in one pass. onnxconverter-common 1.16 orders nodes by rescanning the list for
    the first node whose inputs are ready, once per node placed: O(n^2), 50 s for the 8,000 nodes of a Swin
    detector as torch.onnx writes it. :func:`_sort_nodes` gives the same order with a heap."""
    original = getattr(float16, "sort_topology", None)
    if original is None:  # another version of the converter: leave it as it is
        yield
        return
    float16.sort_topology = _sort_nodes
    try:
        yield
    finally:
        float16.sort_topology = original


def _sort_nodes(graph: onnx.GraphProto) -> None:
    """Topological order, in place, choosing the earliest ready node first (the converter's own rule), and the
    same in every subgraph."""
    nodes = list(graph.node)
    producer = {name: index for index, node in enumerate(nodes) for name in node.output if name}
    waiting = [0] * len(nodes)
    readers: dict[int, list[int]] = {}
    for index, node in enumerate(nodes):
        for source in {producer[name] for name in node.input if name in producer} - {index}:
            waiting[index] += 1
            readers.setdefault(source, []).append(index)
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        index = heapq.heappop(ready)
        order.append(nodes[index])
        for reader in readers.get(index, ()):
            waiting[reader] -= 1
            if waiting[reader] == 0:
                heapq.heappush(ready, reader)
    if len(order) != len(nodes):
        raise RuntimeError("the float16 graph has a cycle")
    del graph.node[:]
    graph.node.extend(order)
    for node in graph.node:
        for attribute in node.attribute:
            for subgraph in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs):
                _sort_nodes(subgraph)


def to_fp16(model: onnx.ModelProto, *, keep_io_types: bool = True, islands: bool = True,
            int8_nodes: list[str] | tuple = (), keep_head: bool = True) -> tuple[onnx.ModelProto, dict]:
    """A float16 copy of ``model``. Returns ``(model, report)``; the report names the float32 nodes.

    A detector's head stays float32 as a whole with ``keep_head``, else its selection part (what reads the
    data-dependent ops: NMS, ROI heads) still does: its boxes are compared and decoded there, and the converter
    cannot type the ``If`` branches and shape casts of that part."""
    if any(i.type.tensor_type.elem_type == TensorProto.FLOAT16 for i in model.graph.input):
        raise UserError("the model is already float16: quantize the float32 model")
    original = gs.import_onnx(model)
    if _unalias_weights(original):
        model = graphs.export(original.cleanup(), like=model)
        original = gs.import_onnx(model)
    head = find_detection_head(original)
    float32_part = head.nodes if keep_head else head.selection
    if float32_part and not keep_io_types:
        raise UserError(f"`io_fp16`: this detector's outputs ({', '.join(head.outputs)}) come from its box "
                        f"selection (NMS), which stays float32: drop `io_fp16`")
    tables = _attention_tables(original)
    op_block = list(graphs.QDQ_OPS) + (list(ISLAND_OPS) if islands else [])
    node_block = list(int8_nodes) + (gelu_erf_nodes(original) if islands else [])
    report = {"fp32_nodes": 0, "fp32_islands": islands, "io_fp16": not keep_io_types, "round_trips_removed": 0}

    def convert(body: onnx.ModelProto) -> onnx.ModelProto:
        node_block.extend(_casts_to_float32(body))
        converted = _convert(body, keep_io_types, op_block, node_block)  # it edits ``body`` in place
        graph = gs.import_onnx(converted)
        _restore_tables(graph, tables)
        report["round_trips_removed"] = _bypass_round_trips(graph, set(op_block), set(node_block))
        if report["round_trips_removed"]:
            graph.cleanup()  # the bypassed casts
        report["fp32_nodes"] = sum(n.op in op_block or n.name in node_block for n in graph.nodes)
        return graphs.export(graph, like=converted)

    result = _convert_outside(model, float32_part, convert)
    if head.found:
        report["fp32_nodes"] += len(float32_part)
        report["detection_head"] = {**head.to_dict(), "float16": not keep_head, "fp32_nodes": len(float32_part)}
    return result, report


def _convert_outside(model: onnx.ModelProto, kept: frozenset[str], convert) -> onnx.ModelProto:
    """``convert`` run on ``model`` without the nodes named in ``kept``, which are then put back as they were.

    Each tensor a kept node reads from the converted part leaves it through an ``Identity`` of its own, an output
    of the part (float32, as ``keep_io_types`` writes outputs; the converter would retype a tensor that is both an
    output and read inside). Constants read on both sides get a float32 copy for the kept side, also where an
    ``If`` branch of a kept node reads them from the outer graph."""
    if not kept:
        return convert(graphs.copy(model))
    graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model))  # the boundary's types, for the part's outputs
    for position, node in enumerate(graph.nodes):
        node.name = node_name(node, position)
    kept_nodes = [node for node in graph.nodes if node.name in kept]
    body_nodes = [node for node in graph.nodes if node.name not in kept]
    body_reads = {tensor.name for node in body_nodes for _, tensor in _reads(node)}
    produced = {tensor.name for node in body_nodes for tensor in node.outputs}
    float32_copies: dict[str, gs.Constant] = {}
    crossing: dict[str, list] = {}  # a converted tensor -> (kept reader, the tensor) pairs
    for node in kept_nodes:
        for reader, tensor in _reads(node):
            if isinstance(tensor, gs.Constant) and tensor.name in body_reads:
                if tensor.name not in float32_copies:
                    float32_copies[tensor.name] = gs.Constant(f"{tensor.name}/float32", tensor.values)
                _replace_input(reader, tensor, float32_copies[tensor.name])
            elif tensor.name in produced:
                crossing.setdefault(tensor.name, []).append((reader, tensor))
    exits = []
    for name, readers in crossing.items():
        tensor = readers[0][1]
        exit_tensor = gs.Variable(f"{name}/to_float32_part", dtype=tensor.dtype, shape=tensor.shape)
        body_nodes.append(gs.Node("Identity", f"{name}/to_float32_part", inputs=[tensor], outputs=[exit_tensor]))
        exits.append(exit_tensor)
    body = gs.Graph(nodes=body_nodes, inputs=graph.inputs, outputs=exits, opset=graph.opset,
                    import_domains=graph.import_domains)
    converted = gs.import_onnx(convert(graphs.export(body, like=model)))
    tensors = converted.tensors()
    for name, readers in crossing.items():
        for reader, tensor in readers:
            _replace_input(reader, tensor, tensors[f"{name}/to_float32_part"])
    converted.nodes += kept_nodes  # after the whole converted part, in their own order: still topological
    converted.outputs = [tensors.get(tensor.name, tensor) for tensor in graph.outputs]
    return graphs.export(converted, like=model)


def _reads(node: gs.Node):
    """``(reader, tensor)`` for every tensor ``node`` reads, including what the nodes of its subgraphs (``If``
    branches, ``Loop`` bodies) read from outside them."""
    for tensor in node.inputs:
        if tensor.name:
            yield node, tensor
    for value in node.attrs.values():
        if isinstance(value, gs.Graph):
            inner = {tensor.name for inner_node in value.nodes for tensor in inner_node.outputs}
            inner |= {tensor.name for tensor in value.inputs}
            for inner_node in value.nodes:
                for reader, tensor in _reads(inner_node):
                    if tensor.name not in inner:
                        yield reader, tensor


def _replace_input(node: gs.Node, old: gs.Tensor, new: gs.Tensor) -> None:
    for index, tensor in enumerate(node.inputs):
        if tensor is old:
            node.inputs[index] = new


def _casts_to_float32(model: onnx.ModelProto) -> list[str]:
    """The names of ``Cast(to=float)`` nodes. The converter types every float tensor float16 but leaves the
    ``to`` of the casts it did not insert (torchvision's transform casts image sizes to float), which ONNX
    Runtime then rejects; blocked, such a cast keeps its float32 output and the converter casts after it."""
    return [node.name for node in model.graph.node if node.op_type == "Cast" and
            any(a.name == "to" and a.i == TensorProto.FLOAT for a in node.attribute)]


def _unalias_weights(graph: gs.Graph) -> int:
    """Make each ``Identity(initializer)`` an initializer of its own, under its own name (graph outputs excepted).

    torch.onnx writes such an alias for every weight equal to another one (all LayerNorm scales of ones, zero
    biases). The converter keeps an initializer float32 when a float32 island reads it and float16 otherwise,
    so one initializer read on both sides leaves a float16 node with a float32 input; and an alias of a cast
    initializer stays typed float32. Separate copies avoid both."""
    outputs = {tensor.name for tensor in graph.outputs}
    copied = 0
    for node in graph.nodes:
        if node.op != "Identity" or not isinstance(node.inputs[0], gs.Constant) or node.outputs[0].name in outputs:
            continue
        alias = node.outputs[0]
        node.outputs.clear()
        alias.to_constant(np.array(node.inputs[0].values))
        copied += 1
    return copied


def _attention_tables(graph: gs.Graph) -> dict[str, np.ndarray]:
    """The attention plugins' float32 bias tables (each read by its plugin only), by name."""
    tables = {}
    for node in graph.nodes:
        if node.op in schema.ATTENTION_OPS and len(node.inputs) > 1:
            table = node.inputs[1]
            if isinstance(table, gs.Constant) and len(table.outputs) == 1 and table.dtype == np.float32:
                tables[table.name] = table.values
    return tables


def _restore_tables(graph: gs.Graph, tables: dict[str, np.ndarray]) -> None:
    for name, tensor in graph.tensors().items():
        if name in tables and isinstance(tensor, gs.Constant) and tensor.dtype != np.float32:
            tensor.values = tables[name]


def _bypass_round_trips(graph: gs.Graph, op_block: set, node_block: set) -> int:
    """Point ``Cast(to=float) <- Cast(to=float16) <- float32 island`` consumers at the island's output."""

    def is_fp32_island(tensor):
        node = graphs.producer(tensor)
        return node is not None and (node.op in op_block or node.name in node_block) and \
            node.op != "QuantizeLinear"

    bypassed = 0
    for node in list(graph.nodes):
        if node.op != "Cast" or node.attrs.get("to") != TensorProto.FLOAT:
            continue
        down = graphs.producer(node.inputs[0])
        if down is None or down.op != "Cast" or down.attrs.get("to") != TensorProto.FLOAT16:
            continue
        if not is_fp32_island(down.inputs[0]):
            continue
        source = down.inputs[0]
        round_trip = node.outputs[0]
        for user in list(round_trip.outputs):
            for index, tensor in enumerate(user.inputs):
                if tensor is round_trip:
                    user.inputs[index] = source
        bypassed += 1
    return bypassed
