"""``swin-trt infer``."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from pathlib import Path

import click

from ..backends.base import BACKEND_OF_KIND, BACKENDS
from ..data.clips import ClipOptions
from ..model_ref import ModelRef
from ..errors import UserError
from ..io import atomic_output
from ..video.detections import DEFAULT_SCORE_THRESHOLD
from .options import PREPROCESS_EPILOG, clip_options, note_threads, preprocess_options, threads_option

log = logging.getLogger(__name__)


@click.command(epilog=PREPROCESS_EPILOG)
@click.argument("source")
@click.option("-m", "--model",
              help="An .onnx (any classifier, segmentation model or detector; its .json sidecar, if any, says how "
                   "to preprocess), a TensorRT .engine, or torch:<arch>[:<checkpoint>].")
@click.option("--server", metavar="URL",
              help="Infer on a Triton server instead of --model: http://HOST:8000 or grpc://HOST:8001 "
                   "(`swin-trt serve`). Decoding and preprocessing stay here; requests are pipelined.")
@click.option("--model-name", help="The model on --server, where it serves several.")
@click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
              help="auto picks by the model: .onnx -> ort, .engine -> trt, torch: -> torch.")
@click.option("--batch", type=click.IntRange(min=1),
              help="Frames per inference call (default: the model's fixed batch, else 1). "
                   "Larger raises throughput and latency.")
@click.option("--every", type=click.IntRange(min=1), default=1, show_default=True,
              help="Process every N-th frame of the source.")
@click.option("--realtime", is_flag=True,
              help="Keep up with the source: drop (and count) frames when inference falls behind; "
                   "video files are decoded at their own frame rate.")
@click.option("--topk", type=click.IntRange(min=1), default=5, show_default=True,
              help="Classes per frame (a segmentation model: the largest by pixel share).")
@click.option("--score-threshold", type=click.FloatRange(0, 1), default=DEFAULT_SCORE_THRESHOLD, show_default=True,
              help="A detector: write and draw the detections scoring at least this.")
@click.option("--labels", type=click.Path(dir_okay=False, path_type=Path),
              help="Class names, one per line (default: the model's, else class_<i>); a detector's label id i is "
                   "line i (torchvision counts the background as 0).")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after reading N frames from the source.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one JSON line per frame here (default: standard output).")
@click.option("--save-video", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the frames with their top-1 label and score, a segmentation model's class map blended "
                   "over them, or a detector's boxes with label and score (.mp4, .mkv, .avi, .mov, .ts).")
@threads_option("stream")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds to wait for a camera or stream to open, to send the next frame, or for --server "
                   "to answer a request.")
@clip_options
@preprocess_options
def infer(source, model, server, model_name, backend, batch, every, realtime, topk, score_threshold, labels,
          max_frames, out, save_video, threads, timeout, clip_len, clip_stride, preprocess):
    """Classify, segment or detect in SOURCE: an image, a folder of images, a video file, a camera or a stream URL.

    Decoding and preprocessing run in a worker thread, overlapping inference. Each frame gives a JSON line
    (index, timestamp in s, top-k classes and softmax scores, latency in ms from decoded to predicted; for a
    segmentation model, whose output is a class map, the top-k classes by pixel share, their shares and
    the histogram of every class present, and --save-video blends the class map over the frame; for a
    detector, whose outputs are boxes, scores and labels, its detections scoring at least --score-threshold,
    best first: "boxes" as x1, y1, x2, y2 in pixels of the frame as decoded ("box_space": "frame", with its
    "frame_size" [width, height]; the fit to the model's input is undone), "labels", "label_ids" and
    "scores", and --save-video draws each box with its label and score);
    the end prints frames, dropped, corrupt, fps, latency p50/p95/p99 and the decode / preprocess / infer
    time split. A video (clip) model (a Video Swin graph, input (B, 3, T, H, W)) reads a video file, camera
    or stream: a rolling buffer of the last --clip-len frames (default the model's T; at the --every step) is
    classified every --clip-stride frames (default --clip-len), one JSON line per clip ("clip", "first" and
    "last" frame index, "timestamp" of the last, top-k "classes" and "scores", "latency_ms" from the arrival of
    its last frame); --realtime drops whole clips, never frames out of a clip, and --save-video writes each
    frame with the label of the clip it completes. Outputs appear only when the run succeeds (Ctrl-C ends a stream and keeps them; a --server
    that goes away keeps them too, and exits 2).

    \b
    Examples:
      swin-trt infer photo.jpg -m out/demo.onnx
      swin-trt infer clip.mp4 -m out/demo.onnx --batch 8 --out preds.jsonl --save-video annotated.mp4
      swin-trt infer /dev/video0 -m out/demo.engine --realtime --every 2
      swin-trt infer rtsp://camera.local/stream -m torch:swin_demo --realtime --max-frames 1000
      swin-trt infer clip.mp4 --server http://gpu-box:8000 --batch 4 --out preds.jsonl
      swin-trt infer /dev/video0 -m out/video.onnx --clip-stride 4 --realtime     # a Video Swin graph
    """
    from ..video.annotate import AnnotatedVideoWriter, class_map_frame, draw_detections
    from ..video.codecs import muxer_for
    from ..video.model import load_classifier
    from ..video.inference_loop import Pipeline, PipelineOptions
    from ..video.sources import open_source

    muxer = muxer_for(save_video) if save_video else None  # a bad suffix fails before any work
    if (model is None) == (server is None):
        raise UserError("pass either --model (inference here) or --server URL (inference on a Triton server)")
    clips = ClipOptions(clip_len, clip_stride)
    if server is not None:
        from ..video.remote import connect_classifier

        if clips.given:
            raise UserError("--clip-len and --clip-stride are for a video clip model run here (--model); a "
                            "--server model is fed frames")
        classifier = connect_classifier(server, model_name, labels, timeout)
    else:
        options = {"threads": threads} if threads else {}
        if BACKEND_OF_KIND[ModelRef.parse(model).kind] == "ort" and backend in ("auto", "ort"):
            options = note_threads("stream", threads).session_options()  # decoding runs beside the model
        classifier = load_classifier(model, backend, labels, preprocess, clips=clips, **options)
    with contextlib.ExitStack() as stack:
        stack.enter_context(classifier.backend)
        frames = open_source(source, timeout)
        stack.callback(frames.close)
        if realtime and frames.fps is None and not frames.live:
            log.info("--realtime has no effect on still images (they have no frame rate)")
        options = PipelineOptions(batch=batch or classifier.backend.fixed_batch or 1, every=every,
                                  realtime=realtime, max_frames=max_frames, topk=topk,
                                  keep_images=save_video is not None, score_threshold=score_threshold)
        # before any output file: a source the model cannot take (images for a clip model) is refused here
        pipeline = Pipeline(frames, classifier.backend, classifier.preprocessor, classifier.labels, options)
        if out is not None:
            lines = stack.enter_context(open(stack.enter_context(atomic_output(out)), "w", encoding="utf-8"))
        else:
            lines = sys.stdout
        video = None
        if save_video is not None:
            fps = (frames.fps or 1.0) / every
            video = stack.enter_context(AnnotatedVideoWriter(stack.enter_context(atomic_output(save_video)),
                                                             muxer, fps))

        def on_prediction(prediction):
            lines.write(json.dumps(prediction.to_json()) + "\n")
            if video is not None and prediction.first is not None:  # a clip: its label on the frames it completes
                for image in prediction.frames or ():
                    video.write(image, prediction.caption())
            elif video is not None and prediction.detections is not None:
                video.write(draw_detections(prediction.image, prediction.detections, prediction.classes),
                            prediction.caption())
            elif video is not None and prediction.class_map is None:
                video.write(prediction.image, prediction.caption())
            elif video is not None:  # a segmentation model: its class map over the part of the frame it saw
                box = classifier.preprocessor.source_box(*prediction.image.size)
                frame, legend = class_map_frame(prediction, pipeline.labels, box)
                video.write(frame, prediction.caption(), legend)

        stats = pipeline.run(on_prediction)
        if stats.frames == 0 and pipeline.clips is not None and stats.decoded and not stats.error:
            raise UserError(f"{source!r} gave {stats.decoded} frame(s), fewer than one clip of "
                            f"{pipeline.clips.length} frames (at `every` {every}): pass a longer video, or a "
                            f"smaller `clip_len` where the model takes it")
        if stats.frames == 0:
            raise UserError(stats.error or f"no frame could be decoded from {source!r} ({stats.corrupt} corrupt): "
                                           f"check that the source plays, e.g. with ffplay")
    click.echo(stats.summary(), err=True)
    for label, path in (("predictions", out), ("annotated video", save_video)):
        if path is not None:
            click.echo(f"{label}: {path}", err=True)
    if stats.error:  # the server went away: what came before is written, and the run still failed
        raise UserError(f"{stats.error}; the {stats.frames} frames predicted before it were kept")
