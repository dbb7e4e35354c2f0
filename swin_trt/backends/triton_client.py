"""A Triton Inference Server as a backend: ``swin-trt infer SOURCE --server URL``.

Decoding and preprocessing stay in the client; batches travel to the server (KServe v2 over HTTP, or gRPC
with ``grpc://``). :meth:`TritonClientBackend.submit` sends a batch from a small thread pool and returns at
once, so the video loop keeps several requests in flight and one client keeps the server busy; each thread
has its own connection (tritonclient's clients are not shared across threads). Every call has a time-out;
a server that refuses, fails or stops answering raises :class:`~swin_trt.backends.base.BackendUnavailable`.

The model's preprocessing and class names come from the server itself: every model swin-trt serves or
packages carries them in its config (:mod:`swin_trt.triton_config`). A model that takes UINT8
receives 0..255 pixels (normalised on the server or in the graph); FP32/FP16 models receive normalised floats.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from urllib.parse import urlsplit

import numpy as np

from ..errors import UserError
from .base import Backend, BackendUnavailable

PROTOCOLS = {"http": 8000, "grpc": 8001}
MAX_IN_FLIGHT = 32


def parse_server_url(url: str) -> tuple[str, str]:
    """``http://host:port``, ``grpc://host:port`` or ``host[:port]`` (HTTP) -> (protocol, ``host:port``)."""
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme not in PROTOCOLS or not parts.hostname or parts.path not in ("", "/"):
        raise UserError(f"`url` {url!r}: write http://HOST:PORT (KServe v2 over HTTP, Triton's port 8000) or "
                        f"grpc://HOST:PORT (port 8001)")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return parts.scheme, f"{host}:{parts.port or PROTOCOLS[parts.scheme]}"


class _Connection:
    """One tritonclient client, HTTP or gRPC, answering in plain Python values."""

    def __init__(self, protocol: str, address: str, timeout: float):
        self.protocol, self.timeout = protocol, timeout
        if protocol == "http":
            import tritonclient.http as module

            self.client = module.InferenceServerClient(address, connection_timeout=timeout, network_timeout=timeout)
        else:
            import tritonclient.grpc as module

            self.client = module.InferenceServerClient(address)
        self.module = module
        self._grpc = {"client_timeout": timeout} if protocol == "grpc" else {}

    def ready(self) -> bool:
        return self.client.is_server_ready(**self._grpc)

    def models(self) -> list[dict]:
        index = self.client.get_model_repository_index(**({"as_json": True, **self._grpc} if self._grpc else {}))
        return index.get("models", []) if isinstance(index, dict) else index

    def config(self, name: str) -> dict:
        if self.protocol == "http":
            return self.client.get_model_config(name)
        return self.client.get_model_config(name, as_json=True, **self._grpc)["config"]

    def infer(self, model: str, input_name: str, datatype: str, array: np.ndarray, outputs: list[str]):
        tensor = self.module.InferInput(input_name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        requested = [self.module.InferRequestedOutput(name) for name in outputs]
        result = self.client.infer(model, [tensor], outputs=requested, **self._grpc)
        return [result.as_numpy(name) for name in outputs]

    def close(self) -> None:
        self.client.close()


class TritonClientBackend(Backend):
    name = "triton"

    def __init__(self, url: str, model_name: str | None = None, timeout: float = 10.0):
        try:
            import tritonclient  # noqa: F401
        except ImportError as exc:
            raise UserError(f"`url` (a Triton server) needs tritonclient ({exc}): pip install "
                            f"'swin-trt[serve]'") from None
        self.url, self.timeout = url, timeout
        self.protocol, self.address = parse_server_url(url)
        self._local = threading.local()
        self._connections: list[_Connection] = []
        self._lock = threading.Lock()
        connection = self._connection()
        try:
            ready = connection.ready()
            models = connection.models()
        except Exception as exc:
            self.close()
            raise UserError(f"cannot reach a Triton server at {url} ({type(exc).__name__}: {exc}): start one with "
                            f"`swin-trt serve MODEL`, or check the address and port") from None
        if not ready:
            self.close()
            raise UserError(f"the Triton server at {url} answers but is not ready (still loading, or a model "
                            f"failed): see its log")
        self.model_name = self._pick_model(models, model_name)
        self._read_config(connection.config(self.model_name))
        self._pool = ThreadPoolExecutor(max_workers=MAX_IN_FLIGHT, thread_name_prefix="swin-trt-triton")

    def _pick_model(self, models: list[dict], wanted: str | None) -> str:
        ready = [m["name"] for m in models if str(m.get("state", "READY")).upper() == "READY"]
        if wanted is not None:
            if wanted not in ready:
                self.close()
                raise UserError(f"the server at {self.url} has no ready model {wanted!r}; it serves: "
                                f"{', '.join(ready) or 'nothing'}")
            return wanted
        if len(ready) != 1:
            self.close()
            raise UserError(f"the server at {self.url} serves {len(ready)} models ({', '.join(ready) or 'none'}): "
                            f"name one with `model_name`")
        return ready[0]

    def _read_config(self, config: dict) -> None:
        from ..triton_config import WIRE_TO_NUMPY, swin_trt_parameters

        self.settings = swin_trt_parameters(config)
        if "preprocessing" not in self.settings:
            self.close()
            raise UserError(f"model {self.model_name!r} on {self.url} was not served or packaged by swin-trt: its "
                            f"config has no swin_trt parameter with the preprocessing a client needs")
        first = config["input"][0]
        self.input_name = first["name"]
        self.datatype = first["data_type"].removeprefix("TYPE_")
        self.dtype = np.dtype(WIRE_TO_NUMPY.get(self.datatype, "float32"))
        self.server_max_batch = int(config.get("max_batch_size", 0))
        dims = tuple(int(d) for d in first["dims"])
        self.input_shape = (None, *dims) if self.server_max_batch > 0 else dims
        self.output_names = [output["name"] for output in config["output"]]
        self.instances = sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1

    @property
    def takes_pixels(self) -> bool:
        """UINT8 models take 0..255 pixels; the others normalised floats."""
        return self.dtype == np.uint8

    def _connection(self) -> _Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = _Connection(self.protocol, self.address, self.timeout)
            with self._lock:
                self._connections.append(connection)
        return connection

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        step = self.server_max_batch or len(batch)
        if len(batch) > step:
            parts = [self.infer(batch[i:i + step]) for i in range(0, len(batch), step)]
            return [np.concatenate(outs) for outs in zip(*parts)]
        array = np.clip(np.rint(batch), 0, 255) if self.takes_pixels else batch
        array = np.ascontiguousarray(array, dtype=self.dtype)
        try:
            outputs = self._connection().infer(self.model_name, self.input_name, self.datatype, array,
                                               self.output_names)
        except Exception as exc:  # refused, reset, timed out, or an error the server returned
            raise BackendUnavailable(f"the Triton server at {self.url} did not answer a request for "
                                     f"{self.model_name!r} ({type(exc).__name__}: {str(exc).strip()[:300]}): check "
                                     f"that it still runs (a slow server needs a longer `timeout`)") from None
        return [np.asarray(out, dtype=np.float32) for out in outputs]

    def submit(self, batch: np.ndarray) -> Future:
        return self._pool.submit(self.infer_padded, batch)

    def max_in_flight(self, batch: int) -> int:
        """Two executions' worth of requests per server instance: the next batch is there when one ends."""
        per_execution = math.ceil(max(1, self.server_max_batch) / max(1, batch))
        return min(MAX_IN_FLIGHT, 2 * self.instances * per_execution)

    def close(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        with self._lock:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except Exception:  # closing a connection to a server that is gone
                pass
