"""A model for inference: its backend, the preprocessing it was exported with, and its class names."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..backends.base import Backend, open_backend
from ..data.preprocess import Preprocessor
from ..errors import UserError
from ..io import read_sidecar, sidecar_path
from .classes import default_labels, read_labels


@dataclass
class Classifier:
    backend: Backend
    preprocessor: Preprocessor
    labels: list[str] | None  # None: not known until the first output (then "class_<i>")


def _from_torch_spec(spec: str, kind: str, options: dict) -> tuple[Backend, Preprocessor, list[str]]:
    from ..models import get_arch

    parts = spec.split(":", 2)
    if len(parts) < 2 or not parts[1]:
        raise UserError(f"model {spec!r}: write torch:<arch> or torch:<arch>:<checkpoint>")
    arch = get_arch(parts[1])
    backend = open_backend(spec, kind, **options)
    img_size = tuple(backend.input_shape[2:])
    preprocessor = Preprocessor.from_sidecar({"preprocessing": arch.preprocessing.to_dict(img_size)})
    config = getattr(getattr(backend, "model", None), "config", None)
    names = list(config.class_names) if config is not None else []
    return backend, preprocessor, names


def _from_file(path: str, kind: str, options: dict) -> tuple[Backend, Preprocessor, list[str], int | None]:
    if not Path(path).is_file():
        raise UserError(f"model {path!r} does not exist: pass an .onnx, a TensorRT .engine or torch:<arch>")
    sidecar = read_sidecar(path)
    if sidecar is None or "preprocessing" not in sidecar:
        raise UserError(f"model {path!r} has no sidecar {str(sidecar_path(path))!r} with its preprocessing: "
                        f"export it with `swin-trt export` (or keep the .json that came with it beside it)")
    if sidecar.get("features"):
        raise UserError(f"model {path!r} outputs feature maps: infer needs a classifier "
                        f"(export without --features)")
    config = sidecar.get("config") or {}
    backend = open_backend(path, kind, **options)
    return backend, Preprocessor.from_sidecar(sidecar), list(config.get("class_names") or []), \
        config.get("num_classes")


def load_classifier(model: str, kind: str = "auto", labels_file: str | Path | None = None,
                    **backend_options) -> Classifier:
    """Open ``model`` (.onnx, .engine or ``torch:<arch>[:<checkpoint>]``) for classification.

    Class names: ``labels_file`` if given, else the model's own (sidecar or arch config), else
    ``class_<i>``. ``backend_options`` go to :func:`open_backend` (e.g. ``threads`` for ORT).
    """
    if (kind == "torch") != model.startswith("torch:") and kind != "auto":
        raise UserError(f"--backend {kind} cannot run {model!r}: torch runs torch:<arch>[:<checkpoint>], "
                        f"ort an .onnx, trt a TensorRT .engine (or use --backend auto)")
    if model.startswith("torch:"):
        backend, preprocessor, names = _from_torch_spec(model, kind, backend_options)
        classes = backend.model.config.num_classes if hasattr(backend, "model") else None
    else:
        backend, preprocessor, names, classes = _from_file(model, kind, backend_options)
    shape = tuple(backend.input_shape[2:])
    if all(isinstance(d, int) for d in shape) and shape != tuple(preprocessor.crop):
        backend.close()
        raise UserError(f"model {model!r} takes {shape[0]}x{shape[1]} images but its sidecar crops to "
                        f"{preprocessor.crop[0]}x{preprocessor.crop[1]}: re-export it")
    labels = read_labels(labels_file) if labels_file is not None else names or None
    if labels is not None and classes and len(labels) != classes:
        backend.close()
        raise UserError(f"{len(labels)} labels for a model with {classes} classes: "
                        f"pass a --labels file with one name per class")
    if labels is None and classes:
        labels = default_labels(classes)
    return Classifier(backend, preprocessor, labels)
