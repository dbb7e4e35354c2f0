"""swin-trt: compile Swin Transformers for TensorRT, with every stage checked on the CPU.

Pipeline: export -> rewrite -> calibrate -> quantize -> build -> validate -> infer.
"""

__version__ = "0.1.0"

from .diagnostics import configure_from_environment as _configure_logging

_configure_logging()  # SWIN_TRT_LOG_LEVEL, when set; otherwise nothing (see swin_trt.diagnostics)
