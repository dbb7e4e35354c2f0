"""Which outputs of a model carry a batch axis, found before anything is compared, and the runs that follow.

An output has a batch axis when its first dim is the number of images fed: ``logits (B, classes)``,
``class_map (B, C, H, W)``, a batched detector's ``boxes (B, N, 4)``. A detector exported at batch 1 by
torchvision has none: ``boxes (N, 4)`` holds one image's detections, N set by the pixels (NMS, top-k). Cutting
such an output to ``out[:batch]`` would compare its first row only; it has to be taken whole, per image.

How it is found (:func:`find_layout`), on the first images, before any metric sees a number:

* a model with a dynamic batch runs 1 image and then 2: an output has a batch axis when its first dim follows
  (1, then 2);
* a model with a fixed batch F runs F images: the first dim must be F, and where the graph declares it (ONNX
  Runtime's output shapes, a TensorRT engine's tensor shapes) the declaration decides, so that a batch-1
  detector that happens to find one box is not taken for a batched one. A data-dependent first dim in a
  fixed-batch graph is no batch axis.

A model with an output without a batch axis runs one image per call (:func:`run_batch`) and each such output is
that image's whole array; one that has a batch axis everywhere runs as it always did, in batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..backends.base import Backend, padded_chunks
from ..errors import UserError


@dataclass(frozen=True)
class OutputLayout:
    """One model's outputs: their names, and which have a batch axis."""

    names: tuple[str, ...]
    batch_axis: tuple[bool, ...]

    @property
    def image_by_image(self) -> bool:
        """Some output belongs to the whole call: the model runs one image per call."""
        return not all(self.batch_axis)


@dataclass
class OutputValues:
    """One output over a batch of images.

    ``stacked``: ``(B, ...)`` where the model ran the batch in one go and the output has a batch axis, else
    ``None``; ``images``: each image's own array (rows of ``stacked``, or the whole output of its own call),
    whose shapes may differ from image to image (a detection count).
    """

    stacked: np.ndarray | None
    images: list[np.ndarray]


def output_names(backend: Backend, count: int) -> list[str]:
    names = list(getattr(backend, "output_names", None) or [])
    return names[:count] + [f"output{i}" for i in range(len(names), count)]


def _unwrapped(backend: Backend) -> Backend:
    """The backend at the bottom of any wrappers (``inner``): the one that knows what the model declares."""
    while getattr(backend, "inner", None) is not None:
        backend = backend.inner
    return backend


def _untimed(backend: Backend) -> Backend:
    """Probes go past the timing wrapper: they are not validation calls, and must not skew the latency."""
    from .latency import TimedBackend

    return backend.inner if isinstance(backend, TimedBackend) else backend


def declared_first_dims(backend: Backend) -> list | None:
    """The first dim of each output as the model declares it: an int, or ``None`` where it is dynamic
    (decided at run time); ``None`` for the whole list where the backend does not say (a PyTorch model)."""
    inner = _unwrapped(backend)
    session = getattr(inner, "session", None)  # ONNX Runtime
    if session is not None and hasattr(session, "get_outputs"):
        dims = []
        for output in session.get_outputs():
            shape = output.shape or [None]
            dims.append(shape[0] if isinstance(shape[0], int) else None)
        return dims
    engine = getattr(inner, "engine", None)  # TensorRT: -1 marks a dynamic or data-dependent dim
    if engine is not None and hasattr(engine, "get_tensor_shape"):
        shapes = [tuple(engine.get_tensor_shape(name)) for name in inner.output_names]
        return [shape[0] if shape and shape[0] >= 0 else None for shape in shapes]
    return None


def find_layout(backend: Backend, pixels: np.ndarray) -> OutputLayout:
    """Which outputs of ``backend`` have a batch axis, from runs on the first of ``pixels``.

    The runs go past the timing wrapper: they are probes, not validation calls.
    """
    model = _untimed(backend)
    fixed = backend.fixed_batch
    if fixed is None:
        one = model.infer(pixels[:1])
        two = model.infer(np.concatenate([pixels[:1], pixels[1:2] if len(pixels) > 1 else pixels[:1]]))
        names = output_names(backend, len(one))
        batch_axis = tuple(a.ndim > 0 and b.ndim > 0 and a.shape[0] == 1 and b.shape[0] == 2
                           for a, b in zip(one, two))
        return OutputLayout(tuple(names), batch_axis)
    part, _ = next(padded_chunks(pixels, fixed))
    outputs = model.infer(part)
    names = output_names(backend, len(outputs))
    declared = declared_first_dims(backend)
    batch_axis = []
    for index, output in enumerate(outputs):
        seen = output.ndim > 0 and output.shape[0] == fixed
        # A graph that declares its dims decides: an int that is the batch is a batch axis; a dynamic first
        # dim in a fixed-batch graph is set by the data. Without declarations, what ran decides.
        batch_axis.append(seen and declared[index] == fixed if declared is not None else seen)
    layout = OutputLayout(tuple(names), tuple(batch_axis))
    if fixed > 1 and layout.image_by_image:
        loose = ", ".join(f"{n} {list(o.shape)}" for n, o, b in zip(names, outputs, batch_axis) if not b)
        raise UserError(f"the model takes a fixed batch of {fixed} images, but its output(s) {loose} have no batch "
                        f"axis: what belongs to which image cannot be told; export it with batch 1 or a dynamic "
                        f"batch")
    return layout


def run_batch(backend: Backend, layout: OutputLayout, pixels: np.ndarray) -> list[OutputValues]:
    """Every output of ``backend`` on ``pixels``, split per image as ``layout`` says."""
    if not layout.image_by_image:
        outputs = backend.infer_padded(pixels)
        return [OutputValues(out, list(out)) for out in outputs]
    per_call = [backend.infer(pixels[index:index + 1]) for index in range(len(pixels))]
    values = []
    for index, batch_axis in enumerate(layout.batch_axis):
        # The model ran each image alone: an output with a batch axis is that image's row 0; one without is
        # the image's whole array.
        images = [outputs[index][0] if batch_axis else outputs[index] for outputs in per_call]
        values.append(OutputValues(None, images))
    return values
