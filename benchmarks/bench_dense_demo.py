"""FP32, FP16 and INT8 mIoU of the bundled dense demo ``swin_demo_seg`` through the whole pipeline.

Model: ``swin_demo_seg`` (scripts/train_dense_demo.py), exported with a dynamic batch, rewritten with the
plugin ops (``--strict``), then FP16 (float32 islands) and INT8 (explicit Q/DQ, percentile calibration, the
defaults of ``swin-trt quantize``).

Data (real photos from scikit-image, nothing else):

* calibration: mosaics made exactly as the training mosaics are (training crops only, never a held-out
  cell; ``scripts/train_dense_demo.py``'s ``mosaic``, its own seed), written as PNGs and calibrated through
  the same code as ``swin-trt calibrate``;
* evaluation: the bundled held-out mosaics and their masks (``swin_trt/assets/demo_seg``), through the same
  code as ``swin-trt validate --masks``: mIoU and pixel accuracy against the masks, pixel and mIoU agreement
  with the FP32 export.

INT8 runs as ``validate`` runs it: ONNX Runtime with its Q/DQ fusions off, the arithmetic TensorRT's INT8
kernels perform. The README's dense-demo table and ``tests/test_dense_demo_model.py`` quote this script.

    python benchmarks/bench_dense_demo.py --out benchmarks/results/dense_demo.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CALIB_MOSAICS = 64
CALIB_SEED = 7  # not the training run's seeds: other mosaics from the same training regions
KEYS = ("miou", "miou_change", "pixel_accuracy", "pixel_accuracy_change", "pixel_agreement", "miou_agreement",
        "snr_db", "cosine")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def calibration_mosaics(folder: Path, count: int = CALIB_MOSAICS, seed: int = CALIB_SEED) -> Path:
    """``count`` mosaics of training crops, as PNGs in ``folder``."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import train_dense_demo as script  # its mosaics and the photos' split
    samplers = [script.classification.CropSampler(photo) for photo in script.classification.load_photos()]
    rng = np.random.default_rng([seed, 2])
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels, _ = script.mosaic(samplers, rng, script.SIZE, validation=False)
        Image.fromarray(pixels).save(folder / f"{index:03d}.png")
    return folder


def measure(workdir: Path, method: str = "percentile", calib_count: int = CALIB_MOSAICS) -> dict:
    """Export, rewrite, calibrate, quantize and validate ``swin_demo_seg`` in ``workdir``; the report per model."""
    from swin_trt.export import export_model
    from swin_trt.models.demo import demo_seg_images_dir, demo_seg_masks_dir
    from swin_trt.precision.calibrate_stage import calibrate_file
    from swin_trt.precision.quantize_stage import QuantizeRequest, quantize_file
    from swin_trt.surgery.rewrite_stage import rewrite_file
    from swin_trt.validate.run import Options, run_validation

    paths = {name: workdir / f"seg.{name}.onnx" for name in ("fp32", "rewritten", "fp16", "int8")}
    timings = {}
    start = time.perf_counter()
    export_model("swin_demo_seg", paths["fp32"], dynamic_batch=8)
    rewrite_file(paths["fp32"], paths["rewritten"], strict=True)
    timings["export_rewrite_s"] = time.perf_counter() - start
    start = time.perf_counter()
    calib_dir = calibration_mosaics(workdir / "calib", calib_count)
    cache = calibrate_file(paths["rewritten"], calib_dir, workdir / "calib.json", num=calib_count, method=method,
                           progress=False, note=None)
    timings["calibrate_s"] = time.perf_counter() - start
    quantize_file(paths["rewritten"], paths["fp16"], QuantizeRequest("fp16"), log=lambda line: None)
    quantize_file(paths["rewritten"], paths["int8"], QuantizeRequest("int8", calib=workdir / "calib.json"),
                  log=lambda line: None)
    start = time.perf_counter()
    document = run_validation(Options(str(paths["fp32"]), [str(paths[n]) for n in ("rewritten", "fp16", "int8")],
                                      data=demo_seg_images_dir(), masks=demo_seg_masks_dir(), progress=False,
                                      layer_images=0))
    timings["validate_s"] = time.perf_counter() - start
    reference = document["reference_metrics"]
    rows = {"fp32": {"miou": reference["miou"], "pixel_accuracy": reference["pixel_accuracy"],
                     "class_iou": reference["class_iou"]}}
    for name, entry in zip(("rewritten", "fp16", "int8"), document["candidates"]):
        rows[name] = {key: entry.get(key) for key in KEYS} | {"class_iou": entry["class_iou"]}
    return {"models": rows, "class_names": reference.get("class_names"), "images": document["dataset"]["images"],
            "labelled_pixels": document["dataset"]["masks"]["labelled_pixels"],
            "calibration": {"method": method, "mosaics": cache["data"]["images"], "seed": CALIB_SEED},
            "timings": {k: round(v, 1) for k, v in timings.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    parser.add_argument("--method", default="percentile", help="calibration method (default: %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        result = measure(Path(workdir), args.method)
    import onnxruntime
    import torch

    result["environment"] = {"python": platform.python_version(), "torch": torch.__version__,
                             "onnxruntime": onnxruntime.__version__, "machine": platform.machine()}
    for name, row in result["models"].items():
        change = "" if row.get("miou_change") is None else f" ({100 * row['miou_change']:+.2f})"
        agreement = "" if row.get("pixel_agreement") is None else \
            f", pixel agreement {row['pixel_agreement']:.4f}, mIoU agreement {row['miou_agreement']:.4f}"
        log(f"{name:>9}: mIoU {row['miou']:.4f}{change}, pixel accuracy {row['pixel_accuracy']:.4f}{agreement}")
    if args.out:
        from swin_trt.io import write_json

        write_json(args.out, result)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
