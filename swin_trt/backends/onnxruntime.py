"""ONNX Runtime on the CPU: the embedded default backend. Plugin nodes are lowered before the session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from ..errors import UserError
from ..graph import load_onnx  # noqa: F401  (where callers found it before graph.py held it)
from ..ops.lowering import lower_plugins
from . import ort_int8
from .base import Backend
from .threads import choose


# ONNX Runtime passes that change what a graph computes. ReshapeFusion (1.32) turns a reshape target built as
# Concat(Gather(Shape(a), i), ...) into [0, -1] once shapes are known, which fails on an empty tensor (a
# detector's box level with no box above its threshold: "cannot reshape {0,2,2} to {0,-1}"). Known shapes are
# what a rewritten or shape-inferred graph has, so without this one photo in two stopped a detector.
UNSOUND_OPTIMIZERS = ("ReshapeFusion",)


def create_session(model: onnx.ModelProto, threads: int | None = None, spinning: bool | None = None,
                   int8: str = "fast", lowered: bool = False, source: str | None = None):
    """An ``InferenceSession`` on the CPU for ``model`` with its plugin nodes lowered (unless ``lowered``).

    ``threads``/``spinning`` default to the ``batch`` thread policy (:mod:`.threads`: every core, or
    ``SWIN_TRT_THREADS``); ``spinning=False`` stops idle worker threads from busy-waiting, right when other
    work (video decoding) runs beside the model. ``int8`` picks how Q/DQ graphs run (see :mod:`.ort_int8`):
    ``fast`` integer kernels where exact, ``exact`` every Q/DQ as written. A graph ONNX Runtime cannot load is
    a :class:`UserError` naming ``source`` (the file it came from).
    """
    import onnxruntime as ort

    policy = choose("batch", threads)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = policy.threads
    if not (policy.spinning if spinning is None else spinning):
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    disabled = [*UNSOUND_OPTIMIZERS, *(ort_int8.DISABLED[int8] if ort_int8.has_qdq(model) else ())]
    graph = ort_int8.cpu_copy(model)
    graph = graph if lowered else lower_plugins(graph)
    try:
        return ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=disabled)
    except Exception as exc:  # onnxruntime's own exception types: an op it lacks, a malformed graph, ...
        reason = str(exc).splitlines()[0].split("FAIL : ")[-1][:300]
        raise UserError(f"ONNX Runtime cannot load {source or model.graph.name or 'the model'!r}: {reason}. swin-trt runs standard ONNX ops and its own "
                        f"plugin nodes on the CPU; re-export the model without custom ops") from None


_INPUT_DTYPES = {"tensor(float16)": np.float16, "tensor(uint8)": np.uint8}


class OnnxRuntimeBackend(Backend):
    name = "ort"

    def __init__(self, model: str | Path | onnx.ModelProto, threads: int | None = None,
                 spinning: bool | None = None, int8: str = "fast"):
        proto = model if isinstance(model, onnx.ModelProto) else load_onnx(model)
        self.session = create_session(proto, threads, spinning, int8,
                                      source=None if isinstance(model, onnx.ModelProto) else str(model))
        first = self.session.get_inputs()[0]
        self.input_name = first.name
        self.dtype = _INPUT_DTYPES.get(first.type, np.float32)  # --io-fp16 graphs, --fold-normalization uint8
        self.input_shape = tuple(d if isinstance(d, int) else None for d in first.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=self.dtype)})
        return [np.asarray(o, dtype=np.float32) for o in outputs]
