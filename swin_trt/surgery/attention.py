"""Find the window-attention core: qkv (B*nW, N, 3C) -> context (B*nW, N, C), anchored on its Softmax.

The qkv and output projections stay outside (ordinary MatMul/Gemm: TensorRT keeps its INT8 GEMMs). Most
implementations project qkv with one Linear; Hugging Face's Swin has three (query, key, value): then the
core starts at the three projections, and the plugin gets them as one qkv tensor (one MatMul with the three
weights side by side where they are constants on the same input, else a Concat). The window, shift and
padded grid come from the partition that feeds the projections. The bias table is recovered from the
graph by probing: the logits path evaluated on zero logits yields bias + mask; the mask is known from the
attributes, and every table entry appears in a full window, so the table is read back exactly and checked.
A bias that is no relative position bias of the window (Video Swin's windows shrunk to a small stage) goes to
the plugin in the contract's dense form, ``(heads, N, N)``.
The whole region is then probed on random qkv against the op contract.

Swin V2's scaled cosine attention (timm, torchvision, Hugging Face: ``F.normalize`` on q and k, the logits
times ``exp(min(logit_scale, log 100))`` per head, a bias table computed by the CPB MLP) matches the same way:
the normalizations are recognised on the q and k operands; the per-head scale is read off the logits path
(its value on ones minus on zeros); the CPB MLP is a constant subgraph, folded before matching, so the table
is read back like V1's. The node then carries ``cosine = 1`` and ``head_scale`` (op contract, cosine mode).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from ..graph import producer
from ..ops import reference, schema
from .region import Region
from .windows import WindowMatch

_LOGIT_OPS = {"Add", "Reshape", "Mul", "Div", "Sub", "Cast"}
_SPLIT_OPS = {"Gather", "Squeeze", "Split", "Slice", "Transpose", "Reshape", "Unsqueeze", "Mul", "Div"}
_NORM_OPS = {"ReduceL2", "ReduceSum", "ReduceSumSquare", "Mul", "Pow", "Sqrt", "Clip", "Max", "Expand", "Cast"}
ATOL = 1e-4


@dataclass
class AttentionMatch:
    anchor: gs.Node
    inputs: list  # [qkv (B*nW, N, 3C)] or [q, k, v] (B*nW, N, C) each
    end: gs.Variable
    nodes: list
    attrs: dict
    table: np.ndarray  # the bias input: the table (R, heads) or, where no table fits, the dense (heads, N, N)
    any_size: bool = False  # the node must be right at every input size (dynamic height/width)
    feature_map: gs.Variable | None = None  # shifted, at any size: the (B, H, W, C) map the block partitioned

    @property
    def start(self) -> gs.Variable:
        return self.inputs[0]


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


def _probabilities(softmax: gs.Node) -> gs.Variable:
    probs = softmax.outputs[0]
    while len(probs.outputs) == 1 and probs.outputs[0].op == "Cast":  # softmax(dtype=float32).to(dtype)
        probs = probs.outputs[0].outputs[0]
    return probs


def _weights_values(softmax: gs.Node) -> bool:
    """Whether the Softmax's output is the left operand of a MatMul with a computed right operand (v)."""
    probs = _probabilities(softmax)
    return any(c.op == "MatMul" and c.inputs[0] is probs and not isinstance(c.inputs[1], gs.Constant)
               for c in probs.outputs)


def _context_end(softmax: gs.Node):
    probs = _probabilities(softmax)
    consumers = probs.outputs
    if len(consumers) != 1 or consumers[0].op != "MatMul" or consumers[0].inputs[0] is not probs:
        return None, None
    pv = consumers[0]
    tensor = pv.outputs[0]
    while len(tensor.outputs) == 1 and tensor.outputs[0].op in ("Transpose", "Reshape"):
        tensor = tensor.outputs[0].outputs[0]
        if tensor.shape is not None and len(tensor.shape) == 3:
            return pv, tensor
    return None, None


def _normalized_source(tensor):
    """``x`` when ``tensor`` is ``x`` divided by its own L2 norm (``F.normalize``, exported as ReduceL2 or
    Mul/Pow + ReduceSum + Sqrt, then Clip or Max, maybe Expand, then Div), else None."""
    node = producer(tensor)
    if node is None or node.op != "Div" or len(_variable_inputs(node)) != 2:
        return None
    source, norm = node.inputs
    reduced = False
    while (step := producer(norm)) is not None and step.op in _NORM_OPS:
        variables = _variable_inputs(step)
        reduced = reduced or step.op.startswith("Reduce")
        if variables and all(v is source for v in variables):
            return source if reduced else None
        if not variables:
            return None
        norm = variables[0]  # Expand's, Clip's and Max's data input comes first
    return None


def _projection_output(tensor):
    """Walk up from a q, k or v operand through head splits, scalings and an L2 normalization to the first
    (rows, N, *) tensor; also whether the operand was normalized on the way (Swin V2's cosine attention)."""
    normalized = False
    while (node := producer(tensor)) is not None:
        if tensor.shape is not None and len(tensor.shape) == 3:
            return tensor, normalized
        source = _normalized_source(tensor)
        if source is not None:
            tensor, normalized = source, True
            continue
        variables = _variable_inputs(node)
        if node.op not in _SPLIT_OPS or len(variables) != 1:
            return None, normalized
        tensor = variables[0]
    return (tensor if tensor.shape is not None and len(tensor.shape) == 3 else None), normalized


def _qkv_inputs(qk: gs.Node, pv: gs.Node, channels: int):
    """``(inputs, cosine)``: inputs [qkv] when q, k and v are cut from one (rows, N, 3C) tensor, [q, k, v] when
    each is its own (rows, N, C) projection, else None; cosine when q and k (and only they) are normalized."""
    found = [_projection_output(t) for t in (qk.inputs[0], qk.inputs[1], pv.inputs[1])]
    sources, normalized = [f[0] for f in found], [f[1] for f in found]
    if any(s is None for s in sources) or normalized not in ([False] * 3, [True, True, False]):
        return None, False
    cosine = normalized[0]
    if all(s is sources[0] for s in sources) and sources[0].shape[-1] == 3 * channels:
        return sources[:1], cosine
    if len({s.name for s in sources}) == 3 and all(s.shape[-1] == channels for s in sources):
        return sources, cosine
    return None, False


def feeding_partition(start: gs.Variable, partitions: dict) -> WindowMatch | None:
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


def _unmasked_bias(windows: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ``(heads, N, N)`` bias from one image's ``(nW, heads, N, N)`` bias + mask, and where it was read
    exactly: each ``(i, j)`` is read in a window whose mask adds nothing there; only where every window masks
    it is the mask subtracted (float32 rounding of the -100 leaves about 4e-6)."""
    unmasked = mask == 0
    exact = unmasked.any(axis=0)
    first = np.argmax(unmasked, axis=0)  # per (i, j): the first window without a mask there
    rows, cols = np.indices(exact.shape)
    read = windows[first, :, rows, cols].transpose(2, 0, 1)
    return np.where(exact[None], read, windows[0] - mask[0][None]), exact


def _grid_attrs(grid) -> dict:
    """The padded grid as node attributes: ``height``/``width`` (3D: ``frames`` too)."""
    return dict(zip(("frames", "height", "width") if len(grid) == 3 else ("height", "width"), grid))


def _recover_table(at_zero: np.ndarray, heads: int, window, shift, grid):
    """The attention's bias input from the logits path's value on zero q.k (``at_zero``: bias + mask per
    window): the relative position table ``(R, heads)`` where the bias is one, else the dense ``(heads, N, N)``
    bias (op contract: the input's rank tells the form)."""
    tokens = math.prod(window)
    added = at_zero.reshape(-1, heads, tokens, tokens)
    mask = reference.attention_mask(window, shift, **_grid_attrs(grid))
    bias, exact = added[0], np.ones((tokens, tokens), bool)
    if mask is not None:
        # Hugging Face's Swinv2 adds the mask twice (-200 between regions): after the softmax that is the
        # contract's -100 (both weights underflow to 0 next to logits of order 1); the probe below checks it.
        for times in (1, 2):
            per_window = added.reshape(-1, mask.shape[0], heads, tokens, tokens)
            bias, exact = _unmasked_bias(per_window[0], times * mask)
            unmasked = (per_window - times * mask[None, :, None]).reshape(-1, heads, tokens, tokens)
            if np.allclose(unmasked, bias[None], atol=1e-5):
                break
        added = unmasked
    if not np.allclose(added, bias[None], atol=1e-5):
        return None, "the additive term differs between windows beyond the shift mask"
    index = reference.relative_position_index(window)
    table = np.zeros((math.prod(2 * w - 1 for w in window), heads), np.float32)
    for positions in (~exact, exact):  # exact readings last: they win where an entry appears in both
        table[index[positions]] = bias[:, positions].T
    if not np.allclose(reference.relative_position_bias(table, window), bias, atol=1e-5):
        # Not a relative position bias of this window: Video Swin's windows shrunk to a small stage gather the
        # top-left N x N block of the *full* window's index. The contract's dense form carries any bias that
        # is the same in every window as is; the probe of the whole region checks it like a table.
        return bias.astype(np.float32), ""
    return table, ""


def _recover_head_scale(logits: Region, at_zero: np.ndarray, shape: tuple):
    """Cosine attention's scale per head, read off the logits path: its value on ones minus its value on zeros
    (the bias and mask cancel). V2's ``exp(min(logit_scale, log 100))`` is a constant there once folded."""
    slope = (logits.run({logits.starts[0].name: np.ones(shape, np.float32)}).reshape(shape).astype(np.float64)
             - at_zero.reshape(shape))
    scale = slope.mean(axis=(0, 2, 3))
    if not np.allclose(slope, scale[None, :, None, None], rtol=1e-4, atol=1e-4):
        return None, "the scale of the cosine logits is not one constant per head"
    if not all(0 < s <= schema.MAX_HEAD_SCALE * (1 + 1e-6) for s in scale):
        return None, f"cosine logits scaled by {scale.min():.3g}..{scale.max():.3g}, outside (0, 100]"
    return np.minimum(scale, schema.MAX_HEAD_SCALE).astype(np.float32), ""


def find_attention(graph: gs.Graph, partitions: list[WindowMatch]):
    """Attention cores fed by one of ``partitions``; also the candidates that did not match, with reasons.

    A candidate is a Softmax whose probabilities are multiplied with v (``softmax(...) @ v``); a classifier's or
    a box head's class Softmax is no attention and is neither matched nor reported."""
    by_end = {m.end.name: m for m in partitions}
    matches, unmatched = [], []
    for softmax in [n for n in graph.nodes if n.op == "Softmax" and _weights_values(n)]:
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
    inputs, cosine = _qkv_inputs(qk, pv, channels) if isinstance(channels, int) else (None, False)
    if inputs is None:
        return None, "could not find the qkv tensor (B*nW, N, 3C) or the q, k, v projections (B*nW, N, C)"
    start = inputs[0]
    partition = feeding_partition(start, partitions)
    if partition is None:
        return None, "its qkv does not come from a matched window partition"
    logits_shape = softmax.inputs[0].shape
    heads, tokens = logits_shape[-3], logits_shape[-1]
    window, shift = partition.attrs["window_size"], partition.attrs["shift_size"]
    grid = partition.padded
    n_windows = partition.n_windows
    rows = start.shape[0] if isinstance(start.shape[0], int) else n_windows
    if tokens != math.prod(window) or channels % heads:
        return None, f"token count {tokens} does not fit window {window}"
    unsupported = schema.attention_unsupported(tokens, channels // heads)
    if unsupported:
        return None, unsupported
    logits = Region(graph, [qk.outputs[0]], softmax.inputs[0])
    if not logits.self_contained:
        return None, "the logits path reads tensors other than constants"
    probe_shape = (rows, heads, tokens, tokens)
    at_zero = logits.run({qk.outputs[0].name: np.zeros(probe_shape, np.float32)})
    table, reason = _recover_table(at_zero, heads, window, shift, grid)
    if table is None:
        return None, reason
    attrs = dict(num_heads=heads, window_size=tuple(window), shift_size=tuple(shift), **_grid_attrs(grid),
                 scale=float((channels // heads) ** -0.5))
    if cosine:
        head_scale, reason = _recover_head_scale(logits, at_zero, probe_shape)
        if head_scale is None:
            return None, reason
        attrs.update(scale=1.0, cosine=1, head_scale=[float(s) for s in head_scale])
    region = Region(graph, inputs, end)
    if not region.self_contained:
        return None, "the attention region reads tensors other than qkv and constants"
    qkv = np.random.default_rng(0).standard_normal((rows, tokens, 3 * channels)).astype(np.float32)
    parts = [qkv] if len(inputs) == 1 else np.split(qkv, 3, axis=-1)
    got = region.run({t.name: np.ascontiguousarray(part) for t, part in zip(inputs, parts)})
    expected = reference.window_attention(qkv, table, **attrs)
    error = float(np.abs(got - expected).max())
    if error > ATOL:
        return None, f"probe differs from the SwinWindowAttention contract by {error:.2e}"
    return AttentionMatch(softmax, inputs, end, region.nodes, attrs, table), ""


def _linear(tensor):
    """``(x, weight, bias)`` if ``tensor`` is ``x @ weight (+ bias)`` with constant 2-D weight (and 1-D bias)."""
    node = producer(tensor)
    bias = None
    if node is not None and node.op == "Add":
        constants = [t for t in node.inputs if isinstance(t, gs.Constant)]
        if len(constants) != 1 or len(_variable_inputs(node)) != 1 or constants[0].values.ndim != 1:
            return None
        bias, node = constants[0].values, producer(_variable_inputs(node)[0])
    if node is None or node.op != "MatMul" or not isinstance(node.inputs[1], gs.Constant):
        return None
    weight = node.inputs[1].values
    return (node.inputs[0], weight, bias) if weight.ndim == 2 else None


def _qkv_tensor(inputs: list, name: str) -> tuple[gs.Variable, list[gs.Node]]:
    """One (rows, N, 3C) qkv tensor for the plugin, and the nodes that make it from separate projections."""
    if len(inputs) == 1:
        return inputs[0], []
    q = inputs[0]
    qkv = gs.Variable(f"{name}/qkv", dtype=q.dtype, shape=[*q.shape[:-1], 3 * q.shape[-1]] if q.shape else None)
    linears = [_linear(t) for t in inputs]
    same_input = all(l is not None and l[0] is linears[0][0] for l in linears)
    if not same_input or len({l[1].dtype for l in linears}) != 1 or \
            len({l[2] is None for l in linears}) != 1:  # projections of different kinds: join their outputs
        return qkv, [gs.Node("Concat", f"{name}/qkv/Concat", attrs={"axis": -1}, inputs=list(inputs), outputs=[qkv])]
    # the three projections of one input become one MatMul (one GEMM for TensorRT, as in fused-qkv models)
    x = linears[0][0]
    weight = gs.Constant(f"{name}/qkv/weight", np.concatenate([l[1] for l in linears], axis=1))
    if linears[0][2] is None:
        return qkv, [gs.Node("MatMul", f"{name}/qkv/MatMul", inputs=[x, weight], outputs=[qkv])]
    product = gs.Variable(f"{name}/qkv/MatMul_output", dtype=q.dtype)
    bias = gs.Constant(f"{name}/qkv/bias", np.concatenate([l[2] for l in linears]))
    return qkv, [gs.Node("MatMul", f"{name}/qkv/MatMul", inputs=[x, weight], outputs=[product]),
                 gs.Node("Add", f"{name}/qkv/Add", inputs=[product, bias], outputs=[qkv])]


def plugin_nodes(match: AttentionMatch, name: str) -> list[gs.Node]:
    """The plugin node (last) and the nodes that make its qkv input. In a graph that runs at any size, a
    shifted window's node reads the padded grid from its feature-map input instead of ``height``/``width``."""
    qkv, nodes = _qkv_tensor(match.inputs, name)
    label = "relative_position_bias_table" if match.table.ndim == 2 else "relative_position_bias"
    table = gs.Constant(f"{name}/{label}", match.table)
    inputs = [qkv, table]
    fields = dict(match.attrs)
    if match.any_size:
        for size in schema.size_attributes(fields):
            fields.pop(size)
        if any(fields["shift_size"]):
            inputs.append(match.feature_map)
    attrs = schema.plugin_attributes(schema.ATTENTION, len(inputs), **fields)
    return nodes + [gs.Node(schema.ATTENTION, name, attrs=attrs, inputs=inputs, outputs=[match.end],
                            domain=schema.DOMAIN)]
