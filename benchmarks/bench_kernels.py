"""Kernel timings of the three Swin ops on Swin-T / Swin-B shapes (window 7), on the GPU.

* SwinWindowPartition / SwinWindowReverse: time and bandwidth as a fraction of a device-to-device copy
  (``torch.Tensor.copy_``) of the same output bytes (target >= 0.80); ``leaves_l2`` says whether the bytes moved
  exceed the GPU's L2 (only then is the fraction one of DRAM bandwidth: use a size such as 1024x1024).
* SwinWindowAttention (float16): first checked, then timed. Our kernel's output, and each baseline's, is
  compared with a float32 reference of the contract on the GPU (relative error <= 2e-3 of the largest output);
  a row that fails is recorded and not timed, and the exit status is 1. Timed against
  ``torch.nn.functional.scaled_dot_product_attention`` with the same bias + shifted-window mask as a
  materialised (B*nW, heads, N, N) ``attn_mask`` (SDPA has no other way to take it), the backend forced with
  ``torch.nn.attention.sdpa_kernel`` and recorded (the first of cuDNN, memory-efficient, flash, math that
  accepts the inputs; the others' refusals are recorded too); also SDPA plus the transpose back to our
  (B*nW, N, C) layout; and, with ``--flex``, ``torch.nn.attention.flex_attention`` (``torch.compile``'d) whose
  ``score_mod`` computes the relative position bias (from the table) and the shift mask (from the indices)
  inside the kernel, the honest peer of a fused window kernel. Our bandwidth: the bytes it moves (qkv, output,
  table) as a fraction of a device-to-device copy of the same bytes. ``--modes`` v1 (``scale * q k^T``) and
  cosine (Swin V2: our kernel normalises q and k itself; the baselines get ``F.normalize(q) * head_scale`` and
  ``F.normalize(k)``).
* Fused vs unfused (``--fused``, float16, V1): one shifted Swin-T block per ``--img-sizes`` and batch (stage 1,
  ``fused_block``): SwinWindowPartition of the token-major qkv map + SwinWindowAttention + SwinWindowReverse (three
  launches, the windows in between) against SwinFusedWindowAttention (one launch on the map, a zero pad row, as
  partition's zero padding), same data. Both attentions are the FP32-core kernel (the fused form has no
  tensor-core path yet; the unfused chain with the tensor-core attention, what the plugins run for float16, is
  timed too). The two context maps are compared before anything is timed (relative error <= 1e-5 of the largest
  output, and whether they are bit for bit equal); a row that differs is recorded, not timed, exit status 1.

Stages of each ``--img-sizes`` input (default 224x224: maps 56/28/14/7; a dense size such as 512x640 gives
maps 128x160 ... 16x20, none a multiple of the window, so every stage is padded, as a backbone of any size
runs them); C 96/192/384/768 and heads 3/6/12/24 (Swin-T), C 128/256/512/1024 and heads 4/8/16/32 (Swin-B);
batches 1 and 32; shift 3 where the map is larger than the window (shifted blocks), else 0.

Times come from CUDA events around CUDA-graph replays of ``--iters`` back-to-back launches (eager launches if
graph capture fails), so host launch overhead is not measured; the median of ``--repeats`` replays is reported.
Writes JSON to ``--out`` (default benchmarks/results/kernels.json), rewritten after every row (``"complete":
false`` until the end), so a run stopped early keeps what it measured; ``--time-budget`` stops starting new
measurements after that many seconds. Needs a CUDA GPU and libswin_trt_capi.so (``cmake --build build
--target swin_trt_capi``; see plugins/README.md). ``swin_score_mod`` and ``reference_attention`` are checked on
the CPU by tests/test_bench_kernels.py.

Example::

    python benchmarks/bench_kernels.py --batches 1,8 --img-sizes 1024x1024,224x224 --flex --out benchmarks/results/kernels.json
"""

from __future__ import annotations

import argparse
import ctypes
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

TARGET_COPY_FRACTION = 0.80
WINDOW = 7
SHIFT = 3
MODELS = {
    "swin_t": {"channels": (96, 192, 384, 768), "heads": (3, 6, 12, 24)},
    "swin_b": {"channels": (128, 256, 512, 1024), "heads": (4, 8, 16, 32)},
}
PATCH = 4  # Swin's patch embedding: stage 1 is the input / 4, each later stage half the previous one
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "kernels.json"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path (default: %(default)s)")
    parser.add_argument("--models", default="swin_t,swin_b", help="comma list of swin_t, swin_b")
    parser.add_argument("--batches", default="1,32", help="comma list of batch sizes (default: %(default)s)")
    parser.add_argument("--img-sizes", default="224x224",
                        help="comma list of input sizes HxW whose stage maps are timed (default: %(default)s)")
    parser.add_argument("--dtypes", default="float16",
                        help="partition/reverse dtypes, comma list of float32, float16, int8 (default: %(default)s)")
    parser.add_argument("--pad-first", type=int, choices=(0, 1), default=1, help="pad order (1 = torchvision)")
    parser.add_argument("--modes", default="v1,cosine",
                        help="attention modes, comma list of v1, cosine (Swin V2) (default: %(default)s)")
    parser.add_argument("--iters", type=int, default=20, help="launches per timed graph replay")
    parser.add_argument("--repeats", type=int, default=15, help="timed replays; the median is reported")
    parser.add_argument("--capi", default=None, help="path of libswin_trt_capi.so (default: $SWIN_TRT_CAPI, build/)")
    parser.add_argument("--flex", action="store_true",
                        help="also time FlexAttention (torch.compile'd) with the bias and shift mask in score_mod")
    parser.add_argument("--fused", action="store_true",
                        help="also time one Swin-T block fused (SwinFusedWindowAttention) vs unfused (partition + "
                             "attention + reverse)")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="seconds: no new measurement starts after this (the JSON says what was skipped)")
    return parser.parse_args(argv)


class Timer:
    """GPU time per call of ``fn`` (microseconds): CUDA-graph replay of ``iters`` calls, timed with events."""

    def __init__(self, torch, iters: int, repeats: int):
        self.torch = torch
        self.iters = iters
        self.repeats = repeats
        self.methods: set[str] = set()

    def __call__(self, fn: Callable[[], object]) -> float:
        torch = self.torch
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up (also outside capture: lazy init, allocator)
                fn()
        stream.synchronize()
        graph = None
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, stream=stream):
                for _ in range(self.iters):
                    fn()
            replay = graph.replay
            self.methods.add("cuda-graph")
        except Exception:  # noqa: BLE001 - capture unsupported: fall back to eager launches
            graph = None
            torch.cuda.synchronize()

            def replay():
                for _ in range(self.iters):
                    fn()

            self.methods.add("eager")
        times = []
        with torch.cuda.stream(stream):
            replay()
            for _ in range(self.repeats):
                start = torch.cuda.Event(enable_timing=True)
                end = torch.cuda.Event(enable_timing=True)
                start.record(stream)
                replay()
                end.record(stream)
                end.synchronize()
                times.append(start.elapsed_time(end) * 1000.0 / self.iters)
        del graph
        return statistics.median(times)


def stage_map(img_size, stage: int) -> tuple[int, int]:
    """(H, W) of stage ``stage`` (1-4) for an input of ``img_size``: the patch embedding and each merge round
    up (both pad an odd map)."""
    height, width = (-(-side // PATCH) for side in img_size)
    for _ in range(stage - 1):
        height, width = -(-height // 2), -(-width // 2)
    return height, width


def stages(models, img_sizes):
    for img_size in img_sizes:
        for model in models:
            spec = MODELS[model]
            for index, (channels, heads) in enumerate(zip(spec["channels"], spec["heads"])):
                height, width = stage_map(img_size, index + 1)
                shift = SHIFT if min(height, width) > WINDOW else 0
                yield img_size, model, index + 1, (height, width), channels, heads, shift


def l2_bytes(torch) -> int:
    """The GPU's L2 size (bytes; 50 MiB on an H100 when the property is missing)."""
    return int(getattr(torch.cuda.get_device_properties(0), "L2_cache_size", 50 * 2**20))


def padded(side: int) -> int:
    return -(-side // WINDOW) * WINDOW


def bench_partition_reverse(torch, lib, timer, cuda_kernels, models, img_sizes, batches, dtypes, pad_first, budget,
                            results):
    dtype_map = {"float32": torch.float32, "float16": torch.float16, "int8": torch.int8}
    rows = results.rows("partition_reverse")
    for img_size, model, stage, (height, width), channels, _, shift in stages(models, img_sizes):
        for batch in batches:
            for name in dtypes:
                if budget.spent():
                    results.skipped(f"partition/reverse {img_size[0]}x{img_size[1]} {model} stage {stage} B={batch} "
                                    f"{name}: the time budget is spent")
                    continue
                dtype = dtype_map[name]
                if dtype == torch.int8:
                    x = torch.randint(-128, 128, (batch, height, width, channels), device="cuda", dtype=dtype)
                else:
                    x = torch.randn((batch, height, width, channels), device="cuda").to(dtype)
                windows = cuda_kernels.partition_cuda(x, WINDOW, shift, bool(pad_first), lib=lib)
                merged = torch.empty_like(x)
                out_windows = torch.empty_like(windows)
                code = {"float32": 0, "float16": 1, "int8": 2}[name]
                b, h, w, c = x.shape

                def partition():
                    lib.swin_trt_window_partition(x.data_ptr(), out_windows.data_ptr(), code, b, h, w, c, WINDOW,
                                                  WINDOW, shift, shift, pad_first,
                                                  torch.cuda.current_stream().cuda_stream)

                def reverse():
                    lib.swin_trt_window_reverse(windows.data_ptr(), merged.data_ptr(), code, b, h, w, c, WINDOW,
                                                WINDOW, shift, shift, pad_first,
                                                torch.cuda.current_stream().cuda_stream)

                src = torch.empty_like(windows)
                dst = torch.empty_like(windows)
                copy_us = timer(lambda: dst.copy_(src))
                partition_us = timer(partition)
                reverse_us = timer(reverse)
                assert torch.equal(merged, x), "reverse(partition(x)) != x"
                moved = x.numel() * x.element_size() + windows.numel() * windows.element_size()
                copy_bytes = 2 * windows.numel() * windows.element_size()
                rows.append({
                    "img_size": list(img_size), "model": model, "stage": stage, "batch": batch, "dtype": name,
                    "shape": [b, h, w, c], "padded": [padded(h), padded(w)], "window": WINDOW, "shift": shift,
                    "pad_first": pad_first,
                    "bytes_moved": moved, "copy_us": round(copy_us, 3),
                    "partition_us": round(partition_us, 3), "reverse_us": round(reverse_us, 3),
                    "copy_GBps": round(copy_bytes / copy_us / 1e3, 1),
                    "partition_GBps": round(moved / partition_us / 1e3, 1),
                    "reverse_GBps": round(moved / reverse_us / 1e3, 1),
                    "partition_fraction_of_copy": round((moved / partition_us) / (copy_bytes / copy_us), 3),
                    "reverse_fraction_of_copy": round((moved / reverse_us) / (copy_bytes / copy_us), 3),
                    "leaves_l2": moved > l2_bytes(torch),
                })
                results.flush()
                print(f"{img_size[0]}x{img_size[1]} {model} stage {stage} ({h}x{w}) B={batch:<3} {name:8s} copy "
                      f"{copy_us:8.2f} us  partition "
                      f"{partition_us:8.2f} us ({rows[-1]['partition_fraction_of_copy']:.2f} of copy)  reverse "
                      f"{reverse_us:8.2f} us ({rows[-1]['reverse_fraction_of_copy']:.2f})", flush=True)
                del x, windows, merged, out_windows, src, dst
    return rows


SDPA_BACKENDS = ("CUDNN_ATTENTION", "EFFICIENT_ATTENTION", "FLASH_ATTENTION", "MATH")  # tried in this order
CHECK_TOLERANCE = 2e-3  # float16 output vs the float32 reference, relative to the largest |output|


def swin_score_mod(torch, table, window: int, shift: int, grid_h: int, grid_w: int):
    """FlexAttention ``score_mod`` of Swin window attention: adds the relative position bias and the shifted-window
    mask, both computed inside the kernel from the indices (only the ``((2w-1)^2, heads)`` table is read, as the
    plugin reads it). ``b`` indexes the ``B * nW`` windows, window-major within an image, as the plugin's rows."""
    windows_w = grid_w // window
    n_windows = (grid_h // window) * windows_w
    span = 2 * window - 1

    def region(coordinate, length):  # 0, 1, 2: the slices (0, -window), (-window, -shift), (-shift, None)
        if shift == 0:
            return coordinate * 0
        return (coordinate >= length - window).to(torch.int32) + (coordinate >= length - shift).to(torch.int32)

    def score_mod(score, b, h, q_idx, kv_idx):
        qy, qx = q_idx // window, q_idx % window
        ky, kx = kv_idx // window, kv_idx % window
        bias = table[(qy - ky + window - 1) * span + (qx - kx + window - 1), h]
        w = b % n_windows
        y0, x0 = (w // windows_w) * window, (w % windows_w) * window
        same = ((region(y0 + qy, grid_h) == region(y0 + ky, grid_h))
                & (region(x0 + qx, grid_w) == region(x0 + kx, grid_w)))
        return score + bias + torch.where(same, 0.0, -100.0)  # reference.MASK_VALUE, as the original Swin

    return score_mod


def reference_attention(torch, qkv, bias, mask, heads, scale, head_scale):
    """Float32 reference on the GPU, straight from the contract (swin_trt/ops/reference.py's window_attention):
    bias ``(heads, N, N)``, mask ``(nW, N, N)`` or None, head_scale ``(heads,)`` for cosine mode."""
    rows, tokens, three_c = qkv.shape
    head_dim = three_c // 3 // heads
    q, k, v = qkv.float().view(rows, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    if head_scale is not None:
        q = torch.nn.functional.normalize(q, dim=-1, eps=1e-12) * head_scale.view(1, heads, 1, 1)
        k = torch.nn.functional.normalize(k, dim=-1, eps=1e-12)
    else:
        q = q * scale
    logits = q @ k.transpose(-1, -2) + bias[None]
    if mask is not None:
        logits = (logits.view(-1, mask.shape[0], heads, tokens, tokens) + mask[None, :, None]).view(
            rows, heads, tokens, tokens)
    context = logits.softmax(-1) @ v
    return context.transpose(1, 2).reshape(rows, tokens, heads * head_dim)


def relative_error(torch, got, expect) -> float:
    return ((got.float() - expect).abs().max() / expect.abs().max().clamp_min(1e-30)).item()


def bench_attention(torch, lib, timer, reference, cuda_kernels, models, img_sizes, batches, modes, flex, budget,
                    results):
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    flex_attention = None
    if flex:
        try:
            from torch.nn.attention.flex_attention import flex_attention as flex_eager
            flex_attention = torch.compile(flex_eager, dynamic=True)
        except Exception as exc:  # noqa: BLE001 - an older torch: recorded, the rest still runs
            results.note(f"FlexAttention unavailable: {type(exc).__name__}: {exc}")
    rows = results.rows("attention")
    for img_size, model, stage, (height, width), channels, heads, shift in stages(models, img_sizes):
        grid_h, grid_w = padded(height), padded(width)  # the grid a feature-map input gives the plugin
        head_dim = channels // heads
        tokens = WINDOW * WINDOW
        n_windows = (grid_h // WINDOW) * (grid_w // WINDOW)
        table_cpu = (torch.randn(((2 * WINDOW - 1) ** 2, heads)) * 0.5).half().float()  # what the kernel reads
        index = torch.as_tensor(reference.relative_position_index((WINDOW, WINDOW)))
        bias_cpu = table_cpu[index.reshape(-1)].reshape(tokens, tokens, heads).permute(2, 0, 1)  # (heads, N, N)
        mask_np = reference.attention_mask((WINDOW, WINDOW), (shift, shift), grid_h, grid_w)
        mask = None if mask_np is None else torch.as_tensor(mask_np).cuda()
        bias = bias_cpu.cuda()
        for batch, mode in ((batch, mode) for batch in batches for mode in modes):
            where = f"{img_size[0]}x{img_size[1]} {model} stage {stage} ({grid_h}x{grid_w}) B={batch:<3} {mode:6s}"
            if budget.spent():
                results.skipped(f"attention {where}: the time budget is spent")
                continue
            cosine = mode == "cosine"
            rows_r = batch * n_windows
            qkv = torch.randn((rows_r, tokens, 3 * channels), device="cuda", dtype=torch.float16)
            table = table_cpu.to("cuda", torch.float16)
            out = torch.empty((rows_r, tokens, channels), device="cuda", dtype=torch.float16)
            scale = 1.0 if cosine else head_dim ** -0.5
            head_scale = torch.linspace(1.5, 100.0, heads)  # Swin V2's exp(min(logit_scale, log 100)) per head
            head_scale_c = cuda_kernels.head_scale_array(head_scale.tolist())
            head_scale_gpu = head_scale.to("cuda", torch.float16).view(1, heads, 1, 1)
            q, k, v = qkv.view(rows_r, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
            sdpa_scale = 1.0 if cosine else scale

            def inputs():  # cosine: what TensorRT would run without the plugin (normalise, scale per head), timed
                if cosine:
                    return F.normalize(q, dim=-1) * head_scale_gpu, F.normalize(k, dim=-1), v
                return q, k, v
            args = (qkv.data_ptr(), 1, table.data_ptr(), 1, out.data_ptr(), rows_r, heads, head_dim, WINDOW, WINDOW,
                    shift, shift, grid_h, grid_w)

            def ours():
                stream = torch.cuda.current_stream().cuda_stream
                if cosine:
                    lib.swin_trt_window_attention_cosine(*args, head_scale_c, stream)
                else:
                    lib.swin_trt_window_attention(*args, scale, stream)

            # 1. Checked before anything is timed: ours, and each baseline, against the float32 reference.
            expect = reference_attention(torch, qkv, bias, mask, heads, scale, head_scale.cuda() if cosine else None)
            ours()
            torch.cuda.synchronize()
            ours_error = relative_error(torch, out, expect)
            row = {
                "img_size": list(img_size), "model": model, "stage": stage, "map": [height, width],
                "grid": [grid_h, grid_w], "batch": batch, "mode": mode, "rows": rows_r, "tokens": tokens,
                "heads": heads, "head_dim": head_dim, "shift": shift, "dtype": "float16",
                "check_tolerance": CHECK_TOLERANCE, "ours_relative_error": ours_error,
                "ours_checked": ours_error <= CHECK_TOLERANCE,
            }
            if not row["ours_checked"]:
                results.failure(f"attention {where}: relative error {ours_error:.3g} > {CHECK_TOLERANCE}")
                rows.append(row)
                results.flush()
                print(f"{where} attention CHECK FAILED: relative error {ours_error:.3g}", flush=True)
                del qkv, out, q, k, v, expect
                continue

            # SDPA reads the bias + mask as one materialised (rows, heads, N, N) attn_mask (it has no other way).
            combined = bias[None, None] + (mask[None, :, None] if mask is not None else 0.0)
            attn_mask = combined.expand(batch, n_windows, heads, tokens, tokens).reshape(
                rows_r, heads, tokens, tokens).to(torch.float16).contiguous()
            sdpa_backend, refused = None, {}
            for name in SDPA_BACKENDS:
                backend = getattr(SDPBackend, name, None)
                if backend is None:
                    continue
                try:
                    with sdpa_kernel(backend):
                        got = F.scaled_dot_product_attention(*inputs(), attn_mask=attn_mask, scale=sdpa_scale)
                    torch.cuda.synchronize()
                    sdpa_backend = backend
                    row["sdpa_backend"] = name
                    row["sdpa_relative_error"] = relative_error(
                        torch, got.transpose(1, 2).reshape(rows_r, tokens, channels), expect)
                    break
                except RuntimeError as exc:
                    refused[name] = str(exc).split("\n")[0][:160]
            row["sdpa_backends_refused"] = refused

            def sdpa():
                with sdpa_kernel(sdpa_backend):
                    return F.scaled_dot_product_attention(*inputs(), attn_mask=attn_mask, scale=sdpa_scale)

            def sdpa_layout():
                return sdpa().transpose(1, 2).reshape(rows_r, tokens, channels)

            flex_fn = None
            if flex_attention is not None:
                score_mod = swin_score_mod(torch, table, WINDOW, shift, grid_h, grid_w)
                try:
                    got = flex_attention(*inputs(), score_mod=score_mod, scale=sdpa_scale)
                    torch.cuda.synchronize()
                    row["flex_relative_error"] = relative_error(
                        torch, got.transpose(1, 2).reshape(rows_r, tokens, channels), expect)

                    def flex_run():
                        return flex_attention(*inputs(), score_mod=score_mod, scale=sdpa_scale)

                    flex_fn = flex_run
                except Exception as exc:  # noqa: BLE001 - recorded, the row goes on without it
                    row["flex_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"

            # 2. Timed: ours, the baselines, and a device-to-device copy of the bytes ours moves.
            moved = (qkv.numel() + out.numel()) * 2 + table.numel() * 2
            src = torch.empty(moved // 2, device="cuda", dtype=torch.uint8)
            dst = torch.empty_like(src)
            ours_us = timer(ours)
            copy_us = timer(lambda: dst.copy_(src))
            row.update({
                "bytes_moved": moved, "ours_us": round(ours_us, 3), "copy_us": round(copy_us, 3),
                "ours_GBps": round(moved / ours_us / 1e3, 1),
                "ours_fraction_of_copy": round(copy_us / ours_us, 3),  # same bytes: copy time / our time
            })
            if sdpa_backend is not None:
                sdpa_us, sdpa_layout_us = timer(sdpa), timer(sdpa_layout)
                row.update({"sdpa_us": round(sdpa_us, 3), "sdpa_with_layout_us": round(sdpa_layout_us, 3),
                            "sdpa_attn_mask_bytes": attn_mask.numel() * 2,
                            "speedup_vs_sdpa": round(sdpa_us / ours_us, 3),
                            "speedup_vs_sdpa_with_layout": round(sdpa_layout_us / ours_us, 3)})
            if flex_fn is not None:
                try:
                    flex_us = timer(flex_fn)
                    row.update({"flex_us": round(flex_us, 3), "speedup_vs_flex": round(flex_us / ours_us, 3)})
                except Exception as exc:  # noqa: BLE001
                    row["flex_error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            rows.append(row)
            results.flush()
            print(f"{where} attention ours {ours_us:8.2f} us ({row['ours_fraction_of_copy']:.2f} of copy, err "
                  f"{ours_error:.1e})  sdpa[{row.get('sdpa_backend')}] {row.get('sdpa_us', float('nan')):8.2f} us  "
                  f"flex {row.get('flex_us', float('nan')):8.2f} us", flush=True)
            del qkv, out, attn_mask, q, k, v, expect, src, dst
    return rows


FUSED_TOLERANCE = 1e-5  # fused vs unfused context: the same FP32-core attention, only the row addressing differs
_FUSED_ENTRY = "swin_trt_fused_window_attention"
_TC_ENTRY = "swin_trt_window_attention_tc"


def fused_block(img_size) -> tuple[tuple[int, int], int, int, int]:
    """The block the fused-vs-unfused row times for one input size: Swin-T stage 1, shifted (its second block).
    Returns ``((height, width), channels, heads, shift)``; the shift is 0 where the map fits in one window."""
    height, width = stage_map(img_size, 1)
    channels, heads = MODELS["swin_t"]["channels"][0], MODELS["swin_t"]["heads"][0]
    return (height, width), channels, heads, SHIFT if min(height, width) > WINDOW else 0


def bind_fused(lib) -> bool:
    """Sets argtypes/restype of the fused entry (and of the tensor-core one where present); False when the library
    predates the fused kernel. ``swin_trt_fused_window_attention(qkv_map, qkv_dtype, bias, bias_dtype, bias_form,
    pad_row, context_map, B, T, H, W, heads, head_dim, wt, wh, ww, st, sh, sw, pad_first, scale, head_scale or
    None, stream)``; ``swin_trt_window_attention_tc(qkv, qkv_dtype, bias, bias_dtype, bias_form, context, rows,
    heads, head_dim, wt, wh, ww, st, sh, sw, frames, height, width, scale, head_scale or None, stream)``."""
    i32, ptr = ctypes.c_int32, ctypes.c_void_p
    if not hasattr(lib, _FUSED_ENTRY):
        return False
    fused = getattr(lib, _FUSED_ENTRY)
    fused.argtypes = [ptr, i32, ptr, i32, i32, ptr, ptr] + [i32] * 13 + [ctypes.c_float, ptr, ptr]
    fused.restype = i32
    if hasattr(lib, _TC_ENTRY):
        tc = getattr(lib, _TC_ENTRY)
        tc.argtypes = [ptr, i32, ptr, i32, i32, ptr] + [i32] * 12 + [ctypes.c_float, ptr, ptr]
        tc.restype = i32
    return True


def launch_unfused(lib, qkv_map, windows, context_windows, table, out, code, batch, height, width, channels, heads,
                   shift, pad_first, scale, stream, tensor_core=False) -> tuple[int, int, int]:
    """The unfused block on device pointers (host pointers on the emulated library): partition of the qkv map
    into ``windows``, attention into ``context_windows`` (the FP32-core kernel, or with ``tensor_core`` the
    tensor-core one), reverse into ``out``; table bias (``code``, as qkv), 2D window ``WINDOW``. The statuses."""
    grid_h, grid_w, head_dim = padded(height), padded(width), channels // heads
    rows = batch * (grid_h // WINDOW) * (grid_w // WINDOW)
    partition = lib.swin_trt_window_partition(qkv_map, windows, code, batch, height, width, 3 * channels, WINDOW,
                                              WINDOW, shift, shift, pad_first, stream)
    if tensor_core:
        attention = getattr(lib, _TC_ENTRY)(windows, code, table, code, 0, context_windows, rows, heads, head_dim, 1,
                                            WINDOW, WINDOW, 0, shift, shift, 1, grid_h, grid_w, scale, None, stream)
    else:
        attention = lib.swin_trt_window_attention(windows, code, table, code, context_windows, rows, heads, head_dim,
                                                  WINDOW, WINDOW, shift, shift, grid_h, grid_w, scale, stream)
    reverse = lib.swin_trt_window_reverse(context_windows, out, code, batch, height, width, channels, WINDOW, WINDOW,
                                          shift, shift, pad_first, stream)
    return partition, attention, reverse


def launch_fused(lib, qkv_map, table, pad_row, out, code, batch, height, width, channels, heads, shift, pad_first,
                 scale, stream) -> int:
    """The fused block on the same pointers (``bind_fused`` first): one launch on the map. The status."""
    return getattr(lib, _FUSED_ENTRY)(qkv_map, code, table, code, 0, pad_row, out, batch, 1, height, width, heads,
                                      channels // heads, 1, WINDOW, WINDOW, 0, shift, shift, pad_first, scale, None,
                                      stream)


def bench_fused(torch, lib, timer, img_sizes, batches, pad_first, budget, results):
    """Fused vs unfused, one Swin-T block per input size and batch (module docstring)."""
    rows = results.rows("fused")
    if not bind_fused(lib):
        results.note(f"fused vs unfused not timed: {lib._name} has no {_FUSED_ENTRY} (rebuild swin_trt_capi)")
        return rows
    tokens = WINDOW * WINDOW
    for img_size in img_sizes:
        (height, width), channels, heads, shift = fused_block(img_size)
        head_dim = channels // heads
        grid_h, grid_w = padded(height), padded(width)
        n_windows = (grid_h // WINDOW) * (grid_w // WINDOW)
        for batch in batches:
            where = f"{img_size[0]}x{img_size[1]} swin_t stage 1 ({height}x{width}) B={batch:<3} fused vs unfused"
            if budget.spent():
                results.skipped(f"{where}: the time budget is spent")
                continue
            windows_n = batch * n_windows
            qkv_map = torch.randn((batch, height, width, 3 * channels), device="cuda", dtype=torch.float16)
            table = (torch.randn(((2 * WINDOW - 1) ** 2, heads)) * 0.5).to("cuda", torch.float16)
            pad_row = torch.zeros(3 * channels, device="cuda", dtype=torch.float16)  # partition pads with zeros
            windows = torch.empty((windows_n, tokens, 3 * channels), device="cuda", dtype=torch.float16)
            context_windows = torch.empty((windows_n, tokens, channels), device="cuda", dtype=torch.float16)
            unfused_out = torch.full((batch, height, width, channels), float("nan"), device="cuda",
                                     dtype=torch.float16)
            fused_out = torch.full_like(unfused_out, float("nan"))
            scale = head_dim ** -0.5
            code = 1  # float16

            def unfused(tensor_core=False):
                return launch_unfused(lib, qkv_map.data_ptr(), windows.data_ptr(), context_windows.data_ptr(),
                                      table.data_ptr(), unfused_out.data_ptr(), code, batch, height, width, channels,
                                      heads, shift, pad_first, scale, torch.cuda.current_stream().cuda_stream,
                                      tensor_core)

            def fused():
                return launch_fused(lib, qkv_map.data_ptr(), table.data_ptr(), pad_row.data_ptr(),
                                    fused_out.data_ptr(), code, batch, height, width, channels, heads, shift,
                                    pad_first, scale, torch.cuda.current_stream().cuda_stream)

            # 1. Checked before anything is timed: the same data through both, compared.
            statuses = (*unfused(), fused())
            torch.cuda.synchronize()
            if any(statuses):
                message = lib.swin_trt_capi_last_error().decode(errors="replace")
                results.failure(f"{where}: launch statuses {statuses}: {message}")
                results.flush()
                print(f"{where} LAUNCH FAILED: {statuses} {message}", flush=True)
                continue
            error = relative_error(torch, fused_out, unfused_out.float())
            row = {
                "img_size": list(img_size), "model": "swin_t", "stage": 1, "map": [height, width],
                "grid": [grid_h, grid_w], "batch": batch, "heads": heads, "head_dim": head_dim, "shift": shift,
                "pad_first": pad_first, "dtype": "float16", "mode": "v1", "check_tolerance": FUSED_TOLERANCE,
                "fused_vs_unfused_relative_error": error,
                "bitwise_equal": bool(torch.equal(fused_out, unfused_out)),
                "checked": error <= FUSED_TOLERANCE,
            }
            if not row["checked"]:
                results.failure(f"{where}: relative error {error:.3g} > {FUSED_TOLERANCE}")
                rows.append(row)
                results.flush()
                print(f"{where} CHECK FAILED: relative error {error:.3g}", flush=True)
                continue
            # 2. Timed.
            unfused_us, fused_us = timer(unfused), timer(fused)
            row.update({"unfused_us": round(unfused_us, 3), "fused_us": round(fused_us, 3),
                        "speedup_fused_vs_unfused": round(unfused_us / fused_us, 3),
                        "windows_bytes_saved": (windows.numel() + context_windows.numel()) * 2 * 2})
            if hasattr(lib, _TC_ENTRY):
                unfused_tc_us = timer(lambda: unfused(True))
                row.update({"unfused_tensor_core_us": round(unfused_tc_us, 3),
                            "speedup_fused_vs_unfused_tensor_core": round(unfused_tc_us / fused_us, 3)})
            rows.append(row)
            results.flush()
            print(f"{where}: unfused {unfused_us:8.2f} us  fused {fused_us:8.2f} us  unfused(tc) "
                  f"{row.get('unfused_tensor_core_us', float('nan')):8.2f} us  (err {error:.1e}, bitwise "
                  f"{row['bitwise_equal']})", flush=True)
            del qkv_map, windows, context_windows, unfused_out, fused_out
    return rows


class Budget:
    """Wall-clock budget of the whole run (``--time-budget``): no new measurement starts once it is spent."""

    def __init__(self, seconds: float | None):
        self.deadline = None if not seconds else time.monotonic() + seconds

    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline


class Results:
    """The JSON document, rewritten (aside, then renamed) after every measured row: a run stopped at any point
    leaves valid JSON with everything measured so far (``"complete": false`` until the end)."""

    def __init__(self, path: Path, header: dict):
        self.path = path
        self.document = {**header, "complete": False, "partition_reverse": [], "attention": [], "fused": [],
                         "skipped": [],
                         "failures": [], "notes": []}

    def rows(self, key: str) -> list:
        return self.document[key]

    def skipped(self, what: str) -> None:
        self.document["skipped"].append(what)
        self.flush()

    def failure(self, what: str) -> None:
        self.document["failures"].append(what)

    def note(self, what: str) -> None:
        self.document["notes"].append(what)

    def flush(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.document, indent=2) + "\n")
        tmp.replace(self.path)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        sys.exit("bench_kernels.py needs PyTorch with CUDA (pip install torch)")
    if not torch.cuda.is_available():
        sys.exit("bench_kernels.py needs a CUDA GPU: torch.cuda.is_available() is False. Run it on the GPU machine "
                 "(after building libswin_trt_capi.so, see plugins/README.md).")
    repo = Path(__file__).resolve().parent.parent
    sys.path.insert(0, str(repo))
    # The torch wrappers of the kernels' C ABI are test helpers, kept out of the swin_trt package
    # (tests/cuda_kernels.py, shared by tests/test_cuda_kernels.py); tests/ is not a package, so put it on the path.
    sys.path.insert(0, str(repo / "tests"))
    import cuda_kernels
    from swin_trt import plugin_library
    from swin_trt.errors import UserError
    from swin_trt.ops import reference

    try:
        lib = plugin_library.load_capi(args.capi)
    except UserError as exc:
        sys.exit(f"bench_kernels.py: {exc}")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        sys.exit(f"bench_kernels.py: unknown model(s) {unknown}; choose from {sorted(MODELS)}")
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    if any(d not in ("float32", "float16", "int8") for d in dtypes):
        sys.exit(f"bench_kernels.py: --dtypes must be among float32, float16, int8, got {dtypes}")

    try:
        img_sizes = [tuple(int(v) for v in size.lower().split("x")) for size in args.img_sizes.split(",") if size]
    except ValueError:
        img_sizes = []
    if not img_sizes or any(len(size) != 2 or min(size) < 1 for size in img_sizes):
        sys.exit(f"bench_kernels.py: --img-sizes must be a comma list of HxW, got {args.img_sizes!r}")

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("v1", "cosine") for m in modes):
        sys.exit(f"bench_kernels.py: --modes must be among v1, cosine, got {args.modes!r}")

    timer = Timer(torch, args.iters, args.repeats)
    budget = Budget(args.time_budget)
    properties = torch.cuda.get_device_properties(0)
    results = Results(args.out, {
        "device": properties.name,
        "compute_capability": f"{properties.major}.{properties.minor}",
        "l2_bytes": l2_bytes(torch),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "host": platform.node(),
        "capi": str(plugin_library.find_capi_library(args.capi)),
        "timing": {"method": [], "iters_per_replay": args.iters, "repeats": args.repeats, "statistic": "median"},
        "window": WINDOW,
        "img_sizes": [list(size) for size in img_sizes],
        "time_budget_s": args.time_budget,
    })
    results.flush()
    window_rows = bench_partition_reverse(torch, lib, timer, cuda_kernels, models, img_sizes, batches, dtypes,
                                          args.pad_first, budget, results)
    # Fused vs unfused before attention: a few short rows, so that a time budget spent on attention keeps them.
    fused_rows = (bench_fused(torch, lib, timer, img_sizes, batches, args.pad_first, budget, results)
                  if args.fused else [])
    attention_rows = bench_attention(torch, lib, timer, reference, cuda_kernels, models, img_sizes, batches, modes,
                                     args.flex, budget, results)

    big = [r for r in window_rows if r["batch"] == max(batches)]
    fractions = [min(r["partition_fraction_of_copy"], r["reverse_fraction_of_copy"]) for r in big]
    timed = [r for r in attention_rows if "ours_us" in r]
    fused_failures = sum(not r["checked"] for r in fused_rows)

    def median(key, mode):
        values = [r[key] for r in timed if r["mode"] == mode and key in r]
        return statistics.median(values) if values else None

    results.document["timing"]["method"] = sorted(timer.methods)
    results.document["summary"] = {
        "copy_fraction_target": TARGET_COPY_FRACTION,
        f"min_copy_fraction_at_batch_{max(batches)}": min(fractions) if fractions else None,
        f"all_batch_{max(batches)}_meet_target": bool(fractions) and min(fractions) >= TARGET_COPY_FRACTION,
        "attention_checked": len(attention_rows),
        "attention_check_failures": len(results.document["failures"]) - fused_failures,
        "sdpa_backends": sorted({r["sdpa_backend"] for r in timed if r.get("sdpa_backend")}),
        **{f"attention_{mode}_speedup_vs_sdpa_median": median("speedup_vs_sdpa", mode) for mode in modes},
        **{f"attention_{mode}_speedup_vs_flex_median": median("speedup_vs_flex", mode) for mode in modes},
        "skipped_for_time": len(results.document["skipped"]),
        "fused_checked": len(fused_rows), "fused_check_failures": fused_failures,
        "fused_speedup_vs_unfused": [r["speedup_fused_vs_unfused"] for r in fused_rows if "fused_us" in r],
    }
    results.document["complete"] = True
    results.flush()
    print(f"wrote {args.out}")
    print(json.dumps(results.document["summary"], indent=2))
    return 1 if results.document["failures"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
