"""Named Swin V1 and V2 configs, as timm names them, plus short aliases (torchvision's among them),
test-sized configs and the bundled demo, and the Video Swin (3D) configs as torchvision names them. Each
records its family (``spec.family``: ``swin_v1``/``swin_v2``/``video_swin``).

``create_model(name, checkpoint=None, **overrides)`` is the one way the rest of the package builds a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from ..preprocess import Preprocessing
from ..errors import UserError
from .segmentation import SwinSegmenter
from .swin import SwinConfig, SwinTransformer
from .swin_v2 import SwinTransformerV2, SwinV2Config
from .video_swin import VideoSwinConfig, VideoSwinTransformer

# The model class that builds each family's config.
MODEL_CLASSES = {SwinTransformer.family: SwinTransformer, SwinTransformerV2.family: SwinTransformerV2,
                 VideoSwinTransformer.family: VideoSwinTransformer}
VIDEO_FAMILY = VideoSwinConfig.family

@dataclass(frozen=True)
class ArchSpec:
    name: str
    config: SwinConfig | VideoSwinConfig
    description: str
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    weights: str | None = None  # file name under swin_trt/assets: weights that ship with the package
    model_class: type | None = None  # what builds it; None: the family's classifier (MODEL_CLASSES)

    @property
    def family(self) -> str:
        return self.config.family

    @property
    def is_video(self) -> bool:
        """A Video Swin arch: its input is a clip ``(B, 3, T, H, W)`` (``config.clip_size``), not an image."""
        return self.family == VIDEO_FAMILY

    @property
    def task(self) -> str:
        """``classification`` (logits per image), ``segmentation`` (class logits per pixel) or ``detection``
        (boxes, scores and labels of one image)."""
        return getattr(self.model_class, "task", "classification")

    def build(self, config, features: bool = False):
        return (self.model_class or MODEL_CLASSES[config.family])(config, features=features)


def _swin(embed_dim, depths, heads, window, img, classes=1000):
    return SwinConfig(img_size=(img, img), embed_dim=embed_dim, depths=depths, num_heads=heads,
                      window_size=window, num_classes=classes)


def _swinv2(embed_dim, depths, heads, window, img, classes=1000, pretrained=()):
    return SwinV2Config(img_size=(img, img), embed_dim=embed_dim, depths=depths, num_heads=heads,
                        window_size=window, num_classes=classes, pretrained_window_sizes=pretrained)


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
# A test-sized segmenter (models/segmentation.py): three stages at 80 px, the smallest size its window allows
# with dynamic height/width (last stage 5x5 > window 4).
register(ArchSpec("swin_pico_seg_test", _swin(16, (2, 2, 2), (1, 2, 4), 4, 80, classes=5),
                  "smallest test Swin segmenter (embed 16, window 4, 80 px, FPN-lite head), random weights",
                  Preprocessing(crop_pct=1.0, resize="stretch"), model_class=SwinSegmenter))


# Swin V2 (timm's names; torchvision's swin_v2_t/s/b are window 8 at 256). Evaluated at crop_pct 0.9 as timm
# does (1.0 at 384); the "12toN" models were fine-tuned from window 12 (6 in the last stage) at 192 px.
_V2_256, _V2_384 = Preprocessing(crop_pct=0.9), Preprocessing(crop_pct=1.0)
_B_HEADS, _L_HEADS, _FROM_12 = (4, 8, 16, 32), (6, 12, 24, 48), (12, 12, 12, 6)
register(ArchSpec("swinv2_tiny_window8_256", _swinv2(96, _T, (3, 6, 12, 24), 8, 256), "Swin-T V2, 28M", _V2_256),
         "swinv2_tiny", "swin_v2_t")
register(ArchSpec("swinv2_tiny_window16_256", _swinv2(96, _T, (3, 6, 12, 24), 16, 256),
                  "Swin-T V2, window 16", _V2_256))
register(ArchSpec("swinv2_small_window8_256", _swinv2(96, _S, (3, 6, 12, 24), 8, 256), "Swin-S V2, 50M",
                  _V2_256), "swinv2_small", "swin_v2_s")
register(ArchSpec("swinv2_small_window16_256", _swinv2(96, _S, (3, 6, 12, 24), 16, 256),
                  "Swin-S V2, window 16", _V2_256))
register(ArchSpec("swinv2_base_window8_256", _swinv2(128, _S, _B_HEADS, 8, 256), "Swin-B V2, 88M", _V2_256),
         "swinv2_base", "swin_v2_b")
register(ArchSpec("swinv2_base_window16_256", _swinv2(128, _S, _B_HEADS, 16, 256), "Swin-B V2, window 16",
                  _V2_256))
# ImageNet-22k models at 192 px and the ones fine-tuned from them to a larger window and image.
for _size, _letter, _embed, _heads in (("base", "B", 128, _B_HEADS), ("large", "L", 192, _L_HEADS)):
    register(ArchSpec(f"swinv2_{_size}_window12_192", _swinv2(_embed, _S, _heads, 12, 192, classes=21841),
                      f"Swin-{_letter} V2 at 192, window 12, ImageNet-22k head", _V2_256))
    for _window, _img, _preprocessing in ((16, 256, _V2_256), (24, 384, _V2_384)):
        register(ArchSpec(f"swinv2_{_size}_window12to{_window}_192to{_img}",
                          _swinv2(_embed, _S, _heads, _window, _img, pretrained=_FROM_12),
                          f"Swin-{_letter} V2, window 12 -> {_window}, 192 -> {_img}", _preprocessing))
# Test-sized V2: 4 stages, shifted blocks, a last stage as small as the window (where conventions differ).
register(ArchSpec("swinv2_nano_test", _swinv2(32, (2, 2, 2, 2), (1, 2, 4, 8), 8, 256, classes=10),
                  "test-sized Swin V2 (embed 32, depths 2-2-2-2), random weights"))
register(ArchSpec("swinv2_pico_test", _swinv2(16, (2, 2, 2, 2), (1, 1, 2, 2), 4, 64, classes=5),
                  "smallest test Swin V2 (embed 16, window 4, 64 px), random weights"))


# Video Swin (torchvision's swin3d_t/s/b, ported from the official Video-Swin-Transformer Kinetics-400 models):
# patch 2x4x4, window 8x7x7, evaluated on 32-frame clips of 224x224. Each frame is preprocessed as
# torchvision's Swin3D_*_Weights.KINETICS400_V1.transforms do: shorter side resized to 256 (bilinear), centre
# crop 224, ImageNet mean/std. The clip length is the config's clip_size; the temporal sampling
# (frame_rate 15, 12 clips per video) and torchvision's non-antialiased resize have no place in Preprocessing.
_KINETICS = Preprocessing(crop_pct=224 / 256, interpolation="bilinear")
_K400 = "Kinetics-400 acc@1 {acc} (torchvision, 32-frame clips at 224, 12 clips per video at 15 fps)"


def _video(embed_dim, depths, heads, window=(8, 7, 7), clip=(32, 224, 224), classes=400):
    return VideoSwinConfig(clip_size=clip, embed_dim=embed_dim, depths=depths, num_heads=heads,
                           window_size=window, num_classes=classes)


register(ArchSpec("swin3d_t", _video(96, _T, (3, 6, 12, 24)), "Video Swin-T, 28M, " + _K400.format(acc=77.715),
                  _KINETICS))
register(ArchSpec("swin3d_s", _video(96, _S, (3, 6, 12, 24)), "Video Swin-S, 50M, " + _K400.format(acc=79.521),
                  _KINETICS))
register(ArchSpec("swin3d_b", _video(128, _S, _B_HEADS), "Video Swin-B, 88M, " + _K400.format(acc=79.427),
                  _KINETICS))
# Test-sized Video Swin: two stages, shifted 3D windows, patch merging, in ~37k params.
register(ArchSpec("swin3d_pico_test", _video(16, (2, 2), (1, 2), window=(2, 4, 4), clip=(4, 32, 32), classes=5),
                  "smallest test Video Swin (embed 16, window 2x4x4, 4x32x32 clips), random weights", _KINETICS))


def _register_demo() -> None:
    """The demo models trained here (scripts/train_demo.py, train_dense_demo.py, train_detection_demo.py,
    train_video_demo.py);
    each config travels with its weights."""
    from .demo import (DEMO_DET_NAME, DEMO_NAME, DEMO_SEG_NAME, DEMO_VIDEO_NAME, demo_det_spec, demo_seg_spec,
                       demo_spec, demo_video_spec)

    for name, make in ((DEMO_NAME, demo_spec), (DEMO_SEG_NAME, demo_seg_spec), (DEMO_DET_NAME, demo_det_spec),
                       (DEMO_VIDEO_NAME, demo_video_spec)):
        spec = None if name in _ARCHS else make()  # None while its weights have not been trained yet
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


def family_mismatch(checkpoint, spec: ArchSpec) -> UserError:
    """The error for a V1 checkpoint given a V2 arch or the reverse, naming the archs that fit it."""
    from .checkpoint import FAMILY_NAMES, describe_architecture

    found = describe_architecture(checkpoint.tensors)
    _register_demo()
    matches = [name for name, candidate in _ARCHS.items()  # registration order: the common window first
               if candidate.family == checkpoint.family and candidate.config.embed_dim == found["embed_dim"]
               and candidate.config.depths == found["depths"] and candidate.config.num_heads == found["num_heads"]
               and found["window_size"] in (None, candidate.config.window_size)]
    shape = (f"embed_dim {found['embed_dim']}, depths {list(found['depths'])}, heads "
             f"{list(found['num_heads'])}")
    if matches:
        advice = "pass " + " or ".join(f"`arch` {name}" for name in matches)
        if len(matches) > 1 and found["window_size"] is None:
            advice += " (its weights do not fix the window: take the one it was trained with)"
    else:
        config_class = {"swin_v2": "SwinV2Config", VIDEO_FAMILY: "VideoSwinConfig"}.get(checkpoint.family,
                                                                                        "SwinConfig")
        advice = f"no named {FAMILY_NAMES[checkpoint.family]} config has that shape; build one with {config_class}"
    return UserError(f"checkpoint {str(checkpoint.path)!r} is a {FAMILY_NAMES[checkpoint.family]} checkpoint "
                     f"({checkpoint.format} layout, {shape}), but `arch` {spec.name} is a "
                     f"{FAMILY_NAMES[spec.family]} arch: {advice}")


def create_model(name: str, checkpoint: str | Path | None = None, *, img_size=None, num_classes=None,
                 convention=None, features: bool = False, config_overrides: dict | None = None):
    """Build ``name`` (with optional overrides) and load ``checkpoint`` or the arch's bundled weights.

    Returns ``(model, spec, import_report)``; ``import_report`` is ``None`` for random weights.
    """
    from .checkpoint import load_checkpoint, origin_convention

    spec = get_arch(name)
    changes = dict(config_overrides or {})
    if img_size is not None:
        if spec.is_video:  # the frame size; the clip keeps its length (config_overrides' clip_size sets all three)
            height, width = (img_size, img_size) if isinstance(img_size, int) else img_size
            changes["clip_size"] = (spec.config.clip_size[0], height, width)
        else:
            changes["img_size"] = img_size
    if num_classes is not None:
        changes["num_classes"] = num_classes
    source = checkpoint if checkpoint is not None else bundled_weights(spec)
    state = None
    if source is not None:
        state = load_checkpoint(source)
        if state.family != spec.family:
            raise family_mismatch(state, spec)
        head = state.tensors.get("head.fc.weight")
        if num_classes is None and head is not None and checkpoint is not None:
            changes["num_classes"] = head.shape[0]  # a fine-tuned head decides the class count
            if head.shape[0] != len(spec.config.class_names):
                changes["class_names"] = ()
        if convention is None and checkpoint is not None and not spec.is_video:
            convention = origin_convention(state.format)
    if convention is not None:
        if spec.is_video:
            raise UserError(f"arch {spec.name} is a Video Swin arch: it has one convention (the official code's, "
                            f"which torchvision's swin3d_* reproduce), so `convention` does not apply")
        changes["convention"] = convention
    config = spec.config.with_(**changes)
    try:
        config.validate()
    except ValueError as exc:
        raise UserError(f"arch {spec.name}: {exc}") from None
    model = spec.build(config, features=features)
    report = None
    if state is not None:
        from .checkpoint import apply_state

        report = apply_state(model, state)
    model.eval()
    return model, spec, report
