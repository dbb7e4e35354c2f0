"""Precision as explicit types in the graph: INT8 calibration, FP16 casting, QDQ insertion, mixed INT8/FP16.

TensorRT 11 builds strongly typed networks only (no FP16/INT8 builder flags, no calibrators), so the
precision a TensorRT engine runs in is written into the ONNX graph here; ONNX Runtime on the CPU runs the
same graph, which lets every precision choice be checked without a GPU.

* :mod:`.histogram`, :mod:`.methods`: streaming |x| histograms and the four ways to pick ``amax``.
* :mod:`.points`: which tensors get quantized (inputs of MatMul/Gemm/Conv and of the window plugins).
* :mod:`.sources`, :mod:`.calibration`, :mod:`.cache`: calibration images -> ranges -> the JSON cache.
* :mod:`.fp16`, :mod:`.int8`, :mod:`.mixed` (with :mod:`.probe`): the three ``quantize --precision`` modes.
* :mod:`.evaluate`: running graphs on ONNX Runtime's CPU provider (``swin_trt.backends.onnxruntime``).
* :mod:`.pipeline`: the calibrate and quantize stages on files (what the CLI commands call).
"""

QUANTIZE_PRECISIONS = ("fp16", "int8", "best")  # what `quantize --precision` writes into a graph
COMPILE_PRECISIONS = ("fp32", *QUANTIZE_PRECISIONS)  # compile's final graph: fp32 = the rewritten graph itself
CALIBRATION_NUM = 512  # calibration images (or video frames) used by default
