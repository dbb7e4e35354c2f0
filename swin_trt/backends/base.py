"""The Backend interface that validate, infer and bench share."""

from __future__ import annotations

import abc
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from ..errors import UserError


class BackendUnavailable(UserError):
    """The backend went away mid-run (a server that stopped answering): what was predicted is kept."""


class Backend(abc.ABC):
    """Runs a Swin on a batch of preprocessed images.

    ``infer`` takes ``(B, 3, H, W)`` float32 and returns the outputs in order, as float32 numpy arrays.
    A backend with a fixed batch (``max_batch == min_batch``) pads or splits nothing: callers feed what
    ``batch_sizes`` allows.
    """

    name: str = "backend"
    input_name: str = "input"
    input_shape: tuple  # (B or None, 3, H, W)
    output_names: list[str]

    @property
    def fixed_batch(self) -> int | None:
        batch = self.input_shape[0]
        return batch if isinstance(batch, int) else None

    @abc.abstractmethod
    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        ...

    def infer_padded(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run any number of images on a fixed-batch model, padding the last chunk."""
        fixed = self.fixed_batch
        if fixed is None or len(batch) == fixed:
            return self.infer(batch)
        chunks = []
        for start in range(0, len(batch), fixed):
            part = batch[start:start + fixed]
            count = len(part)
            if count < fixed:
                part = np.concatenate([part, np.repeat(part[-1:], fixed - count, axis=0)])
            chunks.append([out[:count] for out in self.infer(part)])
        return [np.concatenate(parts) for parts in zip(*chunks)]

    def submit(self, batch: np.ndarray) -> Future:
        """Start :meth:`infer_padded` on ``batch``; a local backend runs it now, a remote one sends it."""
        future: Future = Future()
        try:
            future.set_result(self.infer_padded(batch))
        except BaseException as exc:
            future.set_exception(exc)
        return future

    def max_in_flight(self, batch: int) -> int:
        """How many submitted batches a caller should keep waiting: 1 where ``submit`` runs at once."""
        return 1

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


BACKENDS = ("auto", "trt", "ort", "torch")


def open_backend(model: str | Path, kind: str = "auto", **options) -> Backend:
    """Open ``model`` (an .onnx file, a TensorRT .engine/.plan, or ``torch:<arch>[:<checkpoint>]``)."""
    model = str(model)
    if kind not in BACKENDS:
        raise UserError(f"unknown backend {kind!r}: choose one of {', '.join(BACKENDS)}")
    if kind == "auto":
        if model.startswith("torch:"):
            kind = "torch"
        elif model.endswith((".engine", ".plan")):
            kind = "trt"
        else:
            kind = "ort"
    if kind == "torch":
        from .torch_ref import TorchBackend

        return TorchBackend.from_spec(model, **options)
    if kind == "trt":
        from .tensorrt import TensorRTBackend

        return TensorRTBackend(model, **options)
    from .onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(model, **options)
