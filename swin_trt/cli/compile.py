"""``swin-trt compile``: the main job."""

from __future__ import annotations

from pathlib import Path

import click

from ..compiler.job import compile_model
from ..compiler.options import CompileOptions, load_recipe
from ..precision.defaults import COMPILE_PRECISIONS
from .flags import to_flags
from .options import (CALIB_METHOD, CALIB_NUM, ENGINE, GATES, PREPROCESS_EPILOG, VARIANT, export_flags, flags,
                      parse_img_size, parse_img_size_range, preprocess_from, preprocess_options)

_PATH = click.Path(path_type=Path)
_GATES = ("min_agreement", "min_cosine", "max_acc_drop", "max_miou_drop")


@click.command("compile", epilog=PREPROCESS_EPILOG)
@click.option("--recipe", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file of options (keys as these flags); flags given here override it.")
@click.option("--arch", help="Named config (see `swin-trt archs`), e.g. swin_demo or swin_tiny.")
@click.option("--onnx", type=click.Path(dir_okay=False, path_type=Path),
              help="Start from this ONNX file (your own export of a Swin: timm, torchvision, Hugging Face, ...) "
                   "instead of exporting --arch.")
@export_flags(recipe=True)
@click.option("--img-size", help="Input size, N or HxW (default: the arch's; with --onnx, the size a graph with "
                                 "dynamic height/width is calibrated and validated at).")
@click.option("--precision", type=click.Choice(COMPILE_PRECISIONS), help="Precision of the final graph "
                                                                        "[default: fp16].")
@click.option("--calib-data", type=_PATH, help="Images, a video, or a .txt of paths to calibrate INT8 on.")
@CALIB_METHOD.option("--calib-method", recipe=True)
@CALIB_NUM.option("--calib-num", recipe=True)
@click.option("--val-data", type=_PATH, help="Images to validate on [default: for int8/best, every 4th image of "
                                             "--calib-data, held out of calibration; else the bundled demo images "
                                             "for swin_demo, or the calibration data].")
@click.option("--val-masks", type=_PATH, help="Label masks of the validation images (segmentation models: one PNG "
                                              "per image, <stem>.png, pixel value = class index): the report adds "
                                              "the true mIoU [default: the bundled masks when validating on the "
                                              "bundled swin_demo_seg mosaics].")
@click.option("--val-annotations", type=click.Path(dir_okay=False, path_type=Path),
              help="COCO instances JSON of the validation images (detectors; images matched by file name): the "
                   "report adds the true mAP [default: the bundled boxes when validating on the bundled "
                   "swin_demo_det mosaics].")
@click.option("--val-limit", type=int, help="Validate on at most this many images.")
@flags(*ENGINE, recipe=True)
@click.option("--no-build", is_flag=True, default=None, help="Stop before the TensorRT build.")
@flags(*VARIANT, recipe=True)
@click.option("--compare/--no-compare", default=None,
              help="With TensorRT and a GPU: build every plugin variant, time each, keep the fastest engine "
                   "[default: compare].")
@flags(*GATES, recipe=True)
@click.option("--force", is_flag=True, default=None, help="Run every stage even where its inputs are unchanged.")
@click.option("-o", "--outdir", type=_PATH, help="Folder for every artifact, manifest and the report.")
@preprocess_options(img_size=False, fold=False)
def compile_(recipe, **flags):
    """Compile a Swin from checkpoint (or your own ONNX) to validated, deployable artifacts in one command.

    export -> rewrite -> calibrate -> quantize -> build -> validate, one line per stage with its time and
    a summary table at the end. A stage is reused only when the content of every input is unchanged
    since the last run in OUTDIR (the upstream artifacts, calibration and validation images as read, the
    plugin library, the options, the swin-trt version; OUTDIR/pipeline.json). Without --val-data, INT8
    validates on images held out of --calib-data. Without TensorRT or a GPU, every ONNX artifact is still
    produced and validated on the CPU, and the build stage says what is missing.

    \b
    Examples:
      swin-trt compile --arch swin_demo --precision int8 \\
          --calib-data swin_trt/assets/demo_images -o out/swin_demo
      swin-trt compile --onnx swin_t_from_timm.onnx --precision int8 --calib-data calib/ -o out/timm
      swin-trt compile --arch swin_demo_seg --precision int8 \
          --calib-data swin_trt/assets/demo_seg/images -o out/swin_demo_seg
      swin-trt compile --recipe recipes/orin-int8.toml --checkpoint swin_tiny.pth -o out/orin
    \b
    A recipe (TOML):
      arch = "swin_tiny"
      precision = "int8"
      calib-data = "calib/"
      target = "orin"
    """
    settings = load_recipe(recipe) if recipe else {}
    settings.update({k: v for k, v in flags.items() if v is not None})
    gates = {k: settings.pop(k) for k in _GATES if k in settings}
    build = not settings.pop("no_build", False)
    if "img_size" in settings:
        settings["img_size"] = parse_img_size(settings["img_size"])
    if "img_size_range" in settings:
        settings["img_size_range"] = parse_img_size_range(settings["img_size_range"])
    for key in ("onnx", "checkpoint", "calib_data", "val_data", "val_masks", "val_annotations", "plugins", "outdir"):
        if key in settings:
            settings[key] = Path(settings[key])
    if "outdir" not in settings:
        raise click.UsageError("missing --outdir (as a flag or in the recipe)")
    preprocess = preprocess_from(settings, settings.get("img_size") if "onnx" in settings else None)
    known = set(CompileOptions.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise click.UsageError(f"unknown recipe key(s): {', '.join(unknown)}")
    if "arch" in settings:
        from .export import warn_if_random_weights

        warn_if_random_weights(settings["arch"], settings.get("checkpoint"))
    command = click.get_current_context().command  # what the stages say names compile's flags (.flags)
    compile_model(CompileOptions(**settings, build=build, gates=gates, preprocess=preprocess),
                  echo=lambda text: click.echo(to_flags(text, command)))
