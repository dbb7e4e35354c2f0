"""The CUDA kernels (through the C ABI, libswin_trt_capi.so) on torch CUDA tensors vs swin_trt.ops.reference.

Runs only with a CUDA GPU. The library is taken from ``$SWIN_TRT_CAPI`` / the build folders
(``swin_trt.plugin_library``); when it is not built and cmake + nvcc are there, it is built once into a
temporary folder for this GPU's architecture.

Covers every kernel and dtype: random shapes, non-square windows and padded maps, shift 0 and > 0, both pad
orders, batches up to 32 (Swin-T/Swin-B stage shapes), one node's attributes at every stage map of a backbone of
any size (448x448, 512x640), unaligned pointers (narrower vector paths), non-default streams; attention in
float32 and float16, V1 and cosine mode (Swin V2; float16 within 2e-3 of the float32 reference, relative to
the largest output). Runs the kernels through the torch wrappers of ``tests/cuda_kernels.py``. Needs only torch,
numpy and pytest (no conftest fixtures; cosine mode's head scales come from ``tests/v2_head_scales.py``):
``scripts/gpu_check.sh`` runs it with ``--noconftest`` on a bare GPU machine.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from swin_trt import plugin_library  # noqa: E402
from swin_trt.errors import UserError  # noqa: E402
from swin_trt.ops import reference  # noqa: E402

import cuda_kernels  # noqa: E402  (tests/cuda_kernels.py: the torch wrappers of the C ABI)

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (torch.cuda.is_available() is False)"),
]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def capi(tmp_path_factory):
    try:
        return plugin_library.load_capi()
    except UserError as not_built:
        cmake = shutil.which("cmake")
        nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if Path("/usr/local/cuda/bin/nvcc").is_file()
                                        else None)
        if cmake is None or nvcc is None:
            pytest.skip(f"the kernel library is not built and cmake/nvcc are missing to build it: {not_built}")
        major, minor = torch.cuda.get_device_capability()
        folder = tmp_path_factory.mktemp("swin_trt_capi_build")
        steps = [[cmake, "-S", REPO, "-B", folder, "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_CUDA_COMPILER={nvcc}",
                  f"-DCMAKE_CUDA_ARCHITECTURES={major}{minor}", "-DSWIN_TRT_BUILD_TESTS=OFF",
                  "-DSWIN_TRT_BUILD_EMULATION=OFF"],
                 [cmake, "--build", folder, "-j", "2", "--target", "swin_trt_capi"]]
        for step in steps:
            done = subprocess.run([str(a) for a in step], capture_output=True, text=True)
            assert done.returncode == 0, f"building swin_trt_capi failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return plugin_library.load_capi(folder / plugin_library.CAPI_FILENAME)


DTYPES = {"float32": torch.float32, "float16": torch.float16, "int8": torch.int8}


def _random(generator: torch.Generator, shape, dtype: torch.dtype) -> torch.Tensor:
    if dtype == torch.int8:
        return torch.randint(-128, 128, shape, generator=generator, dtype=torch.int8)
    return torch.randn(shape, generator=generator).to(dtype)


def _random_window_case(seed: int):
    rng = np.random.default_rng(seed)
    window = (int(rng.integers(1, 9)), int(rng.integers(1, 9)))
    shift = (int(rng.integers(0, window[0])), int(rng.integers(0, window[1])))
    return (int(rng.integers(1, 4)), int(rng.integers(1, 31)), int(rng.integers(1, 31)), int(rng.integers(1, 41)),
            window, shift)


WINDOW_CASES = [  # (B, H, W, C, window, shift)
    (2, 56, 56, 96, (7, 7), (3, 3)),      # Swin-T stage 1
    (1, 7, 7, 768, (7, 7), (0, 0)),       # Swin-T stage 4
    (3, 13, 9, 20, (4, 5), (2, 3)),       # padded, non-square window
    (2, 5, 3, 3, (7, 7), (6, 2)),         # map smaller than the window
    (1, 24, 40, 36, (12, 12), (6, 6)),    # 12x12 windows
    (2, 10, 17, 1, (3, 2), (1, 1)),       # one channel (1-byte rows for int8)
    (32, 56, 56, 96, (7, 7), (3, 3)),     # Swin-T stage 1 at batch 32
    (32, 28, 28, 256, (7, 7), (3, 3)),    # Swin-B stage 2 at batch 32
] + [_random_window_case(seed) for seed in range(8)]


def _case_id(case) -> str:
    batch, height, width, channels, window, shift = case
    return f"{batch}x{height}x{width}x{channels}-w{window[0]}x{window[1]}-s{shift[0]}x{shift[1]}"


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("pad_first", [True, False])
@pytest.mark.parametrize("case", WINDOW_CASES, ids=_case_id)
def test_partition_and_reverse_match_reference(capi, case, pad_first, dtype):
    batch, height, width, channels, window, shift = case
    generator = torch.Generator().manual_seed(batch * 1000 + height * 31 + width)
    x = _random(generator, (batch, height, width, channels), DTYPES[dtype])
    windows = cuda_kernels.partition_cuda(x.cuda(), window, shift, pad_first, lib=capi)
    torch.cuda.synchronize()
    expect = reference.window_partition(x.numpy(), window, shift, pad_first)
    np.testing.assert_array_equal(windows.cpu().numpy(), expect)

    other = _random(generator, tuple(windows.shape), DTYPES[dtype])
    merged = cuda_kernels.reverse_cuda(other.cuda(), window, shift, pad_first, height, width, lib=capi)
    expect = reference.window_reverse(other.numpy(), window, shift, pad_first, height, width)
    np.testing.assert_array_equal(merged.cpu().numpy(), expect)
    roundtrip = cuda_kernels.reverse_cuda(windows, window, shift, pad_first, height, width, lib=capi)
    assert torch.equal(roundtrip.cpu(), x)


@pytest.mark.parametrize("offset_elements", [1, 2, 3])
@pytest.mark.parametrize("dtype", list(DTYPES))
def test_unaligned_pointers_use_narrower_vectors(capi, dtype, offset_elements):
    """Rows of 64 channels allow 16-byte vectors; a pointer offset forces the 8/4/2/1-byte paths."""
    batch, height, width, channels, window, shift = 2, 9, 11, 64, (4, 4), (2, 1)
    generator = torch.Generator().manual_seed(offset_elements)
    x = _random(generator, (batch, height, width, channels), DTYPES[dtype])
    storage = torch.zeros(x.numel() + offset_elements, dtype=x.dtype, device="cuda")
    unaligned = storage[offset_elements:].view(x.shape)
    unaligned.copy_(x.cuda())
    windows = cuda_kernels.partition_cuda(unaligned, window, shift, True, lib=capi)
    np.testing.assert_array_equal(windows.cpu().numpy(), reference.window_partition(x.numpy(), window, shift, True))
    out_storage = torch.zeros(x.numel() + offset_elements, dtype=x.dtype, device="cuda")
    out = out_storage[offset_elements:].view(x.shape)
    stream = torch.cuda.current_stream()
    status = capi.swin_trt_window_reverse(windows.data_ptr(), out.data_ptr(), {"float32": 0, "float16": 1,
                                          "int8": 2}[dtype], batch, height, width, channels, *window, *shift, 1,
                                          stream.cuda_stream)
    plugin_library.check_status(capi, status, "reverse")
    assert torch.equal(out.cpu(), x)


ATTENTION_CASES = [  # (B, heads, head_dim, window, shift, Hp, Wp)
    (2, 3, 32, (7, 7), (3, 3), 14, 14),       # Swin 7x7, shifted
    (1, 4, 32, (7, 7), (0, 0), 7, 21),        # no shift, non-square grid
    (2, 2, 16, (4, 3), (1, 2), 8, 9),         # non-square window
    (1, 2, 32, (12, 12), (6, 6), 24, 24),     # N = 144
    (1, 1, 128, (16, 16), (8, 8), 32, 16),    # N = 256, head_dim = 128 (the limits)
    (1, 3, 20, (5, 5), (2, 0), 10, 15),       # shift along H only
    (2, 2, 5, (3, 3), (1, 1), 6, 6),          # head_dim 5: scalar loads
    (1, 2, 96, (2, 6), (0, 5), 4, 12),        # head_dim 96, shift along W only
    (32, 3, 32, (7, 7), (3, 3), 14, 14),      # many windows
]


def _attention_id(case) -> str:
    batch, heads, head_dim, window, shift, grid_h, grid_w = case
    return f"b{batch}-h{heads}-d{head_dim}-w{window[0]}x{window[1]}-s{shift[0]}x{shift[1]}-{grid_h}x{grid_w}"


@pytest.mark.parametrize("bias_dtype", ["float32", "float16"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("case", ATTENTION_CASES, ids=_attention_id)
def test_attention_matches_reference(capi, case, dtype, bias_dtype):
    batch, heads, head_dim, window, shift, grid_h, grid_w = case
    generator = torch.Generator().manual_seed(heads * 100 + head_dim)
    tokens = window[0] * window[1]
    rows = batch * (grid_h // window[0]) * (grid_w // window[1])
    qkv = torch.randn((rows, tokens, 3 * heads * head_dim), generator=generator).to(DTYPES[dtype])
    table = torch.randn(((2 * window[0] - 1) * (2 * window[1] - 1), heads), generator=generator)
    table = table.to(DTYPES[bias_dtype])
    scale = head_dim ** -0.5
    out = cuda_kernels.attention_cuda(qkv.cuda(), table.cuda(), heads, window, shift, grid_h, grid_w, scale,
                                        lib=capi)
    assert out.dtype == qkv.dtype and tuple(out.shape) == (rows, tokens, heads * head_dim)
    # float32 reference of the very same (possibly float16-rounded) inputs.
    expect = reference.window_attention(qkv.float().numpy(), table.float().numpy(), heads, window, shift, grid_h,
                                        grid_w, scale)
    error = np.abs(out.float().cpu().numpy() - expect).max() / np.abs(expect).max()
    assert error <= (2e-3 if dtype == "float16" else 1e-4), f"relative error {error:.3g}"


# The stage maps of a Swin-T backbone of any size at 512x640 and 448x448 (window 7, none a multiple of it
# at 512x640), and a few odd ones: what one engine built with --img-size-range runs its plugins at.
ANY_SIZE_MAPS = [(128, 160), (64, 80), (32, 40), (16, 20), (112, 112), (14, 14), (9, 23), (5, 3)]


@pytest.mark.parametrize("pad_first", [True, False])
def test_one_node_at_every_size_matches_reference(capi, pad_first):
    """One node's attributes (window 7, shift 3) at every map size, as an engine of any size runs them:
    partition/reverse with the run's H and W, attention on the grid the feature map rounds up to."""
    window, shift, heads, head_dim = (7, 7), (3, 3), 3, 32
    generator = torch.Generator().manual_seed(int(pad_first))
    table = torch.randn((169, heads), generator=generator)
    for height, width in ANY_SIZE_MAPS:
        for dtype in ("float16", "int8"):
            x = _random(generator, (2, height, width, 96), DTYPES[dtype])
            windows = cuda_kernels.partition_cuda(x.cuda(), window, shift, pad_first, lib=capi)
            np.testing.assert_array_equal(windows.cpu().numpy(),
                                          reference.window_partition(x.numpy(), window, shift, pad_first))
            back = cuda_kernels.reverse_cuda(windows, window, shift, pad_first, height, width, lib=capi)
            assert torch.equal(back.cpu(), x), (height, width, dtype)
        grid = reference.padded_size(height, width, window)
        rows = 2 * reference.num_windows(height, width, window)
        qkv = torch.randn((rows, 49, 3 * heads * head_dim), generator=generator).half()
        out = cuda_kernels.attention_cuda(qkv.cuda(), table.cuda(), heads, window, shift, *grid, lib=capi)
        expect = reference.window_attention(qkv.float().numpy(), table.numpy(), heads, window, shift, *grid,
                                            head_dim ** -0.5)
        error = np.abs(out.float().cpu().numpy() - expect).max() / np.abs(expect).max()
        assert error <= 2e-3, (height, width, error)


COSINE_CASES = [  # (B, heads, head_dim, window, shift, Hp, Wp): Swin V2 shapes (window 8 and 16)
    (2, 3, 32, (8, 8), (4, 4), 16, 24),       # swinv2_tiny_window8 stage 1 heads, shifted
    (1, 6, 32, (8, 8), (0, 0), 8, 8),
    (1, 4, 32, (16, 16), (8, 8), 32, 16),     # window 16: N = 256
    (2, 2, 5, (3, 3), (1, 1), 6, 6),          # scalar loads
    (1, 2, 96, (8, 8), (4, 0), 16, 8),        # HDC 3
    (32, 3, 32, (8, 8), (4, 4), 16, 16),      # many windows
]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("case", COSINE_CASES, ids=_attention_id)
def test_cosine_attention_matches_reference(capi, case, dtype):
    """Cosine mode (Swin V2): per-head scales up to 100 and a continuous-position-bias table in (0, 16)."""
    from v2_head_scales import head_scales

    batch, heads, head_dim, window, shift, grid_h, grid_w = case
    generator = torch.Generator().manual_seed(heads * 100 + head_dim + 1)
    tokens = window[0] * window[1]
    rows = batch * (grid_h // window[0]) * (grid_w // window[1])
    qkv = (torch.randn((rows, tokens, 3 * heads * head_dim), generator=generator) * 3).to(DTYPES[dtype])
    table = torch.rand(((2 * window[0] - 1) * (2 * window[1] - 1), heads), generator=generator) * 16
    scales = head_scales(heads)
    out = cuda_kernels.attention_cuda(qkv.cuda(), table.cuda(), heads, window, shift, grid_h, grid_w, lib=capi,
                                        head_scale=scales)
    expect = reference.window_attention(qkv.float().numpy(), table.numpy(), heads, window, shift, grid_h, grid_w, 1.0,
                                        cosine=1, head_scale=scales)
    error = np.abs(out.float().cpu().numpy() - expect).max() / np.abs(expect).max()
    assert error <= (2e-3 if dtype == "float16" else 1e-4), f"relative error {error:.3g}"


def test_kernels_run_on_the_given_stream(capi):
    x = torch.randn((4, 28, 28, 192), device="cuda", dtype=torch.float16)
    qkv = torch.randn((4 * 16, 49, 3 * 192), device="cuda", dtype=torch.float16)
    table = torch.randn((169, 6), device="cuda", dtype=torch.float16)
    expect_windows = cuda_kernels.partition_cuda(x, 7, 3, True, lib=capi)
    expect_context = cuda_kernels.attention_cuda(qkv, table, 6, 7, 3, 28, 28, lib=capi)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        windows = cuda_kernels.partition_cuda(x, 7, 3, True, lib=capi)
        context = cuda_kernels.attention_cuda(qkv, table, 6, 7, 3, 28, 28, lib=capi)
    side.synchronize()
    assert torch.equal(windows, expect_windows)
    assert torch.equal(context, expect_context)


def test_bad_arguments_raise_with_the_library_message(capi):
    x = torch.zeros((1, 7, 7, 4), device="cuda")
    with pytest.raises(RuntimeError, match="shift"):
        cuda_kernels.partition_cuda(x, 7, 7, True, lib=capi)
    qkv = torch.zeros((1, 49, 3 * 160), device="cuda")
    table = torch.zeros((169, 1), device="cuda")
    with pytest.raises(RuntimeError, match="head_dim"):
        cuda_kernels.attention_cuda(qkv, table, 1, 7, 0, 7, 7, lib=capi)
    with pytest.raises(RuntimeError, match="head_scale"):
        cuda_kernels.attention_cuda(qkv[..., :96], table, 1, 7, 0, 7, 7, lib=capi, head_scale=[101.0])
    with pytest.raises(ValueError, match="CUDA tensor"):
        cuda_kernels.partition_cuda(x.cpu(), 7, 3, True, lib=capi)
