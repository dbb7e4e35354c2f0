"""What a Video Swin clip costs on the CPU as the clip grows: time per clip against T and H x W.

Video Swin's attention is windowed, so its cost should grow with the number of tokens (T/2 x H/4 x W/4 patches),
not with their square, as long as the windows are full. Each size is exported (random weights, the arch's own
config), run by ONNX Runtime on the CPU as exported, on one thread, and its CPU time per clip taken over
``--runs`` runs after a warm-up (CPU time, not wall time: other jobs on a shared machine lengthen the wall time
of a run, not the work it does); the figure that matters is the CPU time per token relative to the smallest
clip. The rewritten graph (plugin ops lowered for the CPU) is timed beside the export at each size.
Then what ``swin-trt infer`` adds on top of the model per clip (decode, preprocessing, the rolling buffer), on
the video demo model over its bundled clips joined into one video (:func:`measure_infer`).

    python benchmarks/bench_video_cost.py --arch swin3d_t --out benchmarks/results/video_cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

# (T, H, W): T grows at 112 x 112, then H x W grows at T = 8
SIZES = [(8, 112, 112), (16, 112, 112), (32, 112, 112), (8, 160, 160), (8, 224, 224)]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def median_cpu_seconds(session, x: np.ndarray, runs: int) -> float:
    """The median CPU time of one run: one thread, no spinning, so other jobs on the machine lengthen the wall
    time, not this."""
    name = session.get_inputs()[0].name
    session.run(None, {name: x})  # warm-up
    times = []
    for _ in range(runs):
        start = time.process_time()
        session.run(None, {name: x})
        times.append(time.process_time() - start)
    return statistics.median(times)


def measure(arch: str, sizes, runs: int, workdir: Path) -> list[dict]:
    from swin_trt.backends.onnxruntime import create_session
    from swin_trt.export import ExportOptions, ExportStage
    from swin_trt.models.registry import get_arch
    from swin_trt.surgery.rewrite import rewrite

    patch = get_arch(arch).config.patch_size
    rows = []
    for frames, height, width in sizes:
        path = workdir / f"{arch}_{frames}x{height}x{width}.onnx"
        ExportStage(path, ExportOptions(arch, img_size=(height, width), clip_len=frames, check=False)).run()
        source = onnx.load(path)
        rewritten, _ = rewrite(source, fuse_attention=True)
        x = np.random.default_rng(0).standard_normal((1, 3, frames, height, width)).astype(np.float32)
        tokens = (frames // patch[0]) * (height // patch[1]) * (width // patch[2])
        row = {"clip": [frames, height, width], "tokens": tokens}
        for name, model in (("export", source), ("rewritten", rewritten)):
            session = create_session(model, threads=1, spinning=False)
            row[f"{name}_s"] = round(median_cpu_seconds(session, x, runs), 4)
        row["us_per_token"] = round(1e6 * row["export_s"] / tokens, 2)
        log(f"{frames}x{height}x{width}: {tokens} tokens, CPU time export {row['export_s'] * 1e3:.0f} ms, "
            f"rewritten {row['rewritten_s'] * 1e3:.0f} ms, {row['us_per_token']} us/token")
        rows.append(row)
    base = rows[0]["us_per_token"]
    for row in rows:
        row["per_token_vs_first"] = round(row["us_per_token"] / base, 3)
        row["rewritten_vs_export"] = round(row["rewritten_s"] / row["export_s"], 3)
    return rows


def joined_video(path: Path, repeats: int = 2) -> int:
    """The bundled demo clips, one after another (``repeats`` times), as one H.264 video; returns its frames."""
    import av

    from swin_trt.models.demo import demo_video_clips_dir
    from swin_trt.video.codecs import add_video_stream

    clips = sorted(demo_video_clips_dir().rglob("*.mp4")) * repeats
    count = 0
    with av.open(str(path), "w", format="mp4") as out:
        stream = add_video_stream(out, 64, 64, 8)
        for clip in clips:
            with av.open(str(clip)) as source:
                for frame in source.decode(video=0):
                    picture = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
                    picture.pts = count
                    out.mux(stream.encode(picture))
                    count += 1
        out.mux(stream.encode(None))
    return count


def measure_infer(workdir: Path, runs: int) -> dict:
    """What ``swin-trt infer`` adds on top of the model for a clip model: its per-clip latency (from the clip's last
    frame to its result: the frame's preprocessing, the buffer, the call, the JSON line) against the model's own
    call on the same clip size, on ``swin3d_demo`` over a file at stride 8 (clips back to back)."""
    import subprocess

    from swin_trt.export import ExportOptions, ExportStage

    model = workdir / "swin3d_demo.onnx"
    ExportStage(model, ExportOptions("swin3d_demo", check=False)).run()
    video = workdir / "joined.mp4"
    frames = joined_video(video)
    lines = workdir / "clips.jsonl"
    run = subprocess.run([sys.executable, "-c", "from swin_trt.cli.main import main; main()", "infer", str(video),
                          "-m", str(model), "--clip-stride", "8", "--out", str(lines)],
                         check=True, capture_output=True, text=True)
    latencies = sorted(json.loads(line)["latency_ms"] for line in lines.read_text().splitlines())
    # the model's own share, in the same run: infer's "time s: ... infer X" over the clips it predicted
    times = re.search(r"time s: decode ([\d.]+)\s+preprocess ([\d.]+)\s+infer ([\d.]+)", run.stdout + run.stderr)
    in_run_ms = 1e3 * float(times.group(3)) / len(latencies)
    p50, p95 = latencies[len(latencies) // 2], latencies[int(0.95 * (len(latencies) - 1))]
    log(f"infer: {len(latencies)} clips of {frames} frames, latency p50 {p50:.1f} ms p95 {p95:.1f} ms; the model "
        f"{in_run_ms:.1f} ms per clip in the same run: infer adds {p50 - in_run_ms:.1f} ms")
    return {"arch": "swin3d_demo", "clips": len(latencies), "frames": frames, "clip_stride": 8,
            "latency_p50_ms": round(p50, 2), "latency_p95_ms": round(p95, 2),
            "model_in_run_mean_ms": round(in_run_ms, 2),
            "added_p50_ms": round(p50 - in_run_ms, 2)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="swin3d_t")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default=None, help="T,H,W;T,H,W;... (default: the module's SIZES)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    sizes = SIZES if args.sizes is None else [tuple(int(v) for v in s.split(",")) for s in args.sizes.split(";") if s]
    import onnxruntime
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        rows = measure(args.arch, sizes, args.runs, Path(tmp)) if sizes else []
        infer = measure_infer(Path(tmp), args.runs)
    result = {"arch": args.arch, "runs": args.runs, "rows": rows, "infer": infer,
              "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                          "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
                          "load_average": os.getloadavg()}}
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
