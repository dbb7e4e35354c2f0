"""The model repository ``swin-trt serve`` hands to Triton: one Python-backend model that runs swin-trt's backend.

Input contract (the same for every model swin-trt serves): ``pixels``, UINT8 ``[batch, 3, H, W]``, RGB, the
image already resized and centre-cropped to the model's H x W as its sidecar says (what a video client has
after decoding; a quarter of the bytes of float32). The server normalises (or the graph does, for an export
with ``--fold-normalization``). Output: ``logits``, FP32 ``[batch, classes]``, class names in ``labels.txt``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..io import atomic_output
from ..triton_config import ConfigSpec, Tensor, build_config, labels_text, write_config
from .model_info import ModelInfo

INPUT = "pixels"
OUTPUT = "logits"
LABELS = "labels.txt"
SWIN_TRT_ROOT = Path(__file__).resolve().parents[2]  # the folder holding this checkout's swin_trt package

MODEL_PY = '''\
# Written by `swin-trt serve`: Triton's Python backend runs swin-trt's own backend for this model.
# The stub ignores PYTHONPATH, so the swin_trt that wrote this file is put first on sys.path here.
import sys

sys.path.insert(0, {root!r})

from swin_trt.serving.triton_model import TritonPythonModel  # noqa: E402,F401
'''


@dataclass
class ServeOptions:
    name: str
    max_batch: int = 8
    dynamic_batching: bool = True
    queue_delay_us: int = 0
    instances: int = 1
    threads: int | None = None  # ONNX Runtime threads per instance; None: the cores shared out
    plugins: str | None = None  # engines: the plugin library (default: the one the engine was built with)


def model_name_for(path: str | Path) -> str:
    """A Triton model name from a file name: ``out/demo.int8.onnx`` -> ``demo_int8``."""
    stem = Path(path).name
    for suffix in (".onnx", ".engine", ".plan"):
        stem = stem[: -len(suffix)] if stem.endswith(suffix) else stem
    return re.sub(r"[^A-Za-z0-9_-]", "_", stem) or "model"


def write_serve_repository(model: ModelInfo, repository: str | Path, options: ServeOptions) -> Path:
    """Write ``repository/<name>/{config.pbtxt, labels.txt, 1/model.py}``; returns the model's folder."""
    if model.detector:
        raise UserError(f"{model.path.name} is a detector: `swin-trt serve` serves classifiers (one logits row per "
                        f"image); serve a detector from a Triton model repository (`write_triton_bundle`, "
                        f"`swin-trt package {model.path.name}`), then tritonserver as its README says")
    for name, value in (("max_batch", options.max_batch), ("instances", options.instances)):
        if value < 1:
            raise UserError(f"`{name}` {value} must be >= 1")
    if options.queue_delay_us < 0:
        raise UserError(f"`queue_delay_us` {options.queue_delay_us} must be >= 0")
    folder = Path(repository) / options.name
    height, width = model.image_size
    engine = model.kind == "engine"
    threads = options.threads or max(1, (os.cpu_count() or 1) // options.instances)
    settings = {"model": str(model.path.resolve()), "backend": "trt" if engine else "ort",
                "plugins": options.plugins, "threads": None if engine else threads,
                "preprocessing": model.preprocessing, "class_names": model.class_names,
                "input": {"name": INPUT, "layout": "NCHW", "color": "RGB", "range": "0..255",
                          "note": "resized and centre-cropped as preprocessing says; normalised on the server"}}
    spec = ConfigSpec(name=options.name, backend="python", max_batch=options.max_batch,
                      inputs=[Tensor(INPUT, "uint8", [3, height, width])],
                      outputs=[Tensor(OUTPUT, "float32", [model.num_classes], LABELS)],
                      instances=options.instances,
                      queue_delay_us=options.queue_delay_us if options.dynamic_batching else None,
                      parameters=settings)
    config = build_config(spec)
    (folder / "1").mkdir(parents=True, exist_ok=True)
    write_config(config, folder / "config.pbtxt")
    with atomic_output(folder / LABELS) as temporary:
        temporary.write_text(labels_text(model.class_names))
    with atomic_output(folder / "1" / "model.py") as temporary:
        temporary.write_text(MODEL_PY.format(root=str(SWIN_TRT_ROOT)))
    return folder
