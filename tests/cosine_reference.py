"""SwinWindowAttention's cosine mode (Swin V2) expressed through the V1 numpy reference, for the kernel tests.

The contract (plugins/SwinWindowAttention/README.md, "Cosine mode"): per head, q and k are divided by
max(||.||_2, 1e-12), and logits = head_scale[h] * q̂·k̂ + bias + mask. That is V1's logits with scale 1 on
q' = head_scale[h] * q̂ and k' = k̂, so :func:`cosine_qkv` transforms qkv (in float32) and
``reference.window_attention(cosine_qkv(...), ..., scale=1.0)`` is the expected output. (Once
``swin_trt.ops.reference`` takes cosine mode itself, the tests can call it instead.)
"""

from __future__ import annotations

import numpy as np

NORM_EPSILON = 1e-12  # torch.nn.functional.normalize's default eps


def cosine_qkv(qkv: np.ndarray, num_heads: int, head_scale) -> np.ndarray:
    """``(rows, N, 3C)`` float32 with q -> head_scale[h] * q / max(|q|, eps) and k -> k / max(|k|, eps), per head."""
    rows, tokens, three_c = qkv.shape
    parts = qkv.astype(np.float32).reshape(rows, tokens, 3, num_heads, -1).copy()
    for part in (0, 1):
        norm = np.linalg.norm(parts[:, :, part], axis=-1, keepdims=True)
        parts[:, :, part] /= np.maximum(norm, NORM_EPSILON)
    parts[:, :, 0] *= np.asarray(head_scale, np.float32)[:, None]
    return parts.reshape(rows, tokens, three_c)


def head_scales(num_heads: int) -> np.ndarray:
    """Per-head scales from small to the clamp exp(log 100) = 100, as trained V2 models have them."""
    return np.linspace(1.5, 100.0, num_heads).astype(np.float32) if num_heads > 1 else np.array([100.0], np.float32)
