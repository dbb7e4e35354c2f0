"""The model Triton's Python backend runs for ``swin-trt serve``: swin-trt's own backend behind Triton.

Imported by the generated ``model.py`` inside Triton's stub process (``triton_python_backend_utils`` exists
only there). Dynamic batching hands :meth:`TritonPythonModel.execute` several requests at once: their pixels
are concatenated, normalised as the model's sidecar says, run as one batch through
:func:`~swin_trt.backends.base.open_backend` (ONNX Runtime on the CPU, or TensorRT with the plugin library),
and split back into one response per request.

Tensors cross the stub with DLPack, never ``as_numpy()`` / ``Tensor(name, array)``: those two are compiled
against numpy 1's descriptor layout and read wrong sizes under numpy 2 (:mod:`.server`).
"""

from __future__ import annotations

import ctypes
import json

import numpy as np

from ..backends.base import open_backend
from ..preprocess import Preprocessor
from ..triton_config import PARAMETER

# The stub renames a consumed DLPack capsule "used_dlpack"; numpy's capsule destructor looks for the
# standard "used_dltensor" and otherwise prints an error for every tensor. The stub frees the tensor itself.
_CONSUMED = b"used_dltensor"
_set_capsule_name = ctypes.pythonapi.PyCapsule_SetName
_set_capsule_name.argtypes = [ctypes.py_object, ctypes.c_char_p]


def _output(pb_utils, name: str, array: np.ndarray):
    capsule = np.ascontiguousarray(array).__dlpack__()
    tensor = pb_utils.Tensor.from_dlpack(name, capsule)
    _set_capsule_name(capsule, _CONSUMED)
    return tensor


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        settings = json.loads(config["parameters"][PARAMETER]["string_value"])
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        self.preprocessor = Preprocessor.from_sidecar(settings)
        options = {"plugins": settings["plugins"]} if settings["backend"] == "trt" else \
            {"threads": settings["threads"], "spinning": False}  # instances share the cores: no busy waiting
        self.backend = open_backend(settings["model"], settings["backend"], **options)

    def execute(self, requests: list) -> list:
        import triton_python_backend_utils as pb_utils

        pixels = [np.from_dlpack(pb_utils.get_input_tensor_by_name(request, self.input_name))
                  for request in requests]
        try:
            batch = self.preprocessor.normalize(np.moveaxis(np.concatenate(pixels), 1, -1))  # NCHW -> NHWC in
            logits = self.backend.infer_padded(batch)[0]
        except Exception as exc:  # each request learns why; the server keeps serving
            error = pb_utils.TritonError(f"swin-trt: {type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for part in pixels:
            responses.append(pb_utils.InferenceResponse([_output(pb_utils, self.output_name,
                                                                 logits[start:start + len(part)])]))
            start += len(part)
        return responses

    def finalize(self) -> None:
        self.backend.close()
