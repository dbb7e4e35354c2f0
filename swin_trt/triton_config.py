"""Triton's ``config.pbtxt``, built as Triton's own ``ModelConfig`` protobuf (the schema ships in tritonclient).

Writing through the schema means a field name or enum that Triton would reject fails here, at packaging time,
not when a server loads the repository. Every config swin-trt writes carries one extra parameter,
``swin_trt``: JSON with the preprocessing and class names, which ``swin-trt infer --server`` reads back so that
a client needs nothing but the server's address.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .io import atomic_output

PARAMETER = "swin_trt"
# numpy dtype name -> (config.pbtxt data_type, KServe v2 wire datatype)
_TYPES = {"float32": ("TYPE_FP32", "FP32"), "float16": ("TYPE_FP16", "FP16"), "bfloat16": ("TYPE_BF16", "BF16"),
          "uint8": ("TYPE_UINT8", "UINT8"), "int8": ("TYPE_INT8", "INT8"), "int32": ("TYPE_INT32", "INT32"),
          "int64": ("TYPE_INT64", "INT64"), "bool": ("TYPE_BOOL", "BOOL")}
WIRE_TO_NUMPY = {wire: dtype for dtype, (_, wire) in _TYPES.items()}


def schema():
    """``model_config_pb2`` from tritonclient, or a UserError that says how to get it."""
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise UserError(f"writing Triton configurations needs tritonclient ({exc}): "
                        f"pip install 'swin-trt[serve]'") from None
    return model_config_pb2


def triton_type(dtype: str) -> str:
    if dtype not in _TYPES:
        raise UserError(f"Triton has no tensor type for {dtype!r}: export with float32, float16 or uint8 I/O")
    return _TYPES[dtype][0]


@dataclass
class Tensor:
    name: str
    dtype: str  # numpy's name
    dims: list[int]  # without the batch axis when max_batch > 0
    label_filename: str | None = None  # outputs: Triton's classification extension reads class names here


@dataclass
class ConfigSpec:
    name: str
    inputs: list[Tensor]
    outputs: list[Tensor]
    max_batch: int  # 0: the model has no batch axis Triton may use (static-batch engines and graphs)
    platform: str | None = None  # tensorrt_plan, onnxruntime_onnx
    backend: str | None = None  # python
    instances: int = 1
    gpu: bool = False
    queue_delay_us: int | None = None  # None: no dynamic batching
    preferred_batches: list[int] = field(default_factory=list)
    parameters: dict = field(default_factory=dict)  # -> the swin_trt JSON parameter


def build_config(spec: ConfigSpec):
    """The ``ModelConfig`` message for ``spec``."""
    pb = schema()
    config = pb.ModelConfig(name=spec.name, max_batch_size=spec.max_batch)
    if spec.platform:
        config.platform = spec.platform
    if spec.backend:
        config.backend = spec.backend
    for tensor in spec.inputs:
        config.input.add(name=tensor.name, data_type=pb.DataType.Value(triton_type(tensor.dtype)), dims=tensor.dims)
    for tensor in spec.outputs:
        output = config.output.add(name=tensor.name, data_type=pb.DataType.Value(triton_type(tensor.dtype)),
                                   dims=tensor.dims)
        if tensor.label_filename:
            output.label_filename = tensor.label_filename
    if spec.queue_delay_us is not None and spec.max_batch > 0:
        config.dynamic_batching.max_queue_delay_microseconds = spec.queue_delay_us
        config.dynamic_batching.preferred_batch_size.extend(sorted(set(spec.preferred_batches)))
    kind = pb.ModelInstanceGroup.Kind.Value("KIND_GPU" if spec.gpu else "KIND_CPU")
    config.instance_group.add(kind=kind, count=spec.instances)
    if spec.parameters:
        config.parameters[PARAMETER].string_value = json.dumps(spec.parameters, sort_keys=True)
    return config


def write_config(config, path: str | Path) -> None:
    from google.protobuf import text_format

    with atomic_output(path) as temporary:
        temporary.write_text(text_format.MessageToString(config))


def read_config(path: str | Path):
    """Parse ``config.pbtxt`` with Triton's schema; unknown fields or bad values raise ``ParseError``."""
    from google.protobuf import text_format

    return text_format.Parse(Path(path).read_text(), schema().ModelConfig())


def swin_trt_parameters(config: dict) -> dict:
    """The ``swin_trt`` parameter of a config as the server returns it (JSON), or {} for foreign models."""
    value = (config.get("parameters") or {}).get(PARAMETER) or {}
    try:
        return json.loads(value.get("string_value") or "{}")
    except json.JSONDecodeError:
        return {}


def labels_text(names: list[str]) -> str:
    return "".join(f"{name}\n" for name in names)
