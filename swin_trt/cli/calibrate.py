"""``swin-trt calibrate``."""

from pathlib import Path

import click

from ..precision.defaults import DEFAULT_CALIB_BATCH
from ..precision.methods import DEFAULT_PERCENTILE
from .options import (CALIB_METHOD, CALIB_NUM, PREPROCESS_EPILOG, clip_options, note_threads, preprocess_options,
                      threads_option)


@click.command(epilog=PREPROCESS_EPILOG)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--data", required=True, type=click.Path(path_type=Path),
              help="A folder of images (recursive; jpg, png, webp, bmp, tif, ...), a video file (frames sampled evenly) "
                   "or a .txt file with one image path per line. A video (clip) model: a video file or a folder of "
                   "videos (recursive); --num then counts clips, spread evenly over them.")
@CALIB_NUM.option()
@click.option("--batch", type=int, default=DEFAULT_CALIB_BATCH, show_default=True,
              help="Images per ONNX Runtime run (a model exported with a fixed batch uses that).")
@CALIB_METHOD.option()
@click.option("--percentile", type=float, default=DEFAULT_PERCENTILE, show_default=True,
              help="For --method percentile.")
@click.option("--min-images", type=int,
              help="Fail when fewer usable images than this remain (default: min(--num, 16)).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The calibration cache (JSON) to write.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@threads_option("batch")
@clip_options
@preprocess_options
def calibrate(model, data, num, batch, method, percentile, min_images, output, quiet, threads, clip_len, clip_stride,
              preprocess):
    """Measure INT8 ranges of MODEL's activations on real images or video.

    Runs MODEL (any float32 ONNX graph, with or without plugin nodes, on ONNX Runtime) over the calibration
    images, preprocessed as MODEL.json says (or the flags, or the ImageNet defaults), and writes the
    ranges of every tensor `swin-trt quantize --precision int8` will
    quantize: the inputs of MatMul/Gemm/Conv and of the window partition/reverse plugins. The cache is
    tied to MODEL by its sha256. See calibration/README.md for choosing images. A detector (NMS, top-k
    inside) calibrates as it is; its head's tensors are measured too, for `quantize --quantize-head`.

    \b
    Examples:
      swin-trt calibrate out/demo.rw.onnx --data calib_images/ -o out/calib.json
      swin-trt calibrate out/demo.rw.onnx --data traffic.mp4 --num 256 --method entropy -o out/calib.json
      swin-trt calibrate out/video.onnx --data clips/ --clip-stride 4 -o out/calib.json   # a Video Swin graph
    """
    from ..precision.calibrate_stage import CalibrateOptions, CalibrateStage

    options = CalibrateOptions(num=num, batch=batch, method=method, percentile=percentile, min_images=min_images,
                               preprocess=preprocess, threads=note_threads("batch", threads).threads,
                               progress=not quiet, clip_len=clip_len, clip_stride=clip_stride)
    result = CalibrateStage(model, data, output, options).run()
    skipped = len(result["data"]["skipped"])
    read = (f"{result['data']['clips']} clips" if "clips" in result["data"] else
            f"{result['data']['images']} images")
    click.echo(f"wrote {output}: {len(result['tensors'])} tensors, method {method}, {read} ({result['data']['kind']})"
               + (f", {skipped} unreadable skipped" if skipped else ""))
