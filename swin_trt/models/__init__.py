"""The PyTorch reference Swin Transformers (V1, V2 and Video Swin), their named configs and checkpoint import."""

from .registry import ArchSpec, Preprocessing, arch_names, create_model, get_arch
from .swin import CONVENTIONS, SwinConfig, SwinTransformer
from .swin_v2 import SwinTransformerV2, SwinV2Config
from .video_swin import VideoSwinConfig, VideoSwinTransformer

__all__ = ["ArchSpec", "CONVENTIONS", "Preprocessing", "SwinConfig", "SwinTransformer", "SwinTransformerV2",
           "SwinV2Config", "VideoSwinConfig", "VideoSwinTransformer", "arch_names", "create_model", "get_arch"]
