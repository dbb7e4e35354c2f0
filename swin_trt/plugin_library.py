"""Find and load swin_trt's native libraries (built from ``plugins/`` with CMake).

* ``libswin_trt_plugins.so``: the TensorRT plugin library (SwinWindowPartition, SwinWindowReverse,
  SwinWindowAttention; namespace ``swin_trt``, version ``1``). Load it into TensorRT with
  ``trt.get_plugin_registry().load_library(str(find_plugin_library()))`` or ``trtexec --dynamicPlugins=...``.
* ``libswin_trt_plugins_autoreg.so`` beside it: registers those creators when a host merely ``dlopen``s it
  (Triton's TensorRT backend, DeepStream's nvinfer); :func:`find_registering_library`.
* ``libswin_trt_capi.so``: a small C ABI that launches each kernel on device pointers and a CUDA stream;
  :func:`load_capi` returns it as a ``ctypes.CDLL`` and :func:`check_status` turns a failed call into an error.
  The torch wrappers that run it on CUDA tensors live with the tests that use them (``tests/cuda_kernels.py``,
  also used by ``benchmarks/bench_kernels.py``).

Search order for each library: the explicit path, then the environment variable (``SWIN_TRT_PLUGINS``,
``SWIN_TRT_CAPI``), then ``<repo>/build/``, ``<repo>/build/plugins/`` and the installed package folder
``swin_trt/lib/``. A missing library raises :class:`swin_trt.errors.UserError` that says where it looked and how
to build it.
"""

from __future__ import annotations

import ctypes
import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Optional, Union

from swin_trt.errors import UserError

PLUGINS_ENV = "SWIN_TRT_PLUGINS"
CAPI_ENV = "SWIN_TRT_CAPI"

REPO_ROOT = Path(__file__).resolve().parent.parent
PACKAGE_LIB_DIR = Path(__file__).resolve().parent / "lib"

_SUFFIX = ".dll" if sys.platform == "win32" else (".dylib" if sys.platform == "darwin" else ".so")
_PREFIX = "" if sys.platform == "win32" else "lib"
PLUGINS_FILENAME = f"{_PREFIX}swin_trt_plugins{_SUFFIX}"
CAPI_FILENAME = f"{_PREFIX}swin_trt_capi{_SUFFIX}"
CAPI_EMULATED_FILENAME = f"{_PREFIX}swin_trt_capi_emu{_SUFFIX}"
AUTOREG_FILENAME = f"{_PREFIX}swin_trt_plugins_autoreg{_SUFFIX}"

# Element type codes of the C ABI (swin_trt::DType in plugins/common/swin_kernels.h).
DTYPE_FLOAT32 = 0
DTYPE_FLOAT16 = 1
DTYPE_INT8 = 2

PathLike = Union[str, "os.PathLike[str]"]


def default_search_dirs() -> list[Path]:
    """Folders searched after the explicit path and the environment variable, in order."""
    return [REPO_ROOT / "build", REPO_ROOT / "build" / "plugins", PACKAGE_LIB_DIR]


def build_instructions(target: str) -> str:
    """The exact commands that build ``target`` (``swin_trt_plugins``, ``swin_trt_plugins_autoreg`` or
    ``swin_trt_capi``) into <repo>/build."""
    trt = {"swin_trt_plugins": " -DTENSORRT_ROOT=<folder with include/NvInfer.h, e.g. /usr>",
           "swin_trt_plugins_autoreg": " -DTENSORRT_ROOT=<TensorRT install with include/NvInfer.h and "
                                       "lib/libnvinfer.so, e.g. /usr>"}.get(target, "")
    return (f"cmake -S {REPO_ROOT} -B {REPO_ROOT / 'build'}{trt} -DCMAKE_CUDA_ARCHITECTURES=<GPU arch, e.g. 90; "
            f"87 on Jetson Orin>\n    cmake --build {REPO_ROOT / 'build'} -j --target {target}")


def _library_at(given: PathLike, filename: str) -> Path:
    """``given`` itself, or ``filename`` inside it when it is a folder."""
    path = Path(given).expanduser()
    return path / filename if path.is_dir() else path


def _find_library(what: str, filename: str, env_var: str, target: str, explicit: Optional[PathLike]) -> Path:
    looked: list[str] = []
    if explicit is not None:
        path = _library_at(explicit, filename)
        if path.is_file():
            return path.resolve()
        raise UserError(f"{what} not found at the given path {path}: pass the path of {filename}, or build it with\n"
                        f"    {build_instructions(target)}")
    from_env = os.environ.get(env_var)
    if from_env:
        path = _library_at(from_env, filename)
        if path.is_file():
            return path.resolve()
        raise UserError(f"{what} not found: {env_var}={from_env} does not point to {filename}. Fix or unset "
                        f"{env_var}, or build the library with\n    {build_instructions(target)}")
    looked.append(f"${env_var} (not set)")
    for folder in default_search_dirs():
        path = folder / filename
        if path.is_file():
            return path.resolve()
        looked.append(str(path))
    raise UserError(f"{what} ({filename}) not found; looked in: {', '.join(looked)}. Build it with\n"
                    f"    {build_instructions(target)}\n"
                    f"or point {env_var} at the file.")


def find_plugin_library(explicit: Optional[PathLike] = None) -> Path:
    """Path of the TensorRT plugin library ``libswin_trt_plugins.so``.

    Looks at ``explicit`` (a file or a folder holding it), then ``$SWIN_TRT_PLUGINS``, then the default build
    folders (:func:`default_search_dirs`). Raises :class:`UserError` when it is not found.
    """
    return _find_library("swin_trt TensorRT plugin library", PLUGINS_FILENAME, PLUGINS_ENV, "swin_trt_plugins",
                         explicit)


def find_registering_library(plugin_library: PathLike) -> Path:
    """``libswin_trt_plugins_autoreg.so`` beside ``plugin_library``: what a host that only ``dlopen``s a plugin
    library must load (Triton's ``--backend-config=tensorrt,plugins=...``, DeepStream's ``custom-lib-path``).
    Loading it registers ``plugin_library``'s creators with TensorRT's registry; it links that library (found
    beside it) and libnvinfer, so it is built where CMake finds libnvinfer. Raises :class:`UserError` when
    it is not there."""
    library = Path(plugin_library)
    registering = library.with_name(AUTOREG_FILENAME)
    if registering.is_file():
        return registering.resolve()
    raise UserError(f"{AUTOREG_FILENAME} not found beside {library}: Triton's TensorRT backend and DeepStream's "
                    f"nvinfer only dlopen a plugin library, and this is the one that registers the swin_trt plugins "
                    f"when it is loaded. CMake builds it next to {library.name} where it finds TensorRT's "
                    f"libnvinfer (the machine with TensorRT installed):\n"
                    f"    {build_instructions('swin_trt_plugins_autoreg')}")


def find_capi_library(explicit: Optional[PathLike] = None, emulated: bool = False) -> Path:
    """Path of the kernels' C ABI ``libswin_trt_capi.so`` (same search order, variable ``$SWIN_TRT_CAPI``).

    ``emulated=True`` looks for ``libswin_trt_capi_emu.so`` instead: the same ABI running the kernel source on
    a CPU emulator with host pointers (for tests on machines without a GPU).
    """
    if emulated:
        return _find_library("swin_trt emulated kernel library", CAPI_EMULATED_FILENAME, CAPI_ENV,
                             "swin_trt_capi_emu", explicit)
    return _find_library("swin_trt kernel C ABI library", CAPI_FILENAME, CAPI_ENV, "swin_trt_capi", explicit)


_I32 = ctypes.c_int32
_PTR = ctypes.c_void_p
_WINDOW_ARGTYPES = [_PTR, _PTR, _I32, _I32, _I32, _I32, _I32, _I32, _I32, _I32, _I32, _I32, _PTR]
_ATTENTION_ARGTYPES = [_PTR, _I32, _PTR, _I32, _PTR, _I32, _I32, _I32, _I32, _I32, _I32, _I32, _I32, _I32,
                       ctypes.c_float, _PTR]
# swin_trt_window_attention_cosine: as above with the per-head scales (float*, host memory) in place of scale
_COSINE_ATTENTION_ARGTYPES = _ATTENTION_ARGTYPES[:14] + [ctypes.POINTER(ctypes.c_float), _PTR]
# 4: swin_trt_window_attention_tc(_smem) (tensor cores) and swin_trt_fused_window_attention; 3: the
# swin_trt_window_{partition,reverse,attention}_3d entry points; 2: swin_trt_window_attention_cosine
CAPI_VERSION = 4


@lru_cache(maxsize=None)
def _load(path: str) -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL(path)
    except OSError as exc:
        raise UserError(f"cannot load {path}: {exc}. Rebuild it for this machine with\n"
                        f"    {build_instructions('swin_trt_capi')}") from exc
    lib.swin_trt_capi_version.argtypes = []
    lib.swin_trt_capi_version.restype = _I32
    lib.swin_trt_capi_is_emulated.argtypes = []
    lib.swin_trt_capi_is_emulated.restype = _I32
    lib.swin_trt_capi_last_error.argtypes = []
    lib.swin_trt_capi_last_error.restype = ctypes.c_char_p
    for name in ("swin_trt_window_partition", "swin_trt_window_reverse"):
        getattr(lib, name).argtypes = _WINDOW_ARGTYPES
        getattr(lib, name).restype = _I32
    if lib.swin_trt_capi_version() != CAPI_VERSION:
        raise UserError(f"{path} has C ABI version {lib.swin_trt_capi_version()}, this swin_trt expects "
                        f"{CAPI_VERSION}: rebuild it with\n    {build_instructions('swin_trt_capi')}")
    lib.swin_trt_window_attention.argtypes = _ATTENTION_ARGTYPES
    lib.swin_trt_window_attention.restype = _I32
    lib.swin_trt_window_attention_cosine.argtypes = _COSINE_ATTENTION_ARGTYPES
    lib.swin_trt_window_attention_cosine.restype = _I32
    return lib


def load_capi(path: Optional[PathLike] = None, emulated: bool = False) -> ctypes.CDLL:
    """The kernels' C ABI as a ``ctypes.CDLL`` with ``argtypes``/``restype`` set (loaded once per path).

    Functions (0 = success, -1 = invalid argument, > 0 = cudaError_t; message: ``swin_trt_capi_last_error()``):
    ``swin_trt_window_partition(x, windows, dtype, B, H, W, C, wh, ww, sh, sw, pad_first, stream)``,
    ``swin_trt_window_reverse(windows, y, dtype, B, H, W, C, wh, ww, sh, sw, pad_first, stream)``,
    ``swin_trt_window_attention(qkv, qkv_dtype, bias_table, bias_dtype, context, rows, num_heads, head_dim,
    wh, ww, sh, sw, height, width, scale, stream)``, ``swin_trt_window_attention_cosine(..., height, width,
    head_scale, stream)`` (Swin V2: ``head_scale`` a host array of num_heads floats); dtype codes 0 float32,
    1 float16, 2 int8.
    """
    return _load(str(find_capi_library(path, emulated=emulated)))


def check_status(lib: ctypes.CDLL, status: int, what: str) -> None:
    """Raises ``RuntimeError`` with the library's message when a C ABI call failed."""
    if status != 0:
        message = lib.swin_trt_capi_last_error().decode(errors="replace")
        raise RuntimeError(f"{what} failed (status {status}): {message}")
