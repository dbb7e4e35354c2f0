"""Does INT8 keep its speed-up through `swin-trt infer`? FP32 vs INT8 throughput, with infer's default threads.

Swin-T (224, random weights: speed does not depend on them) is exported, rewritten, calibrated on crops of
scikit-image's real photos and quantized to INT8 by swin-trt's own stages. Then both graphs classify the same
folder of real-photo crops through the same code `swin-trt infer` runs (load_classifier with the ``stream``
thread policy, the pipelined loop), at batch 1 and 8, alternating FP32 and INT8 ``--repeats`` times; the
speed-up is the median of the per-pair ratios, so a busy machine slows both halves of a pair alike.

Example::

    python benchmarks/bench_infer_int8.py --arch swin_tiny --images 240 --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from swin_trt.backends.threads import choose
from swin_trt.export import export_model
from swin_trt.io import write_json
from swin_trt.precision.calibrate_stage import calibrate_file
from swin_trt.precision.quantize_stage import QuantizeRequest, quantize_file
from swin_trt.surgery.rewrite_stage import rewrite_file
from swin_trt.video.inference_loop import Pipeline, PipelineOptions
from swin_trt.video.model import load_classifier
from swin_trt.video.sources import open_source

TARGET_SPEEDUP = 1.3
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "camera",
          "cat", "coins", "moon", "page", "text", "brick", "grass", "gravel")


def real_photo_crops(folder: Path, count: int, seed: int = 0) -> Path:
    """``count`` random crops of scikit-image's sample photos, as PNG files (a folder source for infer)."""
    from skimage import data

    rng = np.random.default_rng(seed)
    photos = []
    for name in PHOTOS:
        image = np.asarray(getattr(data, name)(), dtype=np.uint8)
        photos.append(np.stack([image] * 3, -1) if image.ndim == 2 else image[..., :3])
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        photo = photos[index % len(photos)]
        height, width = photo.shape[:2]
        side = int(rng.integers(min(height, width) // 2, min(height, width) + 1))
        top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
        Image.fromarray(photo[top:top + side, left:left + side]).save(folder / f"crop_{index:04d}.png")
    return folder


def infer_fps(model: Path, images: Path, batch: int) -> float:
    """Frames per second of `swin-trt infer IMAGES -m MODEL --batch BATCH` (its default thread policy)."""
    classifier = load_classifier(str(model), "ort", note=None, **choose("stream").session_options())
    source = open_source(str(images))
    try:
        with classifier.backend:
            stats = Pipeline(source, classifier.backend, classifier.preprocessor, classifier.labels,
                             PipelineOptions(batch=batch)).run(lambda prediction: None)
    finally:
        source.close()
    return stats.fps


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="swin_tiny")
    parser.add_argument("--images", type=int, default=240, help="Real-photo crops to classify.")
    parser.add_argument("--calib-images", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "infer_int8.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        fp32 = scratch / "model.rw.onnx"
        export_model(args.arch, scratch / "model.onnx", dynamic_batch=max(args.batches), check=False)
        rewrite_file(scratch / "model.onnx", fp32, strict=True)
        calib = real_photo_crops(scratch / "calib", args.calib_images, seed=1)
        calibrate_file(fp32, calib, scratch / "calib.json", num=args.calib_images, progress=False, note=None)
        int8 = scratch / "model.int8.onnx"
        quantize_file(fp32, int8, QuantizeRequest("int8", calib=scratch / "calib.json"), log=lambda line: None)
        images = real_photo_crops(scratch / "images", args.images, seed=2)

        rows = []
        for batch in args.batches:
            pairs = []
            for repeat in range(args.repeats):
                pair = {"fp32": infer_fps(fp32, images, batch), "int8": infer_fps(int8, images, batch)}
                pairs.append(pair)
                print(f"batch {batch}, repeat {repeat + 1}: FP32 {pair['fp32']:.1f} fps, INT8 {pair['int8']:.1f} "
                      f"fps ({pair['int8'] / pair['fp32']:.2f}x)", file=sys.stderr)
            ratios = [p["int8"] / p["fp32"] for p in pairs]
            rows.append({"batch": batch, "fp32_fps": statistics.median(p["fp32"] for p in pairs),
                         "int8_fps": statistics.median(p["int8"] for p in pairs),
                         "speedup": statistics.median(ratios), "pair_ratios": ratios})

    policy = choose("stream")
    result = {
        "benchmark": "infer_int8", "arch": args.arch, "images": args.images, "calib_images": args.calib_images,
        "threads": {"threads": policy.threads, "spinning": policy.spinning, "source": policy.source,
                    "cpus": policy.cpus},
        "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "results": rows, "target_speedup": TARGET_SPEEDUP,
        "meets_target": all(row["speedup"] >= TARGET_SPEEDUP for row in rows),
    }
    write_json(args.out, result)
    for row in rows:
        print(f"batch {row['batch']}: FP32 {row['fp32_fps']:.1f} fps, INT8 {row['int8_fps']:.1f} fps, speed-up "
              f"{row['speedup']:.2f}x (target >= {TARGET_SPEEDUP})")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
