"""Running QDQ graphs fast on ONNX Runtime's CPU provider: three changes that leave the numbers equal.

1. ``Q -> SwinWindowPartition/Reverse (int8) -> DQ`` becomes ``plugin (float) -> Q -> DQ``. Moving values
   commutes with quantizing them (the padding zero quantizes to 0, the zero point), so the output is
   bit-identical; but ONNX Runtime on x86 without AVX-VNNI fuses DQ -> MatMul into an integer kernel only
   when the DQ follows a Q directly (it turns such s8 pairs into u8 ones; an s8 tensor that went through
   Reshape/Pad/Gather stays s8, which its x86 integer kernels refuse), and otherwise dequantizes and runs
   the float MatMul plus the DQ of the weights on every run.
2. ``MatMulAddFusion`` is disabled: it rewrites MatMul + bias Add into Gemm before the QDQ fusions run, and
   there is no DQ -> Gemm -> float fusion, so every int8 MatMul with a bias would again run in float.
3. int8 weights with zero point 0 become uint8 with zero point 128 (the same dequantized values). With s8
   weights ORT's x86 AVX2 kernels are u8s8 and add products pairwise in int16 (``vpmaddubsw``), which
   saturates: measured here, logits cosine vs FP32 fell from 0.9999 (exact INT8) to 0.955 on the pico
   model. u8u8 kernels do not saturate and match exact INT8 arithmetic.

The stored graph (what TensorRT builds) keeps int8 plugins and s8 weights; only the CPU copy changes.
``create_session`` applies all three to graphs with Q/DQ nodes. Its ``int8="exact"`` turns the QDQ fusions
off as well: each DQ runs and the MatMul runs in float, the same arithmetic as TensorRT's INT8 kernels up to
float rounding; validation uses it, so its numbers are what a deployment computes.
"""

from __future__ import annotations

import onnx

from ..ops.schema import MOVE_OPS

DISABLED = {"fast": ["MatMulAddFusion"],
            "exact": ["MatMulAddFusion", "QDQSelectorActionTransformer", "QDQS8ToU8Transformer"]}


def _consumers(model: onnx.ModelProto) -> dict[str, list[onnx.NodeProto]]:
    out: dict[str, list[onnx.NodeProto]] = {}
    for node in model.graph.node:
        for name in node.input:
            out.setdefault(name, []).append(node)
    return out


def float_data_movement(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with every ``Q -> plugin -> DQ`` of one scale turned into ``plugin -> Q -> DQ`` (exact)."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    producers = {out: node for node in copy.graph.node for out in node.output}
    consumers = _consumers(copy)
    for node in copy.graph.node:
        if node.op_type not in MOVE_OPS:
            continue
        q = producers.get(node.input[0])
        users = consumers.get(node.output[0], [])
        if q is None or q.op_type != "QuantizeLinear" or len(users) != 1 or users[0].op_type != "DequantizeLinear":
            continue
        if len(consumers.get(q.output[0], [])) != 1:
            continue  # the int8 tensor feeds something else too: leave it
        dq = users[0]
        if list(q.input[1:]) != list(dq.input[1:]):
            continue
        # x -> Q -> xq -> plugin -> yq -> DQ -> y   becomes   x -> plugin -> yf -> Q -> yq -> DQ -> y
        x, float_out = q.input[0], node.output[0] + "/float"
        node.input[0] = x
        node.output[0] = float_out
        q.input[0] = float_out
        q.output[0] = dq.input[0]
    _toposort(copy)
    return copy


def _toposort(model: onnx.ModelProto) -> None:
    """Kahn's algorithm, keeping the original order among ready nodes."""
    import heapq

    nodes = list(model.graph.node)
    producer = {out: i for i, node in enumerate(nodes) for out in node.output}
    waiting = [0] * len(nodes)
    users: dict[int, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in set(node.input):
            if name in producer:
                waiting[i] += 1
                users.setdefault(producer[name], []).append(i)
    ready = [i for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for j in users.get(i, []):
            waiting[j] -= 1
            if waiting[j] == 0:
                heapq.heappush(ready, j)
    if len(order) != len(nodes):
        raise ValueError("graph has a cycle")
    sorted_nodes = [nodes[i] for i in order]
    copies = [onnx.NodeProto() for _ in sorted_nodes]
    for target, source in zip(copies, sorted_nodes):
        target.CopyFrom(source)
    del model.graph.node[:]
    model.graph.node.extend(copies)


def uint8_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """int8 weights (zero point 0) -> uint8 (zero point 128): the same dequantized values, but ORT's x86
    integer kernels then run u8u8, which does not saturate, instead of u8s8, which does."""
    import numpy as np
    from onnx import numpy_helper

    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    inits = {i.name: i for i in copy.graph.initializer}
    for node in copy.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits or len(node.input) < 3:
            continue
        weight, zero = inits[node.input[0]], inits.get(node.input[2])
        if weight.data_type != onnx.TensorProto.INT8 or zero is None or zero.data_type != onnx.TensorProto.INT8:
            continue
        shifted = numpy_helper.to_array(weight).astype(np.int16) + 128
        zp = numpy_helper.to_array(zero).astype(np.int16) + 128
        weight.CopyFrom(numpy_helper.from_array(shifted.astype(np.uint8), weight.name))
        zero.CopyFrom(numpy_helper.from_array(zp.astype(np.uint8), zero.name))
    return copy


def has_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node)


def cpu_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph ONNX Runtime's CPU provider should run: the rewrites 1 and 3 above (numbers unchanged)."""
    return uint8_weights(float_data_movement(model)) if has_qdq(model) else model
