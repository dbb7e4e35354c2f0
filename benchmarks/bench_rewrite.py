"""Swin forward on ONNX Runtime (CPU): the exported graph vs the rewritten graph with plugin nodes.

The plugin nodes run through their CPU implementation (lowered to standard ONNX ops), so the rewritten
graph should cost about what the original does (target: within 2x). Also times the rewrite itself.

    python benchmarks/bench_rewrite.py --arch swin_tiny --runs 20 --out benchmarks/results/rewrite.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from swin_trt.backends.onnxruntime import create_session
from swin_trt.export import export_model
from swin_trt.io import write_json
from swin_trt.surgery.rewrite import rewrite


def timed_runs(session, x, runs: int) -> list[float]:
    name = session.get_inputs()[0].name
    session.run(None, {name: x})  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - start)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="swin_tiny")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: ORT's default)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rewrite.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_model(args.arch, path, batch=args.batch, check=False)
        original = onnx.load(str(path))
    start = time.perf_counter()
    rewritten, report = rewrite(original, fuse_attention=True)  # every plugin family, as measured
    rewrite_seconds = time.perf_counter() - start

    options = ort.SessionOptions()
    if args.threads:
        options.intra_op_num_threads = args.threads
    shape = [d.dim_value for d in original.graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    base = ort.InferenceSession(original.SerializeToString(), options, providers=["CPUExecutionProvider"])
    plugged = create_session(rewritten, threads=args.threads or None)
    # Interleave the two so that drift of a shared machine hits both alike; compare medians pairwise.
    base_times, plugged_times = [], []
    for _ in range(3):
        base_times += timed_runs(base, x, args.runs // 3 or 1)
        plugged_times += timed_runs(plugged, x, args.runs // 3 or 1)
    error = float(np.abs(base.run(None, {"input": x})[0] - plugged.run(None, {"input": x})[0]).max())
    result = {
        "arch": args.arch, "batch": args.batch, "runs": len(base_times),
        "machine": {"processor": platform.processor() or platform.machine(), "python": platform.python_version(),
                    "onnxruntime": ort.__version__},
        "original_ms": {"median": 1e3 * statistics.median(base_times), "min": 1e3 * min(base_times)},
        "rewritten_ms": {"median": 1e3 * statistics.median(plugged_times), "min": 1e3 * min(plugged_times)},
        "ratio_rewritten_over_original": statistics.median(plugged_times) / statistics.median(base_times),
        "max_abs_err": error,
        "rewrite_seconds": rewrite_seconds,
        "plugins": report.counts(),
        "nodes": {"before": sum(report.ops_before.values()), "after": sum(report.ops_after.values())},
    }
    write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
