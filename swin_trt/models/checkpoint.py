"""Checkpoint import: every common Swin V1 and V2 layout onto the reference model's (timm) keys.

The family (V1 or V2) and the format are detected from the keys, never from the file name. V2 checkpoints
carry ``logit_scale`` and the CPB MLP (``cpb_mlp`` / ``continuous_position_bias_mlp``) in every block.

============== ====================================================== ======================
format         keys                                                   convention
============== ====================================================== ======================
``timm``       ``layers.{i}.downsample`` at the start of stage i      ``timm``
``microsoft``  original/old timm: downsample at the *end* of a stage, ``timm``
               ``head.weight``; often wrapped in ``{"model": ...}``
``torchvision`` ``features.{k}...`` (``swin_t/s/b``)                  ``torchvision``
``hf``         transformers ``SwinForImageClassification`` /        ``hf``
               ``SwinModel``: separate query/key/value (V2:
               ``Swinv2ForImageClassification`` / ``Swinv2Model``)
============== ====================================================== ======================

Video Swin (3D, :mod:`swin_trt.models.video_swin`) checkpoints are told by their ``Conv3d`` patch embedding
(a 5-D ``patch_embed.proj.weight``); their reference layout is the 2D one's (timm's names):

================ ============================================================================================
format           keys
================ ============================================================================================
``torchvision``  ``swin3d_t/s/b``: ``patch_embed.*``, ``features.{2i}.{j}`` the blocks of stage i,
                 ``features.{2i+1}`` the patch merging after it, ``mlp.0``/``mlp.3``, ``norm``, ``head``
``mmaction2``    the official Video-Swin-Transformer / mmaction2 recognizer: ``backbone.`` + the Microsoft
                 layout (``layers.{i}.downsample`` at the *end* of stage i), ``cls_head.fc_cls``; often
                 wrapped in ``{"state_dict": ...}``
``swin_trt``     the reference model's own ``state_dict()``
================ ============================================================================================

Both stored layouts keep ``relative_position_index`` buffers (recomputed). A Video Swin bias table of
another window is refused, not interpolated: its row count does not say how the window splits into T, H, W.

V2 biases: the reference model has ``q_bias`` and ``v_bias`` (timm, Microsoft). torchvision stores one
``qkv.bias`` whose k third its forward zeroes, so only the q and v thirds are taken; Hugging Face's key
projection has no bias.

``.pth``/``.pt``/``.bin`` files load with ``torch.load(weights_only=True)`` and ``.safetensors`` with
safetensors: a checkpoint never runs code. Every key is accounted for: missing, unexpected and mis-shaped
weights are errors that name them, and recomputed buffers are listed in the report.
"""

from __future__ import annotations

import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..io import sha256_file

# Buffers that some layouts store and the reference model recomputes from the config.
RECOMPUTED_BUFFERS = ("relative_position_index", "attn_mask", "relative_coords_table")
_WRAPPERS = ("model", "state_dict", "model_ema", "module")
FAMILY_NAMES = {"swin_v1": "Swin V1", "swin_v2": "Swin V2", "video_swin": "Video Swin"}
# Key fragments only a V2 checkpoint has, in every layout (timm, Microsoft, torchvision, Hugging Face).
_V2_MARKERS = ("logit_scale", "cpb_mlp.", "continuous_position_bias_mlp.")


def is_video(tensors) -> bool:
    """A Video Swin state dict: its patch embedding (``[backbone.]patch_embed.proj.weight``) is a 5-D Conv3d
    kernel. ``tensors`` must be a dict (keys alone do not tell)."""
    return isinstance(tensors, dict) and any(
        key.endswith("patch_embed.proj.weight") and getattr(value, "dim", lambda: 0)() == 5
        for key, value in tensors.items())


def detect_family(keys) -> str:
    """``"video_swin"`` for a 3D patch embedding (``keys`` a state dict), ``"swin_v2"`` when the keys carry
    V2's cosine-attention scale or CPB MLP, else ``"swin_v1"``."""
    if is_video(keys):
        return "video_swin"
    return "swin_v2" if any(marker in key for key in keys for marker in _V2_MARKERS) else "swin_v1"


@dataclass
class LoadedCheckpoint:
    path: Path
    sha256: str
    format: str
    tensors: dict[str, torch.Tensor]  # already in the reference (timm) layout
    recomputed: list[str] = field(default_factory=list)

    @property
    def family(self) -> str:
        return detect_family(self.tensors)


@dataclass
class ImportReport:
    format: str
    path: str
    sha256: str
    loaded: int
    recomputed: list[str]
    resized: list[str]

    def summary(self) -> str:
        parts = [f"{self.loaded} tensors from {self.format} checkpoint {self.path}"]
        if self.recomputed:
            parts.append(f"{len(self.recomputed)} stored buffers recomputed from the config")
        if self.resized:
            parts.append(f"relative position bias resized for smaller windows: {', '.join(self.resized)}")
        return "; ".join(parts)


def origin_convention(fmt: str) -> str:
    return {"timm": "timm", "microsoft": "timm", "torchvision": "torchvision", "hf": "hf"}[fmt]


def _read_tensors(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as exc:
            raise UserError(f"checkpoint {str(path)!r} is not a readable safetensors file ({exc}): "
                            f"it may be truncated; download or save it again") from None
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):
            raise UserError(f"checkpoint {str(path)!r} holds Python objects besides tensors, and swin-trt "
                            f"never runs code from a model file: save a plain state dict "
                            f"(torch.save(model.state_dict(), path)) or use .safetensors") from None
        raise UserError(f"{str(path)!r} is not a PyTorch checkpoint ({exc}): pass a .pth/.pt/.bin state "
                        f"dict or a .safetensors file") from None
    except Exception as exc:  # torch.load raises many types (RuntimeError, EOFError, KeyError, ...) for junk
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserError(f"{str(path)!r} could not be read as a checkpoint ({reason}): it "
                        f"is truncated or not a checkpoint; download or save it again") from None
    for key in _WRAPPERS:
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    if not isinstance(data, dict) or not data:
        raise UserError(f"{str(path)!r} holds no state dict (found {type(data).__name__}): save "
                        f"model.state_dict()")
    return data


def detect_video_format(keys) -> str:
    """The layout of a Video Swin state dict (module docstring)."""
    keys = list(keys)
    if any(k.startswith(("backbone.", "cls_head.")) for k in keys) or "layers.0.downsample.reduction.weight" in keys:
        return "mmaction2"
    if any(k.startswith("features.") for k in keys):
        return "torchvision"
    if any(k.startswith("layers.") for k in keys):
        return "swin_trt"
    shown = ", ".join(keys[:5])
    raise UserError(f"the checkpoint's keys ({shown}, ...) are a 3D patch embedding but not a Video Swin layout "
                    f"swin-trt knows (torchvision's swin3d_*, the official Video-Swin-Transformer / mmaction2)")


def detect_format(keys) -> str:
    """The layout of a state dict (module docstring); a Video Swin one is told only from a dict."""
    if is_video(keys):
        return detect_video_format(keys)
    keys = list(keys)
    if any(k.startswith("features.0.0.") for k in keys):
        return "torchvision"
    if any(k.startswith(("swin.embeddings.", "swinv2.embeddings.", "embeddings.patch_embeddings.")) for k in keys):
        return "hf"
    if "layers.0.downsample.reduction.weight" in keys or "head.weight" in keys:
        return "microsoft"
    if any(k.startswith("patch_embed.proj.") for k in keys):
        return "timm"
    shown = ", ".join(keys[:5])
    raise UserError(f"the checkpoint's keys ({shown}, ...) are not a Swin V1 or V2 layout swin-trt knows "
                    f"(timm, Microsoft's original, torchvision, Hugging Face transformers)")


def _from_microsoft(key: str) -> str:
    key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", key)
    return re.sub(r"^head\.", "head.fc.", key)


def _torchvision_features(key: str, first_blocks: int) -> str:
    """torchvision's ``features.{k}`` sequence, from ``features.{first_blocks}`` (stage 0's blocks) on:
    blocks of a stage, then the patch merging that starts the next one, alternately; ``head`` the classifier."""
    match = re.match(r"^features\.(\d+)\.(.*)$", key)
    if match:
        position, rest = int(match.group(1)) - first_blocks, match.group(2)
        if position % 2 == 1:  # patch merging sits between stages: it starts stage (position + 1) / 2
            return f"layers.{(position + 1) // 2}.downsample.{rest}"
        block = re.match(r"^(\d+)\.(.*)$", rest)
        if block:
            rest = re.sub(r"^mlp\.0\.", "mlp.fc1.", block.group(2))  # not V2's attn.cpb_mlp.0
            rest = re.sub(r"^mlp\.3\.", "mlp.fc2.", rest)
            return f"layers.{position // 2}.blocks.{block.group(1)}.{rest}"
    if key.startswith("head."):
        return key.replace("head.", "head.fc.")
    return key


def _from_torchvision(key: str) -> str:
    """torchvision's swin_t/s/b and swin_v2_*: ``features.0`` the patch embedding, stage 0's blocks at 1."""
    if key.startswith("features.0.0."):
        return key.replace("features.0.0.", "patch_embed.proj.")
    if key.startswith("features.0.2."):
        return key.replace("features.0.2.", "patch_embed.norm.")
    return _torchvision_features(key, first_blocks=1)


def _from_torchvision_video(key: str) -> str:
    """torchvision's swin3d_*: the patch embedding is not in ``features``, stage 0's blocks are at 0."""
    return _torchvision_features(key, first_blocks=0)


def _from_mmaction2(key: str) -> str:
    """The official Video-Swin-Transformer / mmaction2 recognizer: ``backbone.`` + Microsoft's layout (the
    downsample at the end of a stage), ``cls_head.fc_cls`` the classifier."""
    key = re.sub(r"^backbone\.", "", key)
    key = re.sub(r"^cls_head\.fc_cls\.", "head.fc.", key)
    return re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", key)


_VIDEO_RENAMES = {"torchvision": _from_torchvision_video, "mmaction2": _from_mmaction2, "swin_trt": lambda k: k}


# transformers 4.x names (the layout of checkpoints on the Hub) and 5.x names, in replacement order.
_HF_RENAMES = (
    ("embeddings.patch_embeddings.projection.", "patch_embed.proj."),
    ("attention.relative_position_bias.relative_position_bias_table", "attn.relative_position_bias_table"),
    ("attention.o_proj.", "attn.proj."),
    ("embeddings.norm.", "patch_embed.norm."),
    ("layernorm_before.", "norm1."),
    ("layernorm_after.", "norm2."),
    ("attention.self.relative_position_bias_table", "attn.relative_position_bias_table"),
    ("attention.self.relative_position_index", "attn.relative_position_index"),
    ("attention.output.dense.", "attn.proj."),
    ("intermediate.dense.", "mlp.fc1."),
    ("output.dense.", "mlp.fc2."),
    ("attention.self.continuous_position_bias_mlp.", "attn.cpb_mlp."),  # V2
    ("attention.self.logit_scale", "attn.logit_scale"),
    ("attention.self.relative_coords_table", "attn.relative_coords_table"),
)


def _from_hf(tensors: dict, family: str) -> dict:
    out, qkv_parts = {}, {}
    for key, value in tensors.items():
        key = re.sub(r"^swin(v2)?\.", "", key)
        key = re.sub(r"^encoder\.layers\.(\d+)\.downsample",
                     lambda m: f"layers.{int(m.group(1)) + 1}.downsample", key)
        key = re.sub(r"^encoder\.layers\.", "layers.", key)
        key = re.sub(r"^layernorm\.", "norm.", key)
        key = re.sub(r"^classifier\.", "head.fc.", key)
        for old, new in _HF_RENAMES:
            key = key.replace(old, new)
        match = re.match(r"^(.*)\.attention\.(?:self\.)?(query|key|value|q_proj|k_proj|v_proj)\.(weight|bias)$", key)
        if match:
            part = {"q_proj": "query", "k_proj": "key", "v_proj": "value"}.get(match.group(2), match.group(2))
            qkv_parts.setdefault((match.group(1), match.group(3)), {})[part] = value
            continue
        out[key] = value
    for (prefix, kind), parts in qkv_parts.items():
        if family == "swin_v2" and kind == "bias":  # V2: q and v biases, the key projection has none
            for part, name in (("query", "q_bias"), ("key", "k_bias"), ("value", "v_bias")):
                if part in parts:  # a key bias stays under its name and is reported as unexpected
                    out[f"{prefix}.attn.{name}"] = parts[part]
            continue
        if set(parts) != {"query", "key", "value"}:
            missing = {"query", "key", "value"} - set(parts)
            raise UserError(f"Hugging Face checkpoint: {prefix} lacks attention {kind} of "
                            f"{', '.join(sorted(missing))}")
        out[f"{prefix}.attn.qkv.{kind}"] = torch.cat([parts["query"], parts["key"], parts["value"]])
    return out


def _split_torchvision_qkv_bias(tensors: dict) -> dict:
    """torchvision V2 keeps one ``qkv.bias``; its forward zeroes the k third, so q and v are the weights."""
    out = {}
    for key, value in tensors.items():
        if key.endswith(".attn.qkv.bias"):
            q_bias, _, v_bias = value.chunk(3)
            out[key.replace(".qkv.bias", ".q_bias")] = q_bias
            out[key.replace(".qkv.bias", ".v_bias")] = v_bias
        else:
            out[key] = value
    return out


def to_reference_layout(tensors: dict, fmt: str) -> tuple[dict, list[str]]:
    family = detect_family(tensors)
    if family == "video_swin":
        if fmt not in _VIDEO_RENAMES:
            raise UserError(f"a Video Swin checkpoint cannot be in the {fmt} layout: use "
                            f"{', '.join(_VIDEO_RENAMES)}")
        converted = {_VIDEO_RENAMES[fmt](key): value for key, value in tensors.items()}
    elif fmt == "hf":
        converted = _from_hf(tensors, family)
    else:
        rename = {"timm": lambda k: k, "microsoft": _from_microsoft, "torchvision": _from_torchvision}[fmt]
        converted = {rename(key): value for key, value in tensors.items()}
        if fmt == "torchvision" and family == "swin_v2":
            converted = _split_torchvision_qkv_bias(converted)
    recomputed = sorted(k for k in converted if k.rsplit(".", 1)[-1] in RECOMPUTED_BUFFERS)
    weights = {k: v for k, v in converted.items() if k not in set(recomputed)}
    return weights, recomputed


def describe_architecture(tensors: dict) -> dict:
    """What a reference-layout state dict fixes of its network.

    ``embed_dim``, ``depths``, ``num_heads``, ``num_classes`` and (V1 only: its bias table has one row per
    relative offset) ``window_size``; a V2 checkpoint's continuous position bias fits any window (``None``),
    and a Video Swin table's row count does not fix the window's T, H and W (``None``).
    """
    video = is_video(tensors)
    depths: dict[int, int] = {}
    for key in tensors:
        match = re.match(r"^layers\.(\d+)\.blocks\.(\d+)\.", key)
        if match:
            stage, block = int(match.group(1)), int(match.group(2))
            depths[stage] = max(depths.get(stage, 0), block + 1)
    heads, window = [], None
    for stage in sorted(depths):
        attn = f"layers.{stage}.blocks.0.attn."
        if attn + "logit_scale" in tensors:
            heads.append(tensors[attn + "logit_scale"].shape[0])
        elif attn + "relative_position_bias_table" in tensors:
            table = tensors[attn + "relative_position_bias_table"]
            heads.append(table.shape[1])
            if window is None and not video:  # (2w - 1)^2 rows
                window = round((table.shape[0] ** 0.5 + 1) / 2)
    embed, head = tensors.get("patch_embed.proj.weight"), tensors.get("head.fc.weight")
    return {"embed_dim": None if embed is None else embed.shape[0],
            "depths": tuple(depths[stage] for stage in sorted(depths)), "num_heads": tuple(heads),
            "window_size": window, "num_classes": None if head is None else head.shape[0]}


def load_checkpoint(source: str | Path) -> LoadedCheckpoint:
    """Read a checkpoint file safely and convert it to the reference key layout."""
    path = Path(source)
    if not path.is_file():
        raise UserError(f"checkpoint {str(path)!r} does not exist: check the path")
    raw = _read_tensors(path)
    non_tensors = [k for k, v in raw.items() if not isinstance(v, torch.Tensor)]
    if non_tensors:
        raise UserError(f"checkpoint {str(path)!r} has entries that are not tensors ({', '.join(non_tensors[:5])}):"
                        f" save a plain state dict")
    fmt = detect_format(raw)
    tensors, recomputed = to_reference_layout(raw, fmt)
    return LoadedCheckpoint(path, sha256_file(path), fmt, tensors, recomputed)


def _resize_bias_table(table: torch.Tensor, window: tuple[int, int]) -> torch.Tensor:
    """Interpolate a ``((2w-1)^2, heads)`` table to a smaller window, as timm does for shrunk windows."""
    heads = table.shape[1]
    side = int(round(table.shape[0] ** 0.5))
    grid = table.T.reshape(1, heads, side, side)
    resized = F.interpolate(grid, size=(2 * window[0] - 1, 2 * window[1] - 1), mode="bicubic",
                            align_corners=False)
    return resized.reshape(heads, -1).T.contiguous()


def _describe(names: list[str], limit: int = 8) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def apply_state(model: torch.nn.Module, checkpoint: LoadedCheckpoint) -> ImportReport:
    """Load ``checkpoint`` into ``model``; any key or shape that does not match is an error naming it."""
    expected = model.state_dict()
    tensors = dict(checkpoint.tensors)
    video = getattr(model.config, "family", None) == "video_swin"
    resized = []
    for key, value in list(tensors.items()):
        if key.endswith("relative_position_bias_table") and key in expected and not video \
                and value.shape != expected[key].shape and value.shape[1] == expected[key].shape[1]:
            window = model.get_submodule(key.rsplit(".", 1)[0]).window_size
            tensors[key] = _resize_bias_table(value, window)
            resized.append(key)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [f"{k} (checkpoint {tuple(tensors[k].shape)}, model {tuple(expected[k].shape)})"
                  for k in expected if k in tensors and tensors[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)}: {_describe(missing)}")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)}: {_describe(unexpected)}")
    if mismatched:
        problems.append(f"wrong shape {len(mismatched)}: {_describe(mismatched, 4)}")
    tables = [k for k in expected if k in tensors and k.endswith("relative_position_bias_table")
              and tensors[k].shape != expected[k].shape]
    if video and tables:
        rows, window = tensors[tables[0]].shape[0], model.config.window_size
        problems.append(f"its relative position bias tables have {rows} rows where window "
                        f"{'x'.join(map(str, window))} needs {expected[tables[0]].shape[0]}: it was trained with "
                        f"another window, and a Video Swin table is not interpolated (its rows do not say how that "
                        f"window splits into T, H and W); set window_size to the one it was trained with")
    if problems:
        config = model.config
        raise UserError(f"checkpoint {str(checkpoint.path)!r} ({checkpoint.format} layout) does not match the "
                        f"config (embed_dim {config.embed_dim}, depths {list(config.depths)}, heads "
                        f"{list(config.num_heads)}, window {config.window_size}, {config.num_classes} classes): "
                        + "; ".join(problems) + ". Pick the `arch` this checkpoint was trained as.")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in tensors.items()}, strict=True)
    return ImportReport(checkpoint.format, str(checkpoint.path), checkpoint.sha256, len(tensors),
                        checkpoint.recomputed, resized)
