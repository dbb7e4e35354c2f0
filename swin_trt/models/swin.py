"""Reference Swin Transformer (v1) for inference, built for one input size.

The state-dict layout is timm's current one (``patch_embed``, ``layers.{i}.downsample`` at the *start* of
stage i, ``layers.{i}.blocks.{j}``, ``norm``, ``head.fc``); :mod:`swin_trt.models.checkpoint` maps the other
layouts onto it.

Where the window does not divide a stage's feature map, implementations disagree. A :class:`Convention`
names the choices (see the README's "Conventions" section):

=============== ============ ====================================================================
convention      pad_first    window smaller than the stage
=============== ============ ====================================================================
``timm``        no (shift,   window shrinks to the feature size per dimension, no shift there
                then pad)    (also Microsoft's original code)
``torchvision`` yes          window kept (the stage is padded up to it), no shift there
``hf``          yes          window shrinks to ``min(H, W)`` in both dimensions, no shift at all
=============== ============ ====================================================================

The masks and the relative position index are precomputed buffers (from :mod:`swin_trt.ops.reference`,
the op contract), so an export sees constants.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import reference

CONVENTIONS = ("timm", "torchvision", "hf")


@dataclass(frozen=True)
class SwinConfig:
    """Everything that shapes the network. ``img_size`` is ``(H, W)``."""

    img_size: tuple[int, int] = (224, 224)
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    convention: str = "timm"
    layer_norm_eps: float = 1e-5
    class_names: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self):
        object.__setattr__(self, "img_size", _pair(self.img_size))
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "num_heads", tuple(int(h) for h in self.num_heads))
        object.__setattr__(self, "class_names", tuple(self.class_names))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field that cannot work."""
        h, w = self.img_size
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image size {h}x{w} is not divisible by the patch size {self.patch_size}: "
                             f"use a multiple of {self.patch_size}, e.g. "
                             f"{h - h % self.patch_size or self.patch_size}x{w - w % self.patch_size or self.patch_size}")
        if len(self.depths) != len(self.num_heads):
            raise ValueError(f"depths {self.depths} and num_heads {self.num_heads} must have the same length")
        for stage, heads in enumerate(self.num_heads):
            if (self.embed_dim * 2 ** stage) % heads:
                raise ValueError(f"stage {stage}: {self.embed_dim * 2 ** stage} channels are not divisible by "
                                 f"{heads} heads")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"unknown convention {self.convention!r}: choose one of {', '.join(CONVENTIONS)}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    def stage_sizes(self) -> list[tuple[int, int]]:
        """Feature-map size of each stage (patch merging pads odd sizes up)."""
        h, w = self.img_size[0] // self.patch_size, self.img_size[1] // self.patch_size
        sizes = [(h, w)]
        for _ in self.depths[1:]:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
            sizes.append((h, w))
        return sizes

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["img_size"] = list(self.img_size)
        data["depths"] = list(self.depths)
        data["num_heads"] = list(self.num_heads)
        data["class_names"] = list(self.class_names)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "SwinConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown Swin config fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def with_(self, **changes) -> "SwinConfig":
        return replace(self, **changes)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    first, second = value
    return int(first), int(second)


def block_geometry(convention: str, feature_size: tuple[int, int], window: int, shift: int):
    """Effective ``(window, shift)`` pairs of a block on a ``feature_size`` map, by convention."""
    h, w = feature_size
    if convention == "timm":
        win = (min(h, window), min(w, window))
        return win, tuple(0 if size <= size_win else shift for size, size_win in zip((h, w), win))
    if convention == "torchvision":
        return (window, window), tuple(0 if size <= window else shift for size in (h, w))
    if convention == "hf":
        smallest = min(h, w)
        if smallest <= window:
            return (smallest, smallest), (0, 0)
        return (window, window), (shift, shift)
    raise ValueError(f"unknown convention {convention!r}")


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a relative position bias."""

    def __init__(self, dim: int, num_heads: int, window_size: tuple[int, int], qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        table_size = (2 * window_size[0] - 1) * (2 * window_size[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_size, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        index = torch.from_numpy(reference.relative_position_index(window_size).astype("int64"))
        self.register_buffer("relative_position_index", index, persistent=False)

    def relative_position_bias(self) -> torch.Tensor:
        tokens = self.window_size[0] * self.window_size[1]
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(tokens, tokens, -1).permute(2, 0, 1).contiguous()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        windows, tokens, channels = x.shape
        qkv = self.qkv(x).reshape(windows, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = (q * self.scale) @ k.transpose(-2, -1)
        attn = attn + self.relative_position_bias().unsqueeze(0)
        if mask is not None:
            n_windows = mask.shape[0]
            attn = attn.view(-1, n_windows, self.num_heads, tokens, tokens) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, tokens, tokens)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(windows, tokens, channels)
        return self.proj(x)


class SwinBlock(nn.Module):
    """(Shifted-)window attention and MLP, each with a pre-norm residual. Works on NHWC maps."""

    def __init__(self, dim: int, num_heads: int, feature_size: tuple[int, int], window: int, shift: int,
                 config: SwinConfig):
        super().__init__()
        self.feature_size = feature_size
        self.window_size, self.shift_size = block_geometry(config.convention, feature_size, window, shift)
        self.pad_first = config.convention != "timm"
        eps = config.layer_norm_eps
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = WindowAttention(dim, num_heads, self.window_size, config.qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio))
        padded = reference.padded_size(*feature_size, self.window_size)
        mask = reference.attention_mask(self.window_size, self.shift_size, *padded)
        self.register_buffer("attn_mask", None if mask is None else torch.from_numpy(mask), persistent=False)

    def _roll(self, x: torch.Tensor, sign: int) -> torch.Tensor:
        if not any(self.shift_size):
            return x
        return torch.roll(x, shifts=(sign * self.shift_size[0], sign * self.shift_size[1]), dims=(1, 2))

    def _shifted_window_attention(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, channels = x.shape
        wh, ww = self.window_size
        pad_b, pad_r = (wh - height % wh) % wh, (ww - width % ww) % ww
        hp, wp = height + pad_b, width + pad_r
        # The order of padding and cyclic shift is the convention (module docstring).
        if self.pad_first:
            x = self._roll(F.pad(x, (0, 0, 0, pad_r, 0, pad_b)), -1)
        else:
            x = F.pad(self._roll(x, -1), (0, 0, 0, pad_r, 0, pad_b))
        windows = x.view(-1, hp // wh, wh, wp // ww, ww, channels).permute(0, 1, 3, 2, 4, 5)
        windows = self.attn(windows.reshape(-1, wh * ww, channels), self.attn_mask)
        x = windows.view(-1, hp // wh, wp // ww, wh, ww, channels).permute(0, 1, 3, 2, 4, 5)
        x = x.reshape(-1, hp, wp, channels)
        if self.pad_first:
            return self._roll(x, 1)[:, :height, :width, :]
        return self._roll(x[:, :height, :width, :], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._shifted_window_attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbours -> 4C channels -> LayerNorm -> Linear to 2C. Odd sizes are zero-padded first."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim, eps=eps)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, channels = x.shape
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        height, width = height + height % 2, width + width % 2
        # Channel order (0,0), (1,0), (0,1), (1,1) as in the original x0..x3 concatenation.
        x = x.reshape(-1, height // 2, 2, width // 2, 2, channels).permute(0, 1, 3, 4, 2, 5)
        x = x.reshape(-1, height // 2, width // 2, 4 * channels)
        return self.reduction(self.norm(x))


class PatchEmbed(nn.Module):
    def __init__(self, config: SwinConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.in_chans, config.embed_dim, config.patch_size, config.patch_size)
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)

    def forward(self, x):
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SwinStage(nn.Module):
    def __init__(self, stage: int, config: SwinConfig, feature_size: tuple[int, int]):
        super().__init__()
        dim = config.embed_dim * 2 ** stage
        self.downsample = PatchMerging(dim // 2, config.layer_norm_eps) if stage > 0 else nn.Identity()
        window = config.window_size
        self.blocks = nn.Sequential(*[
            SwinBlock(dim, config.num_heads[stage], feature_size, window, 0 if j % 2 == 0 else window // 2,
                      config)
            for j in range(config.depths[stage])
        ])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class ClassifierHead(nn.Module):
    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, x):
        return self.fc(x.mean(dim=(1, 2)))


class SwinTransformer(nn.Module):
    """Swin Transformer v1 for one input size ``config.img_size``.

    ``forward`` returns logits ``(B, num_classes)``; with ``features=True`` it returns the four stage outputs
    as NCHW tensors instead (for detection/segmentation heads).
    """

    def __init__(self, config: SwinConfig, features: bool = False):
        super().__init__()
        config.validate()
        self.config = config
        self.features = features
        self.patch_embed = PatchEmbed(config)
        sizes = config.stage_sizes()
        self.layers = nn.Sequential(*[SwinStage(i, config, sizes[i]) for i in range(len(config.depths))])
        self.norm = nn.LayerNorm(config.num_features, eps=config.layer_norm_eps)
        self.head = ClassifierHead(config.num_features, config.num_classes)

    def forward(self, x: torch.Tensor):
        expected = self.config.img_size
        if tuple(x.shape[-2:]) != expected:
            raise ValueError(f"input is {tuple(x.shape[-2:])}, but this model was built for {expected}: "
                             f"build it with img_size={expected[0]}x{expected[1]} changed to your size")
        x = self.patch_embed(x)
        if self.features:
            outputs = []
            for stage in self.layers:
                x = stage(x)
                outputs.append(x.permute(0, 3, 1, 2))
            return tuple(outputs)
        x = self.layers(x)
        return self.head(self.norm(x))
