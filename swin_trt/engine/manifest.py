"""The JSON manifest beside an engine (``model.engine.json``): what was built, from what, for which GPU.

The manifest starts from the ONNX model's sidecar (arch, config, preprocessing ...: what ``infer`` and
``validate`` read) and adds the build's own entries. The helpers that read a parsed TensorRT network reduce
it to plain lists first, so the summaries are computed (and tested) without TensorRT.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

from ..environment import enum_name
from ..io import sha256_file, sidecar_path

FLOAT_DTYPES = {"FLOAT": "fp32", "HALF": "fp16", "BF16": "bf16"}
QUANTIZED_DTYPES = {"INT8": "int8", "FP8": "fp8", "INT4": "int4", "FP4": "fp4"}


def manifest_path(engine_path: str | Path) -> Path:
    """``model.engine`` -> ``model.engine.json``: an engine's manifest sits where any artifact's sidecar does."""
    return sidecar_path(engine_path)


def precision_summary(layers: Iterable[tuple[str, Sequence[str]]]) -> dict:
    """Count a network's precisions from ``(layer type, [output dtype, ...])`` pairs.

    A layer is counted under its first output's dtype. ``mode`` names the precisions that carry the math,
    e.g. ``"int8 (Q/DQ) + fp16 + fp32"``: the quantized types come from the Quantize layers' outputs, the
    float types from every tensor, most frequent first.
    """
    by_layer, by_tensor, by_type, quantized = Counter(), Counter(), Counter(), Counter()
    for layer_type, dtypes in layers:
        by_type[layer_type] += 1
        by_tensor.update(dtypes)
        if dtypes:
            by_layer[dtypes[0]] += 1
        if layer_type in ("QUANTIZE", "DYNAMIC_QUANTIZE"):
            quantized.update(d for d in dtypes if d in QUANTIZED_DTYPES)
    parts = [f"{QUANTIZED_DTYPES[d]} (Q/DQ)" for d, _ in quantized.most_common()]
    parts += [FLOAT_DTYPES[d] for d, _ in by_tensor.most_common() if d in FLOAT_DTYPES]
    return {
        "mode": " + ".join(parts) or "none",
        "layers": sum(by_type.values()),
        "layers_by_output_dtype": dict(by_layer.most_common()),
        "tensors_by_dtype": dict(by_tensor.most_common()),
        "quantize_layers": by_type["QUANTIZE"] + by_type["DYNAMIC_QUANTIZE"],
        "dequantize_layers": by_type["DEQUANTIZE"],
        "plugin_layers": by_type["PLUGIN_V3"] + by_type["PLUGIN_V2"] + by_type["PLUGIN"],
    }


def network_layers(network) -> list[tuple[str, list[str]]]:
    """A parsed ``INetworkDefinition`` as ``(layer type, [output dtype, ...])`` pairs."""
    layers = []
    for index in range(network.num_layers):
        layer = network.get_layer(index)
        dtypes = [enum_name(layer.get_output(k).dtype) for k in range(layer.num_outputs)]
        layers.append((enum_name(layer.type), dtypes))
    return layers


def network_io(network) -> list[dict]:
    """The network's inputs and outputs: name, shape (-1 = dynamic), dtype, mode."""
    tensors = [(network.get_input(i), "input") for i in range(network.num_inputs)]
    tensors += [(network.get_output(i), "output") for i in range(network.num_outputs)]
    return [{"name": tensor.name, "shape": list(tensor.shape), "dtype": enum_name(tensor.dtype), "mode": mode}
            for tensor, mode in tensors]


def source_record(onnx_path: Path, sidecar: dict) -> dict:
    """The ONNX file the engine came from; ``stage`` is its sidecar's (export, rewrite, quantize ...)."""
    return {"path": str(onnx_path.resolve()), "sha256": sha256_file(onnx_path), "stage": sidecar.get("stage")}


def plugin_record(path: Path | None) -> dict | None:
    return None if path is None else {"path": str(path.resolve()), "sha256": sha256_file(path)}
