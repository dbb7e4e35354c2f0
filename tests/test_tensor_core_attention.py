"""The tensor-core SwinWindowAttention kernel (plugins/SwinWindowAttention/swinWindowAttentionTensorCoreKernel.cu,
nvcuda::wmma, float16 I/O, float32 accumulation and softmax) on the CPU emulator against swin_trt.ops.reference.

The kernel's real source runs on the host: ``plugins/common/cuda_emulator.h`` runs the threads, and
``plugins/common/wmma_emulation.h`` the warp matrix operations (exact in float). The library is compiled here
with the C++ compiler alone (no nvcc, no GPU): the C ABI ``swin_trt_window_attention_tc``.

Tolerance (:func:`tensor_core_tolerance`), derived, not fitted. Both sides start from the same float16 ``qkv``
(the reference widens it to float32), so input rounding cancels; what remains:

* the float32 parts, logits ``q.k`` (products of float16 values are exact in float32, the sums are not), scale,
  bias, mask, exp and row sums: ``conftest.attention_atol``, the bound of two float32 evaluations;
* ``p = exp(s - max)`` rounded to float16 before ``p v`` (the only rounding of an MMA input that the
  reference does not have): ``p~ = p (1 + d)``, ``|d| <= u = 2^-11`` for ``p >= 2^-14`` (below, float16 is
  subnormal with absolute error <= 2^-25). The weights ``p~ / sum p~`` then move by at most ``2u / (1 - u)``
  of themselves, so the output moves by at most ``2.001 u max|v|``, plus ``N 2^-25 max|v|`` for the subnormal
  ones (the row sum is >= 1: its maximum contributes exp(0)). ``8 eps32 max|v|`` covers the GPU's fast exp;
* the output rounded once to float16: ``rtol = u`` (``2^-25`` absolute below float16's normal range).

A kernel that leaks the padding of its 16 x 16 tiles, drops the shift mask, gathers the bias transposed or
takes another head's scale moves outputs by 10^-2 or more, beyond this: :func:`test_tolerance_rejects_buggy_candidates`
checks that each such candidate fails it. (What it cannot tell apart: errors below the float32 worst case, e.g.
cosine mode's normalised q and k rounded to float16, ~head_scale * 2^-11 per logit, against a bound of
(2 d + 8) eps32 (head_scale + |bias|) per logit times four max|v|.)
"""

from __future__ import annotations

import ctypes
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from swin_trt.ops import reference

from tolerances import EPS32, attention_atol

REPO = Path(__file__).resolve().parent.parent
CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
U16 = 2.0 ** -11  # unit roundoff of float16 (10 fraction bits, round to nearest)
SMEM_BUDGET = 48 * 1024  # kAttentionSmemBudget: no opt-in on any GPU


@pytest.fixture(scope="module")
def tc(capi_emu):
    """The emulated kernels' C ABI (conftest.capi_emu) with the tensor-core entry points' argtypes."""
    lib = capi_emu
    i32, ptr = ctypes.c_int32, ctypes.c_void_p
    lib.swin_trt_window_attention_tc.argtypes = ([ptr, i32, ptr, i32, i32, ptr] + [i32] * 12
                                                 + [ctypes.c_float, ptr, ptr])
    lib.swin_trt_window_attention_tc.restype = i32
    lib.swin_trt_window_attention_tc_smem.argtypes = [i32, i32, i32, i32]
    lib.swin_trt_window_attention_tc_smem.restype = ctypes.c_uint64
    lib.swin_trt_capi_last_error.restype = ctypes.c_char_p
    return lib


# ---- the op on the emulator, the reference, the tolerance -----------------------------------------------------

def _geometry(window, grid):
    wt, wh, ww = window
    tokens = wt * wh * ww
    windows = (grid[0] // wt) * (grid[1] // wh) * (grid[2] // ww)
    return tokens, windows


def _run_tc(lib, qkv, bias, heads, window, shift, grid, scale, head_scale=None, dense=False):
    """Context from the emulated tensor-core kernel, with a guard zone after it that must stay untouched."""
    rows, tokens, three_c = qkv.shape
    head_dim = three_c // (3 * heads)
    flat = np.full(rows * tokens * heads * head_dim + 64, np.float16(-7.0))
    hs = None if head_scale is None else np.ascontiguousarray(head_scale, np.float32)
    status = lib.swin_trt_window_attention_tc(
        qkv.ctypes.data, 1, bias.ctypes.data, 0 if bias.dtype == np.float32 else 1, 1 if dense else 0,
        flat.ctypes.data, rows, heads, head_dim, *window, *shift, *grid, scale,
        None if hs is None else hs.ctypes.data, None)
    assert status == 0, lib.swin_trt_capi_last_error()
    assert (flat[-64:] == np.float16(-7.0)).all(), "the kernel wrote past the context"
    return flat[:-64].reshape(rows, tokens, heads * head_dim)


def _reference(qkv, bias, heads, window, shift, grid, scale, head_scale=None):
    two_d = window[0] == 1
    return reference.window_attention(
        qkv.astype(np.float32), bias.astype(np.float32), heads, window[1:] if two_d else window,
        shift[1:] if two_d else shift, grid[1], grid[2], scale, cosine=int(head_scale is not None),
        head_scale=head_scale, frames=None if two_d else grid[0])


def tensor_core_tolerance(qkv, bias, attrs) -> tuple[float, float]:
    """(atol, rtol) of the tensor-core kernel against the float32 reference on the same float16 qkv (module
    docstring: the float32 bound, p rounded to float16, the output rounded to float16)."""
    rows, tokens, three_c = qkv.shape
    heads = attrs["num_heads"]
    v = qkv.astype(np.float32).reshape(rows, tokens, 3, heads, -1)[:, :, 2]
    vmax = float(np.abs(v).max())
    atol = (attention_atol(qkv.astype(np.float32), bias.astype(np.float32), attrs)
            + (2.001 * U16 + tokens * 2.0 ** -25 + 8 * EPS32) * vmax + 2.0 ** -25)
    return atol * (1 + U16), U16


def _within(out, expect, tol) -> bool:
    atol, rtol = tol
    return bool(np.all(np.abs(out.astype(np.float64) - expect) <= atol + rtol * np.abs(expect)))


def _inputs(seed, rows, tokens, heads, head_dim, window, dense, bias_dtype, cosine):
    rng = np.random.default_rng(seed)
    qkv = rng.standard_normal((rows, tokens, 3 * heads * head_dim)).astype(np.float16)
    if cosine:  # all-zero q and k vectors: zero logits (the 1e-12 floor), never NaN
        qkv[0, 1, : heads * head_dim] = 0
        qkv[0, 2, heads * head_dim: 2 * heads * head_dim] = 0
    shape = (heads, tokens, tokens) if dense else (math.prod(2 * w - 1 for w in window), heads)
    bias = (rng.uniform(0, 16, shape) if cosine else 2 * rng.standard_normal(shape)).astype(bias_dtype)
    head_scale = rng.uniform(1.5, 100.0, heads).astype(np.float32) if cosine else None
    return qkv, bias, head_scale


# (window (wt, wh, ww), shift, padded grid (frames, height, width), heads, head_dim, batch, dense bias, bias dtype)
CASES = {
    "7x7": ((1, 7, 7), (0, 0, 0), (1, 14, 14), 2, 32, 1, False, np.float32),
    "7x7-shifted-14x21": ((1, 7, 7), (0, 3, 3), (1, 14, 21), 2, 32, 1, False, np.float16),
    "7x7-shifted-dense": ((1, 7, 7), (0, 3, 3), (1, 14, 14), 2, 32, 1, True, np.float32),
    "7x7-hd128": ((1, 7, 7), (0, 0, 0), (1, 7, 7), 1, 128, 2, False, np.float32),
    "2x7x7-shifted-hd24": ((2, 7, 7), (1, 3, 3), (4, 14, 14), 1, 24, 1, False, np.float32),
    "14x14-shifted-hd16": ((1, 14, 14), (0, 7, 7), (1, 28, 28), 1, 16, 1, False, np.float32),
    "8x7x7-shifted": ((8, 7, 7), (4, 3, 3), (16, 7, 7), 1, 32, 1, False, np.float32),
}


@pytest.mark.parametrize("mode", ["v1", "cosine"])
@pytest.mark.parametrize("case", list(CASES))
def test_tensor_core_attention_matches_reference(tc, case, mode):
    """Every mode, 2D and 3D windows, shifted and not, grids with several windows per axis, N = 49, 98, 196
    and 392 (none a multiple of 16), head_dim 16, 24, 32, 128, table (float32, float16) and dense bias."""
    window, shift, grid, heads, head_dim, batch, dense, bias_dtype = CASES[case]
    cosine = mode == "cosine"
    tokens, windows = _geometry(window, grid)
    qkv, bias, head_scale = _inputs(list(CASES).index(case), batch * windows, tokens, heads, head_dim, window, dense,
                                    bias_dtype, cosine)
    scale = 1.0 if cosine else head_dim ** -0.5
    out = _run_tc(tc, qkv, bias, heads, window, shift, grid, scale, head_scale, dense)
    expect = _reference(qkv, bias, heads, window, shift, grid, scale, head_scale)
    attrs = dict(num_heads=heads, scale=scale)
    if cosine:
        attrs.update(cosine=1, head_scale=list(head_scale))
    atol, rtol = tensor_core_tolerance(qkv, bias, attrs)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out.astype(np.float64), expect, rtol=rtol, atol=atol)


# ---- the tolerance is tight enough: deliberate bugs fail it ---------------------------------------------------

def _candidate(qkv, bias, heads, window, shift, grid, scale, head_scale=None, *, pad_keys=0, drop_mask=False,
               transpose_bias=False, roll_heads=False):
    """The op in float64 with one deliberate bug: ``pad_keys`` padding keys of the 16-key tiles left in the
    softmax (zero k and v, so the logit is the bias and mask of the key they are clamped to, N - 1: a kernel
    without its ``j < N`` test); the shift mask dropped; the bias gathered at rpi(j, i) instead of rpi(i, j);
    cosine mode's head_scale taken from the next head."""
    rows, tokens, three_c = qkv.shape
    q, k, v = qkv.astype(np.float64).reshape(rows, tokens, 3, heads, -1).transpose(2, 0, 3, 1, 4)
    if head_scale is not None:
        def unit(x):
            return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
        scales = np.roll(np.asarray(head_scale, np.float64), 1 if roll_heads else 0)
        q, k = unit(q) * scales.reshape(1, heads, 1, 1), unit(k)
    else:
        q = q * scale
    two_d = window[0] == 1
    win = window[1:] if two_d else window
    full = reference.attention_bias(bias.astype(np.float64), win, heads)
    extra = np.broadcast_to((full.transpose(0, 2, 1) if transpose_bias else full)[None], (rows, heads, tokens, tokens))
    mask = reference.attention_mask(win, shift[1:] if two_d else shift, grid[1], grid[2],
                                    None if two_d else grid[0])
    if mask is not None and not drop_mask:
        extra = (extra.reshape(-1, mask.shape[0], heads, tokens, tokens) + mask[None, :, None]).reshape(extra.shape)
    logits = q @ k.transpose(0, 1, 3, 2) + extra
    if pad_keys:
        logits = np.concatenate([logits, np.repeat(extra[..., -1:], pad_keys, axis=-1)], axis=-1)
        v = np.concatenate([v, np.zeros(v.shape[:2] + (pad_keys, v.shape[-1]))], axis=2)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    context = (weights / weights.sum(-1, keepdims=True)) @ v
    return context.transpose(0, 2, 1, 3).reshape(rows, tokens, -1)


def test_tolerance_rejects_buggy_candidates(tc):
    """On a shifted 7x7 case, V1 and cosine, the kernel and the bug-free float64 candidate pass the tolerance
    and each deliberately wrong candidate fails it: shift mask dropped, bias gathered transposed; V1: the
    padding keys of the 16-key tiles not masked (N = 49 padded to 64); cosine: another head's head_scale. (In
    cosine mode with head_scale near 100, leaked padding keys, whose logit is only their bias, weigh e^-30 and
    less: invisible in any output, so that candidate is checked in V1.)"""
    window, shift, grid, heads, head_dim = (1, 7, 7), (0, 3, 3), (1, 14, 21), 2, 32
    tokens, windows = _geometry(window, grid)
    for cosine in (False, True):
        qkv, bias, head_scale = _inputs(7, windows, tokens, heads, head_dim, window, False, np.float32, cosine)
        scale = 1.0 if cosine else head_dim ** -0.5
        attrs = dict(num_heads=heads, scale=scale)
        if cosine:
            attrs.update(cosine=1, head_scale=list(head_scale))
        tol = tensor_core_tolerance(qkv, bias, attrs)
        expect = _reference(qkv, bias, heads, window, shift, grid, scale, head_scale)
        args = (qkv, bias, heads, window, shift, grid, scale, head_scale)
        assert _within(_run_tc(tc, *args), expect, tol)
        assert _within(_candidate(*args), expect, tol)
        assert not _within(_candidate(*args, drop_mask=True), expect, tol), "a dropped shift mask passed"
        assert not _within(_candidate(*args, transpose_bias=True), expect, tol), "a transposed bias passed"
        if cosine:
            assert not _within(_candidate(*args, roll_heads=True), expect, tol), "another head's scale passed"
        else:
            assert not _within(_candidate(*args, pad_keys=64 - tokens), expect, tol), "unmasked padding passed"


_MUTANT_STUBS = r"""
#include "swin_kernels.h"
namespace swin_trt {
char const* checkWindowAttentionSupport(int32_t n, int32_t hd)
{ return (n < 1 || n > kMaxAttentionTokens || hd < 1 || hd > kMaxHeadDim) ? "unsupported" : nullptr; }
char const* checkCosineHeadScale(int32_t, float const*) { return nullptr; }
bool validWindowAttentionArgs(void const*, DType, void const*, DType, BiasForm, void const*, int32_t, int32_t, int32_t,
    int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, float, float const*)
{ return true; }  // the mutant is called with valid arguments only
}
#include "mutant.cu"
extern "C" __attribute__((visibility("default"))) int32_t mutant_tc(void const* qkv, void const* bias,
    int32_t bias_dtype, int32_t bias_form, void* context, int32_t rows, int32_t heads, int32_t hd, int32_t wt,
    int32_t wh, int32_t ww, int32_t st, int32_t sh, int32_t sw, int32_t frames, int32_t height, int32_t width,
    float scale, float const* head_scale)
{
    return static_cast<int32_t>(swin_trt::windowAttentionTensorCore(qkv, swin_trt::DType::kFLOAT16, bias,
        static_cast<swin_trt::DType>(bias_dtype), static_cast<swin_trt::BiasForm>(bias_form), context, rows, heads,
        hd, wt, wh, ww, st, sh, sw, frames, height, width, scale, head_scale, nullptr));
}
"""


def test_kernel_with_unmasked_padding_fails_the_tolerance(tmp_path):
    """Mutation test on the real source: the kernel with its two ``if (j < N)`` key tests removed (the padding
    keys of the last 32-key tile enter the softmax with their clamped bias) is built for the emulator and must
    fail the tolerance that the kernel passes (test_tensor_core_attention_matches_reference)."""
    from conftest import cuda_include  # here: the GPU check runs this module without conftest's dependencies

    include = cuda_include()
    if CXX is None or include is None:
        pytest.skip("needs a C++ compiler and the CUDA headers (cuda_fp16.h)")
    source = (REPO / "plugins/SwinWindowAttention/swinWindowAttentionTensorCoreKernel.cu").read_text()
    assert source.count("if (j < N)\n") == 2, "mutation sites moved: update this test"
    (tmp_path / "mutant.cu").write_text(source.replace("if (j < N)\n", "if (true)\n"))
    (tmp_path / "mutant_main.cpp").write_text(_MUTANT_STUBS)
    lib_path = tmp_path / "libmutant.so"
    done = subprocess.run([CXX, "-std=c++17", "-O1", "-fPIC", "-shared", "-DSWIN_TRT_EMULATION",
                           f"-I{REPO / 'plugins' / 'common'}", f"-I{tmp_path}", "-isystem", str(include),
                           str(tmp_path / "mutant_main.cpp"), "-o", str(lib_path)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-6000:]
    mutant = ctypes.CDLL(str(lib_path))
    i32, ptr = ctypes.c_int32, ctypes.c_void_p
    mutant.mutant_tc.argtypes = [ptr, ptr, i32, i32, ptr] + [i32] * 12 + [ctypes.c_float, ptr]
    mutant.mutant_tc.restype = i32

    window, shift, grid, heads, head_dim = (1, 7, 7), (0, 3, 3), (1, 14, 21), 2, 32
    tokens, windows = _geometry(window, grid)
    qkv, bias, _ = _inputs(7, windows, tokens, heads, head_dim, window, False, np.float32, False)
    scale = head_dim ** -0.5
    out = np.zeros((windows, tokens, heads * head_dim), np.float16)
    assert mutant.mutant_tc(qkv.ctypes.data, bias.ctypes.data, 0, 0, out.ctypes.data, windows, heads, head_dim,
                            *window, *shift, *grid, scale, None) == 0
    expect = _reference(qkv, bias, heads, window, shift, grid, scale)
    tol = tensor_core_tolerance(qkv, bias, dict(num_heads=heads, scale=scale))
    assert np.isfinite(out).all()
    assert not _within(out, expect, tol)
    assert np.abs(out - expect).max() > 10 * tol[0]  # seen: 1.47 against 0.0049


# ---- launch plan and argument checks -------------------------------------------------------------------------

def test_tensor_core_plan_fits_shared_memory_for_every_shape(tc):
    """Every supported shape (N <= 512, head_dim <= 128; no table, 2D 7x7's, the largest 3D table of that N;
    V1 and cosine) has a launch plan within 48 KiB, and unsupported shapes have none."""
    smem = tc.swin_trt_window_attention_tc_smem
    for tokens in range(1, 513):
        for head_dim in range(1, 129):
            for bias_rows in (0, 169, 8 * tokens):
                for cosine in (0, 1):
                    got = smem(tokens, head_dim, bias_rows, cosine)
                    assert 0 < got <= SMEM_BUDGET, (tokens, head_dim, bias_rows, cosine, got)
    assert smem(513, 32, 0, 0) == 0 and smem(49, 129, 0, 0) == 0 and smem(0, 32, 0, 0) == 0


def test_tensor_core_refuses_what_it_does_not_run(tc):
    """float32 qkv (the CUDA-core kernel's), rows that are not whole images, a 3D grid that is not a multiple of
    the window, a bad head_scale: refused, nothing written."""
    heads, head_dim, window = 1, 16, (1, 7, 7)
    qkv = np.zeros((4, 49, 3 * heads * head_dim), np.float16)
    table = np.zeros((169, heads), np.float32)
    out = np.full((4, 49, heads * head_dim), np.float16(3.0))
    call = tc.swin_trt_window_attention_tc

    def run(qkv_dtype=1, rows=4, grid=(1, 14, 14), head_scale=None, scale=0.25):
        hs = None if head_scale is None else np.asarray(head_scale, np.float32)
        return call(qkv.ctypes.data, qkv_dtype, table.ctypes.data, 0, 0, out.ctypes.data, rows, heads, head_dim,
                    *window, 0, 3, 3, *grid, scale, None if hs is None else hs.ctypes.data, None)

    assert run() == 0
    out[:] = 3.0
    assert run(qkv_dtype=0) == -1
    assert run(rows=3) != 0  # 4 windows per image
    assert run(grid=(2, 14, 14)) != 0  # two frames of windows: 8 per clip
    assert run(grid=(1, 14, 15)) != 0  # not the padded grid
    assert run(head_scale=[0.0], scale=1.0) != 0 and run(head_scale=[101.0], scale=1.0) != 0
    assert run(rows=0) == 0
    assert (out == np.float16(3.0)).all()


# ---- on a GPU (skipped without torch CUDA and libswin_trt_capi.so) -------------------------------------------

@pytest.fixture(scope="module")
def gpu_capi():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from swin_trt import plugin_library
    from swin_trt.errors import UserError

    try:
        path = plugin_library.find_capi_library()
    except UserError as error:
        pytest.skip(str(error))
    lib = ctypes.CDLL(str(path))
    if not hasattr(lib, "swin_trt_window_attention_tc"):
        pytest.skip(f"{path} predates the tensor-core kernel: rebuild it")
    i32, ptr = ctypes.c_int32, ctypes.c_void_p
    lib.swin_trt_window_attention_tc.argtypes = ([ptr, i32, ptr, i32, i32, ptr] + [i32] * 12
                                                 + [ctypes.c_float, ptr, ptr])
    lib.swin_trt_window_attention_tc.restype = i32
    lib.swin_trt_capi_last_error.restype = ctypes.c_char_p
    return lib


@pytest.mark.parametrize("mode", ["v1", "cosine"])
@pytest.mark.parametrize("case", ["7x7-shifted-14x21", "7x7-shifted-dense", "2x7x7-shifted-hd24", "8x7x7-shifted",
                                  "7x7-hd128"])
def test_tensor_core_attention_on_gpu(gpu_capi, case, mode):
    """The compiled kernel (HMMA) on the GPU, on the emulator tests' cases and tolerance."""
    import torch

    window, shift, grid, heads, head_dim, batch, dense, bias_dtype = CASES[case]
    cosine = mode == "cosine"
    tokens, windows = _geometry(window, grid)
    qkv, bias, head_scale = _inputs(list(CASES).index(case), batch * windows, tokens, heads, head_dim, window,
                                    dense, bias_dtype, cosine)
    scale = 1.0 if cosine else head_dim ** -0.5
    qkv_d, bias_d = torch.from_numpy(qkv).cuda(), torch.from_numpy(bias).cuda()
    out_d = torch.full((qkv.shape[0], tokens, heads * head_dim), -7.0, dtype=torch.float16, device="cuda")
    hs = None if head_scale is None else np.ascontiguousarray(head_scale, np.float32)
    status = gpu_capi.swin_trt_window_attention_tc(
        qkv_d.data_ptr(), 1, bias_d.data_ptr(), 0 if bias.dtype == np.float32 else 1, 1 if dense else 0,
        out_d.data_ptr(), qkv.shape[0], heads, head_dim, *window, *shift, *grid, scale,
        None if hs is None else hs.ctypes.data, None)
    assert status == 0, gpu_capi.swin_trt_capi_last_error()
    torch.cuda.synchronize()
    out = out_d.cpu().numpy()
    expect = _reference(qkv, bias, heads, window, shift, grid, scale, head_scale)
    attrs = dict(num_heads=heads, scale=scale)
    if cosine:
        attrs.update(cosine=1, head_scale=list(head_scale))
    atol, rtol = tensor_core_tolerance(qkv, bias, attrs)
    np.testing.assert_allclose(out.astype(np.float64), expect, rtol=rtol, atol=atol)
