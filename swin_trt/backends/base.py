"""The Backend interface that validate, infer and bench share."""

from __future__ import annotations

import abc
from concurrent.futures import Future
from pathlib import Path

import numpy as np

from ..errors import UserError


class BackendUnavailable(UserError):
    """The backend went away mid-run (a server that stopped answering): what was predicted is kept."""


def padded_chunks(batch: np.ndarray, size: int, pad: bool = True):
    """``batch`` in chunks of ``size`` images, the last padded by repeating its last image (a fixed-batch model
    takes no other size; ``pad=False`` for one that takes any): yields ``(chunk, real)``, where the first
    ``real`` images of ``chunk`` are the batch's own."""
    for start in range(0, len(batch), size):
        part = batch[start:start + size]
        real = len(part)
        if pad and real < size:
            part = np.concatenate([part, np.repeat(part[-1:], size - real, axis=0)])
        yield part, real


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
        """Run any number of images on a fixed-batch model, padding the last chunk.

        Only an output with a batch axis (first dim equal to the model's batch) can be cut back to the real
        images and joined across chunks. An output without one (a detector's ``boxes (N, 4)``) belongs to the
        whole call: splitting or padding would keep one chunk's first rows and drop the rest, so it is refused.
        A first dim that equals the batch by chance (one detection of a batch-1 model) cannot be told from a
        batch axis here; validate finds each output's batch axis first (swin_trt/validate/layout.py) and runs
        such models image by image.
        """
        fixed = self.fixed_batch
        if fixed is None or len(batch) == fixed:
            return self.infer(batch)
        chunks = []
        for part, real in padded_chunks(batch, fixed):
            outputs = self.infer(part)
            for index, out in enumerate(outputs):
                if out.ndim == 0 or out.shape[0] != fixed:
                    names = list(getattr(self, "output_names", None) or [])
                    name = names[index] if index < len(names) else f"output {index}"
                    raise UserError(f"{name!r} has shape {list(out.shape)} for a batch of {fixed}: it has no batch "
                                    f"axis, so its values belong to the whole call and a batch of {len(batch)} "
                                    f"cannot be split or padded for it; call infer with batches of exactly {fixed}")
            chunks.append([out[:real] for out in outputs])
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
BACKEND_OF_KIND = {"onnx": "ort", "engine": "trt", "torch": "torch"}  # what --backend auto picks
# The options each backend honours, and what they set. ``spinning`` (whether idle worker threads busy-wait)
# is a hint for sharing the CPU with other work: a backend without such threads has nothing to tune, so it
# ignores the hint (said here, once). Any other option a backend cannot honour is an error that names it.
OPTIONS = {
    "ort": {"threads": "ONNX Runtime's intra-op threads (infer's `threads`)",
            "spinning": "whether ONNX Runtime's idle threads spin",
            "int8": "how ONNX Runtime runs Q/DQ graphs (fast or exact)"},
    "trt": {"plugins": "the TensorRT plugin library", "cuda_graph": "CUDA graph capture"},
    "torch": {"img_size": "the input size of a torch:<arch> reference"},
}
HINTS = ("spinning",)


def check_options(kind: str, options: dict) -> dict:
    """The ``options`` the ``kind`` backend takes: hints it has no use for are dropped; an unknown option, or
    one only another backend honours, is a :class:`UserError` naming it."""
    meaning = {name: (owner, what) for owner, table in OPTIONS.items() for name, what in table.items()}
    for name, value in options.items():
        if name not in meaning:
            raise UserError(f"unknown backend option {name!r}: the options are {', '.join(sorted(meaning))}")
        owner, what = meaning[name]
        if name not in OPTIONS[kind] and name not in HINTS:
            raise UserError(f"the {kind} backend cannot honour {name}={value!r}: it sets {what}, which only the "
                            f"{owner} backend has; drop it")
    return {name: value for name, value in options.items() if name in OPTIONS[kind]}


def open_backend(model: str | Path, kind: str = "auto", **options) -> Backend:
    """Open ``model`` (an .onnx file, a TensorRT .engine/.plan, or ``torch:<arch>[:<checkpoint>]``) with
    ``options`` (see :data:`OPTIONS`)."""
    from ..model_ref import ModelRef

    if kind not in BACKENDS:
        raise UserError(f"unknown backend {kind!r}: choose one of {', '.join(BACKENDS)}")
    ref = ModelRef.parse(model)
    if kind == "auto":
        kind = BACKEND_OF_KIND[ref.kind]
    options = check_options(kind, options)
    if kind == "torch":
        from .torch_ref import TorchBackend

        return TorchBackend.from_spec(ref, **options)
    if kind == "trt":
        from .tensorrt import TensorRTBackend

        return TensorRTBackend(ref.text, **options)
    from .onnxruntime import OnnxRuntimeBackend

    return OnnxRuntimeBackend(ref.text, **options)
