"""torch wrappers of the kernels' C ABI (``libswin_trt_capi.so``): run SwinWindowPartition, SwinWindowReverse and
SwinWindowAttention on torch CUDA tensors, enqueued on the current stream of the tensor's device.

A helper module for the tests (``tests/test_cuda_kernels.py``, ``tests/test_plugins_build.py``) and
``benchmarks/bench_kernels.py``, not a test file and not part of the ``swin_trt`` package: the package only finds
and loads the library (:mod:`swin_trt.plugin_library`). Imports torch lazily, so :func:`head_scale_array` works
without it; needs only ``swin_trt.plugin_library`` besides (``scripts/gpu_check.sh`` runs the GPU tests with
``--noconftest`` on a bare machine).
"""

from __future__ import annotations

import ctypes
import math
from typing import Any, Optional, Sequence, Tuple, Union

from swin_trt.plugin_library import DTYPE_FLOAT16, DTYPE_FLOAT32, DTYPE_INT8, check_status, load_capi


def _pair(value: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


def _thw(value: Union[int, Sequence[int]], rank: int, frame: int) -> Tuple[int, int, int]:
    """A window or shift of ``rank`` values as ``(T, H, W)``: a 2D one gets ``frame`` in front (1 for a window,
    0 for a shift)."""
    values = (int(value),) * rank if isinstance(value, int) else tuple(int(v) for v in value)
    if len(values) != rank:
        raise ValueError(f"expected {rank} values, got {list(values)}")
    return values if rank == 3 else (frame,) + values


_I32 = ctypes.c_int32
_PTR = ctypes.c_void_p
_WINDOW_3D_ARGTYPES = [_PTR, _PTR] + [_I32] * 13 + [_PTR]
_ATTENTION_3D_ARGTYPES = [_PTR, _I32, _PTR, _I32, _I32, _PTR] + [_I32] * 12 + [ctypes.c_float, _PTR, _PTR]


def bind_3d(lib: ctypes.CDLL) -> ctypes.CDLL:
    """Sets argtypes/restype of the C ABI's (T, H, W) entry points (version >= 3): ``swin_trt_window_partition_3d``,
    ``swin_trt_window_reverse_3d`` (x, out, dtype, B, T, H, W, C, wt, wh, ww, st, sh, sw, pad_first, stream) and
    ``swin_trt_window_attention_3d`` (qkv, qkv_dtype, bias, bias_dtype, bias_dense, context, rows, heads,
    head_dim, wt, wh, ww, st, sh, sw, frames, height, width, scale, head_scale or None, stream)."""
    if lib.swin_trt_capi_version() < 3:
        raise ValueError(f"{lib._name} has C ABI version {lib.swin_trt_capi_version()}: the 3D entry points need "
                         f"version 3 (rebuild swin_trt_capi)")
    for name in ("swin_trt_window_partition_3d", "swin_trt_window_reverse_3d"):
        getattr(lib, name).argtypes = _WINDOW_3D_ARGTYPES
        getattr(lib, name).restype = _I32
    lib.swin_trt_window_attention_3d.argtypes = _ATTENTION_3D_ARGTYPES
    lib.swin_trt_window_attention_3d.restype = _I32
    return lib


def _torch_dtype_code(tensor: Any, allowed: Sequence[int], what: str) -> int:
    import torch

    codes = {torch.float32: DTYPE_FLOAT32, torch.float16: DTYPE_FLOAT16, torch.int8: DTYPE_INT8}
    code = codes.get(tensor.dtype)
    if code is None or code not in allowed:
        names = {DTYPE_FLOAT32: "float32", DTYPE_FLOAT16: "float16", DTYPE_INT8: "int8"}
        raise ValueError(f"{what}: dtype {tensor.dtype} is not supported (use {', '.join(names[c] for c in allowed)})")
    return code


def _check_cuda(tensor: Any, what: str, ndim: int) -> Any:
    import torch

    if not isinstance(tensor, torch.Tensor) or not tensor.is_cuda:
        raise ValueError(f"{what}: expected a torch CUDA tensor")
    if tensor.dim() != ndim:
        raise ValueError(f"{what}: expected a {ndim}-D tensor, got shape {tuple(tensor.shape)}")
    return tensor.contiguous()


def _stream(device: Any) -> ctypes.c_void_p:
    import torch

    return ctypes.c_void_p(torch.cuda.current_stream(device).cuda_stream)


def _padded(size: int, window: int) -> int:
    return -(-size // window) * window


def partition_cuda(x: Any, window_size: Union[int, Sequence[int]], shift_size: Union[int, Sequence[int]] = 0,
                   pad_first: bool = True, lib: Optional[ctypes.CDLL] = None) -> Any:
    """SwinWindowPartition on the GPU: ``(B, H, W, C)`` -> ``(B * nW, N, C)`` (float32, float16 or int8); with a
    3-int window ``(T, H, W)``, ``(B, T, H, W, C)`` -> ``(B * nW, N, C)``."""
    import torch

    if not isinstance(window_size, int) and len(window_size) == 3:
        return _partition_3d_cuda(x, window_size, shift_size, pad_first, lib)
    x = _check_cuda(x, "partition_cuda", 4)
    code = _torch_dtype_code(x, (DTYPE_FLOAT32, DTYPE_FLOAT16, DTYPE_INT8), "partition_cuda")
    (wh, ww), (sh, sw) = _pair(window_size), _pair(shift_size)
    batch, height, width, channels = x.shape
    if wh < 1 or ww < 1:
        raise ValueError(f"partition_cuda: window_size must be >= 1, got {(wh, ww)}")
    n_windows = (_padded(height, wh) // wh) * (_padded(width, ww) // ww)
    out = torch.empty((batch * n_windows, wh * ww, channels), dtype=x.dtype, device=x.device)
    lib = lib or load_capi()
    with torch.cuda.device(x.device):
        status = lib.swin_trt_window_partition(x.data_ptr(), out.data_ptr(), code, batch, height, width, channels,
                                               wh, ww, sh, sw, int(bool(pad_first)), _stream(x.device))
    check_status(lib, status, "swin_trt_window_partition")
    return out


def _partition_3d_cuda(x: Any, window_size: Sequence[int], shift_size: Union[int, Sequence[int]], pad_first: bool,
                       lib: Optional[ctypes.CDLL]) -> Any:
    import torch

    x = _check_cuda(x, "partition_cuda", 5)
    code = _torch_dtype_code(x, (DTYPE_FLOAT32, DTYPE_FLOAT16, DTYPE_INT8), "partition_cuda")
    window, shift = _thw(window_size, 3, 1), _thw(shift_size, 3, 0)
    batch, frames, height, width, channels = x.shape
    if min(window) < 1:
        raise ValueError(f"partition_cuda: window_size must be >= 1, got {window}")
    n_windows = math.prod(_padded(s, w) // w for s, w in zip((frames, height, width), window))
    out = torch.empty((batch * n_windows, math.prod(window), channels), dtype=x.dtype, device=x.device)
    lib = bind_3d(lib or load_capi())
    with torch.cuda.device(x.device):
        status = lib.swin_trt_window_partition_3d(x.data_ptr(), out.data_ptr(), code, batch, frames, height, width,
                                                  channels, *window, *shift, int(bool(pad_first)), _stream(x.device))
    check_status(lib, status, "swin_trt_window_partition_3d")
    return out


def reverse_cuda(windows: Any, window_size: Union[int, Sequence[int]], shift_size: Union[int, Sequence[int]],
                 pad_first: bool, height: int, width: int, lib: Optional[ctypes.CDLL] = None,
                 frames: Optional[int] = None) -> Any:
    """SwinWindowReverse on the GPU: ``(B * nW, N, C)`` -> ``(B, height, width, C)``; with a 3-int window
    ``(T, H, W)`` and ``frames``, ``(B, frames, height, width, C)``."""
    import torch

    if not isinstance(window_size, int) and len(window_size) == 3:
        return _reverse_3d_cuda(windows, window_size, shift_size, pad_first, frames, height, width, lib)

    windows = _check_cuda(windows, "reverse_cuda", 3)
    code = _torch_dtype_code(windows, (DTYPE_FLOAT32, DTYPE_FLOAT16, DTYPE_INT8), "reverse_cuda")
    (wh, ww), (sh, sw) = _pair(window_size), _pair(shift_size)
    if wh < 1 or ww < 1 or height < 1 or width < 1:
        raise ValueError("reverse_cuda: window_size, height and width must be >= 1")
    rows, tokens, channels = windows.shape
    n_windows = (_padded(height, wh) // wh) * (_padded(width, ww) // ww)
    if tokens != wh * ww or rows % n_windows:
        raise ValueError(f"reverse_cuda: windows shape {tuple(windows.shape)} does not fit (B * {n_windows}, "
                         f"{wh * ww}, C) for a {height}x{width} map and window {(wh, ww)}")
    batch = rows // n_windows
    out = torch.empty((batch, height, width, channels), dtype=windows.dtype, device=windows.device)
    lib = lib or load_capi()
    with torch.cuda.device(windows.device):
        status = lib.swin_trt_window_reverse(windows.data_ptr(), out.data_ptr(), code, batch, height, width,
                                             channels, wh, ww, sh, sw, int(bool(pad_first)),
                                             _stream(windows.device))
    check_status(lib, status, "swin_trt_window_reverse")
    return out


def _reverse_3d_cuda(windows: Any, window_size: Sequence[int], shift_size: Union[int, Sequence[int]], pad_first: bool,
                     frames: Optional[int], height: int, width: int, lib: Optional[ctypes.CDLL]) -> Any:
    import torch

    windows = _check_cuda(windows, "reverse_cuda", 3)
    code = _torch_dtype_code(windows, (DTYPE_FLOAT32, DTYPE_FLOAT16, DTYPE_INT8), "reverse_cuda")
    window, shift = _thw(window_size, 3, 1), _thw(shift_size, 3, 0)
    if frames is None or min(window) < 1 or min(frames, height, width) < 1:
        raise ValueError("reverse_cuda: a 3D window needs frames=; window_size, frames, height and width must be >= 1")
    rows, tokens, channels = windows.shape
    n_windows = math.prod(_padded(s, w) // w for s, w in zip((frames, height, width), window))
    if tokens != math.prod(window) or rows % n_windows:
        raise ValueError(f"reverse_cuda: windows shape {tuple(windows.shape)} does not fit (B * {n_windows}, "
                         f"{math.prod(window)}, C) for a {frames}x{height}x{width} map and window {window}")
    batch = rows // n_windows
    out = torch.empty((batch, frames, height, width, channels), dtype=windows.dtype, device=windows.device)
    lib = bind_3d(lib or load_capi())
    with torch.cuda.device(windows.device):
        status = lib.swin_trt_window_reverse_3d(windows.data_ptr(), out.data_ptr(), code, batch, frames, height, width,
                                                channels, *window, *shift, int(bool(pad_first)),
                                                _stream(windows.device))
    check_status(lib, status, "swin_trt_window_reverse_3d")
    return out


def head_scale_array(head_scale: Sequence[float]) -> ctypes.Array:
    """Cosine attention's per-head scales as the ``float*`` the C ABI takes."""
    values = [float(v) for v in head_scale]
    return (ctypes.c_float * len(values))(*values)


def attention_cuda(qkv: Any, bias_table: Any, num_heads: int, window_size: Union[int, Sequence[int]],
                   shift_size: Union[int, Sequence[int]], height: int, width: int, scale: Optional[float] = None,
                   lib: Optional[ctypes.CDLL] = None, head_scale: Optional[Sequence[float]] = None,
                   frames: Optional[int] = None) -> Any:
    """SwinWindowAttention on the GPU: ``qkv (B * nW, N, 3C)`` + ``bias_table`` -> ``(B * nW, N, C)``.

    ``height``/``width`` are the padded grid; ``scale`` defaults to ``head_dim ** -0.5``. ``head_scale`` (one
    per head) selects cosine mode (Swin V2): ``scale`` is then unused. A 3-int window ``(T, H, W)`` (with
    ``frames``, the padded T), or a dense ``(heads, N, N)`` bias in place of the table, runs the (T, H, W) entry
    point ``swin_trt_window_attention_3d``.
    """
    import torch

    if (not isinstance(window_size, int) and len(window_size) == 3) or getattr(bias_table, "dim", lambda: 2)() == 3:
        return _attention_3d_cuda(qkv, bias_table, num_heads, window_size, shift_size, frames, height, width, scale,
                                  lib, head_scale)

    qkv = _check_cuda(qkv, "attention_cuda (qkv)", 3)
    bias_table = _check_cuda(bias_table, "attention_cuda (bias_table)", 2)
    if bias_table.device != qkv.device:
        raise ValueError("attention_cuda: qkv and bias_table must be on the same device")
    qkv_code = _torch_dtype_code(qkv, (DTYPE_FLOAT32, DTYPE_FLOAT16), "attention_cuda (qkv)")
    bias_code = _torch_dtype_code(bias_table, (DTYPE_FLOAT32, DTYPE_FLOAT16), "attention_cuda (bias_table)")
    (wh, ww), (sh, sw) = _pair(window_size), _pair(shift_size)
    rows, tokens, three_c = qkv.shape
    if num_heads < 1 or three_c % (3 * num_heads):
        raise ValueError(f"attention_cuda: last dim of qkv ({three_c}) is not divisible by 3 * num_heads "
                         f"({3 * num_heads})")
    head_dim = three_c // (3 * num_heads)
    if tokens != wh * ww:
        raise ValueError(f"attention_cuda: qkv has {tokens} tokens, window {(wh, ww)} has {wh * ww}")
    expected_table = ((2 * wh - 1) * (2 * ww - 1), num_heads)
    if tuple(bias_table.shape) != expected_table:
        raise ValueError(f"attention_cuda: bias_table shape {tuple(bias_table.shape)}, expected {expected_table}")
    if scale is None:
        scale = head_dim ** -0.5
    out = torch.empty((rows, tokens, three_c // 3), dtype=qkv.dtype, device=qkv.device)
    lib = lib or load_capi()
    if head_scale is not None and len(head_scale) != num_heads:
        raise ValueError(f"attention_cuda: {len(head_scale)} head_scale values for {num_heads} heads")
    with torch.cuda.device(qkv.device):
        args = (qkv.data_ptr(), qkv_code, bias_table.data_ptr(), bias_code, out.data_ptr(), rows, num_heads, head_dim,
                wh, ww, sh, sw, height, width)
        if head_scale is None:
            status = lib.swin_trt_window_attention(*args, float(scale), _stream(qkv.device))
        else:
            status = lib.swin_trt_window_attention_cosine(*args, head_scale_array(head_scale), _stream(qkv.device))
    check_status(lib, status, "swin_trt_window_attention")
    return out


def _attention_3d_cuda(qkv: Any, bias: Any, num_heads: int, window_size: Union[int, Sequence[int]],
                       shift_size: Union[int, Sequence[int]], frames: Optional[int], height: int, width: int,
                       scale: Optional[float], lib: Optional[ctypes.CDLL],
                       head_scale: Optional[Sequence[float]]) -> Any:
    import torch

    rank = 2 if isinstance(window_size, int) else len(window_size)
    window, shift = _thw(window_size, rank, 1), _thw(shift_size, rank, 0)
    frames = 1 if rank == 2 else frames
    if frames is None:
        raise ValueError("attention_cuda: a 3D window needs frames= (the padded T)")
    qkv = _check_cuda(qkv, "attention_cuda (qkv)", 3)
    dense = bias.dim() == 3
    bias = _check_cuda(bias, "attention_cuda (bias)", 3 if dense else 2)
    qkv_code = _torch_dtype_code(qkv, (DTYPE_FLOAT32, DTYPE_FLOAT16), "attention_cuda (qkv)")
    bias_code = _torch_dtype_code(bias, (DTYPE_FLOAT32, DTYPE_FLOAT16), "attention_cuda (bias)")
    rows, tokens, three_c = qkv.shape
    if num_heads < 1 or three_c % (3 * num_heads):
        raise ValueError(f"attention_cuda: last dim of qkv ({three_c}) is not divisible by 3 * num_heads "
                         f"({3 * num_heads})")
    head_dim = three_c // (3 * num_heads)
    if tokens != math.prod(window):
        raise ValueError(f"attention_cuda: qkv has {tokens} tokens, window {window} has {math.prod(window)}")
    expected = (num_heads, tokens, tokens) if dense else (math.prod(2 * w - 1 for w in window), num_heads)
    if tuple(bias.shape) != expected:
        raise ValueError(f"attention_cuda: bias shape {tuple(bias.shape)}, expected {expected}")
    if head_scale is not None and len(head_scale) != num_heads:
        raise ValueError(f"attention_cuda: {len(head_scale)} head_scale values for {num_heads} heads")
    scale = head_dim ** -0.5 if scale is None else scale
    out = torch.empty((rows, tokens, three_c // 3), dtype=qkv.dtype, device=qkv.device)
    lib = bind_3d(lib or load_capi())
    with torch.cuda.device(qkv.device):
        status = lib.swin_trt_window_attention_3d(
            qkv.data_ptr(), qkv_code, bias.data_ptr(), bias_code, int(dense), out.data_ptr(), rows, num_heads,
            head_dim, *window, *shift, frames, height, width, float(scale),
            None if head_scale is None else head_scale_array(head_scale), _stream(qkv.device))
    check_status(lib, status, "swin_trt_window_attention_3d")
    return out
