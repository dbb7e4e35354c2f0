"""``swin-trt rewrite``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import FUSE_GATHERS, VARIANT, flags, preprocess_options


@click.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The rewritten ONNX file (its sidecar goes to OUTPUT.json).")
@flags(*VARIANT, FUSE_GATHERS)
@click.option("--strict", is_flag=True, help="Fail when a window op was found but could not be replaced.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@preprocess_options
def rewrite(source, output, fuse_attention, window_ops, fuse_gathers, strict, as_json, preprocess):
    """Replace window partition, cyclic shift, window reverse (and attention) by plugin nodes.

    Works on exports of swin-trt, timm, torchvision and transformers (SwinModel, SwinBackbone, UperNet),
    from either torch exporter, with static or dynamic batch, height and width (a dynamic graph is
    rewritten once and runs at every size). The rewritten graph is checked with onnx.checker; the report
    lists each replacement and op counts before and after.
    OUTPUT.json carries SOURCE's sidecar on (preprocessing for the next stages); the preprocessing flags
    set it for a graph that has none.

    \b
    Examples:
      swin-trt rewrite out/model.onnx -o out/model.rewritten.onnx
      # every plugin family: partition/reverse and attention
      swin-trt rewrite out/model.onnx -o out/model.plugins.onnx --fuse-attention
      # TensorRT alone: no plugin node, shape arithmetic folded
      swin-trt rewrite out/model.onnx -o out/model.native.onnx --window-ops native
      # each block's gathers fused into its attention (ONNX Runtime, or TensorRT with the plugin library)
      swin-trt rewrite out/model.onnx -o out/model.fused.onnx --fuse-attention --fuse-gathers
    """
    from ..surgery.rewrite_stage import RewriteOptions, RewriteStage

    options = RewriteOptions(fuse_attention, window_ops, strict, preprocess, fuse_gathers=fuse_gathers)
    report = RewriteStage(source, output, options).run()
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.format())
    if not as_json:
        click.echo(f"wrote {output}")
