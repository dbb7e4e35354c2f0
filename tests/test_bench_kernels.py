"""benchmarks/bench_kernels.py's CPU-checkable parts: the FlexAttention baseline's ``score_mod`` (relative position
bias and shifted-window mask computed from the indices) and the float32 reference that every timed attention
result is checked against, both compared with the numpy reference of the op contract (swin_trt/ops/reference.py).
The timings themselves need a GPU (scripts/gpu_check.sh runs them).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from swin_trt.ops import reference  # noqa: E402
from tolerances import attention_atol  # noqa: E402

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_kernels.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_kernels", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_kernels", module)
    spec.loader.exec_module(module)
    return module


def _case(shift, height=10, width=13, batch=2, heads=3, head_dim=8, seed=0):
    window = 7
    grid_h, grid_w = reference.padded_size(height, width, window)
    n_windows = reference.num_windows(height, width, window)
    rng = np.random.default_rng(seed)
    table = rng.standard_normal(((2 * window - 1) ** 2, heads)).astype(np.float32)
    qkv = rng.standard_normal((batch * n_windows, window * window, 3 * heads * head_dim)).astype(np.float32)
    return window, grid_h, grid_w, n_windows, table, qkv


@pytest.mark.parametrize("shift", [3, 0])
def test_score_mod_adds_the_contracts_bias_and_mask(bench, shift):
    window, grid_h, grid_w, n_windows, table, _ = _case(shift)
    heads, rows, tokens = table.shape[1], 2 * n_windows, window * window
    score_mod = bench.swin_score_mod(torch, torch.as_tensor(table), window, shift, grid_h, grid_w)
    b = torch.arange(rows).view(-1, 1, 1, 1)
    h = torch.arange(heads).view(1, -1, 1, 1)
    q = torch.arange(tokens).view(1, 1, -1, 1)
    kv = torch.arange(tokens).view(1, 1, 1, -1)
    got = score_mod(torch.zeros(()), b, h, q, kv).numpy()
    expect = np.broadcast_to(reference.relative_position_bias(table, (window, window))[None], got.shape).copy()
    mask = reference.attention_mask((window, window), (shift, shift), grid_h, grid_w)
    if mask is not None:
        expect += np.tile(mask, (2, 1, 1))[:, None]
    np.testing.assert_array_equal(got, expect)


@pytest.mark.parametrize("cosine", [False, True])
def test_reference_attention_is_the_contract(bench, cosine):
    window, grid_h, grid_w, n_windows, table, qkv = _case(3, seed=1)
    heads = table.shape[1]
    head_scale = np.linspace(1.5, 100.0, heads).astype(np.float32)
    scale = 1.0 if cosine else 8 ** -0.5
    expect = reference.window_attention(qkv, table, heads, window, 3, grid_h, grid_w, scale, cosine=int(cosine),
                                        head_scale=head_scale if cosine else None)
    bias = torch.as_tensor(reference.relative_position_bias(table, (window, window)))
    mask = torch.as_tensor(reference.attention_mask((window, window), (3, 3), grid_h, grid_w))
    got = bench.reference_attention(torch, torch.as_tensor(qkv), bias, mask, heads, scale,
                                    torch.as_tensor(head_scale) if cosine else None)
    attrs = dict(num_heads=heads, scale=scale, cosine=int(cosine), head_scale=head_scale)
    np.testing.assert_allclose(got.numpy(), expect, rtol=0, atol=attention_atol(qkv, table, attrs))


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_attention_with_the_score_mod_is_the_contract(bench):
    try:
        from torch.nn.attention.flex_attention import flex_attention
    except ImportError as exc:
        pytest.skip(f"this torch has no FlexAttention ({exc})")
    window, grid_h, grid_w, n_windows, table, qkv = _case(3, heads=2, head_dim=16, seed=2)
    heads, head_dim, tokens = 2, 16, window * window
    rows = qkv.shape[0]
    scale = head_dim ** -0.5
    q, k, v = torch.as_tensor(qkv).view(rows, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    score_mod = bench.swin_score_mod(torch, torch.as_tensor(table), window, 3, grid_h, grid_w)
    try:
        got = flex_attention(q.contiguous(), k.contiguous(), v.contiguous(), score_mod=score_mod, scale=scale)
    except Exception as exc:  # noqa: BLE001 - eager FlexAttention on the CPU is not in every torch
        pytest.skip(f"FlexAttention does not run eagerly on this CPU torch: {type(exc).__name__}: {exc}")
    got = got.transpose(1, 2).reshape(rows, tokens, heads * head_dim).numpy()
    expect = reference.window_attention(qkv, table, heads, window, 3, grid_h, grid_w, scale)
    np.testing.assert_allclose(got, expect, rtol=0, atol=attention_atol(qkv, table, dict(num_heads=heads, scale=scale)))


def test_fused_block_is_swin_t_stage_one(bench):
    assert bench.fused_block((224, 224)) == ((56, 56), 96, 3, 3)
    assert bench.fused_block((512, 640)) == ((128, 160), 96, 3, 3)  # padded: neither side a multiple of 7
    assert bench.fused_block((28, 28)) == ((7, 7), 96, 3, 0)  # one window: no shift
    assert bench.parse_args(["--fused"]).fused and not bench.parse_args([]).fused


@pytest.fixture(scope="module")
def emulated_capi(capi_emu):
    """The emulated kernels' C ABI (conftest.capi_emu), with swin_trt's own argtypes."""
    from swin_trt import plugin_library

    return plugin_library.load_capi(capi_emu._name, emulated=True)


@pytest.mark.parametrize("pad_first", [1, 0])
@pytest.mark.parametrize("size", [(10, 13), (14, 14), (5, 3)])
def test_fused_row_launches_the_same_block_both_ways(bench, emulated_capi, pad_first, size):
    """The calls the fused-vs-unfused row times, on the emulated kernels (host buffers): partition + attention +
    reverse of the qkv map and the fused kernel with a zero pad row give the same context map, every row
    written, and that map is the contract's (numpy reference)."""
    lib = emulated_capi
    if not bench.bind_fused(lib):
        pytest.skip("this libswin_trt_capi_emu.so predates the fused kernel")
    height, width = size
    batch, channels, heads = 2, 16, 2
    shift = 3 if min(height, width) > bench.WINDOW else 0
    tokens, scale = bench.WINDOW ** 2, (channels // heads) ** -0.5
    rows = batch * reference.num_windows(height, width, bench.WINDOW)
    rng = np.random.default_rng(height * 100 + width + pad_first)
    qkv_map = rng.standard_normal((batch, height, width, 3 * channels)).astype(np.float32)
    table = rng.standard_normal(((2 * bench.WINDOW - 1) ** 2, heads)).astype(np.float32)
    pad_row = np.zeros(3 * channels, np.float32)
    windows = np.empty((rows, tokens, 3 * channels), np.float32)
    context_windows = np.empty((rows, tokens, channels), np.float32)
    unfused = np.full((batch, height, width, channels), np.nan, np.float32)
    fused = np.full_like(unfused, np.nan)
    ptr = lambda a: a.ctypes.data  # noqa: E731
    statuses = bench.launch_unfused(lib, ptr(qkv_map), ptr(windows), ptr(context_windows), ptr(table), ptr(unfused),
                                    0, batch, height, width, channels, heads, shift, pad_first, scale, None)
    status = bench.launch_fused(lib, ptr(qkv_map), ptr(table), ptr(pad_row), ptr(fused), 0, batch, height, width,
                                channels, heads, shift, pad_first, scale, None)
    assert statuses == (0, 0, 0) and status == 0, lib.swin_trt_capi_last_error()
    assert not np.isnan(fused).any() and not np.isnan(unfused).any()
    np.testing.assert_array_equal(fused, unfused)  # one kernel, one order of operations: only the rows move
    expect = reference.fused_window_attention(qkv_map, table, pad_row, heads, bench.WINDOW, shift, bool(pad_first),
                                              scale)
    atol = attention_atol(windows, table, dict(num_heads=heads, scale=scale))  # windows: the partitioned qkv
    np.testing.assert_allclose(fused, expect, rtol=0, atol=atol)
