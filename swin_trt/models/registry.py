"""Named Swin configs, as timm names them, plus short aliases, test-sized configs and the bundled demo.

``create_model(name, checkpoint=None, **overrides)`` is the one way the rest of the package builds a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..data.preprocess import Preprocessing
from ..errors import UserError
from .swin import SwinConfig, SwinTransformer

@dataclass(frozen=True)
class ArchSpec:
    name: str
    config: SwinConfig
    description: str
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    weights: str | None = None  # file name under swin_trt/assets: weights that ship with the package


def _swin(embed_dim, depths, heads, window, img, classes=1000):
    return SwinConfig(img_size=(img, img), embed_dim=embed_dim, depths=depths, num_heads=heads,
                      window_size=window, num_classes=classes)


_T, _S = (2, 2, 6, 2), (2, 2, 18, 2)
_ARCHS: dict[str, ArchSpec] = {}
_ALIASES: dict[str, str] = {}


def register(spec: ArchSpec, *aliases: str) -> ArchSpec:
    _ARCHS[spec.name] = spec
    for alias in aliases:
        _ALIASES[alias] = spec.name
    return spec


register(ArchSpec("swin_tiny_patch4_window7_224", _swin(96, _T, (3, 6, 12, 24), 7, 224), "Swin-T, 28M"),
         "swin_tiny", "swin_t")
register(ArchSpec("swin_small_patch4_window7_224", _swin(96, _S, (3, 6, 12, 24), 7, 224), "Swin-S, 50M"),
         "swin_small", "swin_s")
register(ArchSpec("swin_base_patch4_window7_224", _swin(128, _S, (4, 8, 16, 32), 7, 224), "Swin-B, 88M"),
         "swin_base", "swin_b")
register(ArchSpec("swin_base_patch4_window12_384", _swin(128, _S, (4, 8, 16, 32), 12, 384),
                  "Swin-B at 384, window 12", Preprocessing(crop_pct=1.0)), "swin_base_384")
register(ArchSpec("swin_large_patch4_window7_224", _swin(192, _S, (6, 12, 24, 48), 7, 224), "Swin-L, 197M"),
         "swin_large")
register(ArchSpec("swin_large_patch4_window12_384", _swin(192, _S, (6, 12, 24, 48), 12, 384),
                  "Swin-L at 384, window 12", Preprocessing(crop_pct=1.0)), "swin_large_384")
# Test-sized configs: every structural feature (4 stages, shifted blocks, patch merging) in ~0.4M params.
register(ArchSpec("swin_nano_test", _swin(32, (2, 2, 2, 2), (1, 2, 4, 8), 7, 224, classes=10),
                  "test-sized Swin (embed 32, depths 2-2-2-2), random weights"))
register(ArchSpec("swin_pico_test", _swin(16, (2, 2, 2, 2), (1, 1, 2, 2), 4, 64, classes=5),
                  "smallest test Swin (embed 16, window 4, 64 px), random weights"))


def _register_demo() -> None:
    """The demo model trained here (scripts/train_demo.py); its config travels with its weights."""
    if "swin_demo" in _ARCHS:
        return
    from .demo import demo_spec

    spec = demo_spec()
    if spec is not None:
        register(spec)


def arch_names() -> list[str]:
    _register_demo()
    return sorted(_ARCHS)


def get_arch(name: str) -> ArchSpec:
    _register_demo()
    canonical = _ALIASES.get(name, name)
    if canonical not in _ARCHS:
        known = ", ".join(arch_names() + sorted(_ALIASES))
        raise UserError(f"unknown arch {name!r}: choose one of {known} (`swin-trt archs` lists them)")
    return _ARCHS[canonical]


def bundled_weights(spec: ArchSpec) -> Path | None:
    if spec.weights is None:
        return None
    return Path(str(resources.files("swin_trt") / "assets" / spec.weights))


def create_model(name: str, checkpoint: str | Path | None = None, *, img_size=None, num_classes=None,
                 convention=None, features: bool = False, config_overrides: dict | None = None):
    """Build ``name`` (with optional overrides) and load ``checkpoint`` or the arch's bundled weights.

    Returns ``(model, spec, import_report)``; ``import_report`` is ``None`` for random weights.
    """
    from .checkpoint import load_checkpoint, origin_convention

    spec = get_arch(name)
    changes = dict(config_overrides or {})
    if img_size is not None:
        changes["img_size"] = img_size
    if num_classes is not None:
        changes["num_classes"] = num_classes
    source = checkpoint if checkpoint is not None else bundled_weights(spec)
    state = None
    if source is not None:
        state = load_checkpoint(source)
        head = state.tensors.get("head.fc.weight")
        if num_classes is None and head is not None and checkpoint is not None:
            changes["num_classes"] = head.shape[0]  # a fine-tuned head decides the class count
            if head.shape[0] != len(spec.config.class_names):
                changes["class_names"] = ()
        if convention is None and checkpoint is not None:
            convention = origin_convention(state.format)
    if convention is not None:
        changes["convention"] = convention
    config = spec.config.with_(**changes)
    try:
        config.validate()
    except ValueError as exc:
        raise UserError(f"arch {spec.name}: {exc}") from None
    model = SwinTransformer(config, features=features)
    report = None
    if state is not None:
        from .checkpoint import apply_state

        report = apply_state(model, state)
    model.eval()
    return model, spec, report
