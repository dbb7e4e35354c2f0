"""The Swin V2 peers — timm, torchvision, Hugging Face transformers — built from a :class:`SwinV2Config`,
and torchvision's Video Swin built from a :class:`VideoSwinConfig`.

The yardstick of the parity tests and of ``benchmarks/bench_conventions.py``: each peer is built by its own
code, given random weights, and its ``state_dict()`` is what a checkpoint from it holds. The peers are
optional (test) dependencies, imported when asked for.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .swin_v2 import MAX_LOGIT_SCALE, SwinV2Config
from .video_swin import VideoSwinConfig

PEERS = ("timm", "torchvision", "hf")


def build_peer(name: str, config: SwinV2Config) -> nn.Module:
    """The peer ``name``'s own V2 model for ``config`` (its image size, window, ...), in eval mode."""
    pretrained = list(config.pretrained_window_sizes or [0] * len(config.depths))
    if name == "timm":
        from timm.models.swin_transformer_v2 import SwinTransformerV2

        model = SwinTransformerV2(img_size=config.img_size, patch_size=config.patch_size, in_chans=config.in_chans,
                                  num_classes=config.num_classes, embed_dim=config.embed_dim, depths=config.depths,
                                  num_heads=config.num_heads, window_size=config.window_size,
                                  mlp_ratio=config.mlp_ratio, qkv_bias=config.qkv_bias,
                                  pretrained_window_sizes=pretrained, drop_path_rate=0.0)
    elif name == "torchvision":
        from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformer, SwinTransformerBlockV2

        if any(pretrained):
            raise ValueError("torchvision's Swin V2 has no pretrained window sizes")
        model = SwinTransformer(patch_size=[config.patch_size] * 2, embed_dim=config.embed_dim,
                                depths=list(config.depths), num_heads=list(config.num_heads),
                                window_size=[config.window_size] * 2, mlp_ratio=config.mlp_ratio,
                                num_classes=config.num_classes, stochastic_depth_prob=0.0,
                                block=SwinTransformerBlockV2, downsample_layer=PatchMergingV2)
    elif name == "hf":
        import transformers

        hf_config = transformers.Swinv2Config(
            image_size=list(config.img_size), patch_size=config.patch_size, num_channels=config.in_chans,
            embed_dim=config.embed_dim, depths=list(config.depths), num_heads=list(config.num_heads),
            window_size=config.window_size, mlp_ratio=config.mlp_ratio, qkv_bias=config.qkv_bias,
            num_labels=config.num_classes, pretrained_window_sizes=pretrained, drop_path_rate=0.0)
        model = transformers.Swinv2ForImageClassification(hf_config)
    else:
        raise ValueError(f"unknown peer {name!r}: choose one of {', '.join(PEERS)}")
    return model.eval()


def build_video_peer(config: VideoSwinConfig) -> nn.Module:
    """torchvision's own Video Swin (``SwinTransformer3d``, what ``swin3d_t/s/b`` build) for ``config``, in eval
    mode. It takes any clip size, so ``config.clip_size`` does not enter."""
    from torchvision.models.video.swin_transformer import SwinTransformer3d

    model = SwinTransformer3d(patch_size=list(config.patch_size), embed_dim=config.embed_dim,
                              depths=list(config.depths), num_heads=list(config.num_heads),
                              window_size=list(config.window_size), mlp_ratio=config.mlp_ratio,
                              stochastic_depth_prob=0.0, num_classes=config.num_classes)
    return model.eval()


def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights that exercise every path: the peers' own init zeroes timm's post-norms (every block an
    identity) and starts every logit scale at log 10, far below the clamp.

    Weights ~ N(0, 1 / fan_in) (so the CPB MLP varies over the window), norm gains ~ N(1, 0.2), biases
    ~ N(0, 0.2), logit scales uniform in [1, log 100 + 1] (some clamped).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith("logit_scale"):
                value = 1 + torch.rand(parameter.shape, generator=generator) * MAX_LOGIT_SCALE
            elif parameter.dim() == 1 and "norm" in name and name.endswith("weight"):
                value = 1 + 0.2 * noise
            elif parameter.dim() == 1:
                value = 0.2 * noise
            else:
                value = noise / math.sqrt(parameter[0].numel())
            parameter.copy_(value)
    return model


def peer_logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    return getattr(out, "logits", out)


def peer_features(name: str, model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """The four stage outputs (before the final norm), NCHW, as each peer exposes them."""
    with torch.no_grad():
        if name == "timm":
            return model.forward_intermediates(x, intermediates_only=True)
        if name == "torchvision":
            outputs = []
            for index, layer in enumerate(model.features):
                x = layer(x)
                if index % 2 == 1:  # features = [embed, stage, merge, stage, merge, ...]
                    outputs.append(x.permute(0, 3, 1, 2))
            return outputs
        if name == "hf":
            embeddings, dims = model.swinv2.embeddings(x)
            encoded = model.swinv2.encoder(embeddings, dims, output_hidden_states=True,
                                           output_hidden_states_before_downsampling=True)
            return list(encoded.reshaped_hidden_states[1:])
    raise ValueError(f"unknown peer {name!r}")
