"""Precision as explicit types in the graph: INT8 calibration, FP16 casting, QDQ insertion, mixed INT8/FP16.

TensorRT 11 builds strongly typed networks only (no FP16/INT8 builder flags, no calibrators), so the
precision a TensorRT engine runs in is written into the ONNX graph here; ONNX Runtime on the CPU runs the
same graph, which lets every precision choice be checked without a GPU.

* :mod:`.histogram`, :mod:`.methods`: streaming |x| histograms and the four ways to pick ``amax``.
* :mod:`.points`: which tensors get quantized (inputs of MatMul/Gemm/Conv and of the window plugins).
* :mod:`.detection_head`: where a detector's head begins (it stays float32 unless ``--quantize-head``).
* :mod:`.sources`, :mod:`.calibration`, :mod:`.cache`: calibration images -> ranges -> the JSON cache.
* :mod:`.fp16`, :mod:`.int8`, :mod:`.mixed` (with :mod:`.switchable`): the three ``quantize --precision`` modes.
* :mod:`.evaluate`: running graphs on ONNX Runtime's CPU provider (``swin_trt.backends.onnxruntime``).
* :mod:`.calibrate_stage`, :mod:`.quantize_stage`: the two stages on files (what the CLI commands call).

Graphs are edited with onnx-graphsurgeon through :mod:`swin_trt.graph`.
"""
