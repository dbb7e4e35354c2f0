"""The PyTorch reference Swin Transformers (V1 and V2), their named configs and checkpoint import."""

from .registry import ArchSpec, Preprocessing, arch_names, create_model, get_arch
from .swin import CONVENTIONS, SwinConfig, SwinTransformer
from .swin_v2 import SwinTransformerV2, SwinV2Config

__all__ = ["ArchSpec", "CONVENTIONS", "Preprocessing", "SwinConfig", "SwinTransformer", "SwinTransformerV2",
           "SwinV2Config", "arch_names", "create_model", "get_arch"]
