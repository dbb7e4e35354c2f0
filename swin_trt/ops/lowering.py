"""CPU implementation of the plugin ops for ONNX Runtime: each plugin node is lowered to standard ONNX ops.

Why lowering, not a custom-op library or model-local functions: the stored graph stays exactly what
TensorRT gets (a local function named like a plugin would shadow it in TensorRT's parser), and ONNX Runtime
runs the ops natively, in every dtype, at the speed of the original graph. The index tables and the mask
come from :mod:`swin_trt.ops.reference`, the op contract in code.

* SwinWindowPartition: Reshape to ``(B, H*W, C)``, Pad one zero row, Gather the window order, Reshape.
* SwinWindowReverse: Reshape to ``(B, nW*N, C)``, Gather the image order, Reshape.
* SwinWindowAttention: the usual attention in float32 with the bias gathered from the table and the
  mask as a constant.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from . import reference, schema


def _attrs(node: gs.Node) -> dict:
    attrs = dict(node.attrs)
    schema.check_attributes(node.op, attrs, where=f"node {node.name!r}")
    return attrs


def _const(name: str, value) -> gs.Constant:
    return gs.Constant(name, np.asarray(value))


class _Builder:
    """Appends nodes to ``graph`` with names derived from the plugin node they replace."""

    def __init__(self, graph: gs.Graph, prefix: str):
        self.graph, self.prefix, self.count = graph, prefix, 0

    def __call__(self, op: str, inputs, outputs=None, **attrs) -> gs.Variable:
        self.count += 1
        name = f"{self.prefix}/{op}_{self.count}"
        out = outputs or [gs.Variable(f"{name}:0")]
        self.graph.nodes.append(gs.Node(op, name, attrs=attrs, inputs=list(inputs), outputs=out))
        return out[0]

    def const(self, label: str, value) -> gs.Constant:
        return _const(f"{self.prefix}/{label}", value)


def _static_hwc(tensor: gs.Variable, node: gs.Node) -> tuple[int, int, int]:
    shape = tensor.shape
    if shape is None or len(shape) != 4 or not all(isinstance(d, int) for d in shape[1:]):
        raise ValueError(f"node {node.name!r} ({node.op}): input {tensor.name!r} needs a static "
                         f"(B, H, W, C) shape, got {shape}")
    return shape[1], shape[2], shape[3]


def _lower_partition(node: gs.Node, build: _Builder) -> None:
    attrs = _attrs(node)
    x, out = node.inputs[0], node.outputs[0]
    height, width, channels = _static_hwc(x, node)
    index = reference.partition_index(height, width, attrs["window_size"], attrs["shift_size"],
                                      bool(attrs["pad_first"]))
    gather_index = np.where(index < 0, height * width, index).reshape(-1).astype(np.int64)
    flat = build("Reshape", [x, build.const("flat_shape", np.array([-1, height * width, channels], np.int64))])
    padded = build("Pad", [flat, build.const("pads", np.array([0, 0, 0, 0, 1, 0], np.int64))])
    gathered = build("Gather", [padded, build.const("index", gather_index)], axis=1)
    build("Reshape", [gathered, build.const("out_shape", np.array([-1, index.shape[1], channels], np.int64))],
          outputs=[out])


def _lower_reverse(node: gs.Node, build: _Builder) -> None:
    attrs = _attrs(node)
    x, out = node.inputs[0], node.outputs[0]
    height, width = int(attrs["height"]), int(attrs["width"])
    index = reference.reverse_index(height, width, attrs["window_size"], attrs["shift_size"],
                                    bool(attrs["pad_first"]))
    tokens = attrs["window_size"][0] * attrs["window_size"][1]
    n_windows = reference.num_windows(height, width, attrs["window_size"])
    channels = x.shape[-1] if x.shape and isinstance(x.shape[-1], int) else -1
    flat = build("Reshape", [x, build.const("flat_shape", np.array([-1, n_windows * tokens, channels], np.int64))])
    gathered = build("Gather", [flat, build.const("index", index.astype(np.int64))], axis=1)
    build("Reshape", [gathered, build.const("out_shape", np.array([-1, height, width, channels], np.int64))],
          outputs=[out])


def _lower_attention(node: gs.Node, build: _Builder) -> None:
    attrs = _attrs(node)
    qkv, table = node.inputs[0], node.inputs[1]
    out = node.outputs[0]
    heads = int(attrs["num_heads"])
    window = tuple(attrs["window_size"])
    tokens = window[0] * window[1]
    float32 = onnx.TensorProto.FLOAT
    x = build("Cast", [qkv], to=float32)
    x = build("Reshape", [x, build.const("qkv_shape", np.array([0, 0, 3, heads, -1], np.int64))])
    x = build("Transpose", [x], perm=[2, 0, 3, 1, 4])  # (3, R, heads, N, hd)
    q, k, v = (build("Gather", [x, build.const(f"pick_{i}", np.array(i, np.int64))], axis=0) for i in range(3))
    q = build("Mul", [q, build.const("scale", np.array(attrs["scale"], np.float32))])
    logits = build("MatMul", [q, build("Transpose", [k], perm=[0, 1, 3, 2])])
    # Relative position bias: gather the table with the contract's index -> (heads, N, N).
    rpi = reference.relative_position_index(window).reshape(-1).astype(np.int64)
    bias = build("Gather", [build("Cast", [table], to=float32), build.const("rpi", rpi)], axis=0)
    bias = build("Reshape", [bias, build.const("bias_shape", np.array([tokens, tokens, heads], np.int64))])
    logits = build("Add", [logits, build("Transpose", [bias], perm=[2, 0, 1])])
    mask = reference.attention_mask(window, attrs["shift_size"], int(attrs["height"]), int(attrs["width"]))
    if mask is not None:
        n_windows = mask.shape[0]
        logits = build("Reshape", [logits, build.const("split_windows",
                                                      np.array([-1, n_windows, heads, tokens, tokens], np.int64))])
        logits = build("Add", [logits, build.const("mask", mask[:, None])])
        logits = build("Reshape", [logits, build.const("merge_windows",
                                                      np.array([-1, heads, tokens, tokens], np.int64))])
    probs = build("Softmax", [logits], axis=-1)
    context = build("Transpose", [build("MatMul", [probs, v])], perm=[0, 2, 1, 3])  # (R, N, heads, hd)
    context = build("Reshape", [context, build.const("out_shape", np.array([0, 0, -1], np.int64))])
    build("CastLike", [context, qkv], outputs=[out])


_LOWER = {schema.PARTITION: _lower_partition, schema.REVERSE: _lower_reverse, schema.ATTENTION: _lower_attention}


def plugin_nodes(graph: gs.Graph) -> list[gs.Node]:
    return [n for n in graph.nodes if n.op in schema.OP_TYPES]


def lower_plugins(model: onnx.ModelProto) -> onnx.ModelProto:
    """Return a copy of ``model`` with every plugin node replaced by standard ONNX ops (for ONNX Runtime)."""
    graph = gs.import_onnx(model)
    nodes = plugin_nodes(graph)
    if not nodes:
        return model
    if any(node.inputs[0].shape is None for node in nodes):
        graph = gs.import_onnx(onnx.shape_inference.infer_shapes(model))
        nodes = plugin_nodes(graph)
    for node in nodes:
        _LOWER[node.op](node, _Builder(graph, node.name or node.op))
        node.outputs.clear()
        node.inputs.clear()
    graph.cleanup().toposort()
    lowered = gs.export_onnx(graph)
    kept = [o for o in lowered.opset_import if o.domain != schema.DOMAIN]
    del lowered.opset_import[:]
    lowered.opset_import.extend(kept)
    return lowered
