"""The fused form's CUDA kernel (SwinFusedWindowAttention: the attention kernel with its q/k/v loads gathered from the
token-major map and its stores scattered back, plugins/SwinWindowAttention/swinWindowAttentionKernel.cu) on the
CPU emulator, against the numpy reference ``swin_trt.ops.reference.fused_window_attention``: 2D and 3D,
shifted or not, padded or not, both pad orders, table and dense bias, V1 and cosine, float32 and float16.

``libswin_trt_capi_emu.so`` runs the kernel source on the host; its entry ``swin_trt_fused_window_attention`` is
looked up by name. The library is the one ``$SWIN_TRT_CAPI`` or a ``build/`` folder holds when it has that entry,
else the target alone is built into a temporary folder (CMake, no nvcc or GPU needed). Tolerance: two float32
evaluations of attention on the same inputs (``conftest.attention_atol``), plus half a float16 ulp of the result
for float16 output. The output starts as a sentinel: every map row must be written (padded query rows never are:
there is no place for them).
"""

from __future__ import annotations

import ctypes
import math

import numpy as np
import pytest

from swin_trt.ops import reference

from conftest import attention_atol

ENTRY = "swin_trt_fused_window_attention"
CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1}
HALF_ROUNDING = 2.0 ** -11
_I32, _PTR = ctypes.c_int32, ctypes.c_void_p
ARGTYPES = [_PTR, _I32, _PTR, _I32, _I32, _PTR, _PTR] + [_I32] * 13 + [ctypes.c_float,
                                                                      ctypes.POINTER(ctypes.c_float), _PTR]


@pytest.fixture(scope="module")
def emu(capi_emu):
    lib = capi_emu
    lib.swin_trt_capi_last_error.restype = ctypes.c_char_p
    getattr(lib, ENTRY).argtypes = ARGTYPES
    getattr(lib, ENTRY).restype = _I32
    return lib


def fused(lib, qkv_map, bias, pad_row, attrs, window, shift, pad_first):
    """The kernel's context map (a sentinel where nothing was written), and the call's status."""
    batch, *sizes, three_c = qkv_map.shape
    frames, height, width = ([1] + sizes)[-3:]
    full_window, full_shift = ([1] + list(window))[-3:], ([0] + list(shift))[-3:]
    heads = attrs["num_heads"]
    out = np.full((*qkv_map.shape[:-1], three_c // 3), np.nan, qkv_map.dtype)
    scales = None
    if attrs.get("cosine"):
        scales = (ctypes.c_float * heads)(*attrs["head_scale"])
    status = getattr(lib, ENTRY)(
        qkv_map.ctypes.data, CODES[qkv_map.dtype], bias.ctypes.data, CODES[bias.dtype], int(bias.ndim == 3),
        pad_row.ctypes.data, out.ctypes.data, batch, frames, height, width, heads, three_c // (3 * heads),
        *full_window, *full_shift, pad_first, attrs["scale"], scales, None)
    return out, status


CASES = [  # (window, shift, map size, pad_first, head_dim): head dim 6 takes the kernel's scalar loads
    ((4, 4), (2, 2), (6, 9), 1, 8),
    ((4, 4), (2, 2), (6, 9), 0, 6),
    ((3, 4), (1, 3), (6, 8), 1, 8),
    ((4, 4), (0, 0), (5, 7), 1, 6),
    ((2, 3, 3), (1, 1, 1), (3, 5, 4), 1, 8),
    ((2, 2, 2), (0, 0, 0), (2, 4, 4), 1, 6),
]


IDS = [f"w{'x'.join(map(str, c[0]))}-s{'x'.join(map(str, c[1]))}-pf{c[3]}-hd{c[4]}" for c in CASES]


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fp32", "fp16"])
@pytest.mark.parametrize("cosine", [0, 1], ids=["v1", "cosine"])
@pytest.mark.parametrize("bias_form", ["table", "dense"])
@pytest.mark.parametrize("window,shift,size,pad_first,head_dim", CASES, ids=IDS)
def test_fused_kernel_equals_the_reference(emu, window, shift, size, pad_first, head_dim, bias_form, cosine, dtype):
    heads = 2
    rng = np.random.default_rng(sum(size) + len(window))
    tokens = math.prod(window)
    qkv_map = rng.standard_normal((2, *size, 3 * heads * head_dim)).astype(dtype)
    pad_row = rng.standard_normal(3 * heads * head_dim).astype(dtype)
    bias = (rng.standard_normal((math.prod(2 * w - 1 for w in window), heads)) if bias_form == "table"
            else rng.standard_normal((heads, tokens, tokens))).astype(np.float32)
    attrs = dict(num_heads=heads, scale=head_dim ** -0.5)
    if cosine:
        attrs.update(scale=1.0, cosine=1, head_scale=[2.0, 40.0])
    got, status = fused(emu, qkv_map, bias, pad_row, attrs, window, shift, pad_first)
    assert status == 0, emu.swin_trt_capi_last_error().decode()
    as32 = qkv_map.astype(np.float32)
    expected = reference.fused_window_attention(as32, bias, pad_row.astype(np.float32), window_size=window,
                                                shift_size=shift, pad_first=bool(pad_first), **attrs)
    windows = reference.window_partition(as32, window, shift, bool(pad_first))
    atol = attention_atol(windows, bias, attrs)
    if dtype == np.float16:
        atol += HALF_ROUNDING * float(np.abs(expected).max())
    assert not np.isnan(got.astype(np.float32)).any()  # every map row written
    np.testing.assert_allclose(got.astype(np.float32), expected, atol=atol, rtol=0)


def test_fused_kernel_refuses_bad_arguments(emu):
    qkv_map = np.zeros((1, 4, 4, 24), np.float32)
    table = np.zeros((49, 1), np.float32)
    pad_row = np.zeros(24, np.float32)
    attrs = dict(num_heads=1, scale=0.5)
    _, status = fused(emu, qkv_map, table, pad_row, attrs, (4, 4), (2, 2), 2)  # pad_first 2
    assert status != 0 and ENTRY in emu.swin_trt_capi_last_error().decode()
    _, status = fused(emu, np.zeros((1, 2, 4, 4, 24), np.float32), np.zeros((3 * 7 * 7, 1), np.float32), pad_row,
                      attrs, (2, 4, 4), (1, 2, 2), 0)  # 3D windows pad, then shift
    assert status != 0
