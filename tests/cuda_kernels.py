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
from typing import Any, Optional, Sequence, Tuple, Union

from swin_trt.plugin_library import DTYPE_FLOAT16, DTYPE_FLOAT32, DTYPE_INT8, check_status, load_capi


def _pair(value: Union[int, Sequence[int]]) -> Tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


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
    """SwinWindowPartition on the GPU: ``(B, H, W, C)`` -> ``(B * nW, N, C)`` (float32, float16 or int8)."""
    import torch

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


def reverse_cuda(windows: Any, window_size: Union[int, Sequence[int]], shift_size: Union[int, Sequence[int]],
                 pad_first: bool, height: int, width: int, lib: Optional[ctypes.CDLL] = None) -> Any:
    """SwinWindowReverse on the GPU: ``(B * nW, N, C)`` -> ``(B, height, width, C)``."""
    import torch

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


def head_scale_array(head_scale: Sequence[float]) -> ctypes.Array:
    """Cosine attention's per-head scales as the ``float*`` the C ABI takes."""
    values = [float(v) for v in head_scale]
    return (ctypes.c_float * len(values))(*values)


def attention_cuda(qkv: Any, bias_table: Any, num_heads: int, window_size: Union[int, Sequence[int]],
                   shift_size: Union[int, Sequence[int]], height: int, width: int, scale: Optional[float] = None,
                   lib: Optional[ctypes.CDLL] = None, head_scale: Optional[Sequence[float]] = None) -> Any:
    """SwinWindowAttention on the GPU: ``qkv (B * nW, N, 3C)`` + ``bias_table`` -> ``(B * nW, N, C)``.

    ``height``/``width`` are the padded grid; ``scale`` defaults to ``head_dim ** -0.5``. ``head_scale`` (one
    per head) selects cosine mode (Swin V2): ``scale`` is then unused.
    """
    import torch

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
