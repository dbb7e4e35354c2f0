"""Find the window-attention core: qkv (B*nW, N, 3C) -> context (B*nW, N, C), anchored on its Softmax.

The qkv and output projections stay outside (ordinary MatMul/Gemm: TensorRT keeps its INT8 GEMMs). The
window, shift and padded grid come from the partition that feeds the qkv projection. The bias table is
recovered from the graph by probing: the logits path evaluated on zero logits yields bias + mask; the
mask is known from the attributes, and every table entry appears in a full window, so the table is read
back exactly and checked. The whole region is then probed on random qkv against the op contract.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from ..graph import producer
from ..ops import reference, schema
from .region import Region
from .windows import WindowMatch

_LOGIT_OPS = {"Add", "Reshape", "Mul", "Div", "Sub", "Cast"}
_SPLIT_OPS = {"Gather", "Squeeze", "Split", "Slice", "Transpose", "Reshape", "Unsqueeze", "Mul", "Div"}
ATOL = 1e-4


@dataclass
class AttentionMatch:
    anchor: gs.Node
    start: gs.Variable
    end: gs.Variable
    nodes: list
    attrs: dict
    table: np.ndarray
    reason: str = ""


def _variable_inputs(node):
    return [t for t in node.inputs if isinstance(t, gs.Variable)]


def _qk_matmul(softmax: gs.Node):
    tensor = softmax.inputs[0]
    while (node := producer(tensor)) is not None:
        if node.op == "MatMul" and len(_variable_inputs(node)) == 2:
            return node
        variables = _variable_inputs(node)
        if node.op not in _LOGIT_OPS or len(variables) != 1:
            return None
        tensor = variables[0]
    return None


def _context_end(softmax: gs.Node):
    consumers = softmax.outputs[0].outputs
    if len(consumers) != 1 or consumers[0].op != "MatMul" or consumers[0].inputs[0] is not softmax.outputs[0]:
        return None, None
    pv = consumers[0]
    tensor = pv.outputs[0]
    while len(tensor.outputs) == 1 and tensor.outputs[0].op in ("Transpose", "Reshape"):
        tensor = tensor.outputs[0].outputs[0]
        if tensor.shape is not None and len(tensor.shape) == 3:
            return pv, tensor
    return None, None


def _qkv_start(pv: gs.Node, channels: int):
    tensor = pv.inputs[1]
    while (node := producer(tensor)) is not None:
        shape = tensor.shape
        if shape is not None and len(shape) == 3 and shape[-1] == 3 * channels:
            return tensor
        variables = _variable_inputs(node)
        if node.op not in _SPLIT_OPS or len(variables) != 1:
            return None
        tensor = variables[0]
    tensor_shape = tensor.shape
    return tensor if tensor_shape is not None and len(tensor_shape) == 3 else None


def _feeding_partition(start: gs.Variable, partitions: dict) -> WindowMatch | None:
    """The partition whose windows feed the qkv projection that produces ``start``."""
    tensor = start
    for _ in range(4):  # MatMul + Add (bias), maybe a Reshape around them
        if tensor.name in partitions:
            return partitions[tensor.name]
        node = producer(tensor)
        if node is None:
            return None
        variables = _variable_inputs(node)
        if node.op not in ("MatMul", "Add", "Gemm", "Reshape") or not variables:
            return None
        tensor = variables[0]
    return partitions.get(tensor.name)


def _recover_table(graph, qk: gs.Node, softmax: gs.Node, rows: int, heads: int, window, shift, grid):
    tokens = window[0] * window[1]
    logits = Region(graph, [qk.outputs[0]], softmax.inputs[0])
    if not logits.self_contained:
        return None, "the logits path reads tensors other than constants"
    added = logits.run({qk.outputs[0].name: np.zeros((rows, heads, tokens, tokens), np.float32)})
    added = added.reshape(-1, heads, tokens, tokens)
    mask = reference.attention_mask(window, shift, *grid)
    if mask is not None:
        added = added.reshape(-1, mask.shape[0], heads, tokens, tokens) - mask[None, :, None]
        added = added.reshape(-1, heads, tokens, tokens)
    bias = added[0]
    if not np.allclose(added, bias[None], atol=1e-5):
        return None, "the additive term differs between windows beyond the shift mask"
    index = reference.relative_position_index(window)
    table = np.zeros(((2 * window[0] - 1) * (2 * window[1] - 1), heads), np.float32)
    table[index.reshape(-1)] = bias.reshape(heads, -1).T
    if not np.allclose(reference.relative_position_bias(table, window), bias, atol=1e-5):
        return None, "the additive term is not a relative position bias"
    return table, ""


def find_attention(graph: gs.Graph, partitions: list[WindowMatch]):
    """Attention cores fed by one of ``partitions``; also the softmaxes that did not match, with reasons."""
    by_end = {m.end.name: m for m in partitions}
    matches, unmatched = [], []
    for softmax in [n for n in graph.nodes if n.op == "Softmax"]:
        match, reason = _match(graph, softmax, by_end)
        if match is None:
            unmatched.append((softmax, reason))
        else:
            matches.append(match)
    return matches, unmatched


def _match(graph, softmax, partitions):
    qk = _qk_matmul(softmax)
    pv, end = _context_end(softmax)
    if qk is None or end is None:
        return None, "not the q.k -> softmax -> .v pattern"
    channels = end.shape[-1]
    start = _qkv_start(pv, channels)
    if start is None or not isinstance(channels, int):
        return None, "could not find the qkv tensor (B*nW, N, 3C)"
    partition = _feeding_partition(start, partitions)
    if partition is None:
        return None, "its qkv does not come from a matched window partition"
    logits_shape = softmax.inputs[0].shape
    heads, tokens = logits_shape[-3], logits_shape[-1]
    window, shift = partition.attrs["window_size"], partition.attrs["shift_size"]
    grid = partition.padded
    n_windows = reference.num_windows(partition.attrs["height"], partition.attrs["width"], window)
    rows = start.shape[0] if isinstance(start.shape[0], int) else n_windows
    if tokens != window[0] * window[1] or channels % heads:
        return None, f"token count {tokens} does not fit window {window}"
    unsupported = schema.attention_unsupported(tokens, channels // heads)
    if unsupported:
        return None, unsupported
    table, reason = _recover_table(graph, qk, softmax, rows, heads, window, shift, grid)
    if table is None:
        return None, reason
    attrs = dict(num_heads=heads, window_size=tuple(window), shift_size=tuple(shift), height=grid[0],
                 width=grid[1], scale=float((channels // heads) ** -0.5))
    region = Region(graph, [start], end)
    if not region.self_contained:
        return None, "the attention region reads tensors other than qkv and constants"
    qkv = np.random.default_rng(0).standard_normal((rows, tokens, 3 * channels)).astype(np.float32)
    got = region.run({start.name: qkv})
    expected = reference.window_attention(qkv, table, **attrs)
    error = float(np.abs(got - expected).max())
    if error > ATOL:
        return None, f"probe differs from the SwinWindowAttention contract by {error:.2e}"
    return AttentionMatch(softmax, start, end, region.nodes, attrs, table), ""


def plugin_node(match: AttentionMatch, name: str) -> gs.Node:
    attrs = schema.plugin_attributes(schema.ATTENTION, **match.attrs)
    table = gs.Constant(f"{name}/relative_position_bias_table", match.table)
    return gs.Node(schema.ATTENTION, name, attrs=attrs, inputs=[match.start, table], outputs=[match.end],
                   domain=schema.DOMAIN)
