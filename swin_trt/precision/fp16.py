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

import onnx
from onnx import TensorProto

from ..errors import UserError
from ..ops import schema

ISLAND_OPS = ("LayerNormalization", "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare",
              "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceLogSum",
              "ReduceLogSumExp", "Gelu", "Erf")
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def gelu_erf_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of ``Div -> Erf -> Add -> Mul`` (exact GELU as exporters write it), each chain in full."""
    producers = {out: node for node in model.graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    names = []
    for erf in (n for n in model.graph.node if n.op_type == "Erf"):
        chain = [erf]
        div = producers.get(erf.input[0])
        if div is not None and div.op_type == "Div":
            chain.insert(0, div)
        add = [n for n in consumers.get(erf.output[0], []) if n.op_type == "Add"]
        if len(add) == 1:
            chain.append(add[0])
            chain += [n for n in consumers.get(add[0].output[0], []) if n.op_type == "Mul"]
        names += [n.name for n in chain if n.name]
    return names


def _convert(model, keep_io_types, op_block_list, node_block_list):
    try:
        from onnxconverter_common import float16
    except ImportError:
        raise UserError("--precision fp16/best and --int8-base fp16 need onnxconverter-common: "
                        "pip install onnxconverter-common") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the float32 number 1e-9 will be truncated": expected for weights
        return float16.convert_float_to_float16(model, keep_io_types=keep_io_types, op_block_list=op_block_list,
                                                node_block_list=node_block_list, disable_shape_infer=False)


def to_fp16(model: onnx.ModelProto, *, keep_io_types: bool = True, islands: bool = True,
            int8_nodes: list[str] | tuple = ()) -> tuple[onnx.ModelProto, dict]:
    """A float16 copy of ``model``. Returns ``(model, report)``; the report names the float32 nodes."""
    if any(i.type.tensor_type.elem_type == TensorProto.FLOAT16 for i in model.graph.input):
        raise UserError("the model is already float16: quantize the float32 model")
    original_tables = _attention_tables(model)
    op_block = list(QDQ_OPS) + (list(ISLAND_OPS) if islands else [])
    node_block = list(int8_nodes) + (gelu_erf_nodes(model) if islands else [])
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    converted = _convert(copy, keep_io_types, op_block, node_block)
    _restore_tables(converted, original_tables)
    bypassed = _bypass_round_trips(converted, set(op_block), set(node_block))
    kept = [n.name for n in converted.graph.node if n.op_type in op_block or n.name in node_block]
    return converted, {"fp32_nodes": len(kept), "fp32_islands": islands, "io_fp16": not keep_io_types,
                       "round_trips_removed": bypassed}


def _attention_tables(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    inits = {i.name: i for i in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    tables = {}
    for node in model.graph.node:
        if node.op_type == schema.ATTENTION and len(node.input) > 1:
            name = node.input[1]
            if name in inits and uses[name] == 1 and inits[name].data_type == TensorProto.FLOAT:
                tables[name] = inits[name]
    return tables


def _restore_tables(model: onnx.ModelProto, tables: dict[str, onnx.TensorProto]) -> None:
    for init in model.graph.initializer:
        if init.name in tables and init.data_type != TensorProto.FLOAT:
            init.CopyFrom(tables[init.name])


def _bypass_round_trips(model: onnx.ModelProto, op_block: set, node_block: set) -> int:
    """Point ``Cast(to=float) <- Cast(to=float16) <- float32 island`` consumers at the island's output."""
    producers = {out: node for node in model.graph.node for out in node.output}

    def to_type(node):
        return next((a.i for a in node.attribute if a.name == "to"), None)

    def is_fp32_island(name):
        node = producers.get(name)
        return node is not None and (node.op_type in op_block or node.name in node_block) and \
            node.op_type != "QuantizeLinear"

    bypassed = 0
    for node in model.graph.node:
        if node.op_type != "Cast" or to_type(node) != TensorProto.FLOAT:
            continue
        down = producers.get(node.input[0])
        if down is None or down.op_type != "Cast" or to_type(down) != TensorProto.FLOAT16:
            continue
        if not is_fp32_island(down.input[0]):
            continue
        source = down.input[0]
        for user in model.graph.node:
            for i, name in enumerate(user.input):
                if name == node.output[0]:
                    user.input[i] = source
        bypassed += 1
    if bypassed:
        _drop_dead_nodes(model)
    return bypassed


def _drop_dead_nodes(model: onnx.ModelProto) -> None:
    needed = {o.name for o in model.graph.output}
    kept = []
    for node in reversed(model.graph.node):
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    del model.graph.node[:]
    model.graph.node.extend(kept)
