"""Serving throughput and latency: Triton (``swin-trt serve``) with and without dynamic batching vs local infer.

A bounded tritonclient sweep (perf_analyzer's real wheels are not on the package index this project uses:
``pip install perf-analyzer`` resolves to a 2 kB placeholder, 0.1.0): for each concurrency in ``--concurrency``,
that many client threads, each with its own HTTP connection, send single-image requests (real photos, the
bundled demo images, as UINT8 pixels) back to back for ``--seconds``, after a warm-up. Per request: the
latency the client sees; per run: throughput, p50/p99, and from the server's statistics the mean batch it ran
(inferences / executions). Two servers run side by side, one with dynamic batching and one without, and their
runs alternate ``--repeats`` times (medians reported), so a machine whose load drifts slows both alike. The
same model runs locally for reference (ONNX Runtime in process as local ``infer`` runs it, with the server
instance's thread count, at batch 1 and at the server's max batch). Writes JSON (``--out``) and prints a table.

Example::

    python benchmarks/bench_serving.py --arch swin_demo --out benchmarks/results/serving.json
    python benchmarks/bench_serving.py --queue-delay-us 1000 --out benchmarks/results/serving_delay1000.json
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

from swin_trt.backends.onnxruntime import OnnxRuntimeBackend
from swin_trt.preprocess import Preprocessor
from swin_trt.export import export_model
from swin_trt.io import read_sidecar, write_json
from swin_trt.serving.model_info import describe_model
from swin_trt.serving.serve_repository import ServeOptions, write_serve_repository
from swin_trt.serving.server import Endpoints, TritonServer

DEMO_IMAGES = Path(__file__).resolve().parents[1] / "swin_trt" / "assets" / "demo_images"


def summary(latencies: list[float], elapsed: float) -> dict:
    ms = np.asarray(latencies) * 1000
    return {"requests": len(latencies), "throughput_ips": len(latencies) / elapsed,
            "latency_ms": {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99))}}


def local_run(backend, pixels: np.ndarray, preprocessor: Preprocessor, batch: int, seconds: float) -> dict:
    """Local infer's model call, back to back: normalise + ONNX Runtime, ``batch`` images per call."""
    batches = [pixels[i:i + batch] for i in range(0, len(pixels) - batch + 1, batch)]
    backend.infer_padded(preprocessor.normalize(batches[0]))
    latencies, start, index = [], time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        begin = time.perf_counter()
        backend.infer_padded(preprocessor.normalize(batches[index % len(batches)]))
        latencies.append(time.perf_counter() - begin)
        index += 1
    elapsed = time.perf_counter() - start
    result = summary(latencies, elapsed)
    result["throughput_ips"] *= batch  # images per second
    return result


def server_statistics(client, name: str) -> tuple[int, int]:
    stats = client.get_inference_statistics(name)["model_stats"][0]
    return int(stats["inference_count"]), int(stats["execution_count"])


def client_sweep(address: str, name: str, pixels: np.ndarray, concurrency: int, seconds: float,
                 warmup: float) -> dict:
    """``concurrency`` closed-loop clients sending one image per request for ``seconds`` (after ``warmup``)."""
    import tritonclient.http as httpclient

    stop_at = time.perf_counter() + warmup + seconds
    measure_from = time.perf_counter() + warmup
    latencies: list[float] = []
    lock = threading.Lock()

    def client(number: int) -> None:
        connection = httpclient.InferenceServerClient(address, network_timeout=60)
        mine, index = [], number
        try:
            while (now := time.perf_counter()) < stop_at:
                image = pixels[index % len(pixels)][None]
                tensor = httpclient.InferInput("pixels", list(image.shape), "UINT8")
                tensor.set_data_from_numpy(image)
                connection.infer(name, [tensor])
                if now >= measure_from:
                    mine.append(time.perf_counter() - now)
                index += concurrency
        finally:
            connection.close()
        with lock:
            latencies.extend(mine)

    stats_client = httpclient.InferenceServerClient(address)
    threads = [threading.Thread(target=client, args=(n,)) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    time.sleep(warmup)
    before = server_statistics(stats_client, name)
    for thread in threads:
        thread.join()
    after = server_statistics(stats_client, name)
    stats_client.close()
    result = summary(latencies, seconds)
    inferences, executions = after[0] - before[0], after[1] - before[1]
    result["server"] = {"inferences": inferences, "executions": executions,
                        "mean_batch": inferences / executions if executions else None}
    return result


def start_server(model: Path, workdir: Path, dynamic: bool, args, first_port: int) -> TritonServer:
    repository = workdir / ("dynamic" if dynamic else "single")
    options = ServeOptions("demo", max_batch=args.max_batch, dynamic_batching=dynamic,
                           queue_delay_us=args.queue_delay_us, instances=args.instances)
    write_serve_repository(describe_model(model), repository, options)
    endpoints = Endpoints("127.0.0.1", first_port, first_port + 1, first_port + 2)
    server = TritonServer(repository, endpoints, log_file=workdir / f"{repository.name}.log").start()
    server.wait_ready(120)
    return server


def median_run(runs: list[dict]) -> dict:
    """The run with the median throughput (its own latencies), plus every repeat's throughput."""
    ordered = sorted(runs, key=lambda run: run["throughput_ips"])
    return {**ordered[len(ordered) // 2], "throughput_repeats_ips": [run["throughput_ips"] for run in runs]}


def sweep(servers: dict[str, TritonServer], pixels: np.ndarray, args) -> dict[str, dict]:
    results: dict[str, dict] = {mode: {} for mode in servers}
    for concurrency in args.concurrency:
        runs: dict[str, list] = {mode: [] for mode in servers}
        for _ in range(args.repeats):
            for mode, server in servers.items():  # alternating: both modes see the same machine load
                runs[mode].append(client_sweep(f"127.0.0.1:{server.endpoints.http_port}", "demo", pixels,
                                               concurrency, args.seconds, args.warmup))
        for mode in servers:
            run = results[mode][str(concurrency)] = median_run(runs[mode])
            print(f"  {mode:>11}  c={concurrency:<3} {run['throughput_ips']:7.1f} img/s  "
                  f"p50 {run['latency_ms']['p50']:7.1f} ms  p99 {run['latency_ms']['p99']:7.1f} ms  "
                  f"mean batch {run['server']['mean_batch'] or 0:.2f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="swin_demo")
    parser.add_argument("--model", type=Path, help="An exported .onnx (default: export --arch with a dynamic batch).")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--queue-delay-us", type=int, default=0)
    parser.add_argument("--instances", type=int, default=1)
    parser.add_argument("--first-port", type=int, default=18100, help="Six ports from here (two servers).")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serving.json"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-serving-") as temporary:
        workdir = Path(temporary)
        model = args.model
        if model is None:
            model = workdir / f"{args.arch}.onnx"
            export_model(args.arch, model, dynamic_batch=args.max_batch, check=False)
        preprocessor = Preprocessor.from_sidecar(read_sidecar(model))
        photos = sorted(DEMO_IMAGES.glob("*/*.png"))
        pixels = np.stack([preprocessor.to_uint8(Image.open(p)) for p in photos])  # (N, H, W, 3)
        wire = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))

        print(f"local (ONNX Runtime in process, as `swin-trt infer` sets it up; {args.seconds:.0f} s x "
              f"{args.repeats}):", flush=True)
        local = {}
        threads = max(1, (os.cpu_count() or 1) // args.instances)  # what each server instance gets
        with OnnxRuntimeBackend(model, threads=threads, spinning=False) as backend:
            for batch in (1, args.max_batch):
                runs = [local_run(backend, pixels, preprocessor, batch, args.seconds) for _ in range(args.repeats)]
                local[f"batch{batch}"] = run = median_run(runs)
                print(f"  batch {batch:<3} {run['throughput_ips']:7.1f} img/s  p50 {run['latency_ms']['p50']:7.1f} ms"
                      f"  p99 {run['latency_ms']['p99']:7.1f} ms (per call)", flush=True)
        print("Triton (swin-trt serve), single-image requests:", flush=True)
        servers = {"dynamic": start_server(model, workdir, True, args, args.first_port),
                   "no batching": start_server(model, workdir, False, args, args.first_port + 3)}
        try:
            results = sweep(servers, wire, args)
        finally:
            for server in servers.values():
                server.stop()
    dynamic = {"queue_delay_us": args.queue_delay_us, "runs": results["dynamic"]}
    single = {"queue_delay_us": None, "runs": results["no batching"]}

    gain = {c: dynamic["runs"][c]["throughput_ips"] / single["runs"][c]["throughput_ips"] for c in dynamic["runs"]}
    print("dynamic batching gain (throughput): " + "  ".join(f"c={c}: {g:.2f}x" for c, g in gain.items()))
    write_json(args.out, {
        "benchmark": "serving", "model": args.model.name if args.model else args.arch,
        "client": "tritonclient HTTP, closed loop, one image per request, one connection per client",
        "max_batch": args.max_batch, "instances": args.instances, "ort_threads": threads, "seconds": args.seconds, "repeats": args.repeats,
        "machine": {"cpus": os.cpu_count(), "load_avg": list(os.getloadavg()), "python": platform.python_version(),
                    "platform": platform.platform()},
        "local": local, "triton_dynamic_batching": dynamic, "triton_no_batching": single,
        "dynamic_batching_gain": gain,
    })
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
