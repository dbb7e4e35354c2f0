"""Kernel timings of the three Swin ops on Swin-T / Swin-B shapes (window 7), on the GPU.

* SwinWindowPartition / SwinWindowReverse: time and bandwidth as a fraction of a device-to-device copy
  (``torch.Tensor.copy_``) of the same output bytes (target >= 0.80).
* SwinWindowAttention (float16): our kernel vs ``torch.nn.functional.scaled_dot_product_attention`` with the
  same relative-position bias + shifted-window mask passed as ``attn_mask`` (materialised as (B*nW, heads, N, N)
  outside the timed region), on the same q/k/v views of the same qkv tensor; also SDPA plus the transpose back
  to our (B*nW, N, C) layout. ``--modes`` v1 (``scale * q k^T``) and cosine (Swin V2: our kernel normalises q
  and k itself; torch gets ``F.normalize(q) * head_scale`` and ``F.normalize(k)``, timed with SDPA).

Stages of each ``--img-sizes`` input (default 224x224: maps 56/28/14/7; a dense size such as 512x640 gives
maps 128x160 ... 16x20, none a multiple of the window, so every stage is padded, as a backbone of any size
runs them); C 96/192/384/768 and heads 3/6/12/24 (Swin-T), C 128/256/512/1024 and heads 4/8/16/32 (Swin-B);
batches 1 and 32; shift 3 where the map is larger than the window (shifted blocks), else 0.

Times come from CUDA events around CUDA-graph replays of ``--iters`` back-to-back launches (eager launches if
graph capture fails), so host launch overhead is not measured; the median of ``--repeats`` replays is reported.
Writes JSON to ``--out`` (default benchmarks/results/kernels.json). Needs a CUDA GPU and libswin_trt_capi.so
(``cmake --build build --target swin_trt_capi``; see plugins/README.md).

Example::

    python benchmarks/bench_kernels.py --batches 1,32 --img-sizes 224x224,512x640 --out benchmarks/results/kernels.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
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


def padded(side: int) -> int:
    return -(-side // WINDOW) * WINDOW


def bench_partition_reverse(torch, lib, timer, cuda_kernels, models, img_sizes, batches, dtypes, pad_first):
    dtype_map = {"float32": torch.float32, "float16": torch.float16, "int8": torch.int8}
    rows = []
    for img_size, model, stage, (height, width), channels, _, shift in stages(models, img_sizes):
        for batch in batches:
            for name in dtypes:
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
                })
                print(f"{img_size[0]}x{img_size[1]} {model} stage {stage} ({h}x{w}) B={batch:<3} {name:8s} copy "
                      f"{copy_us:8.2f} us  partition "
                      f"{partition_us:8.2f} us ({rows[-1]['partition_fraction_of_copy']:.2f} of copy)  reverse "
                      f"{reverse_us:8.2f} us ({rows[-1]['reverse_fraction_of_copy']:.2f})", flush=True)
                del x, windows, merged, out_windows, src, dst
    return rows


def bench_attention(torch, lib, timer, reference, cuda_kernels, models, img_sizes, batches, modes):
    import torch.nn.functional as F

    rows = []
    for img_size, model, stage, (height, width), channels, heads, shift in stages(models, img_sizes):
        grid_h, grid_w = padded(height), padded(width)  # the grid a feature-map input gives the plugin
        head_dim = channels // heads
        tokens = WINDOW * WINDOW
        n_windows = (grid_h // WINDOW) * (grid_w // WINDOW)
        table_cpu = torch.randn(((2 * WINDOW - 1) ** 2, heads)) * 0.5
        index = torch.as_tensor(reference.relative_position_index((WINDOW, WINDOW)))
        bias = table_cpu[index.reshape(-1)].reshape(tokens, tokens, heads).permute(2, 0, 1)  # (heads, N, N)
        mask = reference.attention_mask((WINDOW, WINDOW), (shift, shift), grid_h, grid_w)
        mask = torch.zeros((n_windows, tokens, tokens)) if mask is None else torch.as_tensor(mask)
        for batch, mode in ((batch, mode) for batch in batches for mode in modes):
            cosine = mode == "cosine"
            rows_r = batch * n_windows
            qkv = torch.randn((rows_r, tokens, 3 * channels), device="cuda", dtype=torch.float16)
            table = table_cpu.to("cuda", torch.float16)
            out = torch.empty((rows_r, tokens, channels), device="cuda", dtype=torch.float16)
            scale = 1.0 if cosine else head_dim ** -0.5
            head_scale = torch.linspace(1.5, 100.0, heads)  # Swin V2's exp(min(logit_scale, log 100)) per head
            head_scale_c = cuda_kernels.head_scale_array(head_scale.tolist())
            head_scale_gpu = head_scale.to("cuda", torch.float16).view(1, heads, 1, 1)
            combined = (bias[None, None] + mask[None, :, None]).expand(batch, n_windows, heads, tokens, tokens)
            attn_mask = combined.reshape(rows_r, heads, tokens, tokens).to("cuda", torch.float16).contiguous()
            q, k, v = qkv.view(rows_r, tokens, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
            args = (qkv.data_ptr(), 1, table.data_ptr(), 1, out.data_ptr(), rows_r, heads, head_dim, WINDOW, WINDOW,
                    shift, shift, grid_h, grid_w)

            def ours():
                stream = torch.cuda.current_stream().cuda_stream
                if cosine:
                    lib.swin_trt_window_attention_cosine(*args, head_scale_c, stream)
                else:
                    lib.swin_trt_window_attention(*args, scale, stream)

            def sdpa():
                if cosine:  # what TensorRT would run without the plugin: normalise, scale per head, attend
                    return F.scaled_dot_product_attention(F.normalize(q, dim=-1) * head_scale_gpu,
                                                          F.normalize(k, dim=-1), v, attn_mask=attn_mask, scale=1.0)
                return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, scale=scale)

            def sdpa_layout():
                return sdpa().transpose(1, 2).reshape(rows_r, tokens, channels)

            ours_us = timer(ours)
            sdpa_us = timer(sdpa)
            sdpa_layout_us = timer(sdpa_layout)
            torch.cuda.synchronize()
            ours()
            expect = sdpa_layout()
            torch.cuda.synchronize()
            diff = (out.float() - expect.float()).abs().max().item()
            rows.append({
                "img_size": list(img_size), "model": model, "stage": stage, "map": [height, width],
                "grid": [grid_h, grid_w], "batch": batch, "mode": mode, "rows": rows_r, "tokens": tokens,
                "heads": heads, "head_dim": head_dim, "shift": shift, "dtype": "float16",
                "ours_us": round(ours_us, 3), "sdpa_us": round(sdpa_us, 3),
                "sdpa_with_layout_us": round(sdpa_layout_us, 3),
                "speedup_vs_sdpa": round(sdpa_us / ours_us, 3),
                "speedup_vs_sdpa_with_layout": round(sdpa_layout_us / ours_us, 3),
                "max_abs_diff_vs_sdpa": diff,
            })
            print(f"{img_size[0]}x{img_size[1]} {model} stage {stage} ({grid_h}x{grid_w}) B={batch:<3} attention "
                  f"{mode:6s} ours {ours_us:8.2f} us  sdpa {sdpa_us:8.2f} us  "
                  f"(+layout {sdpa_layout_us:8.2f} us)  x{sdpa_us / ours_us:.2f}  max|diff| {diff:.2e}", flush=True)
            del qkv, out, attn_mask, q, k, v
    return rows


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

    timer = Timer(torch, args.iters, args.repeats)
    window_rows = bench_partition_reverse(torch, lib, timer, cuda_kernels, models, img_sizes, batches, dtypes,
                                          args.pad_first)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or any(m not in ("v1", "cosine") for m in modes):
        sys.exit(f"bench_kernels.py: --modes must be among v1, cosine, got {args.modes!r}")
    attention_rows = bench_attention(torch, lib, timer, reference, cuda_kernels, models, img_sizes, batches,
                                     modes)

    big = [r for r in window_rows if r["batch"] == max(batches)]
    fractions = [min(r["partition_fraction_of_copy"], r["reverse_fraction_of_copy"]) for r in big]
    properties = torch.cuda.get_device_properties(0)
    result = {
        "device": properties.name,
        "compute_capability": f"{properties.major}.{properties.minor}",
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "host": platform.node(),
        "capi": str(plugin_library.find_capi_library(args.capi)),
        "timing": {"method": sorted(timer.methods), "iters_per_replay": args.iters, "repeats": args.repeats,
                   "statistic": "median"},
        "window": WINDOW,
        "img_sizes": [list(size) for size in img_sizes],
        "partition_reverse": window_rows,
        "attention": attention_rows,
        "summary": {
            "copy_fraction_target": TARGET_COPY_FRACTION,
            f"min_copy_fraction_at_batch_{max(batches)}": min(fractions) if fractions else None,
            f"all_batch_{max(batches)}_meet_target": bool(fractions) and min(fractions) >= TARGET_COPY_FRACTION,
            **{f"attention_{mode}_speedup_vs_sdpa_median":
               statistics.median(r["speedup_vs_sdpa"] for r in attention_rows if r["mode"] == mode)
               for mode in modes},
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    print(json.dumps(result["summary"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
