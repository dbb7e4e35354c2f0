"""What a model takes as input, and how images become that input, for any model a user brings.

The recipe comes, in order of precedence, from the command's flags (``--preprocess`` preset, then
``--mean``/``--std``/``--interpolation``/``--crop-pct``/``--resize``), from the model's sidecar (written by
``export``, carried by ``rewrite``/``quantize``/``build``), from the arch of a ``torch:`` reference, and last
from defaults by what the graph outputs (:func:`default_recipe`: the ImageNet recipe every Swin checkpoint
uses; the whole image for dense models; 0..1 pixels of the whole image for detectors, as torchvision's are
fed), which are then announced once (a note on the ``swin_trt`` logger). The size is
the graph's own input size; a graph with dynamic height/width takes ``--img-size``.

A Video Swin graph takes clips ``(B, 3, T, H, W)`` (``swin-trt export --arch swin3d_*``, or a user's own
export of torchvision's ``swin3d_*``): for it the stages that read data (calibrate, quantize's ``best``,
validate, infer) get a :class:`~.clips.ClipPreprocessor` (each frame's recipe, the clip's T frames from the
graph, its sidecar's ``clip_size`` or ``clip_len``, and the stride between clips) and read clips from video
files (:mod:`.clips`); rewrite and quantize, which read no data, carry its sidecar as they carry any other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable

import onnx

from ..errors import UserError
from ..model_ref import ModelRef
from .clips import ClipOptions, ClipPreprocessor
from .detection_outputs import declares_detections, detection_shapes
from .volumes import volume_preprocessor
from ..preprocess import PRESETS, Preprocessing, Preprocessor


log = logging.getLogger(__name__)


def log_note(message: str) -> None:
    """The default ``note``: an INFO record of this module's logger (``note: ...`` on the CLI's stderr)."""
    log.info("%s", message)


note_on_stderr = log_note  # the old name


@dataclass(frozen=True)
class PreprocessOptions:
    """The preprocessing flags of a command; ``None`` = not given."""

    preset: str | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    interpolation: str | None = None
    crop_pct: float | None = None
    resize: str | None = None
    img_size: tuple[int, int] | None = None

    @property
    def recipe_given(self) -> bool:
        return any(v is not None for v in (self.preset, self.mean, self.std, self.interpolation, self.crop_pct,
                                           self.resize))

    def apply(self, base: Preprocessing) -> Preprocessing:
        """``base`` with the preset, then the single-value flags, laid over it."""
        recipe = base
        if self.preset is not None:
            if self.preset not in PRESETS:
                raise UserError(f"`preset` {self.preset!r}: choose one of {', '.join(PRESETS)}")
            preset = PRESETS[self.preset]
            recipe = replace(recipe, mean=preset.mean, std=preset.std)
        changes = {name: value for name, value in (("mean", self.mean), ("std", self.std),
                                                   ("interpolation", self.interpolation),
                                                   ("crop_pct", self.crop_pct), ("resize", self.resize))
                   if value is not None}
        return replace(recipe, **changes).check("the preprocessing options")


CLIP_RANK = 5  # (B, C, T, H, W)
CLIP_LAYOUT = "NCTHW"  # the export sidecar's `layout` of a Video Swin graph


@dataclass(frozen=True)
class GraphIO:
    """A model's image input and its outputs' ranks, read without running it."""

    input_name: str
    input_shape: tuple  # (B, C, H, W); None where dynamic or unknown
    output_ranks: tuple[int, ...] = ()
    detections: bool = False  # outputs are a detector's boxes, scores and labels

    @property
    def clip(self) -> bool:
        """A clip input ``(B, C, T, H, W)`` (a Video Swin's), not an image."""
        return len(self.input_shape) == CLIP_RANK

    @property
    def spatial(self) -> tuple[int, int] | None:
        height, width = self.input_shape[-2:] if len(self.input_shape) in (4, CLIP_RANK) else (None, None)
        return (height, width) if isinstance(height, int) and isinstance(width, int) else None

    @property
    def frames(self) -> int | None:
        """A clip input's fixed T (None: an image input, or T dynamic)."""
        frames = self.input_shape[2] if self.clip else None
        return frames if isinstance(frames, int) else None

    @property
    def dense(self) -> bool:
        """Outputs are maps (features, class maps), not one vector per image."""
        return bool(self.output_ranks) and min(self.output_ranks) >= 3


def _dims(value_info) -> tuple:
    return tuple(d.dim_value if d.HasField("dim_value") else None for d in value_info.type.tensor_type.shape.dim)


def onnx_io(model: onnx.ModelProto) -> GraphIO:
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if not inputs:
        raise UserError("the ONNX graph has no input")
    first = inputs[0]
    return GraphIO(first.name, _dims(first), tuple(len(_dims(o)) for o in model.graph.output),
                   declares_detections(model))


def _engine_io(sidecar: dict | None) -> GraphIO | None:
    io = (sidecar or {}).get("io") or []
    inputs = [t for t in io if t.get("mode") == "input"]
    if not inputs:
        return None
    shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in inputs[0]["shape"])
    outputs = [tuple(t["shape"]) for t in io if t.get("mode") == "output"]
    return GraphIO(inputs[0]["name"], shape, tuple(len(o) for o in outputs), detection_shapes(outputs))


@dataclass
class ModelInput:
    """How to feed one model: its preprocessing at its input size, and what it says about its classes."""

    preprocessor: Preprocessor
    class_names: list[str]
    io: GraphIO | None
    origin: str  # "flags", "sidecar", "arch" or "defaults": where the recipe came from

    @property
    def dense(self) -> bool:
        return bool(self.io and self.io.dense)

    @property
    def clips(self) -> bool:
        """The model takes clips (B, 3, T, H, W); ``preprocessor`` is then a :class:`~.clips.ClipPreprocessor`."""
        return isinstance(self.preprocessor, ClipPreprocessor)


@dataclass
class ModelFacts:
    """What a model records about its input, before any flag is applied."""

    ref: ModelRef
    io: GraphIO | None  # None: not known without running it (an engine without manifest, a torch spec)
    recipe: Preprocessing
    origin: str  # "sidecar", "arch" or "defaults"
    recorded_size: tuple[int, int] | None
    class_names: list[str]

    @property
    def static_size(self) -> tuple[int, int] | None:
        return self.io.spatial if self.io else None

    def clip_input(self) -> str | None:
        """What makes this model a video clip model, or None for an image model: a 5-D input, an export
        sidecar's clip ``layout``, or a Video Swin arch (``torch:swin3d_*``)."""
        if self.io is not None and self.io.clip:
            shape = "x".join("?" if d is None else str(d) for d in self.io.input_shape)
            return f"its input {self.io.input_name!r} is {shape}, a clip (B, 3, T, H, W) of a video model"
        sidecar = self.ref.sidecar() if self.ref.kind != "torch" else None
        if (sidecar or {}).get("layout") == CLIP_LAYOUT:
            return f"its sidecar records {CLIP_LAYOUT} clips {sidecar.get('clip_size')} (T, H, W) of a video model"
        if self.ref.kind == "torch":
            from ..models import get_arch

            spec = get_arch(self.ref.arch)
            if spec.is_video:
                return f"{spec.name} is a Video Swin (3D) arch: it takes clips (B, 3, T, H, W)"
        return None


    def clip_frames(self) -> int | None:
        """A clip model's T as the model fixes or records it: the graph's input, else the sidecar's
        ``clip_size``, else the arch's; None where nothing says (a user's export with a dynamic T)."""
        if self.io is not None and self.io.frames is not None:
            return self.io.frames
        if self.ref.kind == "torch":
            from ..models import get_arch

            return int(get_arch(self.ref.arch).config.clip_size[0])
        recorded = (self.ref.sidecar() or {}).get("clip_size")
        return int(recorded[0]) if recorded else None


def read_facts(ref: ModelRef | str, proto: onnx.ModelProto | None = None) -> ModelFacts:
    ref = ModelRef.parse(ref) if not isinstance(ref, ModelRef) else ref
    sidecar = ref.sidecar()
    io = None
    if ref.kind == "onnx":
        if proto is None:
            from ..graph import load_onnx

            proto = load_onnx(ref.text)
        io = onnx_io(proto)
    elif ref.kind == "engine":
        io = _engine_io(sidecar)
    if ref.kind == "torch":  # the reference is built at whatever size is asked: no static size
        from ..models import get_arch

        spec = get_arch(ref.arch)
        return ModelFacts(ref, None, spec.preprocessing, "arch", tuple(spec.config.img_size),
                          list(spec.config.class_names))
    class_names = list(((sidecar or {}).get("config") or {}).get("class_names") or [])
    recorded = (sidecar or {}).get("preprocessing")
    if recorded:
        crop = tuple(recorded["crop"]) if recorded.get("crop") else None
        origin = "defaults" if recorded.get("assumed") else "sidecar"
        recipe = Preprocessing.from_dict(recorded)
        if "fit" not in recorded and io is not None and io.dense:  # sidecars older than `fit`: dense is stretched
            recipe = replace(recipe, resize="stretch")
        return ModelFacts(ref, io, recipe, origin, crop, class_names)
    return ModelFacts(ref, io, default_recipe(io), "defaults", None, class_names)


def default_recipe(io: GraphIO | None) -> Preprocessing:
    """What a model that records nothing is fed: a detector as torchvision's detectors are (0..1 pixels of the
    whole image: they normalise and resize inside), a dense model the whole image, ImageNet's crop otherwise."""
    if io is not None and io.detections:
        return Preprocessing(mean=PRESETS["unit"].mean, std=PRESETS["unit"].std, resize="stretch")
    return Preprocessing(resize="stretch") if io is not None and io.dense else Preprocessing()


def _size(facts: list[ModelFacts], options: PreprocessOptions) -> tuple[int, int]:
    """One input size for every model: ``img_size``, else the graphs' own, else what the models record."""
    static = [(f, f.static_size) for f in facts if f.static_size is not None]
    chosen = tuple(options.img_size) if options.img_size is not None else (static[0][1] if static else None)
    for model, size in static:
        if size != chosen:
            flag = "`img_size` " if options.img_size is not None else f"{static[0][0].ref} takes "
            raise UserError(f"{model.ref} takes {size[0]}x{size[1]} images, but {flag}{chosen[0]}x{chosen[1]}: "
                            f"models compared or fed together need the same input size; export them at one "
                            f"`img_size` (a graph with dynamic height/width takes any `img_size`)")
    if chosen is not None:
        return chosen
    recorded = next((f.recorded_size for f in facts if f.recorded_size), None)
    if recorded is not None:
        return recorded
    first = facts[0]
    name = f" {first.io.input_name!r}" if first.io else ""
    shape = list(first.io.input_shape) if first.io else "unknown"
    raise UserError(f"{first.ref}: input{name} has no fixed height and width ({shape}): pass `img_size` "
                    f"(height x width, e.g. 512x640)")


def resolve_inputs(refs: list, options: PreprocessOptions | None = None, *, protos: dict | None = None,
                   note: Callable[[str], None] | None = log_note, need_size: bool = True,
                   clips: ClipOptions | None = None) -> ModelInput:
    """One preprocessing for models fed the same data (validate: reference and candidates).

    The recipe is the first model's that records one (flags override it); the size is checked against every
    model with a fixed size. ``note`` hears, once, when nothing but the defaults said what to do (by default
    the logger; ``None``: nobody).
    ``need_size=False`` (rewrite, quantize: they record the recipe, they read no image) leaves a dynamic
    graph's size open instead of asking for ``--img-size``. With ``need_size`` (a stage that reads data) a
    video clip model gets a :class:`~.clips.ClipPreprocessor`: T from the models (:func:`_clip_frames`),
    ``clips`` the clip length and stride asked for.
    """
    options = options or PreprocessOptions()
    clips = (clips or ClipOptions()).check()
    protos = protos or {}
    facts = [read_facts(ref, protos.get(str(ref))) for ref in refs]
    chosen = next((f for f in facts if f.origin != "defaults"), facts[0])
    if need_size and (volume := volume_preprocessor(facts, options)) is not None:  # (B, C, D, H, W): .volumes
        return ModelInput(volume, chosen.class_names, chosen.io, "sidecar" if volume.intensity else "defaults")
    recipe, origin = options.apply(chosen.recipe), ("flags" if options.recipe_given else chosen.origin)
    try:
        size = _size(facts, options)
    except UserError:
        if need_size or options.img_size is not None:
            raise
        size = None
    preprocessor = Preprocessor(size, recipe)
    if need_size:
        frames = _clip_frames(facts, clips)
        if frames is not None:
            preprocessor = ClipPreprocessor(preprocessor, frames, clips.stride or frames)
    if origin == "defaults" and note is not None:
        assumed = ("feeding it as torchvision's detectors are fed, 0..1 pixels of the whole image"
                   if chosen.io is not None and chosen.io.detections
                   else "assuming the ImageNet recipe every Swin checkpoint uses")
        note(f"{chosen.ref} says nothing about its preprocessing: {assumed} ({preprocessor.describe()}); set it "
             f"with `preset`, `mean`, `std`, `interpolation`, `crop_pct`, `resize`")
    return ModelInput(preprocessor, chosen.class_names, chosen.io, origin)


def _clip_frames(facts: list[ModelFacts], clips: ClipOptions) -> int | None:
    """The T of the clips fed to ``facts`` (all clip models, or none), or None for image models: the graphs'
    fixed T, else what they record, else ``clips.length``; ``clips.length`` must equal a fixed or recorded T."""
    why = [(f, f.clip_input()) for f in facts]
    clip_models = [f for f, reason in why if reason is not None]
    if not clip_models:
        if clips.given:
            name = "clip_len" if clips.length is not None else "clip_stride"
            raise UserError(f"`{name}` is for a video clip model (input (B, 3, T, H, W)), but {facts[0].ref} takes "
                            f"images (B, 3, H, W): leave `clip_len` and `clip_stride` out")
        return None
    if len(clip_models) != len(facts):
        image_model = next(f for f, reason in why if reason is None)
        clip_model, reason = next((f, reason) for f, reason in why if reason is not None)
        raise UserError(f"{clip_model.ref}: {reason}, but {image_model.ref} takes images (B, 3, H, W): models "
                        f"compared or fed together take the same input; compare clip models with clip models")
    fixed = [(f, f.io.frames) for f in clip_models if f.io is not None and f.io.frames is not None]
    recorded = [(f, f.clip_frames()) for f in clip_models if f.clip_frames() is not None]
    for model, frames in fixed[1:]:
        if frames != fixed[0][1]:
            raise UserError(f"{model.ref} takes clips of {frames} frames, but {fixed[0][0].ref} of {fixed[0][1]}: "
                            f"models compared or fed together need the same clip length; export them at one "
                            f"`clip_len`")
    known = fixed[0] if fixed else (recorded[0] if recorded else None)
    if clips.length is not None and known is not None and clips.length != known[1] and fixed:
        raise UserError(f"`clip_len` {clips.length}: {known[0].ref} takes clips of {known[1]} frames (its input "
                        f"{known[0].io.input_name!r} fixes T); leave `clip_len` out, or export the model with "
                        f"`clip_len` {clips.length}")
    frames = clips.length if clips.length is not None else (known[1] if known is not None else None)
    if frames is None:
        first = clip_models[0]
        raise UserError(f"{first.ref}: its input {first.io.input_name!r} has no fixed number of frames "
                        f"({list(first.io.input_shape)}) and nothing records one: pass `clip_len` (the frames T of "
                        f"each clip)")
    return frames


def resolve_input(ref: ModelRef | str, options: PreprocessOptions | None = None, *,
                  proto: onnx.ModelProto | None = None, note: Callable[[str], None] | None = log_note,
                  need_size: bool = True, clips: ClipOptions | None = None) -> ModelInput:
    """The preprocessing and class names for one model (see :func:`resolve_inputs`)."""
    return resolve_inputs([ref], options, protos={str(ref): proto} if proto is not None else None, note=note,
                          need_size=need_size, clips=clips)


def sidecar_preprocessing(model_input: ModelInput) -> dict:
    """The sidecar form of what was used, marked ``assumed`` when nothing but the defaults said so."""
    data = model_input.preprocessor.to_dict()
    if model_input.origin == "defaults":
        data["assumed"] = True
    return data


def carried_sidecar(source, options: PreprocessOptions | None = None,
                    proto: onnx.ModelProto | None = None) -> dict:
    """``source``'s sidecar for a stage's output, with the preprocessing the next stages should use.

    A stage that reads no image (rewrite, quantize) still passes on what it was told: flags override the
    recorded recipe; a model that records none gets the defaults, marked ``assumed``.
    """
    ref = ModelRef.parse(source)
    sidecar = dict(ref.sidecar() or {})
    options = options or PreprocessOptions()
    if options.recipe_given or options.img_size is not None or not sidecar.get("preprocessing"):
        sidecar["preprocessing"] = sidecar_preprocessing(
            resolve_input(ref, options, proto=proto, note=None, need_size=False))
    return sidecar
