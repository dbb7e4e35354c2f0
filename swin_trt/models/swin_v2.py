"""Reference Swin Transformer V2 for inference, built for one input size.

V2 keeps V1's structure (:mod:`swin_trt.models.swin`: patch embedding, pad/shift/partition/reverse around the
window attention, stages, head, features mode) and changes four things:

* **Scaled cosine attention.** ``normalize(q) @ normalize(k)^T * exp(min(logit_scale, log 100))`` with one
  learned logit scale per head, instead of ``q @ k^T / sqrt(d)``.
* **Continuous relative position bias.** A small MLP (2 -> 512 -> heads) maps log-spaced relative
  coordinates to a bias, passed through ``16 * sigmoid``. Its input is a constant, so an export folds it to a
  ``(heads, N, N)`` table, like V1's gathered table.
* **Residual post-norm.** ``x + norm1(attn(x))`` and ``x + norm2(mlp(x))``; patch merging normalises after
  its reduction (over 2C channels).
* **Separate q and v biases, none on k** (``q_bias``, ``v_bias``; the qkv linear has no bias).

The attention is written so that its export reads as one chain per block: ``normalize(q) @ normalize(k)^T``
-> ``Mul`` by the folded per-head scale ``(heads, 1, 1)`` -> ``Add`` the folded ``(heads, N, N)`` bias ->
(``Add`` the shift mask) -> ``Softmax`` -> ``@ v``.

The state-dict layout is timm's (``attn.qkv.weight``, ``attn.q_bias``, ``attn.v_bias``, ``attn.logit_scale``,
``attn.cpb_mlp.{0,2}``); :mod:`swin_trt.models.checkpoint` maps torchvision's, Hugging Face's and
Microsoft's onto it.

Conventions where the window does not divide a stage (V1's table in :mod:`swin_trt.models.swin`, plus):

=============== ==========================================================================================
``timm``        as V1 (also Microsoft's code); the CPB coordinates are normalised by the *shrunk* window
``torchvision`` as V1; the window never shrinks, so the CPB coordinates use the full window
``hf``          transformers' ``Swinv2Layer`` decides once, from the stage's *nominal* height
                ``(H / patch) // 2**stage`` (floor, where the real map is rounded up): a square window
                ``min(nominal, window)``, no shift when ``nominal <= window``; its attention adds the shift
                mask twice (-200 between regions, not -100)
=============== ==========================================================================================

``pretrained_window_sizes`` (timm's, Hugging Face's and Microsoft's fine-tuned-to-a-larger-window models)
replaces the window in the CPB coordinate normalisation, per stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .swin import SwinBlock, SwinConfig, SwinTransformer, WindowAttentionCore, block_geometry

MAX_LOGIT_SCALE = math.log(100.0)  # the clamp every implementation applies before exp()
CPB_HIDDEN = 512
CPB_SCALE = 16.0  # bias = 16 * sigmoid(cpb_mlp(coords))


@dataclass(frozen=True)
class SwinV2Config(SwinConfig):
    """A Swin V2 network. ``pretrained_window_sizes``: one per stage (0: the window itself), or empty."""

    family: ClassVar[str] = "swin_v2"
    img_size: tuple[int, int] = (256, 256)
    window_size: int = 8
    pretrained_window_sizes: tuple[int, ...] = ()

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "pretrained_window_sizes", tuple(int(w) for w in self.pretrained_window_sizes))

    def validate(self) -> None:
        super().validate()
        if self.pretrained_window_sizes and len(self.pretrained_window_sizes) != len(self.depths):
            raise ValueError(f"pretrained_window_sizes {self.pretrained_window_sizes} must have one entry per "
                             f"stage ({len(self.depths)}) or none")
        if self.convention == "hf" and min(self.nominal_stage_size(len(self.depths) - 1)) < 1:
            raise ValueError(f"image size {self.img_size[0]}x{self.img_size[1]} is too small for the hf "
                             f"convention: its last stage's nominal size is 0; use at least "
                             f"{self.patch_size * 2 ** (len(self.depths) - 1)} px per side")

    def pretrained_window(self, stage: int) -> int:
        return self.pretrained_window_sizes[stage] if self.pretrained_window_sizes else 0

    def nominal_stage_size(self, stage: int) -> tuple[int, int]:
        """transformers' stage resolution: the patch grid floor-divided by ``2**stage``."""
        return tuple((side // self.patch_size) // 2 ** stage for side in self.img_size)


def v2_block_geometry(config: SwinV2Config, stage: int, feature_size: tuple[int, int], shift: int):
    """Effective ``(window, shift)`` pairs of a V2 block, by convention (module docstring)."""
    if config.convention == "hf":
        nominal = config.nominal_stage_size(stage)[0]  # Swinv2Layer keeps only the height's result
        window = min(nominal, config.window_size)
        shift = 0 if nominal <= window else shift
        return (window, window), (shift, shift)
    return block_geometry(config.convention, feature_size, config.window_size, shift)


def cpb_coordinates(window_size: tuple[int, int], pretrained_window_size: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """``(2wh-1, 2ww-1, 2)`` log-spaced relative coordinates, the CPB MLP's input.

    Relative offsets divided by ``pretrained - 1`` (or ``window - 1``), scaled to [-8, 8], then
    ``sign(x) * log2(|x| + 1) / 3``. Computed in float32 torch like every peer, so the folded table matches
    theirs bit for bit.
    """
    axes = [torch.arange(-(size - 1), size, dtype=torch.float32) for size in window_size]
    table = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)
    reference_size = pretrained_window_size if pretrained_window_size[0] > 0 else window_size
    table[..., 0] /= max(reference_size[0] - 1, 1)  # a window of 1 has only offset 0: avoid 0 / 0
    table[..., 1] /= max(reference_size[1] - 1, 1)
    table *= 8
    return torch.sign(table) * torch.log2(torch.abs(table) + 1.0) / math.log2(8)


class CosineWindowAttention(WindowAttentionCore):
    """V2 window attention: scaled cosine similarity plus the continuous position bias.

    In eval mode the parts that depend only on weights are folded (:meth:`fold`): the CPB table
    ``16 * sigmoid(cpb_mlp(coords))`` and the per-head scale ``exp(min(logit_scale, log 100))`` become
    buffers, so an export sees two constants where V1 has its bias table and ``1 / sqrt(d)``; the values are
    the very tensors the live computation gives.
    """

    def __init__(self, dim: int, num_heads: int, window_size: tuple[int, int],
                 pretrained_window_size: tuple[int, int] = (0, 0), qkv_bias: bool = True):
        super().__init__(dim, num_heads, window_size, nn.Linear(dim, 3 * dim, bias=False))
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
            self.register_buffer("k_bias", torch.zeros(dim), persistent=False)
        else:
            self.q_bias = self.v_bias = self.k_bias = None
        self.logit_scale = nn.Parameter(torch.full((num_heads, 1, 1), math.log(10.0)))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, CPB_HIDDEN), nn.ReLU(), nn.Linear(CPB_HIDDEN, num_heads, bias=False))
        self.register_buffer("relative_coords_table", cpb_coordinates(window_size, pretrained_window_size),
                             persistent=False)
        self.register_buffer("folded_bias_table", None, persistent=False)
        self.register_buffer("folded_head_scale", None, persistent=False)

    def fold(self) -> None:
        """Evaluate the CPB table and the head scale from the current weights (eval mode, inference)."""
        with torch.no_grad():
            self.folded_bias_table = self.cpb_bias_table()
            self.folded_head_scale = self.live_head_scale()

    def unfold(self) -> None:
        self.folded_bias_table = self.folded_head_scale = None

    def project_qkv(self, x: torch.Tensor) -> torch.Tensor:
        if self.q_bias is None:
            return self.qkv(x)
        return F.linear(x, self.qkv.weight, torch.cat((self.q_bias, self.k_bias, self.v_bias)))

    def live_head_scale(self) -> torch.Tensor:
        return torch.clamp(self.logit_scale, max=MAX_LOGIT_SCALE).exp()

    def cpb_bias_table(self) -> torch.Tensor:
        return CPB_SCALE * torch.sigmoid(self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads))

    def head_scale(self) -> torch.Tensor:
        """``(heads, 1, 1)``: ``exp(min(logit_scale, log 100))``."""
        return self.live_head_scale() if self.folded_head_scale is None else self.folded_head_scale

    def bias_table(self) -> torch.Tensor:
        """``((2wh-1)(2ww-1), heads)``: ``16 * sigmoid(cpb_mlp(coords))``."""
        return self.cpb_bias_table() if self.folded_bias_table is None else self.folded_bias_table

    def logits(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)) * self.head_scale()


class SwinV2Block(SwinBlock):
    """V2 block: residual post-norm, cosine attention, V2 geometry (module docstring)."""

    def geometry(self, config: SwinV2Config, stage: int, feature_size: tuple[int, int], shift: int):
        return v2_block_geometry(config, stage, feature_size, shift)

    def make_attention(self, dim: int, num_heads: int, config: SwinV2Config, stage: int) -> WindowAttentionCore:
        pretrained = config.pretrained_window(stage)
        return CosineWindowAttention(dim, num_heads, self.window_size, (pretrained, pretrained), config.qkv_bias)

    def shift_mask(self, config: SwinV2Config):
        mask = super().shift_mask(config)
        if mask is not None and config.convention == "hf":
            mask = mask * np.float32(2)  # Swinv2SelfAttention adds the mask twice
        return mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.norm1(self._shifted_window_attention(x))
        return x + self.norm2(self.mlp(x))


class SwinTransformerV2(SwinTransformer):
    """Swin Transformer V2 for one input size ``config.img_size`` (a :class:`SwinV2Config`).

    ``forward`` returns logits ``(B, num_classes)``; with ``features=True`` the four stage outputs as NCHW.
    """

    family = SwinV2Config.family
    block = SwinV2Block
    merge_norm_after = True

    def __init__(self, config: SwinV2Config, features: bool = False):
        super().__init__(config, features)
        # Loading weights in eval mode refolds, so the folded constants never go stale.
        self.register_load_state_dict_post_hook(lambda module, _: module._refold())

    def _refold(self) -> None:
        for module in self.modules():
            if isinstance(module, CosineWindowAttention):
                module.unfold() if self.training else module.fold()

    def train(self, mode: bool = True):
        """Eval mode folds the CPB tables and head scales (inference); train mode computes them live."""
        super().train(mode)
        self._refold()
        return self
