"""FP32, rewritten, FP16 and INT8 mAP of the bundled detector ``swin_demo_det`` through the whole pipeline.

Model: ``swin_demo_det`` (scripts/train_detection_demo.py: swin_demo's backbone, torchvision's FPN + FCOS head,
NMS and top-k in the graph), exported at batch 1 (boxes, scores, labels), rewritten with the plugin ops
(``--strict``), then FP16 and INT8 (explicit Q/DQ, percentile calibration: the defaults of ``swin-trt
quantize``, which choose the head's precision).

Data (real photos from scikit-image, nothing else):

* calibration: mosaics made exactly as the training mosaics are (training crops only, never a held-out cell;
  ``scripts/train_detection_demo.py``'s ``mosaic``, its own seed), written as PNGs and calibrated through the
  same code as ``swin-trt calibrate``;
* evaluation: the bundled held-out mosaics and their COCO annotations (``swin_trt/assets/demo_det``), through
  the same code as ``swin-trt validate --annotations``: mAP@[.5:.95] and AP50 (pycocotools) of every graph, and
  each one's detection agreement with the FP32 export (share of its detections found with IoU >= 0.5 and the
  same label, extra detections, mean IoU of the matches, score drift).

INT8 runs as ``validate`` runs it: ONNX Runtime with its Q/DQ fusions off, the arithmetic TensorRT's INT8
kernels perform. Each stage is named when it fails (``stage ... failed``), so a run on a tree where one does
not work yet says which. The README's detection table quotes this script.

    python benchmarks/bench_detection.py --out benchmarks/results/detection.json
"""

from __future__ import annotations

import argparse
import contextlib
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
KEYS = ("map", "map_change", "ap50", "ap50_change", "detection")
GRAPHS = ("rewritten", "fp16", "int8")  # the candidates, against the FP32 export


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class StageFailed(RuntimeError):
    pass


@contextlib.contextmanager
def stage(name: str, timings: dict):
    """Time one stage; a failure names the stage (and keeps the cause as ``__cause__``)."""
    log(f"{name} ...")
    start = time.perf_counter()
    try:
        yield
    except Exception as exc:
        raise StageFailed(f"stage {name} failed: {type(exc).__name__}: {exc}") from exc
    timings[f"{name}_s"] = round(time.perf_counter() - start, 1)


def calibration_mosaics(folder: Path, count: int = CALIB_MOSAICS, seed: int = CALIB_SEED) -> Path:
    """``count`` mosaics of training crops, as PNGs in ``folder``."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import train_detection_demo as script  # its mosaics and the photos' split
    samplers = [script.classification.CropSampler(photo) for photo in script.classification.load_photos()]
    rng = np.random.default_rng([seed, 2])
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        pixels, _, _ = script.mosaic(samplers, rng, script.SIZE, validation=False)
        Image.fromarray(pixels).save(folder / f"{index:03d}.png")
    return folder


def measure(workdir: Path, method: str = "percentile", calib_count: int = CALIB_MOSAICS) -> dict:
    """Export, rewrite, calibrate, quantize and validate ``swin_demo_det`` in ``workdir``; the report per graph."""
    from swin_trt.export import export_model
    from swin_trt.models.demo import demo_det_annotations, demo_det_images_dir
    from swin_trt.precision.calibrate_stage import calibrate_file
    from swin_trt.precision.quantize_stage import QuantizeRequest, quantize_file
    from swin_trt.surgery.rewrite_stage import rewrite_file
    from swin_trt.validate.run import Options, run_validation

    paths = {name: workdir / f"det.{name}.onnx" for name in ("fp32", *GRAPHS)}
    timings: dict = {}
    with stage("export", timings):
        export = export_model("swin_demo_det", paths["fp32"])
    with stage("rewrite", timings):
        rewrite_file(paths["fp32"], paths["rewritten"], strict=True)
    with stage("calibrate", timings):
        calib_dir = calibration_mosaics(workdir / "calib", calib_count)
        cache = calibrate_file(paths["rewritten"], calib_dir, workdir / "calib.json", num=calib_count,
                               method=method, progress=False, note=None)
    with stage("quantize", timings):
        quantize_file(paths["rewritten"], paths["fp16"], QuantizeRequest("fp16"), log=lambda line: None)
        int8 = quantize_file(paths["rewritten"], paths["int8"],
                             QuantizeRequest("int8", calib=workdir / "calib.json"), log=lambda line: None)
    with stage("validate", timings):
        document = run_validation(Options(str(paths["fp32"]), [str(paths[name]) for name in GRAPHS],
                                          data=demo_det_images_dir(), annotations=demo_det_annotations(),
                                          progress=False, layer_images=0))
    reference = document["reference_metrics"]
    rows = {"fp32": {"map": reference["map"], "ap50": reference["ap50"],
                     "detections": reference["detection"]["detections"]}}
    for name, entry in zip(GRAPHS, document["candidates"]):
        rows[name] = {key: entry.get(key) for key in KEYS}
    return {"models": rows, "images": document["dataset"]["images"], "annotations": document["dataset"]["annotations"],
            "export_check": export.sidecar["check"], "int8": {k: v for k, v in int8.items() if k != "layers"},
            "calibration": {"method": method, "mosaics": cache["data"]["images"], "seed": CALIB_SEED},
            "timings": timings}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    parser.add_argument("--method", default="percentile", help="calibration method (default: %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        try:
            result = measure(Path(workdir), args.method)
        except StageFailed as exc:
            log(f"error: {exc}")
            raise
    import onnxruntime
    import torch
    import torchvision

    result["environment"] = {"python": platform.python_version(), "torch": torch.__version__,
                             "torchvision": torchvision.__version__, "onnxruntime": onnxruntime.__version__,
                             "machine": platform.machine()}
    for name, row in result["models"].items():
        change = "" if row.get("map_change") is None else f" ({100 * row['map_change']:+.2f})"
        agreement = ""
        if row.get("detection"):
            d = row["detection"]
            agreement = (f", found {d['found']:.1%} of the FP32 detections, {d['extra']} extra, mean IoU "
                         f"{d['mean_iou']:.4f}, max score drift {d['max_score_drift']:.4f}")
        log(f"{name:>9}: mAP {row['map']:.4f}{change}, AP50 {row['ap50']:.4f}{agreement}")
    if args.out:
        from swin_trt.io import write_json

        write_json(args.out, result)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
