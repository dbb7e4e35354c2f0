"""What a model file takes and gives, for serving and packaging: read from the ONNX graph or the engine manifest.

An engine is never deserialized here (that needs TensorRT and its GPU): ``swin-trt build`` wrote its inputs,
outputs, batch profile, precision and plugin library into ``model.engine.json``, and that is what a server
configuration needs.

A model is a classifier (its first output ``(batch, classes)``) or a detector: boxes ``(N, 4)`` (or ``(N, 5)``)
beside per-detection vectors ``(N,)``, N of data-dependent length (NMS inside the graph; -1 in an engine's
manifest, a symbolic dim in ONNX), and no batch axis Triton could batch along.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx

from ..engine.build import batch_profile, inspect_onnx
from ..engine.manifest import manifest_path
from ..errors import UserError
from ..io import read_sidecar, sidecar_path

ENGINE_SUFFIXES = (".engine", ".plan")
# TensorRT's DataType names (as the manifest stores them) -> numpy's
_TRT_DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "UINT8": "uint8",
               "INT32": "int32", "INT64": "int64", "BOOL": "bool"}


@dataclass
class TensorInfo:
    name: str
    dtype: str  # numpy's name: float32, float16, uint8, ...
    shape: list  # the full shape, batch first; None marks a dynamic axis


@dataclass
class ModelInfo:
    path: Path
    kind: str  # "onnx" or "engine"
    input: TensorInfo
    outputs: list[TensorInfo]
    batch: tuple[int, int, int] | None  # (min, opt, max) of a dynamic batch axis; None: static batch
    sidecar: dict  # the export sidecar, or the engine manifest (which starts from it)
    plugin_ops: list[str] = field(default_factory=list)  # swin-trt plugin ops the graph/engine uses

    @property
    def detector(self) -> bool:
        return is_detector(self.outputs)

    @property
    def max_batch(self) -> int:
        return self.batch[2] if self.batch else self.input.shape[0]

    @property
    def image_size(self) -> tuple[int, int]:
        return tuple(self.input.shape[2:4])

    @property
    def preprocessing(self) -> dict:
        return self.sidecar["preprocessing"]

    @property
    def num_classes(self) -> int:
        if self.detector:  # its label ids say nothing of how many there are: the names, where recorded
            return len(self.class_names)
        return int(self.outputs[0].shape[-1])

    @property
    def class_names(self) -> list[str]:
        names = list((self.sidecar.get("config") or {}).get("class_names") or [])
        if self.detector:
            return names
        return names if len(names) == self.num_classes else [f"class_{i}" for i in range(self.num_classes)]

    @property
    def plugin_library(self) -> Path | None:
        """The library an engine was built with (from its manifest), where it still is."""
        record = self.sidecar.get("plugins") if self.kind == "engine" else None
        return Path(record["path"]) if record and Path(record["path"]).is_file() else None

    @property
    def precision(self) -> str:
        """fp32, fp16 or int8: what the model computes in (mixed graphs name their lowest precision)."""
        if self.kind == "engine":
            mode = (self.sidecar.get("precision") or {}).get("mode", "fp32")
        else:
            mode = (self.sidecar.get("quantize") or {}).get("precision") or "fp32"
        mode = str(mode)
        return "int8" if "int8" in mode or mode == "best" else "fp16" if "fp16" in mode else "fp32"


def is_detector(outputs: list[TensorInfo]) -> bool:
    """Boxes ``(N, 4)``/``(N, 5)`` and at least one ``(N,)`` vector, N of data-dependent length (None)."""
    boxes = [t for t in outputs if len(t.shape) == 2 and t.shape[0] is None and t.shape[1] in (4, 5)]
    vectors = [t for t in outputs if len(t.shape) == 1 and t.shape[0] is None]
    return bool(boxes) and bool(vectors)


def describe_model(path: str | Path) -> ModelInfo:
    """Read ``path`` (an .onnx with its sidecar, or an .engine/.plan with its manifest) for serving."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"model {str(path)!r} does not exist: pass an .onnx (with its .json sidecar) or a "
                        f"TensorRT .engine (with its manifest)")
    info = _describe_engine(path) if path.suffix in ENGINE_SUFFIXES else _describe_onnx(path)
    if "preprocessing" not in info.sidecar:
        where = manifest_path(path) if info.kind == "engine" else sidecar_path(path)
        raise UserError(f"model {str(path)!r} has no {str(where)!r} with its preprocessing: keep the .json that "
                        f"`swin-trt export`/`swin-trt build` wrote beside it")
    if info.sidecar.get("features") or (len(info.outputs[0].shape) != 2 and not info.detector):
        raise UserError(f"model {str(path)!r} outputs {info.outputs[0].shape}, neither (batch, classes) nor a "
                        f"detector's boxes (N, 4): serving needs a classifier (export without `features`) or a "
                        f"detector")
    if len(info.input.shape) != 4 or info.input.shape[1] != 3:
        raise UserError(f"model {str(path)!r} takes {info.input.shape}: swin-trt serves (batch, 3, H, W) images")
    return info


def _describe_onnx(path: Path) -> ModelInfo:
    graph = inspect_onnx(path)  # checks the file: ONNX, static image size, no shadowing functions
    if len(graph.inputs) != 1:
        raise UserError(f"{str(path)!r} has {len(graph.inputs)} inputs: swin-trt serves models with one image input")
    model = onnx.load(str(path), load_external_data=False)
    tensors = {value.name: value for value in (*model.graph.input, *model.graph.output)}

    def tensor(name: str, dims: list) -> TensorInfo:
        elem_type = tensors[name].type.tensor_type.elem_type
        return TensorInfo(name, np.dtype(onnx.helper.tensor_dtype_to_np_dtype(elem_type)).name, dims)

    name, dims = graph.inputs[0]
    outputs = [tensor(o.name, [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
                               for d in o.type.tensor_type.shape.dim]) for o in model.graph.output]
    sidecar = read_sidecar(path) or {}
    profile = batch_profile([dims[0]], export_max=sidecar.get("dynamic_batch_max"))
    return ModelInfo(path, "onnx", tensor(name, dims), outputs, profile, sidecar, graph.plugin_ops)


def _describe_engine(path: Path) -> ModelInfo:
    manifest_file = manifest_path(path)
    if not manifest_file.is_file():
        raise UserError(f"engine {str(path)!r} has no manifest {str(manifest_file)!r}: keep the .json that "
                        f"`swin-trt build` wrote beside it (it says the engine's inputs, batch and plugins)")
    manifest = json.loads(manifest_file.read_text())
    tensors = [TensorInfo(t["name"], _TRT_DTYPES.get(t["dtype"], t["dtype"].lower()),
                          [None if d < 0 else d for d in t["shape"]]) for t in manifest.get("io", [])]
    modes = [t["mode"] for t in manifest.get("io", [])]
    inputs = [t for t, mode in zip(tensors, modes) if mode == "input"]
    outputs = [t for t, mode in zip(tensors, modes) if mode == "output"]
    if len(inputs) != 1 or not outputs:
        raise UserError(f"the manifest {str(manifest_file)!r} lists inputs {[t.name for t in inputs]} and outputs "
                        f"{[t.name for t in outputs]}: swin-trt serves engines with one image input")
    profile = tuple(manifest["profile"]) if manifest.get("profile") else None
    plugin_layers = (manifest.get("precision") or {}).get("plugin_layers", 0)
    return ModelInfo(path, "engine", inputs[0], outputs, profile, manifest,
                     ["swin_trt plugins"] if plugin_layers or manifest.get("plugins") else [])
