"""``swin-trt serve`` and ``infer --server`` against a real Triton Inference Server (nvidia-pytriton's binary).

Loopback only, every wait bounded, every server stopped at the end (and checked to leave no process behind).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from swin_trt.preprocess import Preprocessor
from swin_trt.export import export_model
from swin_trt.io import read_sidecar

from conftest import rounding_atol

DEMO_IMAGES = Path(__file__).resolve().parents[1] / "swin_trt" / "assets" / "demo_images"
CLI = [sys.executable, "-c", "from swin_trt.cli import main; main()"]
READY_TIMEOUT_S = 120


def _server_available() -> str | None:
    try:
        from swin_trt.serving.server import find_triton

        find_triton()
        import tritonclient.http  # noqa: F401
    except Exception as exc:  # UserError (not installed) or ImportError (no client)
        return str(exc)
    return None


pytestmark = pytest.mark.skipif(_server_available() is not None,
                                reason=f"Triton server or client missing: {_server_available()}")


def free_ports(count: int = 3) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


class Served:
    """``swin-trt serve`` in a subprocess (its own process group), with its ports and repository."""

    def __init__(self, model: Path, repository: Path, *extra):
        self.http, self.grpc, self.metrics = free_ports()
        self.repository = repository
        self.log = repository.parent / f"{repository.name}.log"
        self.process = subprocess.Popen(
            [*CLI, "serve", str(model), "--name", "demo", "--repository", str(repository),
             "--http-port", str(self.http), "--grpc-port", str(self.grpc), "--metrics-port", str(self.metrics), *extra],
            stdout=open(self.log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not self.ready():
            assert self.process.poll() is None, f"serve exited:\n{self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"not ready in {READY_TIMEOUT_S} s:\n{self.log.read_text()[-3000:]}"
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/v2/health/ready", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def statistics(self) -> dict:
        with urllib.request.urlopen(f"{self.url}/v2/models/demo/stats", timeout=5) as answer:
            return json.loads(answer.read())["model_stats"][0]

    def stop(self) -> int:
        """SIGTERM, as a service manager would; returns serve's exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        finally:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)  # only reached with something left to kill
            except ProcessLookupError:
                pass

    def leftovers(self) -> list[str]:
        """Processes whose command line names this server's repository (tritonserver, its stubs)."""
        found = []
        for entry in Path("/proc").iterdir():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(self.repository) in command and entry.name.isdigit() and int(entry.name) != os.getpid():
                found.append(f"{entry.name}: {command[:200]}")
        return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("served") / "demo.onnx"
    export_model("swin_demo", path, dynamic_batch=8, check=False)
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """The 96 bundled demo images in one folder (infer takes a flat folder)."""
    folder = tmp_path_factory.mktemp("demo_images")
    for path in sorted(DEMO_IMAGES.glob("*/*.png")):
        (folder / f"{path.parent.name}_{path.name}").symlink_to(path)
    return folder


@pytest.fixture(scope="module")
def server(demo, tmp_path_factory):
    # A long queue delay makes the batching test's outcome certain, not a matter of timing.
    served = Served(demo, tmp_path_factory.mktemp("repository") / "models", "--max-queue-delay-us", "20000")
    yield served
    assert served.stop() == 0, served.log.read_text()[-3000:]
    assert served.leftovers() == []


def pixels_of(demo: Path, count: int) -> np.ndarray:
    preprocessor = Preprocessor.from_sidecar(read_sidecar(demo))
    paths = sorted(DEMO_IMAGES.glob("*/000.png"))[:count]
    return np.stack([preprocessor.to_uint8(Image.open(p)) for p in paths])  # (N, H, W, 3)


def test_serve_answers_kserve_v2_requests(server, demo):
    """Plain KServe v2 JSON over HTTP (no tritonclient): metadata, config, and logits equal to ONNX Runtime's."""
    from swin_trt.backends.onnxruntime import OnnxRuntimeBackend

    with urllib.request.urlopen(f"{server.url}/v2/models/demo", timeout=5) as answer:
        metadata = json.loads(answer.read())
    assert metadata["inputs"] == [{"name": "pixels", "datatype": "UINT8", "shape": [-1, 3, 112, 112]}]
    assert metadata["outputs"][0]["name"] == "logits"
    with urllib.request.urlopen(f"{server.url}/v2/models/demo/config", timeout=5) as answer:
        config = json.loads(answer.read())
    assert config["backend"] == "python" and config["max_batch_size"] == 8 and "dynamic_batching" in config

    pixels = pixels_of(demo, 3)
    nchw = np.ascontiguousarray(pixels.transpose(0, 3, 1, 2))
    body = {"inputs": [{"name": "pixels", "shape": list(nchw.shape), "datatype": "UINT8",
                        "data": nchw.ravel().tolist()}]}
    request = urllib.request.Request(f"{server.url}/v2/models/demo/infer", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        output = json.loads(answer.read())["outputs"][0]
    logits = np.asarray(output["data"], dtype=np.float32).reshape(output["shape"])
    preprocessor = Preprocessor.from_sidecar(read_sidecar(demo))
    with OnnxRuntimeBackend(demo) as local:
        expected = local.infer(preprocessor.normalize(pixels))[0]
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def _infer_cli(*args, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "infer", *map(str, args)], capture_output=True, text=True, timeout=timeout)


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("scheme", ["http", "grpc"])
def test_infer_server_gives_the_same_top1_as_local_infer(server, demo, images, tmp_path, scheme):
    local, remote = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
    done = _infer_cli(images, "--model", demo, "--out", local)
    assert done.returncode == 0, done.stderr
    url = server.url if scheme == "http" else f"grpc://127.0.0.1:{server.grpc}"
    done = _infer_cli(images, "--server", url, "--batch", 4, "--out", remote)
    assert done.returncode == 0, done.stderr
    assert "frames 96" in done.stderr and "p50/p95/p99" in done.stderr  # the same statistics as local infer
    here, there = _lines(local), _lines(remote)
    assert len(there) == len(here) == 96
    for a, b in zip(here, there):
        assert (a["index"], a["name"], a["classes"]) == (b["index"], b["name"], b["classes"])
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-4)
    assert here[0]["classes"][0] in {"astronaut", "brick", "cat"}  # real class names came from the server


def test_four_concurrent_clients_are_answered_and_batched(server, demo):
    import tritonclient.http as httpclient

    pixels = np.ascontiguousarray(pixels_of(demo, 8).transpose(0, 3, 1, 2))
    before = server.statistics()
    answers: dict[int, list] = {}

    def client(number: int) -> None:
        connection = httpclient.InferenceServerClient(f"127.0.0.1:{server.http}", network_timeout=60)
        try:
            results = []
            for image in pixels:
                tensor = httpclient.InferInput("pixels", [1, *image.shape], "UINT8")
                tensor.set_data_from_numpy(image[None])
                results.append(connection.infer("demo", [tensor]).as_numpy("logits"))
            answers[number] = results
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(answers) == [0, 1, 2, 3] and all(len(r) == 8 for r in answers.values())
    for results in answers.values():  # every client got the same logits for the same images
        np.testing.assert_allclose(np.concatenate(results), np.concatenate(answers[0]), rtol=0,
                                   atol=rounding_atol(np.concatenate(answers[0])))  # batched differently
    after = server.statistics()
    inferences = after["inference_count"] - before["inference_count"]
    executions = after["execution_count"] - before["execution_count"]
    assert inferences == 32
    assert executions < inferences, f"no batching: {executions} executions for {inferences} inferences"


def test_infer_server_down_is_a_clear_error(images, tmp_path):
    (port,) = free_ports(1)
    done = _infer_cli(images, "--server", f"http://127.0.0.1:{port}", "--out", tmp_path / "p.jsonl", timeout=60)
    assert done.returncode == 2 and "cannot reach a Triton server" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "p.jsonl").exists()


def test_server_that_goes_away_keeps_lines_and_sigterm_leaves_nothing(demo, tmp_path):
    from swin_trt.video.synth import make_pan_zoom_video

    clip = make_pan_zoom_video(tmp_path / "long.mp4", frames=3000, size=(160, 120), fps=25)
    served = Served(demo, tmp_path / "models")
    out = tmp_path / "preds.jsonl"
    client = subprocess.Popen([*CLI, "infer", str(clip), "--server", served.url, "--out", str(out)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while served.statistics()["inference_count"] < 16:  # the client is well under way
            assert client.poll() is None, client.communicate()[1]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert served.stop() == 0, served.log.read_text()[-3000:]
        assert served.leftovers() == []  # no tritonserver, no Python-backend stub
        _, stderr = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
        served.stop()
    assert client.returncode == 2, stderr
    assert "did not answer" in stderr and "were kept" in stderr and "Traceback" not in stderr
    lines = _lines(out)
    assert 16 <= len(lines) < 3000
    assert [line["index"] for line in lines] == list(range(len(lines)))  # in order, none missing


@pytest.mark.tensorrt
@pytest.mark.gpu
def test_serve_engine_with_plugins_matches_local_infer(demo, images, tmp_path):
    """On a GPU: the rewritten demo model as a TensorRT engine with swin-trt's plugins, served and asked."""
    pytest.importorskip("tensorrt", reason="TensorRT is not installed")
    pytest.importorskip("pycuda.driver", reason="pycuda is not installed")
    from swin_trt.engine import build_engine
    from swin_trt.device import gpu_info
    from swin_trt.errors import UserError
    from swin_trt.plugin_library import find_plugin_library
    from swin_trt.surgery.rewrite_stage import rewrite_file

    if gpu_info() is None:
        pytest.skip("no CUDA GPU")
    try:
        library = find_plugin_library()
    except UserError as exc:
        pytest.skip(f"plugin library not built: {exc}")
    rewritten = tmp_path / "demo.rewritten.onnx"
    rewrite_file(demo, rewritten)
    engine = build_engine(rewritten, tmp_path / "demo.engine", plugins=library, tf32=False, progress=False).path
    served = Served(engine, tmp_path / "models")
    try:
        local, remote = tmp_path / "local.jsonl", tmp_path / "remote.jsonl"
        assert _infer_cli(images, "--model", demo, "--out", local).returncode == 0
        done = _infer_cli(images, "--server", served.url, "--batch", 8, "--out", remote)
        assert done.returncode == 0, done.stderr
        assert [l["classes"][0] for l in _lines(local)] == [l["classes"][0] for l in _lines(remote)]
    finally:
        assert served.stop() == 0
    assert served.leftovers() == []
