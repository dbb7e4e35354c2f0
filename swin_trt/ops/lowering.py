"""CPU implementation of the plugin ops for ONNX Runtime: each plugin node is lowered to standard ONNX ops.

Why lowering, not a custom-op library or model-local functions: the stored graph stays exactly what
TensorRT gets (a local function named like a plugin would shadow it in TensorRT's parser), and ONNX Runtime
runs the ops natively, in every dtype, at the speed of the original graph.

* SwinWindowPartition: Reshape to ``(B, H*W, C)``, Pad one zero row, Gather the window order, Reshape.
* SwinWindowReverse: Reshape to ``(B, nW*N, C)``, Gather the image order, Reshape.
* SwinWindowAttention: the usual attention in float32 with the bias gathered from the table (or the dense
  bias as is) and the shift mask built from region ids.
* SwinFusedWindowAttention: Reshape the token-major qkv map to rows, Concat the pad row (not a zero row),
  Gather the window order, the attention above, Gather the rows back to the map's order, Reshape.

The gather indices and the mask follow the formulas of the op contracts (``plugins/<OpName>/README.md``,
the same arithmetic the kernels do). Where the spatial size is known when lowering (static shapes, or the
``height``/``width`` attributes) they are computed here and stored as constants; where it is only known at
run time (a graph with dynamic height and width) the same formulas become int64 nodes on the input's
``Shape``, so one lowered graph runs at every size. ``swin_trt.ops.reference`` is the numerical contract
both are tested against.

Windows of 2 or 3 dims (Video Swin: ``(T, H, W)``) share one code path: the index formulas are written over
the spatial axes (row-major digits and flat positions), and a 2D node lowers to exactly the graph it always did.
"""

from __future__ import annotations

import functools
import operator

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from . import reference, schema

_NUMPY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.floor_divide, "Mod": np.mod,
          "GreaterOrEqual": np.greater_equal, "Less": np.less, "And": np.logical_and, "Equal": np.equal}


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
        self.count += 1
        return gs.Constant(f"{self.prefix}/{label}_{self.count}", np.asarray(value))

    def int(self, value) -> "_Int":
        return value if isinstance(value, _Int) else _Int(self, np.asarray(value, dtype=np.int64))

    def dims(self, tensor: gs.Variable, *axes: int) -> list["_Int"]:
        """Dims ``axes`` of ``tensor``: known ones as numbers, the others read with Shape at run time."""
        shape = list(tensor.shape or [])
        known = [axis < len(shape) and isinstance(shape[axis], int) for axis in axes]
        runtime = None if all(known) else self("Shape", [tensor])
        return [self.int(shape[axis]) if is_known else
                _Int(self, self("Gather", [runtime, self.const("axis", np.array(axis, np.int64))], axis=0))
                for axis, is_known in zip(axes, known)]

    def vector(self, parts) -> gs.Tensor:
        """A 1-D int64 tensor (a Reshape target) from numbers and run-time scalars."""
        parts = [self.int(p) for p in parts]
        if all(p.known for p in parts):
            return self.const("shape", np.array([int(p.value) for p in parts], np.int64))
        pieces = [self("Reshape", [p.tensor(), self.const("one", np.array([1], np.int64))]) for p in parts]
        return self("Concat", pieces, axis=0)

    def range(self, length: "_Int") -> "_Int":
        if length.known:
            return self.int(np.arange(int(length.value)))
        zero, one = (self.const("r", np.array(v, np.int64)) for v in (0, 1))
        return _Int(self, self("Range", [zero, length.tensor(), one]))


class _Int:
    """An int64 (or bool) value of index arithmetic: a numpy array when it is known while lowering, a graph
    tensor when it is only known at run time. Operators compute the former and emit nodes for the latter."""

    def __init__(self, build: _Builder, value):
        self.build, self.value = build, value

    @property
    def known(self) -> bool:
        return not isinstance(self.value, gs.Tensor)

    def tensor(self) -> gs.Tensor:
        return self.build.const("value", self.value) if self.known else self.value

    def _apply(self, op: str, *others) -> "_Int":
        operands = [self] + [self.build.int(o) for o in others]
        if all(o.known for o in operands):
            return _Int(self.build, np.asarray(_NUMPY[op](*(o.value for o in operands))))
        return _Int(self.build, self.build(op, [o.tensor() for o in operands]))

    def __add__(self, other): return self._apply("Add", other)
    def __radd__(self, other): return self.build.int(other)._apply("Add", self)
    def __sub__(self, other): return self._apply("Sub", other)
    def __rsub__(self, other): return self.build.int(other)._apply("Sub", self)
    def __mul__(self, other): return self._apply("Mul", other)
    def __rmul__(self, other): return self.build.int(other)._apply("Mul", self)
    def __floordiv__(self, other): return self._apply("Div", other)  # operands are >= 0: Div truncates alike
    def __mod__(self, other): return self._apply("Mod", other)
    def __ge__(self, other): return self._apply("GreaterOrEqual", other)
    def __lt__(self, other): return self._apply("Less", other)
    def __and__(self, other): return self._apply("And", other)

    def equals(self, other) -> "_Int":
        return self._apply("Equal", other)

    def as_int(self) -> "_Int":
        if self.known:
            return _Int(self.build, np.asarray(self.value, dtype=np.int64))
        return _Int(self.build, self.build("Cast", [self.value], to=onnx.TensorProto.INT64))

    def where(self, then, otherwise) -> "_Int":
        """``then`` where this (bool) value holds, else ``otherwise`` (int64 values)."""
        then, otherwise = self.build.int(then), self.build.int(otherwise)
        if self.known and then.known and otherwise.known:
            return _Int(self.build, np.where(self.value, then.value, otherwise.value))
        return _Int(self.build, self.build("Where", [self.tensor(), then.tensor(), otherwise.tensor()]))


def _ceil_to(size: _Int, window: int) -> _Int:
    return (size + (window - 1)) // window * window


def _product(values):
    """The product of ``values`` (numbers or ``_Int``) with no multiplication by a leading 1."""
    return functools.reduce(operator.mul, values)


def _digit(value: _Int, radices, axis: int) -> _Int:
    """Digit ``axis`` of ``value`` written row-major over ``radices`` (most significant first); the first digit
    is not reduced (nor is ``radices[0]`` read), the last is ``value % radices[-1]``."""
    digit = value // _product(radices[axis + 1:]) if axis + 1 < len(radices) else value
    return digit % radices[axis] if axis else digit


def _digits(value: _Int, radices) -> list:
    return [_digit(value, radices, axis) for axis in range(len(radices))]


def _horner(digits, radices):
    """The row-major flat index of ``digits`` over ``radices`` (the inverse of :func:`_digits`); ``digits``
    may be a generator, consumed one digit at a time (so each digit's nodes follow the previous product)."""
    digits = iter(digits)
    flat = next(digits)
    for radix in radices[1:]:
        flat = flat * radix
        flat = flat + next(digits)
    return flat


def _window_positions(build: _Builder, padded, window) -> list:
    """Padded-grid position of every window token along each spatial axis, in window order (length the
    product of ``padded``): windows row-major over ``padded / window``, tokens row-major over the window."""
    tokens = _product(window)
    t = build.range(_product(padded))
    w, i = t // tokens, t % tokens
    counts = [None] + [p // win for p, win in zip(padded[1:], window[1:])]  # the leading count is not needed
    return [_digit(w, counts, axis) * win + _digit(i, window, axis) for axis, win in enumerate(window)]


def partition_gather_index(build: _Builder, sizes, window, shift, pad_first: bool) -> _Int:
    """SwinWindowPartition's source row (row-major position in the ``sizes`` map: ``y * W + x``, 3D
    ``(t * H + y) * W + x``) for every window token; the map's size (a zero row) for padding."""
    padded = [_ceil_to(size, win) for size, win in zip(sizes, window)]
    positions = _window_positions(build, padded, window)
    if pad_first:  # roll the padded grid: a source outside the map is padding
        sources = [(p + s) % pad for p, s, pad in zip(positions, shift, padded)]
        valid = functools.reduce(operator.and_, [src < size for src, size in zip(sources, sizes)])
    else:  # roll the map, then pad: a position outside the map is padding
        sources = [(p + s) % size for p, s, size in zip(positions, shift, sizes)]
        valid = functools.reduce(operator.and_, [p < size for p, size in zip(positions, sizes)])
    return valid.where(_horner(sources, sizes), _product(sizes))


def reverse_gather_index(build: _Builder, sizes, window, shift, pad_first: bool) -> _Int:
    """SwinWindowReverse's window-token row for every output position (row-major over ``sizes``)."""
    padded = [_ceil_to(size, win) for size, win in zip(sizes, window)]
    t = build.range(_product(sizes))
    coords = _digits(t, sizes)
    # (coord - shift) mod size, kept non-negative: add a multiple of the size larger than the shift
    if pad_first:
        positions = [(c + (pad - s)) % pad for c, pad, s in zip(coords, padded, shift)]
    else:
        positions = [(c + (size * win - s)) % size for c, size, win, s in zip(coords, sizes, window, shift)]
    window_index = positions[0] // window[0]
    for p, pad, win in zip(positions[1:], padded[1:], window[1:]):
        window_index = window_index * (pad // win) + p // win
    row = window_index * _product(window)
    for axis, (p, win) in enumerate(zip(positions, window)):  # + the token's row-major place in its window
        row = row + (p % win * _product(window[axis + 1:]) if axis + 1 < len(window) else p % win)
    return row


def shift_regions(build: _Builder, padded, window, shift) -> _Int:
    """Region id (row-major over 3 regions per axis: ``3 * rh + rw``, 3D ``9 * rt + 3 * rh + rw``) of every
    window token over the padded grid (window order)."""
    positions = _window_positions(build, padded, window)

    def axis_region(position, size, win, sh):
        if sh == 0:
            return 0
        return (position >= size - win).as_int() + (position >= size - sh).as_int()

    return _horner((axis_region(*args) for args in zip(positions, padded, window, shift)), [3] * len(window))


def _attrs(node: gs.Node) -> dict:
    attrs = dict(node.attrs)
    schema.check_attributes(node.op, attrs, where=f"node {node.name!r}", num_inputs=len(node.inputs))
    return attrs


def _spatial_size(node: gs.Node, attrs: dict, build: _Builder) -> list[_Int]:
    """``(H, W)`` (3D: ``(T, H, W)``) of the block: from the feature-map input when the node has one, else the
    attributes (``height``, ``width``; 3D: ``frames`` too)."""
    names = schema.size_attributes(attrs)
    if schema.has_feature_map(node.op, len(node.inputs)):
        return build.dims(node.inputs[schema.FEATURE_MAP_INPUT[node.op]], *range(1, len(names) + 1))
    return [build.int(int(attrs[name])) for name in names]


def _lower_partition(node: gs.Node, build: _Builder) -> None:
    attrs = _attrs(node)
    x, out = node.inputs[0], node.outputs[0]
    window, shift = tuple(attrs["window_size"]), tuple(attrs["shift_size"])
    *sizes, channels = build.dims(x, *range(1, len(window) + 2))
    index = partition_gather_index(build, sizes, window, shift, bool(attrs["pad_first"]))
    flat = build("Reshape", [x, build.vector([0, -1, channels])])
    padded = build("Pad", [flat, build.const("pads", np.array([0, 0, 0, 0, 1, 0], np.int64))])
    gathered = build("Gather", [padded, index.tensor()], axis=1)
    build("Reshape", [gathered, build.vector([-1, _product(window), channels])], outputs=[out])


def _lower_reverse(node: gs.Node, build: _Builder) -> None:
    attrs = _attrs(node)
    x, out = node.inputs[0], node.outputs[0]
    window, shift = tuple(attrs["window_size"]), tuple(attrs["shift_size"])
    sizes = _spatial_size(node, attrs, build)
    (channels,) = build.dims(x, 2)
    index = reverse_gather_index(build, sizes, window, shift, bool(attrs["pad_first"]))
    tokens_per_image = _product([_ceil_to(size, win) for size, win in zip(sizes, window)])
    flat = build("Reshape", [x, build.vector([-1, tokens_per_image, channels])])
    gathered = build("Gather", [flat, index.tensor()], axis=1)
    build("Reshape", [gathered, build.vector([-1, *sizes, channels])], outputs=[out])


def _lower_attention(node: gs.Node, build: _Builder) -> None:
    attrs = _attrs(node)

    def grid():
        padded = _spatial_size(node, attrs, build)
        if schema.has_feature_map(node.op, len(node.inputs)):  # the feature map is unpadded, the mask padded
            padded = [_ceil_to(size, win) for size, win in zip(padded, attrs["window_size"])]
        return padded

    _attention(build, node.inputs[0], node.inputs[1], attrs, grid, node.outputs[0])


def _attention(build: _Builder, qkv, table, attrs: dict, grid, out) -> None:
    """Window attention ``qkv`` (R, N, 3C) -> ``out`` (R, N, C); ``grid()`` gives the padded grid (called only
    when the window is shifted: it may emit nodes)."""
    heads = int(attrs["num_heads"])
    window, shift = tuple(attrs["window_size"]), tuple(attrs["shift_size"])
    tokens = _product(window)
    float32 = onnx.TensorProto.FLOAT
    x = build("Cast", [qkv], to=float32)
    x = build("Reshape", [x, build.const("qkv_shape", np.array([0, 0, 3, heads, -1], np.int64))])
    x = build("Transpose", [x], perm=[2, 0, 3, 1, 4])  # (3, R, heads, N, hd)
    q, k, v = (build("Gather", [x, build.const(f"pick_{i}", np.array(i, np.int64))], axis=0) for i in range(3))
    if int(attrs.get("cosine", 0)):  # Swin V2: head_scale[h] * normalize(q) . normalize(k)
        q, k = (_normalize(build, t) for t in (q, k))
        scales = np.asarray(attrs["head_scale"], np.float32).reshape(heads, 1, 1) * np.float32(attrs["scale"])
        q = build("Mul", [q, build.const("head_scale", scales)])
    else:
        q = build("Mul", [q, build.const("scale", np.array(attrs["scale"], np.float32))])
    logits = build("MatMul", [q, build("Transpose", [k], perm=[0, 1, 3, 2])])
    bias = build("Cast", [table], to=float32)
    if schema.bias_form(table.shape) == schema.TABLE:  # gather the table with the contract's index
        rpi = reference.relative_position_index(window).reshape(-1).astype(np.int64)
        bias = build("Gather", [bias, build.const("rpi", rpi)], axis=0)
        bias = build("Reshape", [bias, build.const("bias_shape", np.array([tokens, tokens, heads], np.int64))])
        bias = build("Transpose", [bias], perm=[2, 0, 1])
    logits = build("Add", [logits, bias])  # (heads, N, N): the dense form is added as is
    if any(shift):
        logits = _add_shift_mask(build, logits, grid(), window, shift, heads)
    probs = build("Softmax", [logits], axis=-1)
    context = build("Transpose", [build("MatMul", [probs, v])], perm=[0, 2, 1, 3])  # (R, N, heads, hd)
    context = build("Reshape", [context, build.const("out_shape", np.array([0, 0, -1], np.int64))])
    build("CastLike", [context, qkv], outputs=[out])


def _normalize(build: _Builder, x):
    """``x / max(||x||_2, 1e-12)`` over the last axis (torch.nn.functional.normalize)."""
    # Mul + ReduceSum + Sqrt, not ReduceL2: ReduceSum takes its axes as an input from opset 13, ReduceL2 from 18
    squares = build("ReduceSum", [build("Mul", [x, x]), build.const("last_axis", np.array([-1], np.int64))],
                    keepdims=1)
    norm = build("Sqrt", [squares])
    norm = build("Max", [norm, build.const("eps", np.array(reference.NORM_EPSILON, np.float32))])
    return build("Div", [x, norm])


def _add_shift_mask(build: _Builder, logits, padded, window, shift, heads: int):
    """logits (B*nW, heads, N, N) + the -100 mask between tokens of different regions of the rolled map."""
    tokens = _product(window)
    n_windows = _product([p // win for p, win in zip(padded, window)])
    region = shift_regions(build, padded, window, shift)
    if region.known:
        region = region.value.reshape(-1, tokens)
        mask = np.where(region[:, :, None] == region[:, None, :], 0.0, reference.MASK_VALUE).astype(np.float32)
        mask = build.const("mask", mask[:, None])
    else:
        rows = build("Reshape", [region.tensor(), build.const("rows", np.array([-1, tokens, 1], np.int64))])
        cols = build("Reshape", [region.tensor(), build.const("cols", np.array([-1, 1, tokens], np.int64))])
        same = build("Equal", [rows, cols])
        mask = build("Where", [same, build.const("zero", np.array(0.0, np.float32)),
                               build.const("masked", np.array(reference.MASK_VALUE, np.float32))])
        mask = build("Unsqueeze", [mask, build.const("head_axis", np.array([1], np.int64))])  # (nW, 1, N, N)
    logits = build("Reshape", [logits, build.vector([-1, n_windows, heads, tokens, tokens])])
    logits = build("Add", [logits, mask])
    return build("Reshape", [logits, build.const("merge_windows", np.array([-1, heads, tokens, tokens], np.int64))])


def _lower_fused_attention(node: gs.Node, build: _Builder) -> None:
    """SwinFusedWindowAttention as the composition it stands for: gather the windows from the token-major map
    (a padded token gets the pad row), attention, gather the rows back to their places."""
    attrs = _attrs(node)
    qkv, table, pad_row = node.inputs
    window, shift = tuple(attrs["window_size"]), tuple(attrs["shift_size"])
    pad_first = bool(attrs["pad_first"])
    batch, *sizes, three_c = build.dims(qkv, *range(len(window) + 2))
    channels = three_c // 3
    flat = build("Reshape", [qkv, build.vector([0, -1, three_c])])
    row = build("Reshape", [build("CastLike", [pad_row, qkv]), build.const("row", np.array([1, 1, -1], np.int64))])
    row = build("Expand", [row, build.vector([batch, 1, 1])])
    padded_rows = build("Concat", [flat, row], axis=1)  # the pad row after the map's: partition's index of padding
    index = partition_gather_index(build, sizes, window, shift, pad_first)
    gathered = build("Gather", [padded_rows, index.tensor()], axis=1)
    windows = build("Reshape", [gathered, build.vector([-1, _product(window), three_c])])
    padded = [_ceil_to(size, win) for size, win in zip(sizes, window)]
    build.count += 1
    context = gs.Variable(f"{build.prefix}/Attention_{build.count}:0")  # named like the builder's outputs
    _attention(build, windows, table, attrs, lambda: padded, context)
    back = reverse_gather_index(build, sizes, window, shift, pad_first)
    per_image = build("Reshape", [context, build.vector([-1, _product(padded), channels])])
    rows = build("Gather", [per_image, back.tensor()], axis=1)
    build("Reshape", [rows, build.vector([-1, *sizes, channels])], outputs=[node.outputs[0]])


_LOWER = {schema.PARTITION: _lower_partition, schema.REVERSE: _lower_reverse, schema.ATTENTION: _lower_attention,
          schema.FUSED_ATTENTION: _lower_fused_attention}


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
