"""One pass over the calibration images: ONNX Runtime runs the model with every quantized tensor as an extra
output, and each tensor's |x| goes into its streaming histogram.

The plugin nodes are lowered first (as ``create_session`` would) so that the extra outputs can be given
their inferred types; lowering keeps the names of plugin inputs and outputs, so the names in the cache are
the names in the stored (plugin) graph.

A detector's tensors change shape from image to image (the proposals its box head reads) and may have no
elements at all (no proposal survived): the histograms take any shape, and a tensor seen empty on every image
keeps the smallest range (:data:`.cache.MIN_AMAX`). A model that fails in ONNX Runtime on a calibration image,
or computes inf/nan, is a :class:`UserError` that names the image or the tensor: calibrating it cannot succeed.
"""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np
import onnx

from .. import graph as graphs
from ..backends.onnxruntime import create_session
from ..preprocess import Preprocessor
from ..errors import UserError
from ..ops.lowering import lower_plugins
from ..progress import progress_bar
from .histogram import AbsHistogram
from .points import calibration_tensors

log = logging.getLogger(__name__)


def static_batch(model: onnx.ModelProto) -> int | None:
    """The first input's batch size when it is fixed in the graph, else ``None`` (dynamic)."""
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return dims[0].dim_value if dims and dims[0].HasField("dim_value") else None


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """The lowered model with ``names`` appended as graph outputs (typed from shape inference)."""
    return graphs.with_outputs(lower_plugins(model), names, default_type=onnx.TensorProto.FLOAT)[0]


def collect(model: onnx.ModelProto, crops: Iterable[np.ndarray], preprocessor: Preprocessor, batch: int = 8,
            total: int | None = None, progress: bool = True,
            threads: int | None = None) -> tuple[dict[str, AbsHistogram], int]:
    """Histograms of every calibration tensor over ``crops`` (uint8 ``(H, W, 3)``); returns them and the
    number of images that went through the model."""
    if any(i.type.tensor_type.elem_type != onnx.TensorProto.FLOAT for i in model.graph.input):
        raise UserError("calibrate needs the float32 model (the output of export or rewrite), not a "
                        "quantized or float16 one")
    names = calibration_tensors(model)
    if not names:
        raise UserError("the model has no MatMul, Gemm, Conv or window plugin to calibrate")
    session = create_session(with_outputs(model, names), threads)
    input_name = session.get_inputs()[0].name
    fixed = static_batch(model)
    step = fixed or batch
    histograms = {name: AbsHistogram() for name in names}
    seen = 0
    pending: list[np.ndarray] = []
    bar = progress_bar(total, "calibrate", "img", enabled=progress)

    def run(pixels: np.ndarray) -> None:
        try:
            values = session.run(None, {input_name: pixels})
        except Exception as exc:  # noqa: BLE001 - ONNX Runtime's errors (Fail, InvalidArgument, ...) on this input
            first = seen + 1
            images = f"image {first}" if len(pixels) == 1 else f"images {first}-{seen + len(pixels)}"
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(f"the model fails in ONNX Runtime on calibration {images} ({detail}): a graph that does "
                            f"not run on real images cannot be calibrated; check it against its source with "
                            f"the validate stage (`swin-trt validate`, the source as reference) on the same images (or "
                            f"calibrate the source)") from None
        outputs = dict(zip([o.name for o in session.get_outputs()], values))
        outputs[input_name] = pixels
        for name in names:
            try:
                histograms[name].update(outputs[name])
            except ValueError as exc:  # inf/nan: nothing can be calibrated from it
                raise UserError(f"calibration tensor {name!r}: {exc}") from None

    for crop in crops:
        pending.append(crop)
        if len(pending) == step:
            run(preprocessor.normalize(np.stack(pending)))
            seen += len(pending)
            bar.update(len(pending))
            pending = []
    if pending and fixed:
        log.warning("the model's batch is fixed at %s: the last %d image(s) do not fill a batch and were not "
                    "used (export with `dynamic_batch` to use every image)", fixed, len(pending))
    elif pending:
        run(preprocessor.normalize(np.stack(pending)))
        seen += len(pending)
        bar.update(len(pending))
    bar.close()
    return histograms, seen
