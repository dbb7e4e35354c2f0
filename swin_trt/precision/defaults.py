"""The choices and defaults of the precision stages, each defined once: the CLI commands, the stages and the
compile job read them here (the calibration methods, their default and the percentile: :mod:`.methods`).

Importing this module costs nothing (no numpy, no ONNX), so CLI option declarations can use it."""

PRECISIONS = ("fp16", "int8", "best")  # quantize --precision
COMPILE_PRECISIONS = ("fp32", *PRECISIONS)  # compile --precision: fp32 ships the rewritten graph itself
INT8_BASES = ("fp32", "fp16")  # quantize --int8-base: precision of the float ops between INT8 layers
DEFAULT_INT8_BASE = "fp32"  # (best always uses fp16)
DEFAULT_CALIB_IMAGES = 512  # calibrate --num, compile --calib-num: images or video frames to calibrate on
DEFAULT_CALIB_BATCH = 8  # calibrate --batch: images per ONNX Runtime run
DEFAULT_EVAL_IMAGES = 64  # quantize --eval-num: held-out images --precision best measures on
DEFAULT_MIN_AGREEMENT = 0.995  # quantize --min-agreement: top-1 agreement with FP32 that best keeps
DEFAULT_MIN_COSINE = 0.999  # quantize --min-cosine: mean logits cosine with FP32 that best keeps
