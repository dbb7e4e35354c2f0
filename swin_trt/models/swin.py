"""Reference Swin Transformer (v1) for inference, built for one input size, and what V2 shares with it.

V2 (:mod:`swin_trt.models.swin_v2`) reuses the patch embedding, the pad/shift/partition/reverse around the
window attention (:class:`SwinBlock`), the attention core (:class:`WindowAttentionCore`), patch merging,
the stages, the head and the features mode; it brings its own attention, block geometry and norm order.

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
from typing import ClassVar, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..ops import reference

CONVENTIONS = ("timm", "torchvision", "hf")


class ConfigMethods:
    """What every family's frozen config dataclass does alike: built from a dict (refusing unknown fields,
    which would otherwise pass silently) and copied with changes."""

    label: ClassVar[str] = "Swin"  # the family as a message names it

    @classmethod
    def from_dict(cls, data: dict):
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown {cls.label} config fields: {', '.join(sorted(unknown))}")
        return cls(**data)

    def with_(self, **changes):
        return replace(self, **changes)


@dataclass(frozen=True)
class SwinConfig(ConfigMethods):
    """Everything that shapes the network. ``img_size`` is ``(H, W)``."""

    family: ClassVar[str] = "swin_v1"  # which model class builds it (registry.MODEL_CLASSES)
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


class WindowAttentionCore(nn.Module):
    """What V1 and V2 window attention share, on ``(B * nW, N, C)`` windows.

    ``qkv(x) -> logits(q, k) + relative position bias (+ shift mask) -> softmax -> @ v -> proj``; a family
    supplies ``logits`` and ``bias_table`` (the ``((2wh-1)(2ww-1), heads)`` table the relative position index
    gathers from), and may override ``project_qkv``.
    """

    def __init__(self, dim: int, num_heads: int, window_size: tuple[int, int], qkv: nn.Linear):
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.qkv = qkv  # created before proj: the order random initialisation draws in
        self.proj = nn.Linear(dim, dim)
        index = torch.from_numpy(reference.relative_position_index(window_size).astype("int64"))
        self.register_buffer("relative_position_index", index, persistent=False)

    def project_qkv(self, x: torch.Tensor) -> torch.Tensor:
        return self.qkv(x)

    def logits(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def bias_table(self) -> torch.Tensor:
        raise NotImplementedError

    def relative_position_bias(self) -> torch.Tensor:
        """``(heads, N, N)``: the table gathered by the relative position index."""
        tokens = self.window_size[0] * self.window_size[1]
        bias = self.bias_table()[self.relative_position_index.view(-1)]
        return bias.view(tokens, tokens, -1).permute(2, 0, 1).contiguous()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        windows, tokens, channels = x.shape
        qkv = self.project_qkv(x).reshape(windows, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        attn = self.logits(q, k)
        attn = attn + self.relative_position_bias().unsqueeze(0)
        if mask is not None:
            n_windows = mask.shape[0]
            attn = attn.view(-1, n_windows, self.num_heads, tokens, tokens) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, tokens, tokens)
        attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(windows, tokens, channels)
        return self.proj(x)


class WindowAttention(WindowAttentionCore):
    """V1: multi-head self-attention inside windows, ``q k^T / sqrt(d)`` plus a learned bias table."""

    def __init__(self, dim: int, num_heads: int, window_size: tuple[int, int], qkv_bias: bool = True):
        super().__init__(dim, num_heads, window_size, nn.Linear(dim, 3 * dim, bias=qkv_bias))
        self.scale = (dim // num_heads) ** -0.5
        table_size = (2 * window_size[0] - 1) * (2 * window_size[1] - 1)
        self.relative_position_bias_table = nn.Parameter(torch.zeros(table_size, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def logits(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        return (q * self.scale) @ k.transpose(-2, -1)

    def bias_table(self) -> torch.Tensor:
        return self.relative_position_bias_table


class SwinBlock(nn.Module):
    """V1 block: (shifted-)window attention and MLP, each with a pre-norm residual. Works on NHWC maps.

    A family's block overrides ``geometry``, ``make_attention``, ``shift_mask`` and ``forward``; the pad,
    shift, partition and reverse around the attention are the same for every family.
    """

    def __init__(self, dim: int, num_heads: int, feature_size: tuple[int, int], shift: int, config: SwinConfig,
                 stage: int):
        super().__init__()
        self.feature_size = feature_size
        self.window_size, self.shift_size = self.geometry(config, stage, feature_size, shift)
        self.pad_first = config.convention != "timm"
        eps = config.layer_norm_eps
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = self.make_attention(dim, num_heads, config, stage)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio))
        mask = self.shift_mask(config)
        self.register_buffer("attn_mask", None if mask is None else torch.from_numpy(mask), persistent=False)

    def geometry(self, config: SwinConfig, stage: int, feature_size: tuple[int, int], shift: int):
        """Effective ``(window, shift)`` of this block (module docstring: it depends on the convention)."""
        return block_geometry(config.convention, feature_size, config.window_size, shift)

    def make_attention(self, dim: int, num_heads: int, config: SwinConfig, stage: int) -> WindowAttentionCore:
        return WindowAttention(dim, num_heads, self.window_size, config.qkv_bias)

    def shift_mask(self, config: SwinConfig):
        """``(nW, N, N)`` additive mask of the shifted windows over the padded map (numpy), or ``None``."""
        padded = reference.padded_size(*self.feature_size, self.window_size)
        return reference.attention_mask(self.window_size, self.shift_size, *padded)

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
    """2x2 neighbours -> 4C channels -> Linear to 2C, with a LayerNorm before (V1) or after (V2) the
    reduction. Odd sizes are zero-padded first."""

    def __init__(self, dim: int, eps: float, norm_after: bool = False):
        super().__init__()
        self.norm_after = norm_after
        self.norm = nn.LayerNorm(2 * dim if norm_after else 4 * dim, eps=eps)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, height, width, channels = x.shape
        x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        height, width = height + height % 2, width + width % 2
        # Channel order (0,0), (1,0), (0,1), (1,1) as in the original x0..x3 concatenation.
        x = x.reshape(-1, height // 2, 2, width // 2, 2, channels).permute(0, 1, 3, 4, 2, 5)
        x = x.reshape(-1, height // 2, width // 2, 4 * channels)
        if self.norm_after:
            return self.norm(self.reduction(x))
        return self.reduction(self.norm(x))


class PatchEmbed(nn.Module):
    def __init__(self, config: SwinConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.in_chans, config.embed_dim, config.patch_size, config.patch_size)
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)

    def forward(self, x):
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


class SwinStage(nn.Module):
    def __init__(self, stage: int, config: SwinConfig, feature_size: tuple[int, int], block: type[SwinBlock],
                 merge_norm_after: bool):
        super().__init__()
        dim = config.embed_dim * 2 ** stage
        self.downsample = (PatchMerging(dim // 2, config.layer_norm_eps, merge_norm_after) if stage > 0
                           else nn.Identity())
        self.blocks = nn.Sequential(*[
            block(dim, config.num_heads[stage], feature_size, 0 if j % 2 == 0 else config.window_size // 2,
                  config, stage)
            for j in range(config.depths[stage])
        ])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class ClassifierHead(nn.Module):
    """Global average pool over the map's spatial dims (H, W; T, H, W for a clip), then a linear layer."""

    def __init__(self, num_features: int, num_classes: int, pool_dims: tuple[int, ...] = (1, 2)):
        super().__init__()
        self.pool_dims = pool_dims
        self.fc = nn.Linear(num_features, num_classes) if num_classes else nn.Identity()

    def forward(self, x):
        return self.fc(x.mean(dim=self.pool_dims))


class SwinTransformer(nn.Module):
    """Swin Transformer v1 for one input size ``config.img_size``.

    ``forward`` returns logits ``(B, num_classes)``; with ``features=True`` it returns the four stage outputs
    as NCHW tensors instead (:meth:`stage_maps`, for detection/segmentation heads).
    """

    family = SwinConfig.family
    block: type[SwinBlock] = SwinBlock
    merge_norm_after = False  # V1 patch merging normalises before its reduction

    def __init__(self, config: SwinConfig, features: bool = False):
        super().__init__()
        if config.family != self.family:
            raise TypeError(f"{type(self).__name__} builds {self.family} models, not {config.family} "
                            f"({type(config).__name__})")
        config.validate()
        self.config = config
        self.features = features
        self.patch_embed = PatchEmbed(config)
        sizes = config.stage_sizes()
        self.layers = nn.Sequential(*[SwinStage(i, config, sizes[i], self.block, self.merge_norm_after)
                                      for i in range(len(config.depths))])
        self.norm = nn.LayerNorm(config.num_features, eps=config.layer_norm_eps)
        self.head = ClassifierHead(config.num_features, config.num_classes)

    def _check_size(self, x: torch.Tensor) -> None:
        expected = self.config.img_size
        if tuple(x.shape[-2:]) != expected:
            raise ValueError(f"input is {tuple(x.shape[-2:])}, but this model was built for {expected}: "
                             f"build it with img_size={expected[0]}x{expected[1]} changed to your size")

    def stage_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The stage outputs, NCHW, finest first: what features mode returns, and what the dense and detection
        heads of the subclasses read."""
        self._check_size(x)
        x = self.patch_embed(x)
        maps = []
        for stage in self.layers:
            x = stage(x)
            maps.append(x.permute(0, 3, 1, 2))
        return tuple(maps)

    def forward(self, x: torch.Tensor):
        if self.features:
            return self.stage_maps(x)
        self._check_size(x)
        x = self.layers(self.patch_embed(x))
        return self.head(self.norm(x))
