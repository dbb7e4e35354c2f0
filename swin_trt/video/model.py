"""A model for inference: its backend, the preprocessing it takes, and its class names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backends.base import BACKEND_OF_KIND, Backend, open_backend
from ..data.clips import ClipOptions, ClipPreprocessor
from ..data.model_input import PreprocessOptions, log_note, resolve_input
from ..preprocess import Preprocessor
from ..errors import UserError
from ..model_ref import ModelRef
from .classes import default_labels, read_labels


@dataclass
class Classifier:
    backend: Backend
    preprocessor: Preprocessor | ClipPreprocessor  # a clip model's: clips of T frames every `clip_stride`
    labels: list[str] | None  # None: not known until the first output (then "class_<i>")


def _num_classes(ref: ModelRef, backend: Backend) -> int | None:
    model = getattr(backend, "model", None)
    if model is not None:
        return model.config.num_classes
    return ((ref.sidecar() or {}).get("config") or {}).get("num_classes")


def load_classifier(model: str, kind: str = "auto", labels_file: str | Path | None = None,
                    preprocess: PreprocessOptions | None = None, note=log_note, clips: ClipOptions | None = None,
                    **backend_options) -> Classifier:
    """Open ``model`` (.onnx, .engine or ``torch:<arch>[:<checkpoint>]``) for classification or segmentation
    (a class-map output: :mod:`.inference_loop` tells them apart by the output's shape).

    Preprocessing: the flags in ``preprocess``, else the model's sidecar, else the ImageNet defaults (said
    once through ``note``). Class names: ``labels_file`` if given, else the model's own, else ``class_<i>``.
    ``backend_options`` go to :func:`open_backend` (e.g. ``threads`` for ORT). A video clip model (a Video
    Swin) gets a :class:`~swin_trt.data.clips.ClipPreprocessor`: ``clips`` its clip length and stride.
    """
    ref = ModelRef.parse(model)
    if kind not in ("auto", BACKEND_OF_KIND[ref.kind]):
        raise UserError(f"`kind` {kind} cannot run {model!r}: torch runs torch:<arch>[:<checkpoint>], "
                        f"ort an .onnx, trt a TensorRT .engine (or use `kind` auto)")
    if ref.is_file and not ref.path.is_file():
        raise UserError(f"model {model!r} does not exist: pass an .onnx, a TensorRT .engine or torch:<arch>")
    model_input = resolve_input(ref, preprocess, note=note, clips=clips)
    ranks = model_input.io.output_ranks if model_input.io else ()
    if (ref.sidecar() or {}).get("features") or (len(ranks) > 1 and min(ranks) >= 3):
        raise UserError(f"model {model!r} outputs feature maps: infer needs a classifier or a segmentation model "
                        f"(export without `features`)")
    if ref.kind == "torch":
        backend_options = {"img_size": model_input.preprocessor.crop, **backend_options}
    backend = open_backend(model, kind, **backend_options)
    classes = _num_classes(ref, backend)
    names = model_input.class_names
    if ref.kind == "torch":
        names = list(backend.model.config.class_names)
    labels = read_labels(labels_file) if labels_file is not None else names or None
    if labels is not None and classes and len(labels) != classes:
        backend.close()
        raise UserError(f"{len(labels)} labels for a model with {classes} classes: "
                        f"pass a `labels_file` with one name per class")
    if labels is None and classes:
        labels = default_labels(classes)
    return Classifier(backend, model_input.preprocessor, labels)
