"""The PyTorch reference Swin Transformer, its named configs and checkpoint import."""

from .registry import ArchSpec, Preprocessing, arch_names, create_model, get_arch
from .swin import CONVENTIONS, SwinConfig, SwinTransformer

__all__ = ["ArchSpec", "CONVENTIONS", "Preprocessing", "SwinConfig", "SwinTransformer", "arch_names",
           "create_model", "get_arch"]
