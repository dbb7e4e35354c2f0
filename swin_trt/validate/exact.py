"""ONNX Runtime sessions that compute Q/DQ graphs exactly as written, for numbers a deployment can trust.

On x86 without AVX-VNNI, ONNX Runtime fuses ``DQ -> MatMul`` into u8s8 integer kernels that add products
pairwise in int16 and saturate: measured on the pico model, an INT8 graph's logits SNR drops from ~36 dB
(exact INT8 arithmetic, what TensorRT computes) to ~10 dB. Validation therefore turns those fusions off
for graphs with Q/DQ nodes: each DequantizeLinear runs and the MatMul runs in float (fake quantization).
Unknown optimizer names are ignored by ONNX Runtime, so the list is safe across versions.
"""

from __future__ import annotations

import os

import numpy as np
import onnx

from ..backends.base import Backend
from ..ops.lowering import lower_plugins

QDQ_FUSIONS_OFF = ["QDQSelectorActionTransformer", "QDQS8ToU8Transformer", "MatMulAddFusion"]


def has_qdq(model: onnx.ModelProto) -> bool:
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node)


def exact_session(model: onnx.ModelProto, lowered: bool = False, threads: int | None = None):
    """A CPU session of ``model`` (plugins lowered unless ``lowered``), Q/DQ fusions off where it has Q/DQ."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    disabled = QDQ_FUSIONS_OFF if has_qdq(model) else None
    graph = model if lowered else lower_plugins(model)
    return ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=disabled)


class ExactOrtBackend(Backend):
    """The ONNX Runtime backend, with :func:`exact_session`; a float16 input is fed float16."""

    name = "ort"

    def __init__(self, model: onnx.ModelProto):
        self.session = exact_session(model, threads=int(os.environ.get("SWIN_TRT_ORT_THREADS", 0)) or None)
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.dtype = np.float16 if first.type == "tensor(float16)" else np.float32
        self.input_shape = tuple(d if isinstance(d, int) else None for d in first.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=self.dtype)})
        return [np.asarray(o, dtype=np.float32) for o in outputs]
