"""Running QDQ graphs fast on ONNX Runtime's CPU provider: three changes that leave the numbers equal.

1. ``Q -> SwinWindowPartition/Reverse (int8) -> DQ`` becomes ``plugin (float) -> Q -> DQ``. Moving values
   commutes with quantizing them (the padding zero quantizes to 0, the zero point), so the output is
   bit-identical; but ONNX Runtime on x86 without AVX-VNNI fuses DQ -> MatMul into an integer kernel only
   when the DQ follows a Q directly (it turns such s8 pairs into u8 ones; an s8 tensor that went through
   Reshape/Pad/Gather stays s8, which its x86 integer kernels refuse), and otherwise dequantizes and runs
   the float MatMul plus the DQ of the weights on every run.
2. ``MatMulAddFusion`` is disabled: it rewrites MatMul + bias Add into Gemm before the QDQ fusions run, and
   there is no DQ -> Gemm -> float fusion, so every int8 MatMul with a bias would again run in float.
3. On x86 CPUs without VNNI only: int8 weights with zero point 0 become uint8 with zero point 128 (the same
   dequantized values). There, ORT's u8s8 kernels add products pairwise in int16 (AVX2 ``vpmaddubsw``),
   which saturates: measured on such a CPU, logits cosine vs FP32 fell from 0.9999 (exact INT8) to 0.955 on
   the pico model; u8u8 kernels do not saturate and match exact INT8 arithmetic. With VNNI
   (``vpdpbusd`` accumulates in int32: no saturation) the s8 weights stay: u8u8 has no VNNI instruction,
   and on a 2-core AVX-512 VNNI box it cost INT8 a third of its speed-up (Swin-T, one thread: 1.38x over
   FP32 with u8 weights, 2.0x with s8, outputs identical; benchmarks/results/infer_int8.json).

The stored graph (what TensorRT builds) keeps int8 plugins and s8 weights; only the CPU copy changes.
``create_session`` applies all three to graphs with Q/DQ nodes. Its ``int8="exact"`` turns the QDQ fusions
off as well: each DQ runs and the MatMul runs in float, the same arithmetic as TensorRT's INT8 kernels up to
float rounding; validation uses it, so its numbers are what a deployment computes.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from .. import graph as graphs
from ..ops.schema import MOVE_OPS

DISABLED = {"fast": ["MatMulAddFusion"],
            "exact": ["MatMulAddFusion", "QDQSelectorActionTransformer", "QDQS8ToU8Transformer"]}


def float_data_movement(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with every ``Q -> plugin -> DQ`` of one scale turned into ``plugin -> Q -> DQ`` (exact)."""
    graph = gs.import_onnx(model)
    for node in [n for n in graph.nodes if n.op in MOVE_OPS]:
        q = graphs.producer(node.inputs[0])
        users = node.outputs[0].outputs
        if q is None or q.op != "QuantizeLinear" or len(users) != 1 or users[0].op != "DequantizeLinear":
            continue
        if len(q.outputs[0].outputs) != 1:
            continue  # the int8 tensor feeds something else too: leave it
        dq = users[0]
        if [t.name for t in q.inputs[1:]] != [t.name for t in dq.inputs[1:]]:
            continue
        # x -> Q -> xq -> plugin -> yq -> DQ -> y   becomes   x -> plugin -> yf -> Q -> yq -> DQ -> y
        x, yq = q.inputs[0], node.outputs[0]
        float_out = gs.Variable(f"{yq.name}/float")
        node.inputs[0] = x
        node.outputs[0] = float_out
        q.inputs[0] = float_out
        q.outputs[0] = yq
    graph.toposort()  # each moved Q now follows its plugin
    return graphs.export(graph, like=model)


def uint8_weights(model: onnx.ModelProto) -> onnx.ModelProto:
    """int8 weights (zero point 0) -> uint8 (zero point 128): the same dequantized values, but ORT's x86
    integer kernels then run u8u8, which does not saturate, instead of u8s8, which does."""
    graph = gs.import_onnx(model)
    for node in graph.nodes:
        if node.op != "DequantizeLinear" or len(node.inputs) < 3:
            continue
        weight, zero = node.inputs[0], node.inputs[2]
        if not (isinstance(weight, gs.Constant) and isinstance(zero, gs.Constant)):
            continue
        if weight.dtype != np.int8 or zero.dtype != np.int8:
            continue
        weight.values = (weight.values.astype(np.int16) + 128).astype(np.uint8)
        zero.values = (zero.values.astype(np.int16) + 128).astype(np.uint8)
    return graphs.export(graph, like=model)


def has_qdq(model: onnx.ModelProto) -> bool:
    return any(n.op_type in graphs.QDQ_OPS for n in model.graph.node)


@functools.lru_cache(maxsize=1)
def s8_weights_saturate() -> bool:
    """True on x86 without VNNI, where ONNX Runtime's u8s8 kernels sum products in int16 (see rewrite 3)."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return False  # Arm's dot-product kernels accumulate in int32
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return True  # unknown: the u8 weights are always exact, only sometimes slower
    return not any(flag in flags.split() for flag in ("avx512_vnni", "avx_vnni", "amx_int8"))


def cpu_copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph ONNX Runtime's CPU provider should run: the rewrites 1 and 3 above (numbers unchanged)."""
    if not has_qdq(model):
        return model
    moved = float_data_movement(model)
    return uint8_weights(moved) if s8_weights_saturate() else moved
