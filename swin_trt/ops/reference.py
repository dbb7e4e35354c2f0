"""Numerical reference of the three Swin plugin ops, in numpy.

This module *is* the op contract written as code (see ``plugins/<OpName>/README.md``): the CUDA kernels are
tested against it, so is the ONNX lowering used by ONNX Runtime (which computes the same formulas, as
constants for static sizes or in the graph for dynamic ones), and the PyTorch reference model takes its
masks from it. Everything is vectorised: each op is one gather (or two matmuls).

Windows are 2D (Swin, Swin V2: maps ``(B, H, W, C)``, window and shift ``(wh, ww)``) or 3D (Video Swin: maps
``(B, T, H, W, C)``, window and shift ``(wt, wh, ww)``, and ``frames`` = T next to ``height``/``width``). One
code path serves both, written over the spatial dims: a 2D op is the ``T = 1, wt = 1, st = 0`` case of the 3D
one. Functions take a window of 2 or 3 ints (an int means the same in both 2D dims) and a shift of the same
length (an int: the same in every dim); with a 3D window they need ``frames=`` and return 3-tuples.

Notation: window ``(wh, ww)`` (``(wt, wh, ww)``), shift ``(sh, sw)`` (``(st, sh, sw)``), ``N`` the product of
the window; ``Hp, Wp`` (``Tp``) the map padded up to a multiple of the window; ``nW`` windows per image (clip),
numbered row-major over ``(Hp / wh, Wp / ww)`` (``(Tp / wt, Hp / wh, Wp / ww)``), tokens row-major in each;
flat map positions ``y * W + x`` (``(t * H + y) * W + x``).

``pad_first`` picks the order of padding and cyclic shift:

* ``True`` (torchvision, Hugging Face, and Microsoft's detection backbone in Swin-Transformer-Object-Detection;
  every Video Swin): pad to ``Hp x Wp``, then roll the *padded* grid by ``(-sh, -sw)``.
* ``False`` (timm): roll the *unpadded* image by ``(-sh, -sw)``, then pad. 2D only: no Video Swin shifts
  before padding (timm has none), so a 3D window with ``pad_first=False`` is refused, not defined.

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

Dims = Tuple[int, ...]  # one int per spatial dim: (H, W) or (T, H, W)


def _dims(value: int | Sequence[int], rank: int = 2, name: str = "window_size") -> Dims:
    """``value`` as a tuple of 2 or 3 ints; an int is repeated ``rank`` times."""
    if isinstance(value, (int, np.integer)):
        return (int(value),) * rank
    values = tuple(int(v) for v in value)
    if len(values) not in (2, 3):
        raise ValueError(f"{name} must have 2 (H, W) or 3 (T, H, W) values, got {list(values)}")
    return values


def _sizes(height: int, width: int, frames: int | None, rank: int, where: str) -> Dims:
    """The spatial size in the window's rank: ``(H, W)`` or ``(T, H, W)``."""
    if rank == 3:
        if frames is None:
            raise ValueError(f"{where}: a 3D window (T, H, W) needs frames= (T) next to height and width")
        return int(frames), int(height), int(width)
    if frames is not None:
        raise ValueError(f"{where}: frames= is only for a 3D window (T, H, W); this window is 2D")
    return int(height), int(width)


def _check_order(window: Dims, pad_first: bool, where: str) -> None:
    if len(window) == 3 and not pad_first:
        raise ValueError(f"{where}: pad_first must be True for a 3D window (Video Swin pads, then shifts); "
                         f"shift-then-pad (timm's order) is defined for 2D windows only")


def padded_size(height: int, width: int, window_size: int | Sequence[int], frames: int | None = None) -> Dims:
    """``(Hp, Wp)`` (3D: ``(Tp, Hp, Wp)``): the map rounded up to a multiple of the window."""
    window = _dims(window_size)
    sizes = _sizes(height, width, frames, len(window), "padded_size")
    return tuple(math.ceil(size / win) * win for size, win in zip(sizes, window))


def num_windows(height: int, width: int, window_size: int | Sequence[int], frames: int | None = None) -> int:
    """Windows per image (clip) for an (unpadded) ``height x width`` (``frames x height x width``) map."""
    window = _dims(window_size)
    return math.prod(p // w for p, w in zip(padded_size(height, width, window, frames), window))


def check_attributes(window_size, shift_size, where: str = "window op") -> tuple[Dims, Dims]:
    """Validate window/shift attributes; ``ValueError`` names the attribute and its allowed range."""
    window = _dims(window_size, name=f"{where}: window_size")
    shift = _dims(shift_size, len(window), name=f"{where}: shift_size")
    if min(window) < 1:
        raise ValueError(f"{where}: window_size must be >= 1 in every dimension, got {window}")
    if len(shift) != len(window) or not all(0 <= s < w for s, w in zip(shift, window)):
        raise ValueError(f"{where}: shift_size must satisfy 0 <= shift < window, got shift {shift} "
                         f"for window {window}")
    return window, shift


def _window_order(grid: np.ndarray, window: Dims) -> np.ndarray:
    """A padded-grid array ``(P0, P1[, P2])`` -> ``(nW, N)``: windows row-major, tokens row-major in each."""
    split = [n for p, w in zip(grid.shape, window) for n in (p // w, w)]
    rank = len(window)
    order = [2 * d for d in range(rank)] + [2 * d + 1 for d in range(rank)]
    return grid.reshape(split).transpose(order).reshape(-1, math.prod(window))


@lru_cache(maxsize=256)
def _source_grid(sizes: Dims, window_size: Dims, shift_size: Dims, pad_first: bool):
    """For every padded-grid position in window order, the flat source index (row-major over ``sizes``) or
    -1 (padding). Shape ``(nW, N)``. Shared by partition (gather from source) and reverse (scatter back)."""
    padded = [math.ceil(s / w) * w for s, w in zip(sizes, window_size)]
    position = np.meshgrid(*(np.arange(p) for p in padded), indexing="ij")
    valid = np.ones(padded, dtype=bool)
    flat = np.zeros(padded, dtype=np.int64)
    for pos, size, pad, shift in zip(position, sizes, padded, shift_size):
        if pad_first:  # roll the padded grid: a source outside the map is padding
            source = (pos + shift) % pad
            valid &= source < size
        else:  # roll the map, then pad: a position outside the map is padding
            source = (pos + shift) % size
            valid &= pos < size
        flat = flat * size + source
    return _window_order(np.where(valid, flat, -1), window_size)


def partition_index(height: int, width: int, window_size, shift_size, pad_first: bool,
                    frames: int | None = None) -> np.ndarray:
    """``(nW, N)`` flat source index into an ``H x W`` (``T x H x W``) map for each window token; -1 marks
    padding."""
    window, shift = check_attributes(window_size, shift_size, "SwinWindowPartition")
    _check_order(window, pad_first, "SwinWindowPartition")
    sizes = _sizes(height, width, frames, len(window), "SwinWindowPartition")
    return _source_grid(sizes, window, shift, bool(pad_first))


def reverse_index(height: int, width: int, window_size, shift_size, pad_first: bool,
                  frames: int | None = None) -> np.ndarray:
    """``(H * W,)`` (``(T * H * W,)``) flat index into the ``(nW * N)`` window tokens for each output position."""
    window, shift = check_attributes(window_size, shift_size, "SwinWindowReverse")
    _check_order(window, pad_first, "SwinWindowReverse")
    sizes = _sizes(height, width, frames, len(window), "SwinWindowReverse")
    source = _source_grid(sizes, window, shift, bool(pad_first)).reshape(-1)
    inverse = np.empty(math.prod(sizes), dtype=np.int64)
    kept = source >= 0
    inverse[source[kept]] = np.nonzero(kept)[0]
    return inverse


def window_partition(x: np.ndarray, window_size, shift_size=0, pad_first: bool = True) -> np.ndarray:
    """SwinWindowPartition: ``(B, H, W, C)`` (3D window: ``(B, T, H, W, C)``) -> ``(B * nW, N, C)``; padding is
    zero, dtype is kept."""
    rank = len(_dims(window_size))
    if x.ndim != rank + 2:
        raise ValueError(f"SwinWindowPartition: a {rank}D window takes a {rank + 2}-D map, got shape {x.shape}")
    batch, *sizes, channels = x.shape
    frames = sizes[0] if rank == 3 else None
    index = partition_index(sizes[-2], sizes[-1], window_size, shift_size, pad_first, frames=frames)
    flat = x.reshape(batch, math.prod(sizes), channels)
    # Append one zero row so that index -1 (padding) gathers zeros.
    flat = np.concatenate([flat, np.zeros((batch, 1, channels), dtype=x.dtype)], axis=1)
    windows = flat[:, index.reshape(-1), :]  # (B, nW * N, C)
    return windows.reshape(batch * index.shape[0], index.shape[1], channels)


def window_reverse(windows: np.ndarray, window_size, shift_size, pad_first: bool, height: int,
                   width: int, frames: int | None = None) -> np.ndarray:
    """SwinWindowReverse: ``(B * nW, N, C)`` -> ``(B, H, W, C)`` (3D: ``(B, T, H, W, C)``): merge, undo the
    shift, crop the padding."""
    n_windows = num_windows(height, width, window_size, frames)
    rows, tokens, channels = windows.shape
    sizes = _sizes(height, width, frames, len(_dims(window_size)), "SwinWindowReverse")
    if rows % n_windows:
        raise ValueError(f"SwinWindowReverse: dim 0 ({rows}) is not a multiple of the {n_windows} windows "
                         f"of a {'x'.join(map(str, sizes))} map")
    batch = rows // n_windows
    index = reverse_index(height, width, window_size, shift_size, pad_first, frames=frames)
    flat = windows.reshape(batch, n_windows * tokens, channels)
    return flat[:, index, :].reshape(batch, *sizes, channels)


@lru_cache(maxsize=64)
def _relative_position_index(window: Dims) -> np.ndarray:
    coords = np.stack(np.meshgrid(*(np.arange(w) for w in window), indexing="ij")).reshape(len(window), -1)
    relative = coords[:, :, None] - coords[:, None, :]  # (rank, N, N)
    index = np.zeros(relative.shape[1:], dtype=np.int64)
    for offset, win in zip(relative, window):
        index = index * (2 * win - 1) + (offset + win - 1)
    return index


def relative_position_index(window_size) -> np.ndarray:
    """``(N, N)`` index into the ``((2wh-1)(2ww-1), heads)`` bias table (3D: ``(2wt-1)(2wh-1)(2ww-1)`` rows):
    the relative offset of two tokens, each dim shifted to ``[0, 2w-1)``, row-major."""
    return _relative_position_index(_dims(window_size))


def relative_position_bias(bias_table: np.ndarray, window_size) -> np.ndarray:
    """``(heads, N, N)`` bias gathered from the table."""
    index = relative_position_index(window_size)
    return np.ascontiguousarray(bias_table[index].transpose(2, 0, 1))


def attention_bias(bias: np.ndarray, window_size, num_heads: int) -> np.ndarray:
    """SwinWindowAttention's bias input as the ``(heads, N, N)`` term added to every window's logits: the
    relative position table ``(R, heads)`` gathered (rank 2), or a dense bias ``(heads, N, N)`` as is (rank 3)."""
    window = _dims(window_size)
    tokens = math.prod(window)
    if bias.ndim == 3:
        if bias.shape != (num_heads, tokens, tokens):
            raise ValueError(f"SwinWindowAttention: a dense bias is (heads, N, N) = ({num_heads}, {tokens}, "
                             f"{tokens}) for window {window}, not {bias.shape}")
        return bias.astype(np.float32)
    rows = math.prod(2 * w - 1 for w in window)
    if bias.ndim != 2 or bias.shape != (rows, num_heads):
        raise ValueError(f"SwinWindowAttention: the bias table is (R, heads) = ({rows}, {num_heads}) for window "
                         f"{window}, not {bias.shape} (or give a dense (heads, N, N) bias)")
    return relative_position_bias(bias.astype(np.float32), window)


def _regions(length: int, window: int, shift: int) -> np.ndarray:
    """Shifted-window region (0, 1, 2) of every position along one padded axis."""
    position = np.arange(length)
    if shift == 0:
        return np.zeros(length, dtype=np.int64)
    return np.where(position < length - window, 0, np.where(position < length - shift, 1, 2))


@lru_cache(maxsize=256)
def _attention_mask(window_size: Dims, shift_size: Dims, padded: Dims):
    if not any(shift_size):
        return None
    if any(p % w for p, w in zip(padded, window_size)):
        names = "frames/height/width" if len(padded) == 3 else "height/width"
        raise ValueError(f"SwinWindowAttention: {names} ({'x'.join(map(str, padded))}) must be the padded grid, "
                         f"a multiple of the window {window_size}")
    region = np.zeros(padded, dtype=np.int64)
    for axis, (length, win, shift) in enumerate(zip(padded, window_size, shift_size)):
        shape = [1] * len(padded)
        shape[axis] = length
        region = region * 3 + _regions(length, win, shift).reshape(shape)
    region = _window_order(region, window_size)
    different = region[:, :, None] != region[:, None, :]
    return np.where(different, MASK_VALUE, 0.0).astype(np.float32)


def attention_mask(window_size, shift_size, height: int, width: int, frames: int | None = None) -> np.ndarray | None:
    """``(nW, N, N)`` additive mask of shifted-window attention over the padded ``height x width`` grid
    (3D: ``frames x height x width``).

    ``None`` when there is no shift. Tokens from different regions of the rolled map get -100.
    """
    window, shift = check_attributes(window_size, shift_size, "SwinWindowAttention")
    return _attention_mask(window, shift, _sizes(height, width, frames, len(window), "SwinWindowAttention"))


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=-1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=-1, keepdims=True)
    return logits


def _normalize(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), np.float32(NORM_EPSILON))


def window_attention(qkv: np.ndarray, bias_table: np.ndarray, num_heads: int, window_size, shift_size,
                     height: int, width: int, scale: float, cosine: int = 0, head_scale=None,
                     frames: int | None = None) -> np.ndarray:
    """SwinWindowAttention: ``(B * nW, N, 3C)`` -> ``(B * nW, N, C)``, computed in float32.

    ``height`` and ``width`` (and, for a 3D window, ``frames``) are the padded grid; the output keeps the
    input's dtype. ``bias_table`` is the relative position table ``(R, heads)`` or a dense ``(heads, N, N)``
    bias (:func:`attention_bias`). ``cosine`` (Swin V2): ``head_scale[h] * normalize(q) . normalize(k)`` replaces
    ``scale * q . k`` (``scale`` is then 1).
    """
    window, shift = check_attributes(window_size, shift_size, "SwinWindowAttention")
    rows, tokens, three_c = qkv.shape
    channels = three_c // 3
    head_dim = channels // num_heads
    if tokens != math.prod(window) or three_c != 3 * num_heads * head_dim:
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
    logits += attention_bias(bias_table, window, num_heads)[None]
    mask = attention_mask(window, shift, height, width, frames)
    if mask is not None:
        n_windows = mask.shape[0]
        logits = logits.reshape(rows // n_windows, n_windows, num_heads, tokens, tokens)
        logits += mask[None, :, None]
        logits = logits.reshape(rows, num_heads, tokens, tokens)
    context = _softmax(logits) @ v  # (rows, heads, N, hd)
    return context.transpose(0, 2, 1, 3).reshape(rows, tokens, channels).astype(qkv.dtype)


def fused_window_attention(qkv_map: np.ndarray, bias: np.ndarray, pad_row: np.ndarray, num_heads: int, window_size,
                           shift_size, pad_first: bool, scale: float, cosine: int = 0, head_scale=None) -> np.ndarray:
    """SwinFusedWindowAttention: the token-major qkv map ``(B, H, W, 3C)`` (3D window: ``(B, T, H, W, 3C)``) ->
    the token-major context map ``(B, H, W, C)`` (``(B, T, H, W, C)``): partition, attention, reverse of one block.

    Each window gathers its tokens' qkv rows from the map as :func:`window_partition` does, except that a padded
    token's row is ``pad_row`` ``(3C,)`` (the qkv Linear's bias: padding is zeros before that Linear), not zero;
    :func:`window_attention` runs over the padded grid of the map's own size; every real token's context row is
    written back to its place (:func:`window_reverse`), padded query rows nowhere. Keeps ``qkv_map``'s dtype."""
    window = _dims(window_size)
    rank = len(window)
    if qkv_map.ndim != rank + 2:
        raise ValueError(f"SwinFusedWindowAttention: a {rank}D window takes a {rank + 2}-D qkv map, got shape "
                         f"{qkv_map.shape}")
    batch, *sizes, three_c = qkv_map.shape
    pad_row = np.asarray(pad_row)
    if pad_row.shape != (three_c,):
        raise ValueError(f"SwinFusedWindowAttention: pad_row is ({three_c},), one qkv row, not {pad_row.shape}")
    frames = sizes[0] if rank == 3 else None
    index = partition_index(sizes[-2], sizes[-1], window, shift_size, pad_first, frames=frames)
    flat = qkv_map.reshape(batch, math.prod(sizes), three_c)
    rows = np.broadcast_to(pad_row.astype(qkv_map.dtype), (batch, 1, three_c))
    windows = np.concatenate([flat, rows], axis=1)[:, index.reshape(-1), :]  # index -1: the pad row
    windows = windows.reshape(batch * index.shape[0], index.shape[1], three_c)
    padded = padded_size(sizes[-2], sizes[-1], window, frames=frames)
    grid = dict(zip(("frames", "height", "width")[3 - rank:], padded))
    context = window_attention(windows, bias, num_heads, window, shift_size, scale=scale, cosine=cosine,
                               head_scale=head_scale, **grid)
    return window_reverse(context, window, shift_size, pad_first, sizes[-2], sizes[-1], frames=frames)
