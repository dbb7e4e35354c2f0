"""Raw-pixel model inputs: the normalisation folded into the graph (``swin-trt export --fold-normalization``).

DeepStream's nvinfer normalises with ONE scalar scale and per-channel offsets, so a per-channel std cannot be
expressed there; and a video client that sends uint8 pixels moves a quarter of the bytes of float32. Both want
the graph to start from pixels. Folded, the graph computes ``(x / 255 - mean) / std`` itself, as its first
(fused) ops, on an RGB ``(B, 3, H, W)`` input that is either uint8 or float32 holding 0..255.

The export's sidecar then says ``mean = 0, std = 1/255`` (the identity from 0..255 pixels), so every stage
that reads the sidecar (:class:`~swin_trt.preprocess.Preprocessor`, calibrate, validate, infer) feeds
the folded graph pixel values without knowing about folding; the original mean and std are kept under
``folded_normalization``.
"""

from __future__ import annotations

import torch

from ..preprocess import PIXEL_STD  # the sidecar's std for a folded graph: normalize() then passes 0..255 through

FOLDED_INPUTS = ("uint8", "float255")


class FoldedNormalization(torch.nn.Module):
    """``model`` behind ``(x / 255 - mean) / std``, written as one multiply and one subtract per channel.
    ``spatial_dims``: the input's dims after the channels (2 for images ``(B, 3, H, W)``, 3 for clips
    ``(B, 3, T, H, W)``)."""

    def __init__(self, model: torch.nn.Module, mean, std, spatial_dims: int = 2):
        super().__init__()
        self.model = model
        shape = (1, 3) + (1,) * spatial_dims
        mean = torch.tensor(mean, dtype=torch.float32).view(shape)
        std = torch.tensor(std, dtype=torch.float32).view(shape)
        self.register_buffer("scale", 1.0 / (255.0 * std))
        self.register_buffer("offset", mean / std)
        self.config = model.config

    def forward(self, pixels):
        return self.model(pixels.to(torch.float32) * self.scale - self.offset)


def example_pixels(kind: str, shape, generator: torch.Generator) -> torch.Tensor:
    """A random input of the folded graph's dtype: uint8, or float32 holding whole 0..255 values."""
    pixels = torch.randint(0, 256, tuple(shape), generator=generator, dtype=torch.uint8)
    return pixels if kind == "uint8" else pixels.to(torch.float32)


def folded_preprocessing(preprocessing: dict, kind: str) -> dict:
    """The sidecar's ``preprocessing`` for a graph that normalises itself (see the module docstring)."""
    return {**preprocessing, "mean": [0.0, 0.0, 0.0], "std": [PIXEL_STD] * 3, "scale": "0..255",
            "dtype": "uint8" if kind == "uint8" else "float32"}


def is_folded(sidecar: dict | None) -> bool:
    return bool(sidecar and sidecar.get("folded_normalization"))
