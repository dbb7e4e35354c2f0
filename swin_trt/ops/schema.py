"""Names, attributes, inputs and their checks for the three plugin ops: the node form graph surgery emits.

Node form (TensorRT's ONNX-parser plugin fallback): ``op_type`` = plugin creator name, attributes
``plugin_version`` and ``plugin_namespace``; every other attribute becomes a plugin field.

Windows are 2D (Swin: ``window_size``/``shift_size`` two ints ``(H, W)``, maps ``(B, H, W, C)``) or 3D (Video
Swin: three ints ``(T, H, W)``, maps ``(B, T, H, W, C)``, and the size attribute ``frames`` = T next to
``height``/``width``). A 2D node is the T = 1 case of the same contract and serialises as it always did.

Spatial size. Partition reads ``H, W`` (3D: ``T, H, W``) from its input. Reverse (its output size) and
shifted attention (its mask over the padded grid) need them too: either as the attributes ``height``/``width``
(3D: and ``frames``; a graph built for one size) or, for a graph that runs at any size, from an extra input,
the *feature map*: the ``(B, H, W, *)`` (3D: ``(B, T, H, W, *)``) tensor the block partitioned, of which only
the dims are read, never the data. Reverse's feature map is input 1, attention's input 2 (after the bias
table). A node has one or the other; see ``plugins/<OpName>/README.md``.

Attention's bias (input 1) comes in one of two forms, told by its rank: the relative position table
``(R, heads)``, ``R = (2wh-1)(2ww-1)`` (3D: ``(2wt-1)(2wh-1)(2ww-1)``), gathered with the contract's index; or
a dense ``(heads, N, N)`` bias, ``N`` the tokens per window, added as is. The dense form carries a bias that
no table of the window's relative offsets gives (Video Swin's windows shrunk to a small stage).

The fused form, ``SwinFusedWindowAttention``: one node for a block's partition -> attention -> reverse, where
the qkv and output projections run per token on the un-partitioned map (``plugins/SwinFusedWindowAttention``).
Input 0 is the token-major qkv map ``(B, H, W, 3C)`` (3D: ``(B, T, H, W, 3C)``), whose dims give the size (no
size attributes, no feature map); input 1 the bias (table or dense, as attention's); input 2 the pad row
``(3C,)``, the qkv of a padded token (the qkv Linear's bias, zeros without one: padding is zeros *before* that
Linear, and padded tokens are keys unless masked). Fields: attention's (``num_heads``, ``window_size``,
``shift_size``, ``scale``, ``cosine``, ``head_scale``) and partition's ``pad_first``. Output: the token-major
context map ``(B, H, W, C)``, every row written back to its own place; padded query rows are never written.
"""

from __future__ import annotations

import math

DOMAIN = "swin_trt"
OPSET_VERSION = 1
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = "swin_trt"

PARTITION = "SwinWindowPartition"
REVERSE = "SwinWindowReverse"
ATTENTION = "SwinWindowAttention"
FUSED_ATTENTION = "SwinFusedWindowAttention"  # partition + attention + reverse of one block, token-major I/O
OP_TYPES = (PARTITION, REVERSE, ATTENTION, FUSED_ATTENTION)
ATTENTION_OPS = (ATTENTION, FUSED_ATTENTION)  # the ops that take num_heads, scale, a bias and cosine mode
MOVE_OPS = (PARTITION, REVERSE)  # pure data movement: these also move int8

# Attributes each op always requires (besides plugin_version / plugin_namespace), with their ONNX kind.
REQUIRED = {
    PARTITION: {"window_size": "ints", "shift_size": "ints", "pad_first": "int"},
    REVERSE: {"window_size": "ints", "shift_size": "ints", "pad_first": "int"},
    ATTENTION: {"num_heads": "int", "window_size": "ints", "shift_size": "ints", "scale": "float"},
    FUSED_ATTENTION: {"num_heads": "int", "window_size": "ints", "shift_size": "ints", "pad_first": "int",
                      "scale": "float"},
}
FUSED_INPUTS = ("qkv", "bias", "pad_row")  # the fused node's inputs, always all three
SIZE_ATTRIBUTES = ("height", "width")  # INT each: reverse's output size; attention's padded grid
SIZE_ATTRIBUTES_3D = ("frames",) + SIZE_ATTRIBUTES  # a 3D node's (T, H, W)
# Where an op takes its feature map (the spatial-size source of a graph that runs at any size).
FEATURE_MAP_INPUT = {REVERSE: 1, ATTENTION: 2}
# Limits of the C++/CUDA plugins, not of the op contract (the lowering runs any window); the rewrite leaves to
# TensorRT what these refuse (kernel_unsupported, attention_unsupported). MAX_TOKENS equals kMaxAttentionTokens
# in plugins/common/swin_kernels.h.
MAX_TOKENS = 512  # N, the product of the window, the CUDA attention kernel supports (Video Swin 8x7x7: 392)
MAX_HEAD_DIM = 128  # C / num_heads the CUDA attention kernel supports (plugins/common/swin_kernels.h)
# Cosine mode (Swin V2): optional fields ``cosine`` (INT 0/1) and ``head_scale`` (FLOATS, one folded
# exp(min(logit_scale, log 100)) per head), checked in _check_cosine.
MAX_HEAD_SCALE = 100.0  # exp(log 100): V2 clamps its logit scale there
MAX_COSINE_HEADS = 256  # the per-head scales travel in the kernel's parameters


class PluginAttributeError(ValueError):
    """An attribute is missing or out of range; the message names node, attribute and allowed range."""


TABLE, DENSE = "table", "dense"  # attention's bias forms (bias_form)


def bias_form(shape) -> str:
    """Which form attention's bias input of ``shape`` has: ``TABLE`` (rank 2) or ``DENSE`` (rank 3)."""
    rank = len(shape)
    if rank not in (2, 3):
        raise PluginAttributeError(f"{ATTENTION}: the bias input is a table (R, heads) or a dense (heads, N, N) "
                                   f"bias, not rank {rank} {list(shape)}")
    return TABLE if rank == 2 else DENSE


def attention_unsupported(tokens: int, head_dim: int) -> str:
    """Why the attention plugin cannot run windows of ``tokens`` tokens with heads of ``head_dim`` channels,
    or ``""`` when it can."""
    if tokens > MAX_TOKENS:
        return (f"{tokens} tokens per window: the CUDA attention kernel ({ATTENTION} plugin) runs at most "
                f"{MAX_TOKENS} (its limit, not the op contract's; partition and reverse have no token limit)")
    if not 1 <= head_dim <= MAX_HEAD_DIM:
        return f"head dim {head_dim}: the {ATTENTION} plugin runs head dims 1 to {MAX_HEAD_DIM}"
    return ""


def kernel_unsupported(op_type: str, attrs: dict, head_dim: int | None = None) -> str:
    """Why the C++ plugin / CUDA kernel cannot run a (contract-valid) node, or ``""`` when it can; attention's
    ``head_dim`` is checked when given.

    The plugins run 2D and 3D windows alike, the fused form (``FUSED_ATTENTION``) included; what they lack is
    attention beyond ``MAX_TOKENS`` tokens or ``MAX_HEAD_DIM`` channels per head, fused or not (the contract has
    no such limit: the lowering runs any window)."""
    window = [int(w) for w in attrs["window_size"]]
    if op_type in (ATTENTION, FUSED_ATTENTION):
        return attention_unsupported(math.prod(window), 1 if head_dim is None else head_dim)
    return ""


def is_3d(attrs: dict) -> bool:
    """Whether a node's windows are 3D (``window_size`` of three ints, ``(T, H, W)``)."""
    return len(list(attrs["window_size"])) == 3


def size_attributes(attrs: dict) -> tuple[str, ...]:
    """The static size attributes a node of this rank carries: ``height, width`` or ``frames, height, width``."""
    return SIZE_ATTRIBUTES_3D if is_3d(attrs) else SIZE_ATTRIBUTES


def plugin_attributes(op_type: str, num_inputs: int | None = None, **fields) -> dict:
    """The node attributes for ``op_type``: the fields, checked (for a node of ``num_inputs`` inputs), plus
    plugin version and namespace."""
    attrs = {key: (list(value) if isinstance(value, tuple) else value) for key, value in fields.items()}
    check_attributes(op_type, attrs, where=op_type, num_inputs=num_inputs)
    attrs["plugin_version"] = PLUGIN_VERSION
    attrs["plugin_namespace"] = PLUGIN_NAMESPACE
    return attrs


def needs_size(op_type: str, attrs: dict) -> bool:
    """Whether the op must know the spatial size: reverse always, attention only with a shift mask."""
    return op_type == REVERSE or (op_type == ATTENTION and any(attrs.get("shift_size", ())))


def has_feature_map(op_type: str, num_inputs: int) -> bool:
    return op_type in FEATURE_MAP_INPUT and num_inputs > FEATURE_MAP_INPUT[op_type]


def check_attributes(op_type: str, attrs: dict, where: str, num_inputs: int | None = None) -> None:
    """Raise :class:`PluginAttributeError` naming ``where`` (the node) if an attribute is missing or out of range.

    ``num_inputs`` (the node's input count) tells whether it has a feature map; without one, an op that
    needs the spatial size must carry ``height`` and ``width`` (3D: ``frames`` too). ``None`` skips that
    check (attributes only)."""
    if op_type not in REQUIRED:
        raise PluginAttributeError(f"{where}: unknown op {op_type!r}")
    missing = sorted(set(REQUIRED[op_type]) - set(attrs))
    if missing:
        raise PluginAttributeError(f"{where} ({op_type}) lacks attribute(s) {', '.join(missing)}")

    def fail(name, rule):
        raise PluginAttributeError(f"{where} ({op_type}): attribute {name}={attrs[name]!r} is out of range: {rule}")

    window, shift = list(attrs["window_size"]), list(attrs["shift_size"])
    if len(window) not in (2, 3) or min(window) < 1:
        fail("window_size", "2 integers (H, W) or 3 (T, H, W), each >= 1")
    if len(shift) != len(window) or not all(0 <= s < w for s, w in zip(shift, window)):
        fail("shift_size", f"{len(window)} integers (as many as window_size) with 0 <= shift < window")
    if "frames" in attrs and len(window) == 2:
        raise PluginAttributeError(f"{where} ({op_type}): attribute frames is only for a 3D window (3-int "
                                   f"window_size, T, H, W); this node's window {window} is 2D: drop frames")
    if op_type == FUSED_ATTENTION:
        _check_fused(attrs, where, num_inputs)
    elif num_inputs is not None:
        names = size_attributes(attrs)
        given = [name for name in SIZE_ATTRIBUTES_3D if name in attrs]
        if has_feature_map(op_type, num_inputs):
            if not needs_size(op_type, attrs):
                raise PluginAttributeError(
                    f"{where} ({op_type}) is unshifted (no mask) but has a feature-map input (input "
                    f"{FEATURE_MAP_INPUT[op_type]}): it takes only qkv and the bias table; drop the input")
            if given:
                raise PluginAttributeError(
                    f"{where} ({op_type}) has both a feature-map input (input {FEATURE_MAP_INPUT[op_type]}) and "
                    f"attribute(s) {', '.join(given)}: the spatial size comes from one of them; drop the attributes")
        elif needs_size(op_type, attrs) and len(given) < len(names):
            raise PluginAttributeError(
                f"{where} ({op_type}) lacks attribute(s) "
                f"{', '.join(n for n in names if n not in attrs)} and has no feature-map input "
                f"(input {FEATURE_MAP_INPUT[op_type]}): it cannot know the spatial size")
    if "pad_first" in attrs and attrs["pad_first"] not in (0, 1):
        fail("pad_first", "0 (timm: shift, then pad) or 1 (torchvision: pad, then shift)")
    if "pad_first" in attrs and len(window) == 3 and attrs["pad_first"] != 1:
        fail("pad_first", "1 for a 3D window: Video Swin pads, then shifts (shift-then-pad is 2D only)")
    for name in SIZE_ATTRIBUTES_3D:
        if name in attrs and int(attrs[name]) < 1:
            fail(name, ">= 1")
    if op_type in ATTENTION_OPS:
        if int(attrs["num_heads"]) < 1:
            fail("num_heads", ">= 1")
        # No token limit here: MAX_TOKENS is the CUDA kernel's (attention_unsupported), not the contract's.
        names = size_attributes(attrs)
        for name, win in zip(names, window):
            if name in attrs and int(attrs[name]) % win:
                fail(name, f"{', '.join(names)} are the padded grid: multiples of the window {window}")
        if not float(attrs["scale"]) > 0:
            fail("scale", "> 0")
        _check_cosine(attrs, where, fail)


def _check_fused(attrs: dict, where: str, num_inputs: int | None) -> None:
    """The fused node reads its size from input 0 and always takes qkv, bias and pad row."""
    given = [name for name in SIZE_ATTRIBUTES_3D if name in attrs]
    if given:
        raise PluginAttributeError(f"{where} ({FUSED_ATTENTION}) has attribute(s) {', '.join(given)}: its size "
                                   f"comes from input 0 (the token-major qkv map); drop them")
    if num_inputs is not None and num_inputs != len(FUSED_INPUTS):
        raise PluginAttributeError(f"{where} ({FUSED_ATTENTION}) has {num_inputs} inputs: it takes "
                                   f"{len(FUSED_INPUTS)}, {', '.join(FUSED_INPUTS)}")


def _check_cosine(attrs: dict, where: str, fail) -> None:
    """Cosine mode's fields: ``cosine`` 0/1, ``head_scale`` iff cosine, one per head in (0, 100], scale 1."""
    cosine = int(attrs.get("cosine", 0))
    if cosine not in (0, 1):
        fail("cosine", "0 (Swin V1 attention) or 1 (scaled cosine attention, Swin V2)")
    if not cosine:
        if "head_scale" in attrs:
            raise PluginAttributeError(f"{where} ({ATTENTION}): attribute head_scale is only for cosine = 1; "
                                       f"drop it or set cosine = 1")
        return
    if "head_scale" not in attrs:
        raise PluginAttributeError(f"{where} ({ATTENTION}) has cosine = 1 but lacks attribute head_scale "
                                   f"(one exp(min(logit_scale, log 100)) per head)")
    scales = [float(v) for v in attrs["head_scale"]]
    heads = int(attrs["num_heads"])
    if len(scales) != heads:
        fail("head_scale", f"one value per head: {heads} values, not {len(scales)}")
    if heads > MAX_COSINE_HEADS:
        fail("num_heads", f"at most {MAX_COSINE_HEADS} heads in cosine mode")
    for index, value in enumerate(scales):
        if not 0 < value <= MAX_HEAD_SCALE:  # also refuses NaN
            raise PluginAttributeError(f"{where} ({ATTENTION}): head_scale[{index}] = {value!r} is out of range: "
                                       f"finite, > 0 and <= {MAX_HEAD_SCALE:g}")
    if float(attrs["scale"]) != 1.0:
        fail("scale", "exactly 1.0 with cosine = 1 (head_scale carries the scale)")
