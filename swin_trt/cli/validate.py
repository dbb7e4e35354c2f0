"""``swin-trt validate``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import GateFailed
from .options import (GATES, PREPROCESS_EPILOG, clip_options, detection_options, flags, note_threads,
                      preprocess_options, threads_option)


@click.command(epilog=PREPROCESS_EPILOG)
@click.option("--reference", required=True, metavar="MODEL",
              help="The reference: an ONNX file (usually the fp32 export) or torch:<arch>[:<checkpoint>].")
@click.option("--candidate", "candidates", multiple=True, required=True, metavar="MODEL",
              help="A model to check (.onnx fp32/rewritten/fp16/int8, or a TensorRT .engine/.plan); repeat "
                   "for several.")
@click.option("--data", type=click.Path(path_type=Path),
              help="Images: a folder (class sub-folders give labels), a .txt list, or one image; for a video "
                   "(clip) model, videos: a folder (recursive, class sub-folders give labels) or one video, every "
                   "clip of each compared. Default: the images (clips) the package ships.")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path),
              help="Labels file: lines 'relative/path label' (paths relative to --data; videos for a clip model).")
@click.option("--masks", type=click.Path(file_okay=False, path_type=Path),
              help="Label masks of a segmentation model's images: one PNG per image with the image's stem, pixel "
                   "value = class index, 255 = ignore. Adds the true mIoU and its change per candidate.")
@click.option("-o", "--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write report.html and report.json here.")
@click.option("--fp32", type=click.Path(dir_okay=False, path_type=Path),
              help="The FP32 ONNX graph that FP16/INT8 candidates are compared with layer by layer "
                   "(default: the reference, when it is ONNX).")
@click.option("--layer-images", type=int, default=8, show_default=True,
              help="Images for the per-layer comparison (0: skip it).")
@click.option("--batch", type=int, default=8, show_default=True)
@click.option("--limit", type=int, help="Use at most this many images (videos, for a clip model).")
@click.option("--json", "as_json", is_flag=True, help="Print the report document (JSON) instead of a table.")
@click.option("--atol", type=float, help="Fail (exit 1) when a candidate's max abs error is above this.")
@flags(*GATES)
@click.option("--calib", type=click.Path(dir_okay=False, path_type=Path),
              help="The calibration cache the INT8 candidates were made with (default: what their sidecars "
                   "name): the report says how many validation images were also calibration images.")
@detection_options
@threads_option("batch")
@clip_options
@preprocess_options
def validate(reference, candidates, data, labels, masks, output_dir, fp32, layer_images, batch, limit, as_json,
             atol, min_cosine, min_agreement, max_acc_drop, max_miou_drop, calib, detection_outputs, score_threshold,
             annotations, max_map_drop, threads, clip_len, clip_stride, preprocess):
    """Compare candidates with a reference on the same real images.

    Any ONNX graph (any input and output names; logits, several feature maps, dense class maps or a
    detector's boxes/scores/labels), a TensorRT engine, or torch:<arch>. Per candidate and per output: SNR,
    cosine, max/mean abs error over every element (an output without a batch axis is compared whole, image
    by image); agreement of the top class (per image for logits, per pixel for class maps); for class maps
    the mean-IoU agreement with the reference, and with --masks the true mIoU and its change; for detectors
    the share of the reference's detections found, extra detections, IoU and score drift, and with
    --annotations the true mAP and its change; accuracy (labelled images) and its change; latency; for
    FP16/INT8 graphs, which layers lose the signal. With -o, a self-contained report.html and report.json.
    A failed gate exits 1, after the report is written.

    \b
    Example:
      swin-trt validate --reference out/model.onnx --candidate out/model.fp16.onnx \\
          --data val/ -o out/report --max-acc-drop 0.01 --min-agreement 0.99
      # a backbone exported by the user with dynamic height/width, no sidecar
      swin-trt validate --reference backbone.onnx --candidate backbone.rw.onnx --img-size 512x640
      # a segmentation model against label masks (the bundled demo's mosaics by default)
      swin-trt validate --reference out/seg.onnx --candidate out/seg.int8.onnx \
          --data swin_trt/assets/demo_seg/images --masks swin_trt/assets/demo_seg/masks
      # a detector (boxes, scores, labels) against COCO annotations of its images
      swin-trt validate --reference det.onnx --candidate det.int8.onnx --data val2017/ \\
          --annotations instances_val2017.json --max-map-drop 0.01
      # a Video Swin graph on a folder of videos (class sub-folders), clips of its T frames every 4 frames
      swin-trt validate --reference video.onnx --candidate video.int8.onnx --data videos/ --clip-stride 4
    """
    from ..validate.gates import Gates
    from ..validate.run import ValidateOptions, ValidateStage
    from ..validate.summary import format_summary

    options = ValidateOptions(reference=str(reference), candidates=[str(c) for c in candidates], data=data, labels=labels,
                      batch=batch, limit=limit, fp32=fp32, layer_images=layer_images, progress=not as_json,
                      gates=Gates(atol, min_cosine, min_agreement, max_acc_drop, max_miou_drop, max_map_drop),
                      preprocess=preprocess, calib=calib, masks=masks,
                      threads=note_threads("batch", threads).threads, outputs=detection_outputs,
                      score_threshold=score_threshold, annotations=annotations, clip_len=clip_len,
                      clip_stride=clip_stride)
    document = ValidateStage(options, output_dir).run()
    paths = {"html": Path(output_dir) / "report.html"} if output_dir else None
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(format_summary(document, paths["html"] if paths else None))
    failures = document["gates"]["failures"]
    if failures:
        raise GateFailed("; ".join(f["message"] for f in failures))
