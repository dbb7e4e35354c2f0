"""Reference Video Swin Transformer (3D Swin, Liu et al., CVPR 2022) for inference, built for one clip size.

A clip ``(B, 3, T, H, W)`` is cut into 2x4x4 patches (a ``Conv3d``), and each stage runs (shifted-)window
attention over 3D windows (8x7x7 = 392 tokens for the released models) with a 3D relative position bias
table of ``(2Wt-1)(2Wh-1)(2Ww-1)`` rows. Patch merging halves H and W only (T stays); the head averages the
final map over T, H and W.

It follows :mod:`swin_trt.models.swin` (the V1 reference) where it can: the same module names and state-dict
layout (``patch_embed.proj/norm``, ``layers.{i}.downsample`` at the *start* of stage i,
``layers.{i}.blocks.{j}.{norm1,attn.qkv,attn.proj,attn.relative_position_bias_table,norm2,mlp.fc1,mlp.fc2}``,
``norm``, ``head.fc``), and V1's :class:`~swin_trt.models.swin.Mlp` and patch merging. With the same names
as the 2D models, the checkpoint tooling (:func:`~swin_trt.models.checkpoint.describe_architecture`, the
error messages) and the graph passes that find blocks by name work unchanged;
:mod:`swin_trt.models.checkpoint` maps torchvision's ``swin3d_*`` and the official Video-Swin-Transformer /
mmaction2 layouts onto it.

There is one convention, that of the official code, which torchvision's ``swin3d_*`` reproduce:

* the input is zero-padded up to a multiple of the patch; a window that is not smaller than a stage's
  dimension shrinks to it, and that dimension is not shifted (``window_geometry``);
* each block pads its map up to a multiple of the window *before* the cyclic shift;
* the bias of a shrunk window of N tokens is the top-left ``N x N`` block of the *full* window's relative
  position index (``relative_position_index(window)[:N, :N]``). That is the true relative bias where the
  shrunk window's tokens are a prefix of the full window's ``(t, h, w)`` order (only T shrank, say); where W
  shrank (or H, over more than one frame) it is not, but it is what the released weights were evaluated
  with, so the reference reproduces it.

The shift masks and the index are precomputed buffers (numpy here), so an export sees constants. Window
partition, cyclic shift and window reverse are separate functions on ``(B, T, H, W, C)`` maps with a
3-tuple window and shift.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import ClassVar, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .swin import ClassifierHead, ConfigMethods, Mlp, PatchMerging

Triple = tuple[int, int, int]
MASK_VALUE = -100.0  # the additive mask between tokens of different shifted regions, as in every implementation


def _triple(value: int | Sequence[int], name: str) -> Triple:
    if isinstance(value, int):
        return value, value, value
    values = tuple(int(v) for v in value)
    if len(values) != 3:
        raise ValueError(f"{name} needs three values (T, H, W), got {list(values)}")
    return values  # type: ignore[return-value]


@dataclass(frozen=True)
class VideoSwinConfig(ConfigMethods):
    """Everything that shapes the network. ``clip_size``, ``patch_size`` and ``window_size`` are ``(T, H, W)``.

    The default clip is the one torchvision's Kinetics-400 numbers were measured at (32 frames of 224x224).
    """

    family: ClassVar[str] = "video_swin"  # which model class builds it (registry.MODEL_CLASSES)
    label: ClassVar[str] = "Video Swin"
    clip_size: Triple = (32, 224, 224)
    patch_size: Triple = (2, 4, 4)
    in_chans: int = 3
    num_classes: int = 400
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: Triple = (8, 7, 7)
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    layer_norm_eps: float = 1e-5
    class_names: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self):
        for name in ("clip_size", "patch_size", "window_size"):
            object.__setattr__(self, name, _triple(getattr(self, name), name))
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        object.__setattr__(self, "num_heads", tuple(int(h) for h in self.num_heads))
        object.__setattr__(self, "class_names", tuple(self.class_names))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the field that cannot work."""
        for name in ("clip_size", "patch_size", "window_size"):
            if min(getattr(self, name)) < 1:
                raise ValueError(f"{name} {list(getattr(self, name))} must be positive in T, H and W")
        if len(self.depths) != len(self.num_heads):
            raise ValueError(f"depths {self.depths} and num_heads {self.num_heads} must have the same length")
        for stage, heads in enumerate(self.num_heads):
            if (self.embed_dim * 2 ** stage) % heads:
                raise ValueError(f"stage {stage}: {self.embed_dim * 2 ** stage} channels are not divisible by "
                                 f"{heads} heads")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ValueError(f"{len(self.class_names)} class names for {self.num_classes} classes")

    @property
    def img_size(self) -> tuple[int, int]:
        """The frame size ``(H, W)`` (what the image tooling calls the input size)."""
        return self.clip_size[1], self.clip_size[2]

    def stage_sizes(self) -> list[Triple]:
        """Token map ``(T, H, W)`` of each stage: the clip is padded up to the patch, merging pads odd H, W up."""
        t, h, w = (math.ceil(size / patch) for size, patch in zip(self.clip_size, self.patch_size))
        sizes = [(t, h, w)]
        for _ in self.depths[1:]:
            h, w = math.ceil(h / 2), math.ceil(w / 2)
            sizes.append((t, h, w))
        return sizes

    @property
    def num_features(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)

    def to_dict(self) -> dict:
        data = asdict(self)
        for name in ("clip_size", "patch_size", "window_size", "depths", "num_heads", "class_names"):
            data[name] = list(data[name])
        return data



# ---- geometry: what the official code decides per block, as numpy constants --------------------------------

def window_geometry(stage_size: Triple, window: Triple, shift: Triple) -> tuple[Triple, Triple]:
    """Effective ``(window, shift)`` of a block on a ``stage_size`` map: a window that is not smaller than the
    map in a dimension shrinks to it, and that dimension is not shifted."""
    windows, shifts = [], []
    for size, win, sh in zip(stage_size, window, shift):
        windows.append(size if size <= win else win)
        shifts.append(0 if size <= win else sh)
    return tuple(windows), tuple(shifts)  # type: ignore[return-value]


def padded_size(size: Triple, window: Triple) -> Triple:
    """``(Tp, Hp, Wp)``: the map rounded up to a multiple of the window."""
    return tuple(math.ceil(s / w) * w for s, w in zip(size, window))  # type: ignore[return-value]


def relative_position_index(window: Triple) -> np.ndarray:
    """``(N, N)`` index into the ``((2Wt-1)(2Wh-1)(2Ww-1), heads)`` bias table, tokens in ``(t, h, w)`` order."""
    wt, wh, ww = window
    coords = np.stack(np.meshgrid(np.arange(wt), np.arange(wh), np.arange(ww), indexing="ij")).reshape(3, -1)
    relative = coords[:, :, None] - coords[:, None, :]  # (3, N, N)
    return ((relative[0] + wt - 1) * (2 * wh - 1) * (2 * ww - 1) + (relative[1] + wh - 1) * (2 * ww - 1)
            + (relative[2] + ww - 1)).astype(np.int64)


def block_position_index(full_window: Triple, window: Triple) -> np.ndarray:
    """The index a block with effective ``window`` gathers its bias with: the top-left ``N x N`` block of the
    full window's index (module docstring: the official code's convention for shrunk windows)."""
    tokens = window[0] * window[1] * window[2]
    return np.ascontiguousarray(relative_position_index(full_window)[:tokens, :tokens])


def _regions(length: int, window: int, shift: int) -> np.ndarray:
    """Shifted-window region (0, 1, 2) of every position along one padded axis; one region when not shifted."""
    position = np.arange(length)
    if shift == 0:
        return np.zeros(length, dtype=np.int64)
    return np.where(position < length - window, 0, np.where(position < length - shift, 1, 2))


def attention_mask(window: Triple, shift: Triple, padded: Triple) -> np.ndarray | None:
    """``(nW, N, N)`` additive mask of shifted-window attention over the padded ``(Tp, Hp, Wp)`` map, float32;
    ``None`` when no dimension is shifted. Tokens from different regions of the rolled map get -100."""
    if not any(shift):
        return None
    rt, rh, rw = (_regions(length, win, sh) for length, win, sh in zip(padded, window, shift))
    label = rt[:, None, None] * 9 + rh[None, :, None] * 3 + rw[None, None, :]
    label = torch.from_numpy(label)[None, ..., None]  # (1, Tp, Hp, Wp, 1)
    windows = window_partition(label, window)[..., 0].numpy()  # (nW, N)
    return np.where(windows[:, :, None] != windows[:, None, :], MASK_VALUE, 0.0).astype(np.float32)


# ---- the ops around window attention, on (B, T, H, W, C) maps --------------------------------------------------

def pad_to_window(x: torch.Tensor, window: Triple) -> torch.Tensor:
    """Zero-pad T, H and W at the end up to a multiple of ``window``."""
    _, t, h, w, _ = x.shape
    pad_t, pad_h, pad_w = ((win - size % win) % win for size, win in zip((t, h, w), window))
    if not (pad_t or pad_h or pad_w):
        return x
    return F.pad(x, (0, 0, 0, pad_w, 0, pad_h, 0, pad_t))


def cyclic_shift(x: torch.Tensor, shift: Triple, sign: int = -1) -> torch.Tensor:
    """Roll T, H, W by ``sign * shift`` (-1 before the attention, +1 after it)."""
    if not any(shift):
        return x
    return torch.roll(x, shifts=tuple(sign * s for s in shift), dims=(1, 2, 3))


def window_partition(x: torch.Tensor, window: Triple) -> torch.Tensor:
    """``(B, Tp, Hp, Wp, C)`` -> ``(B * nW, Wt * Wh * Ww, C)``; windows in ``(t, h, w)`` order, tokens too."""
    _, tp, hp, wp, channels = x.shape
    wt, wh, ww = window
    x = x.reshape(-1, tp // wt, wt, hp // wh, wh, wp // ww, ww, channels)
    return x.permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(-1, wt * wh * ww, channels)


def window_reverse(windows: torch.Tensor, window: Triple, padded: Triple) -> torch.Tensor:
    """``(B * nW, Wt * Wh * Ww, C)`` -> ``(B, Tp, Hp, Wp, C)``: the inverse of :func:`window_partition`."""
    tp, hp, wp = padded
    wt, wh, ww = window
    channels = windows.shape[-1]
    x = windows.reshape(-1, tp // wt, hp // wh, wp // ww, wt, wh, ww, channels)
    return x.permute(0, 1, 4, 2, 5, 3, 6, 7).reshape(-1, tp, hp, wp, channels)


# ---- modules ---------------------------------------------------------------------------------------------------

class WindowAttention3d(nn.Module):
    """Multi-head self-attention inside 3D windows: ``q k^T / sqrt(d)`` plus the gathered relative position
    bias (plus the shift mask) -> softmax -> ``@ v`` -> proj, on ``(B * nW, N, C)`` windows.

    The table has the rows of the *configured* window (``full_window``); the block's effective window only
    selects which part of the index is gathered (:func:`block_position_index`)."""

    def __init__(self, dim: int, num_heads: int, full_window: Triple, window: Triple, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window
        self.full_window = full_window
        self.scale = (dim // num_heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        wt, wh, ww = full_window
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * wt - 1) * (2 * wh - 1) * (2 * ww - 1),
                                                                     num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        index = torch.from_numpy(block_position_index(full_window, window))
        self.register_buffer("relative_position_index", index, persistent=False)

    def relative_position_bias(self) -> torch.Tensor:
        """``(heads, N, N)``: the table gathered by the relative position index."""
        tokens = self.relative_position_index.shape[0]
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


class VideoSwinBlock(nn.Module):
    """(Shifted-)window attention and MLP over 3D windows, each with a pre-norm residual; ``(B, T, H, W, C)``."""

    def __init__(self, dim: int, num_heads: int, stage_size: Triple, shifted: bool, config: VideoSwinConfig):
        super().__init__()
        self.stage_size = stage_size
        shift = tuple(w // 2 for w in config.window_size) if shifted else (0, 0, 0)
        self.window_size, self.shift_size = window_geometry(stage_size, config.window_size, shift)
        eps = config.layer_norm_eps
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = WindowAttention3d(dim, num_heads, config.window_size, self.window_size, config.qkv_bias)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, int(dim * config.mlp_ratio))
        mask = attention_mask(self.window_size, self.shift_size, padded_size(stage_size, self.window_size))
        self.register_buffer("attn_mask", None if mask is None else torch.from_numpy(mask), persistent=False)

    def _shifted_window_attention(self, x: torch.Tensor) -> torch.Tensor:
        _, t, h, w, _ = x.shape
        x = pad_to_window(x, self.window_size)  # padding comes before the shift (module docstring)
        padded = tuple(x.shape[1:4])
        x = cyclic_shift(x, self.shift_size, -1)
        windows = self.attn(window_partition(x, self.window_size), self.attn_mask)
        x = cyclic_shift(window_reverse(windows, self.window_size, padded), self.shift_size, 1)
        return x[:, :t, :h, :w, :]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self._shifted_window_attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerging3d(PatchMerging):
    """V1 patch merging on every frame: 2x2 neighbours in H and W -> 4C -> LayerNorm -> Linear to 2C; T stays."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, frames, height, width, channels = x.shape
        x = super().forward(x.reshape(batch * frames, height, width, channels))
        return x.reshape(batch, frames, *x.shape[1:])


class PatchEmbed3d(nn.Module):
    """Zero-pad the clip up to a multiple of the patch, ``Conv3d`` with stride = patch, LayerNorm; to BTHWC."""

    def __init__(self, config: VideoSwinConfig):
        super().__init__()
        self.patch_size = config.patch_size
        self.proj = nn.Conv3d(config.in_chans, config.embed_dim, config.patch_size, config.patch_size)
        self.norm = nn.LayerNorm(config.embed_dim, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, _, t, h, w = x.shape
        pad_t, pad_h, pad_w = ((p - size % p) % p for size, p in zip((t, h, w), self.patch_size))
        if pad_t or pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h, 0, pad_t))
        return self.norm(self.proj(x).permute(0, 2, 3, 4, 1))


class VideoSwinStage(nn.Module):
    def __init__(self, stage: int, config: VideoSwinConfig, stage_size: Triple):
        super().__init__()
        dim = config.embed_dim * 2 ** stage
        self.downsample = PatchMerging3d(dim // 2, config.layer_norm_eps) if stage > 0 else nn.Identity()
        self.blocks = nn.Sequential(*[VideoSwinBlock(dim, config.num_heads[stage], stage_size, j % 2 == 1, config)
                                      for j in range(config.depths[stage])])

    def forward(self, x):
        return self.blocks(self.downsample(x))


class VideoSwinTransformer(nn.Module):
    """Video Swin Transformer for one clip size ``config.clip_size``; input ``(B, C, T, H, W)``.

    ``forward`` returns logits ``(B, num_classes)``; with ``features=True`` it returns the stage outputs as
    ``(B, C, T, H, W)`` tensors instead (:meth:`stage_maps`).
    """

    family = VideoSwinConfig.family
    task = "classification"

    def __init__(self, config: VideoSwinConfig, features: bool = False):
        super().__init__()
        if config.family != self.family:
            raise TypeError(f"{type(self).__name__} builds {self.family} models, not {config.family} "
                            f"({type(config).__name__})")
        config.validate()
        self.config = config
        self.features = features
        self.patch_embed = PatchEmbed3d(config)
        sizes = config.stage_sizes()
        self.layers = nn.Sequential(*[VideoSwinStage(i, config, sizes[i]) for i in range(len(config.depths))])
        self.norm = nn.LayerNorm(config.num_features, eps=config.layer_norm_eps)
        self.head = ClassifierHead(config.num_features, config.num_classes, pool_dims=(1, 2, 3))

    def _check_size(self, x: torch.Tensor) -> None:
        expected = self.config.clip_size
        if x.dim() != 5:
            raise ValueError(f"a Video Swin model takes clips (B, {self.config.in_chans}, T, H, W), got a "
                             f"{x.dim()}-D input {tuple(x.shape)}")
        if tuple(x.shape[-3:]) != expected:
            raise ValueError(f"input clip is {tuple(x.shape[-3:])} (T, H, W), but this model was built for "
                             f"{expected}: build it with clip_size={expected} changed to your clip")

    def stage_maps(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The stage outputs, ``(B, C, T, H, W)``, finest first."""
        self._check_size(x)
        x = self.patch_embed(x)
        maps = []
        for stage in self.layers:
            x = stage(x)
            maps.append(x.permute(0, 4, 1, 2, 3))
        return tuple(maps)

    def forward(self, x: torch.Tensor):
        if self.features:
            return self.stage_maps(x)
        self._check_size(x)
        x = self.layers(self.patch_embed(x))
        return self.head(self.norm(x))
