"""What a model argument names: an ONNX file, a TensorRT engine, or the PyTorch reference.

Every command that takes a model (``validate --reference/--candidate``, ``infer -m``, backends) parses it
here, once: ``.engine``/``.plan`` is a TensorRT engine, ``torch:<arch>[:<checkpoint>]`` the PyTorch
reference, anything else an ONNX file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import UserError
from .io import read_sidecar

ENGINE_SUFFIXES = (".engine", ".plan")
TORCH_PREFIX = "torch:"
KINDS = ("onnx", "engine", "torch")


@dataclass(frozen=True)
class ModelRef:
    text: str
    kind: str  # one of KINDS
    arch: str | None = None  # torch only
    checkpoint: str | None = None  # torch only, optional

    @classmethod
    def parse(cls, text: str | Path) -> "ModelRef":
        text = str(text)
        if text.startswith(TORCH_PREFIX):
            parts = text.split(":", 2)
            if len(parts) < 2 or not parts[1]:
                raise UserError(f"model {text!r}: write torch:<arch> or torch:<arch>:<checkpoint>")
            return cls(text, "torch", parts[1], parts[2] if len(parts) > 2 and parts[2] else None)
        if text.endswith(ENGINE_SUFFIXES):
            return cls(text, "engine")
        return cls(text, "onnx")

    @property
    def path(self) -> Path | None:
        return None if self.kind == "torch" else Path(self.text)

    @property
    def is_file(self) -> bool:
        return self.kind != "torch"

    def sidecar(self) -> dict | None:
        """The ONNX export sidecar or the engine manifest (``<model>.json``), if there is one."""
        if self.kind == "torch" or not Path(self.text).is_file():
            return None
        return read_sidecar(self.text)

    def __str__(self) -> str:
        return self.text
