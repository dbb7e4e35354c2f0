"""Flags that several commands share, each defined once, as argument groups (as Polygraphy's tools do).

A group is a decorator that adds its flags to a command and folds them into one value before the command
runs: ``@preprocess_options`` turns ``--preprocess``, ``--mean``, ... into ``preprocess=PreprocessOptions``.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click

from ..data.model_input import PreprocessOptions
from ..preprocess import INTERPOLATIONS, PRESETS, RESIZE_MODES
from ..engine.build import RANGE_EXAMPLE
from ..engine.targets import TARGETS
from ..errors import UserError
from ..precision.defaults import DEFAULT_CALIB_IMAGES
from ..precision.methods import DEFAULT_METHOD, METHODS
from ..surgery.variant import DEFAULT_FUSE_ATTENTION, DEFAULT_FUSE_GATHERS, DEFAULT_WINDOW_OPS
from ..surgery.variant import WINDOW_OPS as WINDOW_OPS_CHOICES

log = logging.getLogger(__name__)


def parse_img_size(text: str | int | None):
    """``"224"`` or ``"256x320"`` -> ``(H, W)``; ``None`` stays ``None``."""
    if text is None:
        return None
    if isinstance(text, int):
        return text, text
    parts = str(text).lower().replace("*", "x").split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or min(values) <= 0:
        raise UserError(f"image size {text!r} is not N or HxW (e.g. 224 or 256x320)")
    return tuple(values)


def _triple(flag: str):
    def convert(ctx, param, value):
        if value is None:
            return None
        try:
            numbers = tuple(float(v) for v in value.replace(",", " ").split())
        except ValueError:
            numbers = ()
        if len(numbers) != 3:
            raise click.BadParameter(f"{flag} takes three numbers, one per RGB channel, e.g. 0.5,0.5,0.5")
        return numbers

    return convert


def _group(options: list, fold):
    """A decorator adding ``options`` (click.option decorators) and calling ``fold(kwargs)`` before the command."""

    def decorate(command):
        @functools.wraps(command)
        def wrapper(*args, **kwargs):
            fold(kwargs)
            return command(*args, **kwargs)

        for option in reversed(options):
            wrapper = option(wrapper)
        return wrapper

    return decorate


def threads_option(workload: str):
    """``--threads``: ONNX Runtime's threads for a command of ``workload`` (:mod:`swin_trt.backends.threads`)."""
    from ..backends.threads import ENV

    defaults = {"stream": "every core, idle threads sleeping so that decoding gets its turn",
                "batch": "every core"}
    return click.option("--threads", type=click.IntRange(min=1),
                        help=f"ONNX Runtime threads. Default: {defaults[workload]} ({ENV}=N also sets it).")


def note_threads(workload: str, threads: int | None):
    """Say once which thread policy the command runs with; returns it."""
    from ..backends.threads import choose

    policy = choose(workload, threads)
    log.info("%s", policy.describe())
    return policy


IMG_SIZE_HELP = "Input size, N or HxW: for graphs with dynamic height/width (a fixed-size graph keeps its own)."


def img_size_option(help: str = IMG_SIZE_HELP):
    return click.option("--img-size", help=help)


_PREPROCESS = [
    click.option("--preprocess", "preset", type=click.Choice(list(PRESETS)),
                 help="Normalisation preset: imagenet (every Swin checkpoint; the default when the model records "
                      "nothing), inception (mean=std=0.5), unit (pixels/255), none (0-255 as they are, for graphs "
                      "that normalise inside)."),
    click.option("--mean", callback=_triple("--mean"), metavar="R,G,B",
                 help="Per-channel mean on the 0..1 scale (overrides the preset)."),
    click.option("--std", callback=_triple("--std"), metavar="R,G,B",
                 help="Per-channel std on the 0..1 scale (overrides the preset)."),
    click.option("--interpolation", type=click.Choice(INTERPOLATIONS), help="Resize filter [default: bicubic]."),
    click.option("--crop-pct", type=click.FloatRange(0, 1, min_open=True),
                 help="Centre crop covers this fraction of the resized image [default: 0.875]."),
    click.option("--resize", type=click.Choice(RESIZE_MODES),
                 help="crop: resize the shorter side and centre-crop (classifiers); stretch: resize the whole "
                      "image to the input size (dense models) [default: by the model's outputs]."),
]


def preprocess_from(values: dict, img_size=None) -> PreprocessOptions:
    """Pop the preprocessing flags out of ``values`` (a command's kwargs, or a recipe's keys)."""
    def triple(value):
        return tuple(float(v) for v in value) if isinstance(value, (list, tuple)) else value

    preset = values.pop("preset", None)
    if isinstance(values.get("preprocess"), str):  # a recipe names the preset as the flag does
        preset = values.pop("preprocess")
    return PreprocessOptions(preset, triple(values.pop("mean", None)), triple(values.pop("std", None)),
                             values.pop("interpolation", None), values.pop("crop_pct", None),
                             values.pop("resize", None), img_size)


def preprocess_options(command=None, *, img_size: bool = True, fold: bool = True):
    """How images become inputs (``preprocess=PreprocessOptions``); overrides what the model records.

    Without flags a model's sidecar decides, then the ImageNet defaults (announced on stderr).
    ``fold=False`` adds the flags but leaves them as separate keyword arguments (compile merges a recipe
    first, then calls :func:`preprocess_from`).
    """
    options = _PREPROCESS + ([img_size_option()] if img_size else [])

    def folded(kwargs):
        size = parse_img_size(kwargs.pop("img_size")) if img_size else None
        kwargs["preprocess"] = preprocess_from(kwargs, size)

    decorate = _group(options, folded if fold else lambda kwargs: None)
    return decorate(command) if command is not None else decorate


PREPROCESS_EPILOG = ("Preprocessing: the model's sidecar (written by export, carried by rewrite/quantize/build) "
                     "says how images become inputs; a model without one gets the ImageNet recipe (mean/std, "
                     "bicubic, crop_pct 0.875) at the graph's input size, said once on stderr. The flags above "
                     "override either.")


# ---- flags shared by a stage's own command and `compile` ------------------------------------------------------

class Flag:
    """One flag, defined once. ``option()`` is the click option of the stage's own command (with its default);
    ``option(recipe=True)`` is compile's, which has no click default (a TOML recipe may set it) and says the
    default in its help instead. ``decls`` renames it where compile prefixes it (``--calib-method``)."""

    def __init__(self, *decls: str, help: str, default=None, **kwargs):
        self.decls, self.help, self.default, self.kwargs = decls, help, default, kwargs

    def option(self, *decls: str, recipe: bool = False):
        decls = decls or self.decls
        shown = self.default not in (None, False)
        if recipe:
            text = self.help + (f" [default: {self.default}]" if shown else "")
            return click.option(*decls, default=None, help=text, **self.kwargs)
        return click.option(*decls, default=self.default, show_default=shown, help=self.help, **self.kwargs)


def flags(*specs: Flag, recipe: bool = False):
    """A decorator adding every flag in ``specs`` (as ``Flag.option`` makes it)."""
    def decorate(command):
        for spec in reversed(specs):
            command = spec.option(recipe=recipe)(command)
        return command

    return decorate


# The gates: validate, and compile's validation stage.
MIN_COSINE = Flag("--min-cosine", type=float, help="Fail (exit 1) when a candidate's cosine is below this.")
MIN_AGREEMENT = Flag("--min-agreement", type=float,
                     help="Fail (exit 1) when a candidate's top-1 agreement with the reference is below this (0..1).")
MAX_ACC_DROP = Flag("--max-acc-drop", type=float,
                    help="Fail (exit 1) when a candidate's acc@1 is more than this below the reference's (a fraction: "
                         "0.01 = one point). Needs labelled images.")
MAX_MIOU_DROP = Flag("--max-miou-drop", type=float,
                     help="Fail (exit 1) when a segmentation candidate's mIoU is more than this below the reference's "
                          "(a fraction: 0.01 = one point). Needs label masks (validate --masks, compile --val-masks).")
GATES = (MIN_COSINE, MIN_AGREEMENT, MAX_ACC_DROP, MAX_MIOU_DROP)


# ---- validate's detection flags (swin_trt/data/detection_outputs.py, validate/detection.py, coco.py) ------

def _outputs_spec(ctx, param, value):
    from ..data.detection_outputs import parse_outputs

    if value is None:
        return None
    try:
        return parse_outputs(value)
    except UserError as exc:
        raise click.BadParameter(str(exc)) from None


def detection_options(command):
    """``--outputs``, ``--score-threshold``, ``--annotations``, ``--max-map-drop``: what validate does with a
    detector's boxes, scores and labels."""
    from ..validate.detection import DEFAULT_SCORE_THRESHOLD, MATCH_IOU

    options = [
        click.option("--outputs", "detection_outputs", callback=_outputs_spec,
                     metavar="boxes=NAME,scores=NAME,labels=NAME",
                     help="Which outputs are a detector's boxes (N, 4), scores (N,) and labels (N,) (also with a "
                          "batch axis). Default: found by name and shape; a detector whose outputs cannot be told "
                          "apart needs this."),
        click.option("--score-threshold", type=click.FloatRange(min=0), metavar="S",
                     help=f"Detections scoring at least this are compared with the reference's (matched by IoU >= "
                          f"{MATCH_IOU} and the same label) [default: {DEFAULT_SCORE_THRESHOLD}, torchvision's "
                          f"box_score_thresh]."),
        click.option("--annotations", type=click.Path(dir_okay=False, path_type=Path),
                     help="COCO instances JSON of the images (matched by file name): adds the true mAP@[.5:.95] and "
                          "AP50 of the reference and of each candidate, and the change. Labels are category ids."),
        click.option("--max-map-drop", type=float,
                     help="Fail (exit 1) when a detector candidate's mAP is more than this below the reference's "
                          "(a fraction: 0.01 = one point). Needs --annotations."),
    ]
    for option in reversed(options):
        command = option(command)
    return command

# Which plugin families the rewrite emits: rewrite, and compile's rewrite stage.
FUSE_ATTENTION = Flag("--fuse-attention/--no-fuse-attention", default=DEFAULT_FUSE_ATTENTION,
                      help="Also replace the attention core by SwinWindowAttention. Off by default: TensorRT fuses "
                           "window attention itself, and the plugin is kept only where `swin-trt build --compare` "
                           "measures it faster.")
WINDOW_OPS = Flag("--window-ops", type=click.Choice(WINDOW_OPS_CHOICES), default=DEFAULT_WINDOW_OPS,
                  help="Partition/reverse as plugin nodes, or as the native ops with only the shape arithmetic "
                       "folded (TensorRT alone).")
VARIANT = (FUSE_ATTENTION, WINDOW_OPS)
# rewrite only (not a `build --compare` variant: the fused node is unmeasured on a GPU)
FUSE_GATHERS = Flag("--fuse-gathers/--no-fuse-gathers", default=DEFAULT_FUSE_GATHERS,
                    help="With --fuse-attention: turn each block's partition -> attention -> reverse into one "
                         "SwinFusedWindowAttention between its projections, which run on the token map (no separate "
                         "gather passes). Off by default: unmeasured on a GPU. `swin-trt build` builds it with the plugin "
                         "library (SwinFusedWindowAttention plugin); ONNX Runtime runs it too.")

# Calibration: calibrate (--method, --num), and compile's calibrate stage (--calib-method, --calib-num).
CALIB_METHOD = Flag("--method", type=click.Choice(METHODS), default=DEFAULT_METHOD,
                    help="How a range is picked from each histogram: a percentile of |x|, KL divergence as TensorRT's "
                         "entropy calibrator, the max, or the MSE-optimal clip (calibration/README.md compares them).")
CALIB_NUM = Flag("--num", type=int, default=DEFAULT_CALIB_IMAGES,
                 help="Images (or video frames) to use, spread evenly over the source.")

# The engine: build, and compile's build stage.
PLUGINS = Flag("--plugins", type=click.Path(dir_okay=False, path_type=Path),
               help="The swin-trt plugin library (.so). Default: the one built from plugins/, loaded when the graph "
                    "has plugin nodes.")
TARGET = Flag("--target", type=click.Choice(TARGETS), default="auto",
              help="Where the engine runs; auto detects Jetson Orin/Thor/Xavier, else server (also without a GPU).")
WORKSPACE = Flag("--workspace", "workspace_gib", type=float, metavar="GiB",
                 help="Builder workspace limit (default: server 8, Thor 4, Orin 2, Xavier 1).")
IMG_SIZE_RANGE = Flag("--img-size-range", metavar="MIN:OPT:MAX",
                      help="Image sizes (HxW) of a graph with dynamic height and width (export --dynamic-size): the "
                           f"engine runs from MIN to MAX and is tuned for OPT, e.g. {RANGE_EXAMPLE}.")
ENGINE = (PLUGINS, TARGET, WORKSPACE, IMG_SIZE_RANGE)


def parse_img_size_range(text: str | None):
    """``"448x448:576x576:1024x1024"`` -> ``((448, 448), (576, 576), (1024, 1024))``; ``None`` stays ``None``."""
    if text is None:
        return None
    parts = str(text).split(":")
    if len(parts) != 3:
        raise UserError(f"--img-size-range {text!r} is not MIN:OPT:MAX (three sizes N or HxW, e.g. "
                        f"{RANGE_EXAMPLE})")
    try:
        return tuple(parse_img_size(part) for part in parts)
    except UserError as exc:
        raise UserError(f"--img-size-range {text!r}: {exc}") from None


def export_flags(recipe: bool = False):
    """The export options: export, and compile's export stage. Built on call: their choices live in modules
    that import torch, which only these two commands load."""
    from ..export import EXPORTERS
    from ..models import CONVENTIONS

    specs = (
        Flag("--checkpoint", type=click.Path(dir_okay=False, path_type=Path),
             help="Weights: timm, Microsoft, torchvision or Hugging Face layout (.pth/.safetensors). Without it: "
                  "the arch's bundled weights, or random weights with a warning."),
        Flag("--batch", type=int, default=1, help="Static batch size."),
        Flag("--dynamic-batch", type=int, metavar="MAX", help="A dynamic batch axis up to MAX (also the engine's max)."),
        Flag("--convention", type=click.Choice(CONVENTIONS),
             help="Pad/shift order where the window does not divide a stage (default: the checkpoint's origin)."),
        Flag("--exporter", type=click.Choice(EXPORTERS), default="torchscript",
             help="torch.onnx.export with dynamo=False (torchscript) or dynamo=True."),
    )
    # Clips are export's alone for now: compile's later stages (calibrate, validate) read images.
    clips = () if recipe else (
        Flag("--clip-len", type=click.IntRange(min=1), metavar="T",
             help="Frames per clip of a Video Swin arch (swin3d_*), whose graph takes (B, 3, T, H, W) clips "
                  "(default: the arch's clip length; --img-size sets H and W)."),
    )
    return flags(*specs, *clips, recipe=recipe)


# ---- clips of a video model (a Video Swin graph, input (B, 3, T, H, W)) ---------------------------------------

def clip_options(command=None):
    """``--clip-len`` and ``--clip-stride`` (kwargs ``clip_len``, ``clip_stride``): how clips are cut from videos
    for a clip model (:mod:`swin_trt.data.clips`); an image model refuses them."""
    options = [
        click.option("--clip-len", type=click.IntRange(min=1),
                     help="A video (clip) model: frames per clip [default: the model's T, from its input or "
                          "sidecar]."),
        click.option("--clip-stride", type=click.IntRange(min=1),
                     help="A video (clip) model: frames between the starts of consecutive clips [default: "
                          "--clip-len, clips that do not overlap]."),
    ]
    decorate = _group(options, lambda kwargs: None)
    return decorate(command) if command is not None else decorate
