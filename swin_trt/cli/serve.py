"""``swin-trt serve``."""

from __future__ import annotations

import shutil
import signal
import tempfile
import threading
from pathlib import Path

import click

from ..errors import UserError
from ..serving.server import DEFAULT_PORTS, Endpoints


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="The model's name on the server (default: from the file name, e.g. demo_int8).")
@click.option("--address", default="127.0.0.1", show_default=True,
              help="Address the HTTP, gRPC and metrics services bind to: 127.0.0.1 serves this machine only, "
                   "0.0.0.0 every network interface.")
@click.option("--http-port", type=click.IntRange(1, 65535), default=DEFAULT_PORTS[0], show_default=True)
@click.option("--grpc-port", type=click.IntRange(1, 65535), default=DEFAULT_PORTS[1], show_default=True)
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=DEFAULT_PORTS[2], show_default=True,
              help="Prometheus metrics at http://ADDRESS:PORT/metrics.")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True,
              help="Largest batch Triton forms from queued requests (and accepts in one request).")
@click.option("--max-queue-delay-us", type=click.IntRange(min=0), default=0, show_default=True,
              help="How long a request may wait for others to join its batch, in microseconds. At 0, requests "
                   "that queue while an instance is busy still run together; more trades latency for batch size.")
@click.option("--no-dynamic-batching", is_flag=True, help="Run every request on its own (for comparison).")
@click.option("--instances", type=click.IntRange(min=1), default=1, show_default=True,
              help="Model instances (processes) running batches in parallel.")
@click.option("--threads", type=click.IntRange(min=1),
              help="ONNX Runtime threads per instance (default: the CPU cores shared out among the instances).")
@click.option("--plugins", type=click.Path(dir_okay=False, path_type=Path),
              help="Engines: the plugin library (default: the one the engine was built with, from its manifest).")
@click.option("--repository", type=click.Path(file_okay=False, path_type=Path),
              help="Write the Triton model repository here and keep it (default: a temporary folder).")
@click.option("--startup-timeout", type=click.FloatRange(min=1), default=120.0, show_default=True,
              help="Seconds to wait for the server to be ready.")
@click.option("--verbose", is_flag=True, help="Triton's verbose log.")
def serve(model, name, address, http_port, grpc_port, metrics_port, max_batch, max_queue_delay_us,
          no_dynamic_batching, instances, threads, plugins, repository, startup_timeout, verbose):
    """Serve MODEL with NVIDIA's Triton Inference Server until SIGTERM or Ctrl-C.

    MODEL is an .onnx (run by swin-trt's ONNX Runtime backend, on the CPU) or a TensorRT .engine (on the GPU,
    with the plugin library loaded). Triton (from PyPI's nvidia-pytriton) answers KServe v2 over HTTP and
    gRPC, batches queued requests together (dynamic batching) and exports Prometheus metrics;
    /v2/health/ready answers 200 once the model is loaded.

    \b
    Input `pixels`: UINT8 [batch, 3, H, W], RGB, resized and centre-cropped as
    the model's sidecar says (`swin-trt infer --server` does that); the server
    normalises. Output `logits`: FP32 [batch, classes]. Class names and
    preprocessing are in the model's config (parameter swin_trt).

    \b
    Examples:
      swin-trt serve out/demo.onnx
      swin-trt serve out/model.engine --address 0.0.0.0 --max-batch 16 --instances 2
      swin-trt infer clip.mp4 --server http://127.0.0.1:8000
    """
    from ..serving.model_info import describe_model
    from ..serving.serve_repository import ServeOptions, model_name_for, write_serve_repository
    from ..serving.server import TritonServer, find_triton

    ports = {"--http-port": http_port, "--grpc-port": grpc_port, "--metrics-port": metrics_port}
    if len(set(ports.values())) != 3:
        raise UserError(f"{', '.join(f'{k} {v}' for k, v in ports.items())}: the three services need three ports")
    find_triton()  # a missing server says how to install it before any work
    info = describe_model(model)
    name = name or model_name_for(model)
    options = ServeOptions(name, max_batch, not no_dynamic_batching, max_queue_delay_us, instances, threads,
                           str(plugins.resolve()) if plugins else None)
    workdir = None if repository else Path(tempfile.mkdtemp(prefix="swin-trt-serve-"))
    repository = repository or workdir / "models"
    write_serve_repository(info, repository, options)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    endpoints = Endpoints(address, http_port, grpc_port, metrics_port)
    server = TritonServer(repository, endpoints, gpu=info.kind == "engine", verbose=verbose)
    try:
        server.start()
        server.wait_ready(startup_timeout)
        batching = "off" if no_dynamic_batching else f"max batch {max_batch}, queue delay {max_queue_delay_us} us"
        click.echo(f"serving {name!r} ({model}, {info.kind}, {instances} instance(s), dynamic batching {batching})\n"
                   f"  HTTP {endpoints.url('http')}  gRPC {endpoints.url('grpc')}  "
                   f"metrics {endpoints.url('metrics')}/metrics\n"
                   f"  try: swin-trt infer IMAGES --server {endpoints.url('http')}\n"
                   f"  SIGTERM or Ctrl-C stops it", err=True)
        while not stop.wait(0.5):
            status = server.poll()
            if status is not None:
                raise UserError(f"tritonserver exited with status {status} (its log is above)")
    finally:
        server.stop()
        if workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)
    click.echo("stopped", err=True)
