"""``swin-trt export``."""

from pathlib import Path

import click

from ..data.input_format import FOLDED_INPUTS
from ..errors import UserError
from ..export import ExportOptions, ExportStage
from ..models import get_arch
from .options import export_flags, parse_img_size


def warn_if_random_weights(arch: str, checkpoint) -> None:
    spec = get_arch(arch)
    if checkpoint is None and spec.weights is None:
        click.secho(f"WARNING: no --checkpoint given and {spec.name} ships no weights: exporting RANDOM "
                    f"weights. Its outputs mean nothing; pass --checkpoint for a real model.",
                    fg="yellow", bold=True, err=True)


@click.command()
@click.option("--arch", required=True, help="Named config (see `swin-trt archs`), e.g. swin_tiny, swin_demo or swinv2_tiny_window8_256.")
@export_flags()
@click.option("--img-size", help="Input size, N or HxW (default: the arch's; a video arch's frame size).")
@click.option("--opset", type=int, help="ONNX opset (default 17; 18 with --exporter dynamo).")
@click.option("--features", is_flag=True, help="Output the four stage feature maps (NCHW) instead of logits.")
@click.option("--dynamic-size", is_flag=True,
              help="Dynamic height and width: one graph for every input size from the smallest whose last "
                   "stage is larger than the window (export at such a --img-size).")
@click.option("--num-classes", type=int, help="Classifier size (default: the arch's or the checkpoint's).")
@click.option("--fold-normalization", type=click.Choice(FOLDED_INPUTS),
              help="Normalise inside the graph, which then takes RGB pixels 0..255, NCHW: uint8 (a quarter of "
                   "the bytes; Triton, video clients) or float255 (float32, for DeepStream's nvinfer).")
@click.option("--no-check", is_flag=True, help="Skip the ONNX Runtime vs PyTorch comparison.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The ONNX file to write; its sidecar goes to OUTPUT.json.")
def export(arch, checkpoint, img_size, batch, dynamic_batch, opset, features, dynamic_size, convention, exporter,
           clip_len, num_classes, fold_normalization, no_check, output):
    """Export a Swin Transformer to ONNX and check it against PyTorch.

    Writes OUTPUT and OUTPUT.json (arch, config, checkpoint hash, image size, preprocessing, opset,
    package versions), which later stages read. A Video Swin arch (swin3d_*) exports clips (B, 3, T, H, W):
    --clip-len frames of --img-size; the other stages do not take clip graphs yet.

    \b
    Examples:
      swin-trt export --arch swin_demo -o out/demo.onnx
      swin-trt export --arch swin_tiny --checkpoint swin_tiny_patch4_window7_224.pth \\
          --img-size 256x320 --dynamic-batch 32 -o out/swin_t.onnx
      swin-trt export --arch swin_demo --fold-normalization float255 -o out/demo_pixels.onnx
      swin-trt export --arch swin_tiny --features --dynamic-size --img-size 512x640 -o out/backbone.onnx
      swin-trt export --arch swin3d_t --clip-len 16 --img-size 224 --dynamic-batch 8 -o out/swin3d_t.onnx
    """
    warn_if_random_weights(arch, checkpoint)
    if output.suffix != ".onnx":
        raise UserError(f"output {str(output)!r} should end in .onnx")
    options = ExportOptions(arch, checkpoint=checkpoint, img_size=parse_img_size(img_size), batch=batch,
                            dynamic_batch=dynamic_batch, opset=opset, features=features, convention=convention,
                            exporter=exporter, num_classes=num_classes, check=not no_check,
                            fold_normalization=fold_normalization, dynamic_size=dynamic_size, clip_len=clip_len)
    result = ExportStage(output, options).run()
    click.echo(result.describe())
