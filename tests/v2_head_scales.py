"""Per-head scales of Swin V2's cosine attention for the kernel tests (test_plugins_build, test_cuda_kernels).

A plain module, not a conftest fixture: ``scripts/gpu_check.sh`` runs test_cuda_kernels with ``--noconftest``.
The expected outputs come from ``swin_trt.ops.reference.window_attention(..., cosine=1, head_scale=...)``.
"""

from __future__ import annotations

import numpy as np


def head_scales(num_heads: int) -> np.ndarray:
    """Per-head scales from small to the clamp exp(log 100) = 100, as trained V2 models have them."""
    return np.linspace(1.5, 100.0, num_heads).astype(np.float32) if num_heads > 1 else np.array([100.0], np.float32)
