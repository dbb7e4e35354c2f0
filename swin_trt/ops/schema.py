"""Names, attributes and attribute checks of the three plugin ops: the node form that graph surgery emits.

Node form (TensorRT's ONNX-parser plugin fallback): ``op_type`` = plugin creator name, attributes
``plugin_version`` and ``plugin_namespace``; every other attribute becomes a plugin field.
"""

from __future__ import annotations

DOMAIN = "swin_trt"
OPSET_VERSION = 1
PLUGIN_VERSION = "1"
PLUGIN_NAMESPACE = "swin_trt"

PARTITION = "SwinWindowPartition"
REVERSE = "SwinWindowReverse"
ATTENTION = "SwinWindowAttention"
OP_TYPES = (PARTITION, REVERSE, ATTENTION)
MOVE_OPS = (PARTITION, REVERSE)  # pure data movement: these also move int8

# Attributes each op requires (besides plugin_version / plugin_namespace), with their ONNX kind.
REQUIRED = {
    PARTITION: {"window_size": "ints", "shift_size": "ints", "pad_first": "int"},
    REVERSE: {"window_size": "ints", "shift_size": "ints", "pad_first": "int", "height": "int", "width": "int"},
    ATTENTION: {"num_heads": "int", "window_size": "ints", "shift_size": "ints", "height": "int",
                "width": "int", "scale": "float"},
}
MAX_TOKENS = 256  # N = wh * ww the CUDA attention kernel supports
MAX_HEAD_DIM = 128  # C / num_heads the CUDA attention kernel supports (plugins/common/swin_kernels.h)


class PluginAttributeError(ValueError):
    """An attribute is missing or out of range; the message names node, attribute and allowed range."""


def attention_unsupported(tokens: int, head_dim: int) -> str:
    """Why the attention plugin cannot run windows of ``tokens`` tokens with heads of ``head_dim`` channels,
    or ``""`` when it can."""
    if tokens > MAX_TOKENS:
        return f"{tokens} tokens per window: the {ATTENTION} plugin runs at most {MAX_TOKENS}"
    if not 1 <= head_dim <= MAX_HEAD_DIM:
        return f"head dim {head_dim}: the {ATTENTION} plugin runs head dims 1 to {MAX_HEAD_DIM}"
    return ""


def plugin_attributes(op_type: str, **fields) -> dict:
    """The node attributes for ``op_type``: the fields, checked, plus plugin version and namespace."""
    attrs = {key: (list(value) if isinstance(value, tuple) else value) for key, value in fields.items()}
    check_attributes(op_type, attrs, where=op_type)
    attrs["plugin_version"] = PLUGIN_VERSION
    attrs["plugin_namespace"] = PLUGIN_NAMESPACE
    return attrs


def check_attributes(op_type: str, attrs: dict, where: str) -> None:
    """Raise :class:`PluginAttributeError` naming ``where`` (the node) if an attribute is missing or out of range."""
    if op_type not in REQUIRED:
        raise PluginAttributeError(f"{where}: unknown op {op_type!r}")
    missing = sorted(set(REQUIRED[op_type]) - set(attrs))
    if missing:
        raise PluginAttributeError(f"{where} ({op_type}) lacks attribute(s) {', '.join(missing)}")

    def fail(name, rule):
        raise PluginAttributeError(f"{where} ({op_type}): attribute {name}={attrs[name]!r} is out of range: {rule}")

    window, shift = list(attrs["window_size"]), list(attrs["shift_size"])
    if len(window) != 2 or min(window) < 1:
        fail("window_size", "two integers >= 1")
    if len(shift) != 2 or not all(0 <= s < w for s, w in zip(shift, window)):
        fail("shift_size", "two integers with 0 <= shift < window")
    if "pad_first" in attrs and attrs["pad_first"] not in (0, 1):
        fail("pad_first", "0 (timm: shift, then pad) or 1 (torchvision: pad, then shift)")
    for name in ("height", "width"):
        if name in attrs and int(attrs[name]) < 1:
            fail(name, ">= 1")
    if op_type == ATTENTION:
        if int(attrs["num_heads"]) < 1:
            fail("num_heads", ">= 1")
        if window[0] * window[1] > MAX_TOKENS:
            fail("window_size", f"window area <= {MAX_TOKENS} tokens")
        if attrs["height"] % window[0] or attrs["width"] % window[1]:
            fail("height", f"height and width are the padded grid: multiples of the window {window}")
        if not float(attrs["scale"]) > 0:
            fail("scale", "> 0")
