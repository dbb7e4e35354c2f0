"""The ``swin-trt`` command line: one module per subcommand, each a thin layer over the library."""

from .main import main

__all__ = ["main"]
