"""swin-trt: compile Swin Transformers for TensorRT, with every stage checked on the CPU.

Pipeline: export -> rewrite -> calibrate -> quantize -> build -> validate -> infer.
"""

__version__ = "0.1.0"
