"""The real Triton Inference Server that PyPI's ``nvidia-pytriton`` ships: found, started, checked, stopped.

swin-trt drives the bundled ``tritonserver`` binary directly, with a plain Python-backend model repository
(:mod:`.serve_repository`), rather than through PyTriton's ``Triton.bind``. Two findings decided it:

1. ``'_thread.RLock' object has no attribute '_recursion_count'`` at model initialisation is a Python
   mismatch, not a PyTriton bug. The Python backend's stub (``triton_python_backend_stub``) links
   ``libpython3.X.so.1.0`` by name and gets whichever the dynamic loader finds first: on Debian 12 the
   system's 3.11.2, while the site-packages and standard library it imports are those of the interpreter
   running swin-trt (here pyenv's 3.11.7). 3.11.7's ``multiprocessing.resource_tracker`` calls
   ``RLock._recursion_count()``, which 3.11.2's C ``RLock`` lacks. Fix: put this interpreter's own
   ``LIBDIR`` first on ``LD_LIBRARY_PATH`` (:func:`server_environment`); the stub then runs 3.11.7.
2. The stub's numpy conversions (``Tensor.as_numpy()``, ``pb_utils.Tensor(name, array)``) are compiled
   against numpy 1's array-descriptor layout: under numpy 2 inputs read back wrong and outputs come back
   empty. PyTriton therefore pins ``numpy<2`` and passes tensors through exactly those calls. swin-trt's
   model moves tensors with DLPack instead (:mod:`.triton_model`), which works with numpy 1 and 2.

The stub finds its site-packages through the ``python3`` on ``PATH`` and ignores ``PYTHONPATH``, so the
server starts with this interpreter's folder first on ``PATH``; the generated ``model.py`` puts this
checkout's ``swin_trt`` on ``sys.path`` itself.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError

INSTALL_HINT = "pip install 'swin-trt[serve]' (PyPI's nvidia-pytriton ships the server, Linux x86_64/aarch64)"
DEFAULT_PORTS = (8000, 8001, 8002)  # Triton's own defaults: HTTP, gRPC, metrics
EXIT_TIMEOUT_S = 5  # how long tritonserver lets in-flight requests and open connections finish after SIGTERM


@dataclass(frozen=True)
class TritonInstall:
    binary: Path  # tritonserver
    python_backend: Path  # folder with libtriton_python.so and triton_python_backend_utils.py
    stub: Path  # triton_python_backend_stub built for this Python version


def find_triton() -> TritonInstall:
    """The server that ``nvidia-pytriton`` installed, or a UserError that says how to get it."""
    if sys.platform != "linux":
        raise UserError(f"the Triton Inference Server runs on Linux (this is {platform.system()}): serve from a "
                        f"Linux machine or container")
    spec = importlib.util.find_spec("pytriton")  # located, not imported: its __init__ needs PyTriton's own deps
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the Triton Inference Server is not installed: {INSTALL_HINT}")
    root = Path(list(spec.submodule_search_locations)[0]) / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    install = TritonInstall(root / "bin" / "tritonserver", root / "backends" / "python",
                            root / "python_backend_stubs" / version / "triton_python_backend_stub")
    if not install.binary.is_file():
        raise UserError(f"nvidia-pytriton is installed but has no server binary at {install.binary} (a wheel for "
                        f"another platform?): reinstall it, {INSTALL_HINT}")
    if not install.stub.is_file():
        have = sorted(p.name for p in (root / "python_backend_stubs").glob("*"))
        raise UserError(f"nvidia-pytriton has no Python-backend stub for Python {version} (it has {', '.join(have)}):"
                        f" run swin-trt serve with one of those Python versions")
    return install


def server_environment(environ: dict | None = None) -> dict:
    """The environment for ``tritonserver`` so that its Python-backend stubs run *this* Python (see above)."""
    env = dict(os.environ if environ is None else environ)
    libdir = sysconfig.get_config_var("LIBDIR")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and libdir:
        env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (libdir, env.get("LD_LIBRARY_PATH")) if p)
    env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH")) if p)
    return env


@dataclass(frozen=True)
class Endpoints:
    """Where the server listens. ``address`` 127.0.0.1 keeps it on this machine; 0.0.0.0 opens it to all."""

    address: str = "127.0.0.1"
    http_port: int = DEFAULT_PORTS[0]
    grpc_port: int = DEFAULT_PORTS[1]
    metrics_port: int = DEFAULT_PORTS[2]

    @property
    def local_host(self) -> str:
        """The host a client on this machine uses (a wildcard bind is reached through loopback)."""
        return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.address, self.address)

    def url(self, scheme: str = "http") -> str:
        host = f"[{self.local_host}]" if ":" in self.local_host else self.local_host
        port = {"http": self.http_port, "grpc": self.grpc_port, "metrics": self.metrics_port}[scheme]
        return f"{'http' if scheme == 'metrics' else scheme}://{host}:{port}"

    def arguments(self) -> list[str]:
        return [f"--http-address={self.address}", f"--http-port={self.http_port}",
                f"--grpc-address={self.address}", f"--grpc-port={self.grpc_port}",
                f"--metrics-address={self.address}", f"--metrics-port={self.metrics_port}"]


class TritonServer:
    """One ``tritonserver`` process serving ``repository``; a context manager that always stops it.

    The server runs in its own process group with its Python-backend stubs, so :meth:`stop` (SIGTERM, then
    SIGKILL for anything still there) leaves no process behind.
    """

    def __init__(self, repository: str | Path, endpoints: Endpoints = Endpoints(), *, gpu: bool = False,
                 backend_config: tuple[str, ...] = (), log_file: str | Path | None = None, verbose: bool = False):
        self.repository = Path(repository).resolve()
        self.endpoints = endpoints
        self.gpu, self.backend_config, self.verbose = gpu, tuple(backend_config), verbose
        self.log_file = Path(log_file) if log_file else None
        self.process: subprocess.Popen | None = None
        self._backends: Path | None = None

    def command(self, install: TritonInstall, backends: Path) -> list[str]:
        command = [str(install.binary), f"--model-repository={self.repository}", f"--backend-directory={backends}",
                   *self.endpoints.arguments(), "--disable-auto-complete-config", "--strict-readiness=true",
                   f"--exit-timeout-secs={EXIT_TIMEOUT_S}", f"--log-verbose={1 if self.verbose else 0}"]
        if not self.gpu:  # quiet on a CPU machine: no NVML, no pinned or CUDA memory pools to fail to create
            command += ["--allow-gpu-metrics=false", "--pinned-memory-pool-byte-size=0",
                        "--cuda-memory-pool-byte-size=0:0"]
        command += [f"--backend-config={setting}" for setting in self.backend_config]
        return command

    def start(self) -> "TritonServer":
        install = find_triton()
        # Triton takes backends from one folder: ours links the Python backend and this Python's stub.
        self._backends = Path(tempfile.mkdtemp(prefix="swin-trt-triton-backends-"))
        python = self._backends / "python"
        python.mkdir()
        for source in (install.python_backend / "libtriton_python.so",
                       install.python_backend / "triton_python_backend_utils.py", install.stub):
            (python / source.name).symlink_to(source)
        output = open(self.log_file, "ab") if self.log_file else None
        try:
            self.process = subprocess.Popen(self.command(install, self._backends), env=server_environment(),
                                            stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                            start_new_session=True)
        finally:
            if output is not None:
                output.close()
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoints.url('http')}/v2/health/ready", timeout=1) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until ``/v2/health/ready`` answers 200; a server that exits or takes too long is an error."""
        deadline = time.monotonic() + timeout
        while not self.ready():
            status = self.process.poll() if self.process else None
            if status is not None:
                self.stop()
                raise UserError(f"tritonserver exited with status {status} while starting{self._log_hint()}: a "
                                f"port already in use (`http_port`/`grpc_port`/`metrics_port`) or a model that "
                                f"failed to load are the usual causes")
            if time.monotonic() > deadline:
                self.stop()
                raise UserError(f"tritonserver was not ready after {timeout:.0f} s{self._log_hint()}: a slow model "
                                f"load needs a longer `timeout`")
            time.sleep(0.2)

    def _log_hint(self) -> str:
        if self.log_file is None or not self.log_file.is_file():
            return " (its log is above)"
        lines = self.log_file.read_text(errors="replace").splitlines()
        errors = [line for line in lines if line.startswith("E")] or lines[-5:]
        return " (from its log " + str(self.log_file) + ": " + " | ".join(errors[-3:]) + ")"

    def poll(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def stop(self) -> int | None:
        """SIGTERM (Triton finishes in-flight requests), then SIGKILL whatever of its group is left."""
        process, self.process = self.process, None
        status = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                status = process.wait(timeout=EXIT_TIMEOUT_S + 10)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(process.pid, signal.SIGKILL)  # stubs of a server that could not stop them
            except (ProcessLookupError, PermissionError):
                pass
            if status is None:
                status = process.wait()
        if self._backends is not None:
            shutil.rmtree(self._backends, ignore_errors=True)
            self._backends = None
        return status

    def __enter__(self) -> "TritonServer":
        return self.start() if self.process is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
