"""The models of one validation run: parsed once, opened together, closed together.

ONNX graphs are read once (their protos also serve precision detection and per-layer attribution); every
backend is wrapped to time its calls; the preprocessing is resolved once for all of them, so reference and
candidates see the same pixels, and models that cannot take the same input are refused before any work.
:func:`resolve_models` does the parsing and resolving on its own, so that the data can be listed (images, or
videos for a clip model) before any backend opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import onnx

from ..backends.base import open_backend
from ..data.clips import ClipOptions
from ..data.model_input import ModelInput, PreprocessOptions, resolve_inputs
from ..errors import UserError
from ..model_ref import ModelRef
from .latency import TimedBackend


def _open(ref: ModelRef, protos: dict, size: tuple[int, int], threads: int | None):
    if ref.text in protos:  # already parsed: a large graph is not read twice
        from ..backends.onnxruntime import OnnxRuntimeBackend

        # Exact Q/DQ arithmetic: the numbers TensorRT's INT8 kernels compute (see backends/ort_int8.py).
        return OnnxRuntimeBackend(protos[ref.text], threads=threads, int8="exact")
    if ref.kind == "torch":
        return open_backend(ref.text, img_size=size)
    return open_backend(ref.text)


@dataclass
class OpenModels:
    reference: TimedBackend
    candidates: dict[str, TimedBackend]
    protos: dict[str, onnx.ModelProto]  # the ONNX models among them, by name
    model_input: ModelInput
    class_names: list[str] = field(default_factory=list)

    def close(self) -> None:
        for backend in [self.reference, *self.candidates.values()]:
            backend.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@dataclass
class ResolvedModels:
    """The models of a run parsed (ONNX graphs once) and their common input resolved, none opened yet: what the
    data listing needs to know (images or a clip model's videos) before anything runs."""

    refs: list[ModelRef]
    protos: dict[str, onnx.ModelProto]
    model_input: ModelInput


def resolve_models(reference: str, candidates: list[str], preprocess: PreprocessOptions | None = None,
                   note=None, clips: ClipOptions | None = None) -> ResolvedModels:
    """Parse every model once and resolve the input they are fed together (refusing models that cannot take
    the same input)."""
    from ..graph import load_onnx

    refs = [ModelRef.parse(m) for m in [reference, *candidates]]
    protos = {r.text: load_onnx(r.text) for r in refs if r.kind == "onnx"}
    for r in refs:
        if r.kind == "engine" and not r.path.is_file():
            raise UserError(f"{r.text!r} does not exist: build it with `swin-trt build`")
    kwargs = {"note": note} if note is not None else {}
    return ResolvedModels(refs, protos, resolve_inputs(refs, preprocess, protos=protos, clips=clips, **kwargs))


def open_models(reference: str, candidates: list[str], preprocess: PreprocessOptions | None = None,
                note=None, threads: int | None = None, clips: ClipOptions | None = None,
                resolved: ResolvedModels | None = None) -> OpenModels:
    """Parse, resolve the common input and open every backend (closing those opened if one fails);
    ``resolved``: what :func:`resolve_models` already parsed and resolved."""
    resolved = resolved or resolve_models(reference, candidates, preprocess, note, clips)
    refs, protos, model_input = resolved.refs, resolved.protos, resolved.model_input
    size = model_input.preprocessor.crop
    opened: list[TimedBackend] = []
    try:
        for ref in refs:
            opened.append(TimedBackend(_open(ref, protos, size, threads)))
    except BaseException:
        for backend in opened:
            backend.close()
        raise
    class_names = model_input.class_names
    model = getattr(opened[0].inner, "model", None)  # a torch reference: its checkpoint may change the head
    if model is not None:
        class_names = list(model.config.class_names)
        model_input = replace(model_input, class_names=class_names)
    return OpenModels(opened[0], dict(zip(candidates, opened[1:])), protos, model_input, class_names)
