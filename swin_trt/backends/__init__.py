"""Backends: one interface over ONNX Runtime (the embedded default), the PyTorch reference and TensorRT.

Each backend is a small module of composable loaders plus one runner class, as in Polygraphy.
"""

from .base import Backend, open_backend

__all__ = ["Backend", "open_backend"]
