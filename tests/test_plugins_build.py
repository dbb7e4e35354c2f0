"""plugins/: the CMake build, its host tests, and the kernel source checked against swin_trt.ops.reference.

* The CMake project is configured and built into a temporary folder (one GPU architecture, 87, to keep CI
  fast; ``-DTENSORRT_ROOT=$SWIN_TRT_TENSORRT_INCLUDE_ROOT`` when that variable is set), then ``ctest`` runs its
  host tests: the index math against a brute-force model, the plugin library driven through TensorRT's
  interfaces (when TensorRT headers are found), the kernels on the CPU emulator.
* ``libswin_trt_capi_emu.so`` (the real kernel source run by a CPU emulator, host pointers) is compared with
  the numpy reference of the op contract, so the kernels are checked on machines without a GPU.
* The library lookup of ``swin_trt.plugin_library`` (explicit path, environment variable, build folders).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from swin_trt.errors import UserError
from swin_trt.ops import reference
from swin_trt import plugin_library

from conftest import attention_atol
from cuda_kernels import head_scale_array

REPO = Path(__file__).resolve().parent.parent
CMAKE = shutil.which("cmake")
CTEST = shutil.which("ctest")
NVCC = shutil.which("nvcc") or next((p for p in ("/usr/local/cuda/bin/nvcc",) if Path(p).is_file()), None)
CXX = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
TENSORRT_ROOT = os.environ.get("SWIN_TRT_TENSORRT_INCLUDE_ROOT")


def _run(args, cwd=None, timeout=1800):
    return subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


class NativeBuild:
    def __init__(self, folder: Path, configure_log: str):
        self.folder = folder
        self.configure_log = configure_log

    def lib(self, filename: str) -> Path:
        return self.folder / filename


@pytest.fixture(scope="module")
def native_build(tmp_path_factory) -> NativeBuild:
    """plugins/ configured and built once for this module (whatever this machine can build)."""
    if CMAKE is None:
        pytest.skip("cmake is not installed (needed to build plugins/)")
    folder = tmp_path_factory.mktemp("swin_trt_build")
    configure = [CMAKE, "-S", REPO, "-B", folder, "-DCMAKE_BUILD_TYPE=Release", "-DCMAKE_CUDA_ARCHITECTURES=87"]
    if NVCC:
        configure.append(f"-DCMAKE_CUDA_COMPILER={NVCC}")
    if TENSORRT_ROOT:
        configure.append(f"-DTENSORRT_ROOT={TENSORRT_ROOT}")
    done = _run(configure)
    assert done.returncode == 0, f"cmake configure failed:\n{done.stdout}\n{done.stderr}"
    built = _run([CMAKE, "--build", folder, "-j", "2"])
    assert built.returncode == 0, f"cmake --build failed:\n{built.stdout[-6000:]}\n{built.stderr[-6000:]}"
    return NativeBuild(folder, done.stdout + done.stderr)


@pytest.mark.skipif(CMAKE is None or NVCC is None, reason="cmake and nvcc are needed to build the CUDA targets")
def test_cmake_builds_cuda_targets_and_ctest_passes(native_build):
    capi = native_build.lib(plugin_library.CAPI_FILENAME)
    assert capi.is_file(), f"swin_trt_capi was not built:\n{native_build.configure_log}"
    lib = ctypes.CDLL(str(capi))
    assert lib.swin_trt_capi_version() == plugin_library.CAPI_VERSION
    plugins = native_build.lib(plugin_library.PLUGINS_FILENAME)
    if TENSORRT_ROOT:
        assert plugins.is_file(), f"swin_trt_plugins was not built:\n{native_build.configure_log}"
    if plugins.is_file():
        # The two entry points TensorRT's loadLibrary/trtexec --dynamicPlugins look up; no libnvinfer needed.
        loaded = ctypes.CDLL(str(plugins))
        assert hasattr(loaded, "getCreators") and hasattr(loaded, "setLoggerFinder")
    ctest = _run([CTEST or "ctest", "--output-on-failure"], cwd=native_build.folder)
    assert ctest.returncode == 0, f"ctest failed:\n{ctest.stdout}\n{ctest.stderr}"
    assert "swin_trt_index_test" in ctest.stdout
    if TENSORRT_ROOT:  # the plugin objects themselves, enqueue included, on the emulated kernels
        assert "swin_trt_plugin_host_test" in ctest.stdout and "swin_trt_plugin_emulated_test" in ctest.stdout


READELF = shutil.which("readelf")


def _dynamic_section(path: Path) -> str:
    return _run([READELF, "-d", "-W", path]).stdout


@pytest.mark.skipif(not (TENSORRT_ROOT and NVCC and READELF),
                    reason="needs nvcc, readelf and TensorRT headers ($SWIN_TRT_TENSORRT_INCLUDE_ROOT) to build the "
                           "registering library")
def test_registering_library_loads_the_plugins_from_beside_itself(native_build):
    """libswin_trt_plugins_autoreg (here its host-test copy: the same objects without libnvinfer) needs
    libswin_trt_plugins.so, finds it through RUNPATH $ORIGIN (a Triton or DeepStream bundle holds the two side
    by side), exports nothing, and is never unloaded (-z nodelete). The real one also needs libnvinfer."""
    copies = [native_build.lib("libswin_trt_plugins_autoreg_hosttest.so")]
    real = native_build.lib(plugin_library.AUTOREG_FILENAME)
    if real.is_file():  # CMake found libnvinfer in TENSORRT_ROOT
        copies.append(real)
        assert "libnvinfer.so" in _dynamic_section(real)
    for library in copies:
        section = _dynamic_section(library)
        assert f"Shared library: [{plugin_library.PLUGINS_FILENAME}]" in section, section
        assert "$ORIGIN" in next(line for line in section.splitlines() if "RUNPATH" in line or "RPATH" in line)
        assert "NODELETE" in section, section
        exported = _run(["nm", "-D", "--defined-only", library]).stdout.split()
        assert "getCreators" not in exported and "getPluginRegistry" not in exported
        # getCreators is found through the library's own handle (dlsym), never bound by a global lookup.
        assert "getCreators" not in _run(["nm", "-D", "--undefined-only", library]).stdout.split()


@pytest.mark.skipif(NVCC is not None, reason="with nvcc, test_cmake_builds_cuda_targets_and_ctest_passes runs ctest")
def test_cmake_host_only_build_and_ctest_pass(native_build):
    """Without nvcc the project still configures, builds the host targets, and ctest passes."""
    ctest = _run([CTEST or "ctest", "--output-on-failure"], cwd=native_build.folder)
    assert ctest.returncode == 0, f"ctest failed:\n{ctest.stdout}\n{ctest.stderr}"
    assert "swin_trt_index_test" in ctest.stdout


@pytest.mark.skipif(CXX is None, reason="no C++ compiler (c++, g++ or clang++) to build the host index test")
def test_index_math_header_host_test(tmp_path):
    """plugins/common/swin_index.h compiles with a plain C++ compiler (no CUDA) and its host test passes."""
    exe = tmp_path / "swin_trt_index_test"
    compiled = _run([CXX, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", f"-I{REPO / 'plugins/common'}",
                     f"-I{REPO / 'plugins/tests'}", REPO / "plugins/tests/index_test.cpp", "-o", exe])
    assert compiled.returncode == 0, compiled.stderr
    result = _run([exe])
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failures" in result.stdout


# ---------------------------------------------------------------------------------------------------------------
# The kernel source on the CPU emulator vs the numpy reference

@pytest.fixture(scope="module")
def emulated(native_build):
    path = native_build.lib(plugin_library.CAPI_EMULATED_FILENAME)
    if not path.is_file():
        pytest.skip("libswin_trt_capi_emu was not built (CUDA headers such as cuda_fp16.h not found)")
    lib = plugin_library.load_capi(path, emulated=True)
    assert lib.swin_trt_capi_is_emulated() == 1
    return lib


_CODES = {np.dtype(np.float32): 0, np.dtype(np.float16): 1, np.dtype(np.int8): 2}


def _ptr(array: np.ndarray) -> int:
    return array.ctypes.data


def _emu_partition(lib, x, window, shift, pad_first):
    x = np.ascontiguousarray(x)
    batch, height, width, channels = x.shape
    n_windows = reference.num_windows(height, width, window)
    out = np.full((batch * n_windows, window[0] * window[1], channels), 99, dtype=x.dtype)
    status = lib.swin_trt_window_partition(_ptr(x), _ptr(out), _CODES[x.dtype], batch, height, width, channels,
                                           *window, *shift, int(pad_first), None)
    plugin_library.check_status(lib, status, "partition")
    return out


def _emu_reverse(lib, windows, window, shift, pad_first, height, width):
    windows = np.ascontiguousarray(windows)
    rows, _, channels = windows.shape
    batch = rows // reference.num_windows(height, width, window)
    out = np.full((batch, height, width, channels), 99, dtype=windows.dtype)
    status = lib.swin_trt_window_reverse(_ptr(windows), _ptr(out), _CODES[windows.dtype], batch, height, width,
                                         channels, *window, *shift, int(pad_first), None)
    plugin_library.check_status(lib, status, "reverse")
    return out


def _random(rng, shape, dtype):
    if np.dtype(dtype) == np.int8:
        return rng.integers(-128, 128, size=shape, dtype=np.int8)
    return rng.standard_normal(shape).astype(dtype)


WINDOW_CASES = [  # (B, H, W, C, window, shift)
    (2, 14, 14, 8, (7, 7), (3, 3)),
    (1, 9, 13, 6, (4, 5), (2, 3)),   # padded, non-square
    (3, 5, 3, 5, (7, 7), (6, 2)),    # map smaller than the window, shift larger than the map
    (1, 12, 8, 16, (4, 4), (0, 0)),
    (2, 7, 10, 3, (7, 3), (0, 1)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int8])
@pytest.mark.parametrize("pad_first", [True, False])
@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: "x".join(map(str, c[:4])) + f"-w{c[4]}-s{c[5]}")
def test_emulated_partition_and_reverse_match_reference(emulated, case, pad_first, dtype):
    batch, height, width, channels, window, shift = case
    rng = np.random.default_rng(hash((case, pad_first)) % 2**32)
    x = _random(rng, (batch, height, width, channels), dtype)
    windows = _emu_partition(emulated, x, window, shift, pad_first)
    np.testing.assert_array_equal(windows, reference.window_partition(x, window, shift, pad_first))
    other = _random(rng, windows.shape, dtype)
    np.testing.assert_array_equal(_emu_reverse(emulated, other, window, shift, pad_first, height, width),
                                  reference.window_reverse(other, window, shift, pad_first, height, width))
    np.testing.assert_array_equal(_emu_reverse(emulated, windows, window, shift, pad_first, height, width), x)


ATTENTION_CASES = [  # (B, heads, head_dim, window, shift, Hp, Wp)
    (1, 2, 32, (7, 7), (3, 3), 14, 14),
    (2, 3, 8, (4, 3), (1, 2), 8, 9),
    (1, 2, 5, (3, 3), (1, 0), 6, 9),  # head_dim not a multiple of 4: scalar loads
    (1, 1, 40, (12, 12), (6, 6), 24, 24),
    (2, 2, 16, (2, 6), (0, 0), 4, 12),
]


@pytest.mark.parametrize("bias_dtype", [np.float32, np.float16])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("case", ATTENTION_CASES, ids=lambda c: f"b{c[0]}h{c[1]}d{c[2]}-w{c[3]}-s{c[4]}")
def test_emulated_attention_matches_reference(emulated, case, dtype, bias_dtype):
    batch, heads, head_dim, window, shift, grid_h, grid_w = case
    rng = np.random.default_rng(head_dim * 7 + heads)
    tokens = window[0] * window[1]
    rows = batch * (grid_h // window[0]) * (grid_w // window[1])
    qkv = rng.standard_normal((rows, tokens, 3 * heads * head_dim)).astype(dtype)
    table = rng.standard_normal(((2 * window[0] - 1) * (2 * window[1] - 1), heads)).astype(bias_dtype)
    scale = head_dim ** -0.5
    out = np.full((rows, tokens, heads * head_dim), np.nan, dtype=dtype)
    status = emulated.swin_trt_window_attention(_ptr(qkv), _CODES[qkv.dtype], _ptr(table), _CODES[table.dtype],
                                                _ptr(out), rows, heads, head_dim, *window, *shift, grid_h, grid_w,
                                                scale, None)
    plugin_library.check_status(emulated, status, "attention")
    expect = reference.window_attention(qkv.astype(np.float32), table.astype(np.float32), heads, window, shift,
                                        grid_h, grid_w, scale)
    error = np.abs(out.astype(np.float32) - expect).max() / np.abs(expect).max()
    assert error <= (2e-3 if dtype == np.float16 else 1e-5), f"relative error {error:.3g}"


ANY_SIZE_MAPS = [(14, 21), (10, 13), (7, 7), (16, 9), (5, 3), (28, 35)]  # padded, unpadded, one window, smaller


@pytest.mark.parametrize("pad_first", [True, False])
def test_emulated_ops_of_one_node_at_every_size(emulated, pad_first):
    """One node of a graph of any size (window 7, shift 3) run at several map sizes, as one engine runs across
    its optimization profile: partition and reverse with H, W of the run, attention on the run's padded grid
    (the feature map rounded up to the window); each against the reference at that size."""
    window, shift, heads, head_dim = (7, 7), (3, 3), 2, 8
    rng = np.random.default_rng(int(pad_first))
    table = rng.standard_normal((169, heads)).astype(np.float32)
    for height, width in ANY_SIZE_MAPS:
        for dtype in (np.float32, np.float16, np.int8):
            x = _random(rng, (2, height, width, 12), dtype)
            windows = _emu_partition(emulated, x, window, shift, pad_first)
            np.testing.assert_array_equal(windows, reference.window_partition(x, window, shift, pad_first))
            np.testing.assert_array_equal(_emu_reverse(emulated, windows, window, shift, pad_first, height, width), x)
        grid = reference.padded_size(height, width, window)
        rows = 2 * reference.num_windows(height, width, window)
        for dtype in (np.float32, np.float16):
            qkv = rng.standard_normal((rows, 49, 3 * heads * head_dim)).astype(dtype)
            out = np.full((rows, 49, heads * head_dim), np.nan, dtype=dtype)
            status = emulated.swin_trt_window_attention(_ptr(qkv), _CODES[qkv.dtype], _ptr(table), 0, _ptr(out), rows,
                                                        heads, head_dim, *window, *shift, *grid, head_dim ** -0.5,
                                                        None)
            plugin_library.check_status(emulated, status, "attention")
            expect = reference.window_attention(qkv.astype(np.float32), table, heads, window, shift, *grid,
                                                head_dim ** -0.5)
            error = np.abs(out.astype(np.float32) - expect).max() / np.abs(expect).max()
            assert error <= (2e-3 if dtype == np.float16 else 1e-5), (height, width, dtype, error)


COSINE_CASES = [  # (B, heads, head_dim, window, shift, Hp, Wp): Swin V2's window 8 and odd shapes
    (1, 3, 32, (8, 8), (4, 4), 16, 24),
    (2, 2, 16, (8, 8), (0, 0), 8, 16),
    (1, 2, 5, (3, 3), (1, 0), 6, 9),     # head_dim 5: scalar loads
    (1, 1, 96, (4, 4), (2, 2), 8, 8),    # HDC 3
]


@pytest.mark.parametrize("bias_dtype", [np.float32, np.float16])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("case", COSINE_CASES, ids=lambda c: f"b{c[0]}h{c[1]}d{c[2]}-w{c[3]}-s{c[4]}")
def test_emulated_cosine_attention_matches_reference(emulated, case, dtype, bias_dtype):
    """Cosine mode (Swin V2) through the C ABI: per-head scales up to 100, a continuous-position-bias table
    (values in (0, 16)), shifted and not, float32 and float16."""
    from v2_head_scales import head_scales

    batch, heads, head_dim, window, shift, grid_h, grid_w = case
    rng = np.random.default_rng(head_dim * 11 + heads)
    tokens = window[0] * window[1]
    rows = batch * (grid_h // window[0]) * (grid_w // window[1])
    qkv = (rng.standard_normal((rows, tokens, 3 * heads * head_dim)) * 3).astype(dtype)
    table = rng.uniform(0, 16, ((2 * window[0] - 1) * (2 * window[1] - 1), heads)).astype(bias_dtype)
    scales = head_scales(heads)
    out = np.full((rows, tokens, heads * head_dim), np.nan, dtype=dtype)
    status = emulated.swin_trt_window_attention_cosine(
        _ptr(qkv), _CODES[qkv.dtype], _ptr(table), _CODES[table.dtype], _ptr(out), rows, heads, head_dim, *window,
        *shift, grid_h, grid_w, head_scale_array(scales), None)
    plugin_library.check_status(emulated, status, "cosine attention")
    expect = reference.window_attention(qkv.astype(np.float32), table.astype(np.float32), heads, window,
                                        shift, grid_h, grid_w, 1.0, cosine=1, head_scale=scales)
    error = np.abs(out.astype(np.float32) - expect).max() / np.abs(expect).max()
    assert error <= (2e-3 if dtype == np.float16 else 1e-5), f"relative error {error:.3g}"


@pytest.mark.parametrize("pad_first", [True, False])
def test_emulated_cosine_attention_of_one_node_at_every_size(emulated, pad_first):
    """A V2 block of a backbone of any size: partition, cosine attention on the grid the map rounds up to,
    reverse; at several sizes, against the reference."""
    from v2_head_scales import head_scales

    window, shift, heads, head_dim = (8, 8), (4, 4), 2, 8
    rng = np.random.default_rng(int(pad_first) + 7)
    table = rng.uniform(0, 16, (225, heads)).astype(np.float32)
    scales = head_scales(heads)
    for height, width in [(16, 24), (13, 20), (8, 8), (9, 5)]:
        grid = reference.padded_size(height, width, window)
        rows = 2 * reference.num_windows(height, width, window)
        qkv = rng.standard_normal((rows, 64, 3 * heads * head_dim)).astype(np.float32)
        out = np.full((rows, 64, heads * head_dim), np.nan, dtype=np.float32)
        status = emulated.swin_trt_window_attention_cosine(_ptr(qkv), 0, _ptr(table), 0, _ptr(out), rows, heads,
                                                           head_dim, *window, *shift, *grid,
                                                           head_scale_array(scales), None)
        plugin_library.check_status(emulated, status, "cosine attention")
        expect = reference.window_attention(qkv, table, heads, window, shift, *grid, 1.0, cosine=1, head_scale=scales)
        attrs = dict(num_heads=heads, cosine=1, head_scale=scales)
        np.testing.assert_allclose(out, expect, rtol=0, atol=attention_atol(qkv, table, attrs))
        merged = _emu_reverse(emulated, out, window, shift, pad_first, height, width)
        np.testing.assert_array_equal(merged, reference.window_reverse(out, window, shift, pad_first, height, width))


@pytest.mark.parametrize("bad", [0.0, -2.0, 100.5, float("nan"), float("inf")])
def test_emulated_cosine_attention_refuses_bad_head_scales(emulated, bad):
    qkv = np.zeros((1, 49, 3 * 2 * 8), np.float32)
    table = np.zeros((169, 2), np.float32)
    out = np.zeros((1, 49, 16), np.float32)
    status = emulated.swin_trt_window_attention_cosine(_ptr(qkv), 0, _ptr(table), 0, _ptr(out), 1, 2, 8, 7, 7, 0, 0,
                                                       7, 7, head_scale_array([10.0, bad]), None)
    assert status == -1
    assert "head_scale must be finite, > 0 and <= 100" in emulated.swin_trt_capi_last_error().decode()


def test_emulated_capi_reports_bad_arguments(emulated):
    x = np.zeros((1, 7, 7, 4), np.float32)
    out = np.zeros((1, 49, 4), np.float32)
    status = emulated.swin_trt_window_partition(_ptr(x), _ptr(out), 0, 1, 7, 7, 4, 7, 7, 7, 0, 1, None)
    assert status == -1
    assert "shift" in emulated.swin_trt_capi_last_error().decode()


@pytest.mark.parametrize("op", ["partition", "reverse"])
@pytest.mark.parametrize("height, width, window", [
    (1 << 24, 1 << 24, (1, 1)),        # 2^48 positions: nW * N overflows int32
    (7, 7, (65536, 65536)),            # N = wh * ww overflows int32
    (2**31 - 1, 7, (7, 7)),            # ceil(H / wh) * wh overflows int32
])
def test_emulated_capi_refuses_geometry_that_overflows_int32(emulated, op, height, width, window):
    """Hostile sizes are refused before any index is computed (no buffer is touched: null pointers)."""
    call = emulated.swin_trt_window_partition if op == "partition" else emulated.swin_trt_window_reverse
    status = call(None, None, 0, 1, height, width, 4, *window, 0, 0, 1, None)
    assert status == -1
    assert "2^" in emulated.swin_trt_capi_last_error().decode()


def test_emulated_attention_refuses_rows_that_are_not_whole_images(emulated):
    """The mask of row r is that of window r % nW: 7 rows of a 4-window grid would be masked wrongly."""
    heads, head_dim, rows = 1, 8, 7
    qkv = np.zeros((rows, 49, 3 * heads * head_dim), np.float32)
    table = np.zeros((169, heads), np.float32)
    out = np.zeros((rows, 49, heads * head_dim), np.float32)
    status = emulated.swin_trt_window_attention(_ptr(qkv), 0, _ptr(table), 0, _ptr(out), rows, heads, head_dim,
                                                7, 7, 3, 3, 14, 14, 0.35, None)
    assert status == -1
    assert "multiple of the 4 windows" in emulated.swin_trt_capi_last_error().decode()


def test_emulated_kernels_are_thread_safe(emulated):
    """ctypes releases the GIL, so Python threads run the emulator at once: each must get its own result."""
    from concurrent.futures import ThreadPoolExecutor

    def work(seed):
        rng = np.random.default_rng(seed)
        window, shift = (4, 3), (seed % 4, seed % 3)
        x = rng.standard_normal((2, 9, 10, 6)).astype(np.float32)
        windows = _emu_partition(emulated, x, window, shift, True)
        heads, head_dim = 2, 4
        grid = reference.padded_size(9, 10, window)
        qkv = rng.standard_normal((len(windows), 12, 3 * heads * head_dim)).astype(np.float32)
        table = rng.standard_normal(((2 * window[0] - 1) * (2 * window[1] - 1), heads)).astype(np.float32)
        out = np.zeros((len(windows), 12, heads * head_dim), np.float32)
        status = emulated.swin_trt_window_attention(_ptr(qkv), 0, _ptr(table), 0, _ptr(out), len(windows), heads,
                                                    head_dim, *window, *shift, *grid, 0.5, None)
        plugin_library.check_status(emulated, status, "attention")
        np.testing.assert_array_equal(windows, reference.window_partition(x, window, shift, True))
        expect = reference.window_attention(qkv, table, heads, window, shift, *grid, 0.5)
        np.testing.assert_allclose(out, expect, rtol=0, atol=attention_atol(qkv, table, dict(num_heads=heads, scale=0.5)))
        return seed

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert sorted(pool.map(work, range(16))) == list(range(16))


# ---------------------------------------------------------------------------------------------------------------
# Library lookup

def test_find_library_explicit_env_and_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv(plugin_library.PLUGINS_ENV, raising=False)
    monkeypatch.setattr(plugin_library, "default_search_dirs", lambda: [tmp_path / "build", tmp_path / "pkg"])
    with pytest.raises(UserError) as missing:
        plugin_library.find_plugin_library()
    message = str(missing.value)
    assert str(tmp_path / "build" / plugin_library.PLUGINS_FILENAME) in message
    assert "cmake -S" in message and "--target swin_trt_plugins" in message and "TENSORRT_ROOT" in message

    (tmp_path / "pkg").mkdir()
    installed = tmp_path / "pkg" / plugin_library.PLUGINS_FILENAME
    installed.write_bytes(b"")
    assert plugin_library.find_plugin_library() == installed.resolve()

    explicit = tmp_path / "mine.so"
    explicit.write_bytes(b"")
    assert plugin_library.find_plugin_library(explicit) == explicit.resolve()
    assert plugin_library.find_plugin_library(tmp_path / "pkg") == installed.resolve()  # a folder holding it
    with pytest.raises(UserError, match="given path"):
        plugin_library.find_plugin_library(tmp_path / "absent.so")

    monkeypatch.setenv(plugin_library.PLUGINS_ENV, str(explicit))
    assert plugin_library.find_plugin_library() == explicit.resolve()
    monkeypatch.setenv(plugin_library.PLUGINS_ENV, str(tmp_path / "nope.so"))
    with pytest.raises(UserError, match=plugin_library.PLUGINS_ENV):
        plugin_library.find_plugin_library()


def test_find_capi_library_uses_its_own_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(plugin_library, "default_search_dirs", lambda: [tmp_path])
    monkeypatch.delenv(plugin_library.CAPI_ENV, raising=False)
    with pytest.raises(UserError, match="--target swin_trt_capi"):
        plugin_library.find_capi_library()
    capi = tmp_path / "other" / plugin_library.CAPI_FILENAME
    capi.parent.mkdir()
    capi.write_bytes(b"")
    monkeypatch.setenv(plugin_library.CAPI_ENV, str(capi.parent))
    assert plugin_library.find_capi_library() == capi.resolve()


def test_find_registering_library_beside_the_plugin_library(tmp_path):
    library = tmp_path / plugin_library.PLUGINS_FILENAME
    library.write_bytes(b"")
    with pytest.raises(UserError) as missing:
        plugin_library.find_registering_library(library)
    message = str(missing.value)
    assert plugin_library.AUTOREG_FILENAME in message and "dlopen" in message
    assert "--target swin_trt_plugins_autoreg" in message and "libnvinfer" in message
    registering = tmp_path / plugin_library.AUTOREG_FILENAME
    registering.write_bytes(b"")
    assert plugin_library.find_registering_library(library) == registering.resolve()
