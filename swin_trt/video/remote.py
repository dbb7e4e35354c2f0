"""A classifier on a Triton server, for ``swin-trt infer SOURCE --server URL``: the same loop, remote inference."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..preprocess import PRESETS, Preprocessor
from ..errors import UserError
from .classes import read_labels
from .model import Classifier

PIXELS = {"mean": PRESETS["none"].mean, "std": PRESETS["none"].std}


def connect_classifier(url: str, model_name: str | None = None, labels_file: str | Path | None = None,
                       timeout: float = 10.0) -> Classifier:
    """Connect to ``model_name`` (or the one model) on the server at ``url``; preprocessing and class names
    come from the server. A UINT8 model is sent 0..255 pixels (the identity normalisation here)."""
    from ..backends.triton_client import TritonClientBackend

    backend = TritonClientBackend(url, model_name, timeout)
    preprocessor = Preprocessor.from_sidecar(backend.settings)
    if backend.takes_pixels:  # the server normalises: send 0..255 pixels as they are
        preprocessor = Preprocessor(preprocessor.crop, dataclasses.replace(preprocessor.recipe, **PIXELS))
    names = list(backend.settings.get("class_names") or []) or None
    labels = read_labels(labels_file) if labels_file is not None else names
    classes = len(names) if names else None
    if labels is not None and classes and len(labels) != classes:
        backend.close()
        raise UserError(f"{len(labels)} labels for a model with {classes} classes: "
                        f"pass a `labels_file` with one name per class")
    return Classifier(backend, preprocessor, labels)
