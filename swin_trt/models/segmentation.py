"""A semantic segmentation model on the reference Swin: its stage maps through a light FPN head.

:class:`SwinSegmenter` is the reference :class:`~.swin.SwinTransformer` in features mode (the same weights,
keys and window ops, so export, rewrite and quantize treat its backbone as any Swin) plus
:class:`FPNLiteHead`, which turns the stage maps into per-pixel class logits at the input's size:

* a 1x1 lateral conv brings every stage to ``embed_dim`` channels;
* top-down, each coarser map is upsampled (bilinear) to the next finer one and added (FPN);
* a 3x3 conv + ReLU smooths the finest sum, a 1x1 conv gives the class logits at 1/patch of the input;
* bilinear upsampling to the input's size.

Every size comes from the tensors, not from the config, so an export with dynamic height and width
(``export --dynamic-size``) keeps the head dynamic too. The head's width is the backbone's ``embed_dim``: the
config alone builds the model (``type(model)(config)`` makes it again at another size).

State-dict keys: the backbone's, as timm names them (``patch_embed``, ``layers``), and ``decode_head.*``.
There is no classifier (``head``) and no final norm: a segmentation checkpoint loads through the same
checkpoint import as any timm-layout Swin.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .swin import SwinConfig, SwinTransformer


def _resize(x: torch.Tensor, like: torch.Tensor | tuple) -> torch.Tensor:
    size = like.shape[-2:] if isinstance(like, torch.Tensor) else like
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class FPNLiteHead(nn.Module):
    """Stage maps (NCHW, finest first) -> class logits at ``out_size``."""

    def __init__(self, in_channels: list[int], channels: int, num_classes: int):
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.fuse = nn.Conv2d(channels, channels, 3, padding=1)
        self.classifier = nn.Conv2d(channels, num_classes, 1)

    def forward(self, maps: tuple[torch.Tensor, ...], out_size) -> torch.Tensor:
        laterals = [conv(m) for conv, m in zip(self.lateral, maps)]
        x = laterals[-1]
        for finer in reversed(laterals[:-1]):
            x = finer + _resize(x, finer)
        x = F.relu(self.fuse(x))
        return _resize(self.classifier(x), out_size)


class SwinSegmenter(SwinTransformer):
    """Per-pixel class logits ``(B, num_classes, H, W)`` at the input's size; ``features=True``: the stage maps."""

    task = "segmentation"

    def __init__(self, config: SwinConfig, features: bool = False):
        super().__init__(config, features=features)
        del self.norm, self.head  # the classifier's; a segmenter has its own head
        widths = [config.embed_dim * 2 ** stage for stage in range(len(config.depths))]
        self.decode_head = FPNLiteHead(widths, config.embed_dim, config.num_classes)

    def forward(self, x: torch.Tensor):
        maps = self.stage_maps(x)
        if self.features:
            return maps
        return self.decode_head(maps, x.shape[-2:])
