"""The PyTorch reference as a backend: ``torch:<arch>`` or ``torch:<arch>:<checkpoint>``."""

from __future__ import annotations

import numpy as np
import torch

from ..models import create_model
from .base import Backend


class TorchBackend(Backend):
    name = "torch"

    def __init__(self, model: torch.nn.Module):
        self.model = model.eval()
        config = model.config
        if getattr(model, "task", None) == "detection":  # each image finds its own number of boxes: batch 1
            self.input_shape = (1, config.in_chans, *config.img_size)
            self.output_names = ["boxes", "scores", "labels"]
        else:
            self.input_shape = (None, config.in_chans, *config.img_size)
            self.output_names = ["logits"]

    @classmethod
    def from_spec(cls, ref, img_size=None):
        """``ref``: a :class:`~swin_trt.model_ref.ModelRef` of kind torch (``torch:<arch>[:<checkpoint>]``)."""
        model, _, _ = create_model(ref.arch, ref.checkpoint, img_size=img_size)
        return cls(model)

    def infer(self, batch: np.ndarray) -> list[np.ndarray]:
        with torch.inference_mode():
            out = self.model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)))
        outs = out if isinstance(out, tuple) else (out,)
        return [o.float().numpy() for o in outs]
