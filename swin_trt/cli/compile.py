"""``swin-trt compile``: the main job."""

from __future__ import annotations

from pathlib import Path

import click

from ..export import EXPORTERS, parse_img_size
from ..models import CONVENTIONS
from ..compiler.job import PRECISIONS, CompileOptions, compile_model, load_recipe

_PATH = click.Path(path_type=Path)


@click.command("compile")
@click.option("--recipe", type=click.Path(dir_okay=False, path_type=Path),
              help="TOML file of options (keys as these flags); flags given here override it.")
@click.option("--arch", help="Named config (see `swin-trt archs`), e.g. swin_demo or swin_tiny.")
@click.option("--checkpoint", type=_PATH, help="Weights (timm, Microsoft, torchvision or Hugging Face layout).")
@click.option("--img-size", help="Input size, N or HxW (default: the arch's).")
@click.option("--precision", type=click.Choice(PRECISIONS), help="Precision of the final graph [default: fp16].")
@click.option("--calib-data", type=_PATH, help="Images, a video, or a .txt of paths to calibrate INT8 on.")
@click.option("--calib-method", type=click.Choice(["entropy", "percentile", "max", "mse"]),
              help="INT8 range method [default: percentile].")
@click.option("--calib-num", type=int, help="Calibration images/frames to use [default: 512].")
@click.option("--val-data", type=_PATH, help="Images to validate on [default: the bundled demo images for "
                                             "swin_demo, else the calibration data].")
@click.option("--val-limit", type=int, help="Validate on at most this many images.")
@click.option("--batch", type=int, help="Static batch [default: 1].")
@click.option("--dynamic-batch", type=int, metavar="MAX", help="Dynamic batch axis up to MAX (also the engine's max).")
@click.option("--convention", type=click.Choice(CONVENTIONS), help="Pad/shift order (default: the checkpoint's).")
@click.option("--exporter", type=click.Choice(EXPORTERS), help="torch.onnx exporter [default: torchscript].")
@click.option("--plugins", type=_PATH, help="The built plugin library (default: found as `swin-trt build` does).")
@click.option("--target", type=click.Choice(["auto", "orin", "xavier", "server"]), help="Engine target [default: auto].")
@click.option("--workspace", "workspace_gib", type=float, help="Builder workspace in GiB.")
@click.option("--no-build", is_flag=True, default=None, help="Stop before the TensorRT build.")
@click.option("--min-agreement", type=float, help="Gate: fail (exit 1) under this top-1 agreement.")
@click.option("--min-cosine", type=float, help="Gate: fail (exit 1) under this cosine similarity.")
@click.option("--max-acc-drop", type=float, help="Gate: fail (exit 1) when accuracy drops by more (a fraction).")
@click.option("--force", is_flag=True, default=None, help="Run every stage even where its inputs are unchanged.")
@click.option("-o", "--outdir", type=_PATH, help="Folder for every artifact, manifest and the report.")
def compile_(recipe, **flags):
    """Compile a Swin from checkpoint to validated, deployable artifacts in one command.

    export -> rewrite -> calibrate -> quantize -> build -> validate, one line per stage with its time and
    a summary table at the end. Stages whose inputs did not change since the last run in OUTDIR are
    reused (content hashes in OUTDIR/pipeline.json). Without TensorRT or a GPU, every ONNX artifact is
    still produced and validated on the CPU, and the build stage says what is missing.

    \b
    Examples:
      swin-trt compile --arch swin_demo --precision int8 \\
          --calib-data swin_trt/assets/demo_images -o out/swin_demo
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
    gates = {k: settings.pop(k) for k in ("min_agreement", "min_cosine", "max_acc_drop") if k in settings}
    build = not settings.pop("no_build", False)
    if "img_size" in settings:
        settings["img_size"] = parse_img_size(settings["img_size"])
    for key in ("checkpoint", "calib_data", "val_data", "plugins", "outdir"):
        if key in settings:
            settings[key] = Path(settings[key])
    missing = [name for name in ("arch", "outdir") if name not in settings]
    if missing:
        raise click.UsageError(f"missing {' and '.join('--' + m for m in missing)} (as a flag or in the recipe)")
    known = set(CompileOptions.__dataclass_fields__)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise click.UsageError(f"unknown recipe key(s): {', '.join(unknown)}")
    from .export import warn_if_random_weights

    warn_if_random_weights(settings["arch"], settings.get("checkpoint"))
    compile_model(CompileOptions(**settings, build=build, gates=gates), echo=click.echo)
