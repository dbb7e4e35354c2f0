"""``swin-trt validate``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import GateFailed, UserError


def _default_data() -> Path:
    from ..models.demo import demo_images_dir

    folder = demo_images_dir()
    if not folder.is_dir():
        raise UserError("no --data given and the package's demo images are missing: pass --data DIR")
    return folder


@click.command()
@click.option("--reference", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The reference ONNX model (usually the fp32 export).")
@click.option("--candidate", "candidates", multiple=True, required=True,
              type=click.Path(dir_okay=False, path_type=Path), help="A model to check; repeat for several.")
@click.option("--data", type=click.Path(path_type=Path),
              help="Images: a folder (class sub-folders give labels), a .txt list, or one image. "
                   "Default: the images the package ships.")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--limit", type=int, help="Use at most this many images.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document instead of a table.")
@click.option("--atol", type=float, help="Fail (exit 1) when any candidate's max abs error is above this.")
@click.option("--min-cosine", type=float, help="Fail (exit 1) when any candidate's cosine is below this.")
def validate(reference, candidates, data, batch, limit, as_json, atol, min_cosine):
    """Compare candidates with a reference on the same real images.

    Reports max abs error, cosine similarity and top-1 agreement per candidate (and accuracy when the
    images are labelled). Plugin nodes run through their CPU implementations in ONNX Runtime.

    \b
    Example:
      swin-trt validate --reference out/model.onnx --candidate out/model.rewritten.onnx --json
    """
    from ..backends.onnxruntime import OnnxRuntimeBackend
    from ..data.images import list_images
    from ..validate.compare import compare, label_items, resolve_preprocessing

    preprocessor, class_names = resolve_preprocessing(reference, *candidates)
    items = list_images(data or _default_data())
    if limit:
        items = items[:limit]
    if not items:
        raise UserError(f"no images (jpg, png, webp, bmp) found in {str(data)!r}")
    ref_backend = OnnxRuntimeBackend(reference)
    backends = {str(path): OnnxRuntimeBackend(path) for path in candidates}
    result = compare(ref_backend, backends, label_items(items, class_names), preprocessor, batch,
                     progress=not as_json)
    document = {"reference": str(reference), "data": str(data or "bundled demo images"),
                "reference_metrics": result["reference"],
                "candidates": [{"name": name, **metrics} for name, metrics in result["candidates"].items()]}
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(f"{result['reference']['images']} images; reference {reference}")
        for entry in document["candidates"]:
            accuracy = f"  acc@1 {entry['acc1']:.3f}" if "acc1" in entry else ""
            click.echo(f"  {entry['name']}: max_abs_err {entry['max_abs_err']:.3e}  cosine {entry['cosine']:.6f}"
                       f"  top1_agreement {entry['top1_agreement']:.4f}{accuracy}")
    failures = []
    for entry in document["candidates"]:
        if atol is not None and entry["max_abs_err"] > atol:
            failures.append(f"{entry['name']}: max_abs_err {entry['max_abs_err']:.3e} > --atol {atol}")
        if min_cosine is not None and entry["cosine"] < min_cosine:
            failures.append(f"{entry['name']}: cosine {entry['cosine']:.6f} < --min-cosine {min_cosine}")
    if failures:
        raise GateFailed("; ".join(failures))
