"""Which plugin families the rewrite emits: the choice and its defaults (no heavy imports, for the CLI).

A plugin can be slower than TensorRT alone: a custom attention node blocks the fused attention TensorRT
builds by itself. So each family is a choice, measured per GPU by ``swin-trt build --compare``. Until a
measurement says otherwise the defaults are partition/reverse as plugins (the op contract this project
exists for) and attention left to TensorRT (native ops, shape arithmetic folded).
"""

from __future__ import annotations

WINDOW_OPS = ("plugin", "native")  # partition/reverse: plugin nodes, or the native ops with shapes folded
DEFAULT_WINDOW_OPS = "plugin"
DEFAULT_FUSE_ATTENTION = False
