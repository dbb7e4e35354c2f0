"""FP16 as graph types: onnxconverter-common's float16 converter, with float32 islands where Swin needs them.

Kept float32 (the converter casts around them):

* LayerNormalization: mean/variance of 100s of channels; float16 sums lose the small variance terms.
* Softmax and reductions (ReduceMean, ...): long sums and exponentials.
* The GELU's Erf path ``Div -> Erf -> Add -> Mul``: erf saturates and x * (1 + erf(x / sqrt 2)) cancels badly
  for negative x in float16. (A fused ``Gelu`` op, opset 20, is kept float32 too.)
* Q/DQ and the nodes that consume DQs when the graph is also INT8 (``int8_nodes``): an INT8 layer's scales
  and float output stay float32 (QuantizeLinear takes float16 only from opset 19).

The plugin nodes are custom ops the converter does not know; it converts their float inputs and outputs
like any node, which is what their TensorRT contract supports (partition/reverse: float16; attention:
float16 qkv and context). The attention's relative position bias table is restored to float32 (the plugin
accepts mixed types, and the bias is added to float32 logits anyway).

Lossy round trips the converter leaves between two float32 islands (``f32 -> f16 -> f32``, e.g. one
LayerNorm feeding another) are bypassed.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import TensorProto
from onnxconverter_common import float16

from .. import graph as graphs
from ..errors import UserError
from ..ops import schema

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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the float32 number 1e-9 will be truncated": expected for weights
        return float16.convert_float_to_float16(model, keep_io_types=keep_io_types, op_block_list=op_block_list,
                                                node_block_list=node_block_list, disable_shape_infer=False)


def to_fp16(model: onnx.ModelProto, *, keep_io_types: bool = True, islands: bool = True,
            int8_nodes: list[str] | tuple = ()) -> tuple[onnx.ModelProto, dict]:
    """A float16 copy of ``model``. Returns ``(model, report)``; the report names the float32 nodes."""
    if any(i.type.tensor_type.elem_type == TensorProto.FLOAT16 for i in model.graph.input):
        raise UserError("the model is already float16: quantize the float32 model")
    original = gs.import_onnx(model)
    tables = _attention_tables(original)
    op_block = list(graphs.QDQ_OPS) + (list(ISLAND_OPS) if islands else [])
    node_block = list(int8_nodes) + (gelu_erf_nodes(original) if islands else [])
    converted = _convert(graphs.copy(model), keep_io_types, op_block, node_block)  # it edits in place
    graph = gs.import_onnx(converted)
    _restore_tables(graph, tables)
    bypassed = _bypass_round_trips(graph, set(op_block), set(node_block))
    if bypassed:
        graph.cleanup()  # the bypassed casts
    kept = [n.name for n in graph.nodes if n.op in op_block or n.name in node_block]
    return graphs.export(graph, like=converted), {"fp32_nodes": len(kept), "fp32_islands": islands,
                                                  "io_fp16": not keep_io_types, "round_trips_removed": bypassed}


def _attention_tables(graph: gs.Graph) -> dict[str, np.ndarray]:
    """The attention plugins' float32 bias tables (each read by its plugin only), by name."""
    tables = {}
    for node in graph.nodes:
        if node.op == schema.ATTENTION and len(node.inputs) > 1:
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
