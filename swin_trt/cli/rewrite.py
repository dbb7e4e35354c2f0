"""``swin-trt rewrite``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import UserError


@click.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The rewritten ONNX file (its sidecar goes to OUTPUT.json).")
@click.option("--fuse-attention/--no-fuse-attention", default=True, show_default=True,
              help="Also replace the attention core by SwinWindowAttention.")
@click.option("--strict", is_flag=True, help="Fail when a window op was found but could not be replaced.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rewrite(source, output, fuse_attention, strict, as_json):
    """Replace window partition, cyclic shift, window reverse (and attention) by plugin nodes.

    Works on exports of swin-trt, timm, torchvision and transformers (SwinModel, SwinBackbone, UperNet),
    from either torch exporter, with static or dynamic batch, height and width (a dynamic graph is
    rewritten once and runs at every size). The rewritten graph is checked with onnx.checker; the report
    lists each replacement and op counts before and after.

    \b
    Example:
      swin-trt rewrite out/model.onnx -o out/model.rewritten.onnx
    """
    from ..surgery.rewrite_stage import rewrite_file

    if output.resolve() == source.resolve():
        raise UserError("the output must differ from the input: nothing is overwritten in place")
    report = rewrite_file(source, output, fuse_attention=fuse_attention, strict=strict)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.format())
    if not as_json:
        click.echo(f"wrote {output}")
