"""Which plugin families the rewrite emits: the choice and its defaults (no heavy imports, for the CLI).

A plugin can be slower than TensorRT alone: a custom attention node blocks the fused attention TensorRT
builds by itself. So each family is a choice, measured per GPU by ``swin-trt build --compare``. Until a
measurement says otherwise the defaults are partition/reverse as plugins (the op contract this project
exists for) and attention left to TensorRT (native ops, shape arithmetic folded).
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_OPS = ("plugin", "native")  # partition/reverse: plugin nodes, or the native ops with shapes folded
DEFAULT_WINDOW_OPS = "plugin"
DEFAULT_FUSE_ATTENTION = False
# Partition + attention + reverse of a block as one SwinFusedWindowAttention (no separate gather passes). Off
# until measured: no GPU has timed the fused kernel against TensorRT's own attention or the unfused plugin chain
# (the C++ plugin exists, checked on the CPU only; benchmarks/bench_kernels.py --fused times the kernels). Not a
# `build --compare` variant for the same reason.
DEFAULT_FUSE_GATHERS = False


@dataclass(frozen=True)
class PluginVariant:
    """One choice of plugin families: how a rewrite replaces the window ops and the attention."""

    window_ops: str = DEFAULT_WINDOW_OPS  # "plugin" | "native"
    fuse_attention: bool = DEFAULT_FUSE_ATTENTION

    @property
    def name(self) -> str:
        return f"windows-{self.window_ops}_attention-{'plugin' if self.fuse_attention else 'native'}"

    def to_dict(self) -> dict:
        return {"window_ops": self.window_ops, "fuse_attention": self.fuse_attention}


# Every variant, in the order `build --compare` builds and times them.
VARIANTS = tuple(PluginVariant(windows, attention) for windows in WINDOW_OPS for attention in (False, True))
