"""3D windows (Video Swin) and the dense bias in the CUDA kernels, checked on the CPU emulator against the numpy
reference of the op contract (``swin_trt.ops.reference``).

``libswin_trt_capi_emu.so`` runs the real kernel source on the host (``plugins/common/cuda_emulator.h``); its
(T, H, W) entry points (C ABI version 3, bound by ``tests/cuda_kernels.bind_3d``) take 3D windows. The library
is the one ``$SWIN_TRT_CAPI`` or a ``build/`` folder holds when it is current, else the target alone is built
into a temporary folder (CMake, no nvcc or GPU needed).

Tolerances: partition and reverse move values, so they are exact. Attention is compared with the float32
reference on the same (float16-rounded) inputs: the bound of two float32 evaluations
(``conftest.attention_atol``) plus, for float16 output, the rounding of the result (half an ulp of float16,
2^-11 relative).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from swin_trt.ops import reference

from tolerances import attention_atol
from cuda_kernels import bind_3d, head_scale_array

CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.int8): 2}
HALF_ROUNDING = 2.0 ** -11  # float16 output: round to nearest, half an ulp relative


@pytest.fixture(scope="module")
def emu(capi_emu):
    return bind_3d(capi_emu)


def _ptr(array: np.ndarray) -> int:
    return array.ctypes.data


def _check(lib, status: int, what: str) -> None:
    assert status == 0, f"{what}: {lib.swin_trt_capi_last_error().decode()}"


def _partition(lib, x, window, shift):
    batch, frames, height, width, channels = x.shape
    n_windows = reference.num_windows(height, width, window, frames=frames)
    out = np.full((batch * n_windows, math.prod(window), channels), 99, dtype=x.dtype)
    _check(lib, lib.swin_trt_window_partition_3d(_ptr(x), _ptr(out), CODES[x.dtype], batch, frames, height, width,
                                                 channels, *window, *shift, 1, None), "partition_3d")
    return out


def _reverse(lib, windows, window, shift, frames, height, width):
    rows, _, channels = windows.shape
    batch = rows // reference.num_windows(height, width, window, frames=frames)
    out = np.full((batch, frames, height, width, channels), 99, dtype=windows.dtype)
    _check(lib, lib.swin_trt_window_reverse_3d(_ptr(windows), _ptr(out), CODES[windows.dtype], batch, frames, height,
                                               width, channels, *window, *shift, 1, None), "reverse_3d")
    return out


def _random(rng, shape, dtype):
    if np.dtype(dtype) == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    return rng.standard_normal(shape).astype(dtype)


CLIP_CASES = [  # (B, T, H, W, C, window, shift)
    (2, 4, 6, 6, 3, (2, 3, 3), (1, 1, 1)),     # divisible, shifted in every dim
    (1, 5, 7, 9, 4, (2, 3, 4), (1, 1, 2)),     # padded in every dim
    (1, 4, 8, 8, 2, (2, 4, 4), (0, 0, 0)),     # unshifted
    (2, 2, 9, 10, 5, (2, 7, 7), (0, 3, 3)),    # window shrunk to the clip in T (Video Swin: T <= wt, no T shift)
    (1, 3, 5, 5, 3, (4, 3, 3), (2, 1, 1)),     # clip shorter than the window, padded in T, shifted
]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8])
@pytest.mark.parametrize("case", CLIP_CASES, ids=lambda c: "x".join(map(str, c[:5])) + f"-w{c[5]}-s{c[6]}")
def test_partition_and_reverse_3d_match_reference(emu, case, dtype):
    batch, frames, height, width, channels, window, shift = case
    rng = np.random.default_rng(sum(case[:5]) + 31 * len(np.dtype(dtype).name))
    x = _random(rng, (batch, frames, height, width, channels), dtype)
    windows = _partition(emu, x, window, shift)
    np.testing.assert_array_equal(windows, reference.window_partition(x, window, shift, True))
    other = _random(rng, windows.shape, dtype)  # padding rows carry values too: reverse must drop them
    np.testing.assert_array_equal(_reverse(emu, other, window, shift, frames, height, width),
                                  reference.window_reverse(other, window, shift, True, height, width, frames=frames))
    np.testing.assert_array_equal(_reverse(emu, windows, window, shift, frames, height, width), x)


def test_a_2d_map_is_the_one_frame_case(emu):
    """The (T, H, W) entry points with T = wt = 1 are the 2D ops."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 1, 9, 13, 6)).astype(np.float32)
    windows = _partition(emu, x, (1, 4, 5), (0, 2, 3))
    np.testing.assert_array_equal(windows, reference.window_partition(x[:, 0], (4, 5), (2, 3), True))


def test_3d_refusals_name_the_problem(emu):
    x = np.zeros((1, 4, 6, 6, 2), np.float32)
    out = np.zeros((8, 18, 2), np.float32)
    status = emu.swin_trt_window_partition_3d(_ptr(x), _ptr(out), 0, 1, 4, 6, 6, 2, 2, 3, 3, 1, 1, 1, 0, None)
    assert status == -1 and "pad_first must be 1 for a 3D window" in emu.swin_trt_capi_last_error().decode()
    status = emu.swin_trt_window_partition_3d(_ptr(x), _ptr(out), 0, 1, 4, 6, 6, 2, 2, 3, 3, 2, 1, 1, 1, None)
    assert status == -1 and "shift [2, 1, 1]" in emu.swin_trt_capi_last_error().decode()


def _attention(lib, qkv, bias, heads, window, shift, grid, scale, head_scale=None):
    rows, tokens, three_c = qkv.shape
    head_dim = three_c // (3 * heads)
    out = np.full((rows, tokens, three_c // 3), np.nan, dtype=qkv.dtype)
    scales = None if head_scale is None else head_scale_array(head_scale)
    _check(lib, lib.swin_trt_window_attention_3d(_ptr(qkv), CODES[qkv.dtype], _ptr(bias), CODES[bias.dtype],
                                                 int(bias.ndim == 3), _ptr(out), rows, heads, head_dim, *window,
                                                 *shift, *grid, scale, scales, None), "attention_3d")
    return out


def _tolerance(qkv, bias, attrs, expect, dtype):
    atol = attention_atol(qkv.astype(np.float32), bias.astype(np.float32), attrs)
    if np.dtype(dtype) == np.float16:
        atol += HALF_ROUNDING * float(np.abs(expect).max())
    return atol


ATTENTION_CASES = [  # (B, heads, head_dim, window, shift, (Tp, Hp, Wp))
    (1, 2, 8, (2, 3, 3), (1, 1, 1), (4, 6, 6)),    # shifted in every dim, 8 windows
    (2, 1, 12, (2, 2, 2), (0, 0, 0), (2, 4, 4)),   # unshifted
    (1, 1, 5, (2, 7, 7), (0, 3, 3), (2, 14, 7)),   # shrunk in T (98 tokens), head_dim 5: scalar loads
    (1, 2, 16, (3, 2, 4), (2, 1, 0), (6, 4, 8)),   # shift along T and H only
]


@pytest.mark.parametrize("bias_dtype", [np.float32, np.float16])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("dense", [False, True], ids=["table", "dense"])
@pytest.mark.parametrize("case", ATTENTION_CASES, ids=lambda c: f"b{c[0]}h{c[1]}d{c[2]}-w{c[3]}-s{c[4]}")
def test_attention_3d_matches_reference(emu, case, dense, dtype, bias_dtype):
    batch, heads, head_dim, window, shift, grid = case
    rng = np.random.default_rng(head_dim * 7 + heads + 2 * dense)
    tokens = math.prod(window)
    rows = batch * math.prod(g // w for g, w in zip(grid, window))
    qkv = rng.standard_normal((rows, tokens, 3 * heads * head_dim)).astype(dtype)
    shape = (heads, tokens, tokens) if dense else (math.prod(2 * w - 1 for w in window), heads)
    bias = rng.standard_normal(shape).astype(bias_dtype)
    scale = head_dim ** -0.5
    out = _attention(emu, qkv, bias, heads, window, shift, grid, scale)
    expect = reference.window_attention(qkv.astype(np.float32), bias.astype(np.float32), heads, window, shift,
                                        grid[1], grid[2], scale, frames=grid[0])
    atol = _tolerance(qkv, bias, dict(num_heads=heads, scale=scale), expect, dtype)
    np.testing.assert_allclose(out.astype(np.float32), expect, rtol=0, atol=atol)


@pytest.mark.parametrize("head_dim,dtype", [(4, np.float32), (96, np.float32), (128, np.float16)])
def test_attention_of_video_swins_8x7x7_window(emu, head_dim, dtype):
    """392 tokens, shifted: beyond the old 256-token limit. head_dim 96 takes the plan that reads the bias table
    from global memory (staging it beside the tiles in 48 KiB would cost query tiles); 128 is the largest."""
    window, shift, grid, heads = (8, 7, 7), (4, 3, 3), (8, 7, 14), 1
    rng = np.random.default_rng(head_dim)
    qkv = rng.standard_normal((2, 392, 3 * heads * head_dim)).astype(dtype)
    table = rng.standard_normal((15 * 13 * 13, heads)).astype(np.float32)
    scale = head_dim ** -0.5
    out = _attention(emu, qkv, table, heads, window, shift, grid, scale)
    expect = reference.window_attention(qkv.astype(np.float32), table, heads, window, shift, grid[1], grid[2], scale,
                                        frames=grid[0])
    atol = _tolerance(qkv, table, dict(num_heads=heads, scale=scale), expect, dtype)
    np.testing.assert_allclose(out.astype(np.float32), expect, rtol=0, atol=atol)


def test_dense_bias_of_a_shrunk_window_is_what_video_swin_adds(emu):
    """Why the dense form exists: Video Swin shrinks a (2, 7, 7) window to a small stage's (1, 3, 3) and gathers
    the top-left N x N block of the *full* window's index, which no table of the shrunk window reproduces. The
    dense bias carries exactly that block."""
    full, shrunk, heads, head_dim = (2, 7, 7), (1, 3, 3), 2, 8
    rng = np.random.default_rng(11)
    table = rng.standard_normal((math.prod(2 * w - 1 for w in full), heads)).astype(np.float32)
    tokens = math.prod(shrunk)
    block = reference.relative_position_index(full)[:tokens, :tokens]
    dense = np.ascontiguousarray(table[block].transpose(2, 0, 1))  # (heads, N, N)
    # No table of the shrunk window gives it: two pairs of one relative offset (in the shrunk window) read
    # different entries of the block.
    by_offset: dict = {}
    for offset, entry in zip(reference.relative_position_index(shrunk).ravel(), block.ravel()):
        by_offset.setdefault(int(offset), set()).add(int(entry))
    assert any(len(entries) > 1 for entries in by_offset.values())
    qkv = rng.standard_normal((2, tokens, 3 * heads * head_dim)).astype(np.float32)
    out = _attention(emu, qkv, dense, heads, shrunk, (0, 0, 0), (1, 3, 6), head_dim ** -0.5)
    data = qkv.reshape(2, tokens, 3, heads, head_dim).transpose(2, 0, 3, 1, 4)
    logits = head_dim ** -0.5 * data[0] @ data[1].transpose(0, 1, 3, 2) + dense[None]
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    expect = (weights @ data[2]).transpose(0, 2, 1, 3).reshape(2, tokens, heads * head_dim)
    atol = _tolerance(qkv, dense, dict(num_heads=heads, scale=head_dim ** -0.5), expect, np.float32)
    np.testing.assert_allclose(out, expect, rtol=0, atol=atol)


def test_cosine_attention_3d_matches_reference(emu):
    window, shift, grid, heads, head_dim = (2, 3, 3), (1, 1, 1), (2, 6, 3), 2, 8
    rng = np.random.default_rng(5)
    qkv = rng.standard_normal((2, 18, 3 * heads * head_dim)).astype(np.float32)
    table = rng.uniform(0, 16, (3 * 5 * 5, heads)).astype(np.float32)
    head_scale = [2.5, 100.0]
    out = _attention(emu, qkv, table, heads, window, shift, grid, 1.0, head_scale)
    expect = reference.window_attention(qkv, table, heads, window, shift, grid[1], grid[2], 1.0, cosine=1,
                                        head_scale=head_scale, frames=grid[0])
    atol = _tolerance(qkv, table, dict(num_heads=heads, cosine=1, head_scale=head_scale), expect, np.float32)
    np.testing.assert_allclose(out, expect, rtol=0, atol=atol)


def test_attention_3d_refusals_name_the_problem(emu):
    qkv = np.zeros((1, 98, 24), np.float32)
    out = np.zeros((1, 98, 8), np.float32)
    dense = np.zeros((1, 98, 98), np.float32)
    status = emu.swin_trt_window_attention_3d(_ptr(qkv), 0, _ptr(dense), 0, 2, _ptr(out), 1, 1, 8, 2, 7, 7, 0, 0, 0,
                                              2, 7, 7, 0.5, None, None)
    assert status == -1 and "bias_dense must be 0" in emu.swin_trt_capi_last_error().decode()
    status = emu.swin_trt_window_attention_3d(_ptr(qkv), 0, _ptr(dense), 0, 1, _ptr(out), 1, 1, 8, 9, 8, 8, 0, 0, 0,
                                              9, 8, 8, 0.5, None, None)
    assert status == -1 and "[1, 512]" in emu.swin_trt_capi_last_error().decode()
    status = emu.swin_trt_window_attention_3d(_ptr(qkv), 0, _ptr(dense), 0, 1, _ptr(out), 1, 1, 8, 2, 7, 7, 1, 3, 3,
                                              3, 7, 7, 0.5, None, None)
    assert status == -1 and "frames/height/width must be the padded grid" in emu.swin_trt_capi_last_error().decode()
