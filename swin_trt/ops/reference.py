"""Numerical reference of the three Swin plugin ops, in numpy.

This module *is* the op contract written as code (see ``plugins/<OpName>/README.md``): the CUDA kernels are
tested against it, so is the ONNX lowering used by ONNX Runtime (which computes the same formulas, as
constants for static sizes or in the graph for dynamic ones), and the PyTorch reference model takes its
masks from it. Everything is vectorised: each op is one gather (or two matmuls).

Notation: window ``(wh, ww)``, shift ``(sh, sw)``, ``N = wh * ww``; ``Hp, Wp`` the grid padded up to a
multiple of the window; ``nW`` windows per image, numbered row-major over ``(Hp / wh, Wp / ww)``.

``pad_first`` picks the order of padding and cyclic shift:

* ``True`` (torchvision, Hugging Face, and Microsoft's detection backbone in Swin-Transformer-Object-Detection):
  pad to ``Hp x Wp``, then roll the *padded* grid by ``(-sh, -sw)``.
* ``False`` (timm): roll the *unpadded* image by ``(-sh, -sw)``, then pad.

Microsoft's classification code (Swin-Transformer) does not pad at all: its feature maps are multiples of
the window (or smaller than it, and then the window shrinks with no shift), where both orders agree.

The two agree whenever the window divides the feature map; otherwise they differ (padding ends up inside
the shifted windows in one order and at the border in the other).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence, Tuple

import numpy as np

MASK_VALUE = -100.0  # what the original Swin adds between tokens of different shifted regions
NORM_EPSILON = 1e-12  # cosine mode: torch.nn.functional.normalize's floor on the norm

Pair = Tuple[int, int]


def _pair(value: int | Sequence[int]) -> Pair:
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def padded_size(height: int, width: int, window_size: int | Sequence[int]) -> Pair:
    """``(Hp, Wp)``: the feature map rounded up to a multiple of the window."""
    wh, ww = _pair(window_size)
    return math.ceil(height / wh) * wh, math.ceil(width / ww) * ww


def num_windows(height: int, width: int, window_size: int | Sequence[int]) -> int:
    """Windows per image for an (unpadded) ``height x width`` map."""
    wh, ww = _pair(window_size)
    hp, wp = padded_size(height, width, (wh, ww))
    return (hp // wh) * (wp // ww)


def check_attributes(window_size, shift_size, where: str = "window op") -> tuple[Pair, Pair]:
    """Validate window/shift attributes; ``ValueError`` names the attribute and its allowed range."""
    wh, ww = _pair(window_size)
    sh, sw = _pair(shift_size)
    if wh < 1 or ww < 1:
        raise ValueError(f"{where}: window_size must be >= 1 in both dimensions, got {(wh, ww)}")
    if not (0 <= sh < wh and 0 <= sw < ww):
        raise ValueError(f"{where}: shift_size must satisfy 0 <= shift < window, got shift {(sh, sw)} "
                         f"for window {(wh, ww)}")
    return (wh, ww), (sh, sw)


@lru_cache(maxsize=256)
def _source_grid(height: int, width: int, window_size: Pair, shift_size: Pair, pad_first: bool):
    """For every padded-grid position in window order, the flat source index ``y * W + x`` or -1 (padding).

    Shape ``(nW, N)``. Shared by partition (gather from source) and reverse (scatter back).
    """
    wh, ww = window_size
    sh, sw = shift_size
    hp, wp = padded_size(height, width, window_size)
    y = np.arange(hp)[:, None]
    x = np.arange(wp)[None, :]
    if pad_first:
        ys, xs = (y + sh) % hp, (x + sw) % wp
        valid = (ys < height) & (xs < width)
    else:
        ys, xs = (y + sh) % height, (x + sw) % width
        valid = (y < height) & (x < width)
    flat = np.where(valid, ys * width + xs, -1)  # (Hp, Wp)
    flat = flat.reshape(hp // wh, wh, wp // ww, ww).transpose(0, 2, 1, 3)
    return flat.reshape(-1, wh * ww)


def partition_index(height: int, width: int, window_size, shift_size, pad_first: bool) -> np.ndarray:
    """``(nW, N)`` flat source index into an ``H x W`` map for each window token; -1 marks padding."""
    window, shift = check_attributes(window_size, shift_size, "SwinWindowPartition")
    return _source_grid(int(height), int(width), window, shift, bool(pad_first))


def reverse_index(height: int, width: int, window_size, shift_size, pad_first: bool) -> np.ndarray:
    """``(H * W,)`` flat index into the ``(nW * N)`` window tokens for each output position."""
    window, shift = check_attributes(window_size, shift_size, "SwinWindowReverse")
    source = _source_grid(int(height), int(width), window, shift, bool(pad_first)).reshape(-1)
    inverse = np.empty(height * width, dtype=np.int64)
    kept = source >= 0
    inverse[source[kept]] = np.nonzero(kept)[0]
    return inverse


def window_partition(x: np.ndarray, window_size, shift_size=(0, 0), pad_first: bool = True) -> np.ndarray:
    """SwinWindowPartition: ``(B, H, W, C)`` -> ``(B * nW, N, C)``; padding is zero, dtype is kept."""
    batch, height, width, channels = x.shape
    index = partition_index(height, width, window_size, shift_size, pad_first)
    flat = x.reshape(batch, height * width, channels)
    # Append one zero row so that index -1 (padding) gathers zeros.
    flat = np.concatenate([flat, np.zeros((batch, 1, channels), dtype=x.dtype)], axis=1)
    windows = flat[:, index.reshape(-1), :]  # (B, nW * N, C)
    return windows.reshape(batch * index.shape[0], index.shape[1], channels)


def window_reverse(windows: np.ndarray, window_size, shift_size, pad_first: bool, height: int,
                   width: int) -> np.ndarray:
    """SwinWindowReverse: ``(B * nW, N, C)`` -> ``(B, H, W, C)``: merge, undo the shift, crop the padding."""
    n_windows = num_windows(height, width, window_size)
    rows, tokens, channels = windows.shape
    if rows % n_windows:
        raise ValueError(f"SwinWindowReverse: dim 0 ({rows}) is not a multiple of the {n_windows} windows "
                         f"of a {height}x{width} map")
    batch = rows // n_windows
    index = reverse_index(height, width, window_size, shift_size, pad_first)
    flat = windows.reshape(batch, n_windows * tokens, channels)
    return flat[:, index, :].reshape(batch, height, width, channels)


@lru_cache(maxsize=64)
def relative_position_index(window_size) -> np.ndarray:
    """``(N, N)`` index into the ``((2wh-1)(2ww-1), heads)`` bias table."""
    wh, ww = _pair(window_size)
    coords = np.stack(np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")).reshape(2, -1)  # (2, N)
    relative = coords[:, :, None] - coords[:, None, :]  # (2, N, N)
    return (relative[0] + wh - 1) * (2 * ww - 1) + (relative[1] + ww - 1)


def relative_position_bias(bias_table: np.ndarray, window_size) -> np.ndarray:
    """``(heads, N, N)`` bias gathered from the table."""
    index = relative_position_index(_pair(window_size))
    return np.ascontiguousarray(bias_table[index].transpose(2, 0, 1))


def _regions(length: int, window: int, shift: int) -> np.ndarray:
    """Shifted-window region (0, 1, 2) of every position along one padded axis."""
    position = np.arange(length)
    if shift == 0:
        return np.zeros(length, dtype=np.int64)
    return np.where(position < length - window, 0, np.where(position < length - shift, 1, 2))


@lru_cache(maxsize=256)
def _attention_mask(window_size: Pair, shift_size: Pair, height: int, width: int):
    wh, ww = window_size
    sh, sw = shift_size
    if sh == 0 and sw == 0:
        return None
    if height % wh or width % ww:
        raise ValueError(f"SwinWindowAttention: height/width ({height}x{width}) must be the padded grid, "
                         f"a multiple of the window {window_size}")
    region = _regions(height, wh, sh)[:, None] * 3 + _regions(width, ww, sw)[None, :]
    region = region.reshape(height // wh, wh, width // ww, ww).transpose(0, 2, 1, 3).reshape(-1, wh * ww)
    different = region[:, :, None] != region[:, None, :]
    return np.where(different, MASK_VALUE, 0.0).astype(np.float32)


def attention_mask(window_size, shift_size, height: int, width: int) -> np.ndarray | None:
    """``(nW, N, N)`` additive mask of shifted-window attention over the padded ``height x width`` grid.

    ``None`` when there is no shift. Tokens from different regions of the rolled map get -100.
    """
    window, shift = check_attributes(window_size, shift_size, "SwinWindowAttention")
    return _attention_mask(window, shift, int(height), int(width))


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=-1, keepdims=True)
    return logits


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), np.float32(NORM_EPSILON))


def window_attention(qkv: np.ndarray, bias_table: np.ndarray, num_heads: int, window_size, shift_size,
                     height: int, width: int, scale: float, cosine: int = 0, head_scale=None) -> np.ndarray:
    """SwinWindowAttention: ``(B * nW, N, 3C)`` -> ``(B * nW, N, C)``, computed in float32.

    ``height`` and ``width`` are the padded grid; the output keeps the input's dtype. ``cosine`` (Swin V2):
    ``head_scale[h] * normalize(q) . normalize(k)`` replaces ``scale * q . k`` (``scale`` is then 1).
    """
    window, shift = check_attributes(window_size, shift_size, "SwinWindowAttention")
    rows, tokens, three_c = qkv.shape
    channels = three_c // 3
    head_dim = channels // num_heads
    if tokens != window[0] * window[1] or three_c != 3 * num_heads * head_dim:
        raise ValueError(f"SwinWindowAttention: qkv shape {qkv.shape} does not fit window {window} "
                         f"and {num_heads} heads")
    data = qkv.astype(np.float32).reshape(rows, tokens, 3, num_heads, head_dim).transpose(2, 0, 3, 1, 4)
    q, k, v = data[0], data[1], data[2]  # (rows, heads, N, hd)
    if cosine:
        scales = np.asarray(head_scale, np.float32).reshape(1, num_heads, 1, 1) * np.float32(scale)
        q, k = _normalize(q) * scales, _normalize(k)
    else:
        q = q * np.float32(scale)
    logits = q @ k.transpose(0, 1, 3, 2)
    logits += relative_position_bias(bias_table.astype(np.float32), window)[None]
    mask = attention_mask(window, shift, height, width)
    if mask is not None:
        n_windows = mask.shape[0]
        logits = logits.reshape(rows // n_windows, n_windows, num_heads, tokens, tokens)
        logits += mask[None, :, None]
        logits = logits.reshape(rows, num_heads, tokens, tokens)
    context = _softmax(logits) @ v  # (rows, heads, N, hd)
    return context.transpose(0, 2, 1, 3).reshape(rows, tokens, channels).astype(qkv.dtype)
