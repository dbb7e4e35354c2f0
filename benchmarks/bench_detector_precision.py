"""What a detector's head costs in INT8 and FP16: each precision with the head kept float32 and with it converted.

Models: ONNX detectors given on the command line (``--preprocess unit --resize stretch`` inputs, boxes/scores/
labels outputs), or by default the four torchvision detectors of the tests (``tests/conftest.py``'s
``swin_fpn_detector``: FCOS, Faster R-CNN, RetinaNet, Mask R-CNN on a Swin-T + FPN, random weights, 320x320).

Data: the bundled sample photos (``swin_trt/assets/demo_images``), split in two: the even-numbered files
calibrate (``--calib-num``), the odd-numbered ones are held out (``--eval-num``).

``--trained`` measures the bundled trained detector ``swin_demo_det`` instead (swin_demo's backbone with
torchvision's FPN and FCOS head): calibrated on the sample photos, evaluated on its held-out mosaics through
``validate --annotations`` (mAP@[.5:.95], AP50 by pycocotools, and the detection agreement at validate's
default score threshold, 0.05).

For each model: FP32 (the reference), INT8 with the head float32 (``quantize --precision int8``, the default),
INT8 with the head quantized too (``--quantize-head``), FP16 with the head float32 (the default) and FP16 with
the head's layers in float16 (``--quantize-head``; the box selection after NMS/top-k stays float32). Each is
compared with FP32 image by image, as ``swin-trt validate`` does (:mod:`swin_trt.validate.detection`: greedy
matching at IoU >= 0.5 with the same label, above ``--score-threshold``), plus the largest and mean corner
displacement of the matched boxes in pixels. INT8 runs as validate runs it (ONNX Runtime, Q/DQ computed as
written).

    python benchmarks/bench_detector_precision.py --out benchmarks/results/detector_precision.json
    python benchmarks/bench_detector_precision.py --trained --out benchmarks/results/detector_precision_trained.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("fcos", "faster_rcnn", "retinanet", "mask_rcnn")
VARIANTS = {  # name -> (precision, keep the head float32)
    "int8": ("int8", True), "int8_head_int8": ("int8", False),
    "fp16": ("fp16", True), "fp16_head_fp16": ("fp16", False),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def split_photos(folder: Path, workdir: Path) -> tuple[Path, Path]:
    """Two image lists (.txt): the even-numbered photos of every folder, and the odd-numbered ones."""
    photos = sorted(p for p in folder.rglob("*.png"))
    lists = []
    for name, parity in (("calib", 0), ("held_out", 1)):
        path = workdir / f"{name}.txt"
        path.write_text("".join(f"{p}\n" for p in photos if int(p.stem) % 2 == parity))
        lists.append(path)
    return lists[0], lists[1]


def export_detectors(workdir: Path, kinds) -> dict[str, Path]:
    sys.path.insert(0, str(ROOT / "tests"))
    import conftest  # the detectors the tests build

    return {kind: conftest.export_detector(kind, workdir / f"{kind}.onnx") for kind in kinds}


def detections(session, pixels: np.ndarray):
    """Per image: boxes, scores, labels (a batch-1 detector run image by image)."""
    from swin_trt.data.detection_outputs import Detections

    name = session.get_inputs()[0].name
    found = []
    for image in pixels:
        boxes, scores, labels = session.run(None, {name: image[None]})[:3]
        found.append(Detections(np.asarray(boxes, np.float64), np.asarray(scores, np.float64),
                                np.asarray(labels).astype(np.int64)))
    return found


def compare(reference, candidate, threshold: float) -> dict:
    from swin_trt.validate.detection import DetectionAgreement, match

    agreement = DetectionAgreement(threshold)
    shifts = []
    for ref, cand in zip(reference, candidate):
        agreement.update(ref, cand)
        ref, cand = ref.above(threshold), cand.above(threshold)
        shifts += [float(np.abs(cand.boxes[c] - ref.boxes[r]).max()) for c, r in match(ref, cand)]
    result = agreement.result()
    result["max_box_shift_px"] = max(shifts) if shifts else None
    result["mean_box_shift_px"] = float(np.mean(shifts)) if shifts else None
    return result


def measure(model: Path, calib_list: Path, held_out: Path, workdir: Path, calib_num: int, eval_num: int,
            threshold: float) -> dict:
    from swin_trt.backends.onnxruntime import create_session
    from swin_trt.graph import load_onnx
    from swin_trt.data.model_input import PreprocessOptions
    from swin_trt.precision.calibrate_stage import calibrate_file
    from swin_trt.precision.evaluate import load_pixels
    from swin_trt.precision.quantize_stage import QuantizeRequest, quantize_file
    from swin_trt.data.model_input import resolve_input

    preprocess = PreprocessOptions(preset="unit", resize="stretch")
    timings = {}
    start = time.perf_counter()
    calib = workdir / f"{model.stem}.calib.json"
    calibrate_file(model, calib_list, calib, num=calib_num, min_images=1, progress=False, preprocess=preprocess,
                   note=None)
    timings["calibrate_s"] = time.perf_counter() - start
    pixels = load_pixels(held_out, resolve_input(model, preprocess, note=None).preprocessor, eval_num)
    start = time.perf_counter()
    reference = detections(create_session(load_onnx(model), int8="exact"), pixels)
    timings["fp32_s"] = time.perf_counter() - start
    rows = {"fp32": {"detections_per_image": float(np.mean([len(d.above(threshold)) for d in reference]))}}
    for name, (precision, keep_head) in VARIANTS.items():
        path = workdir / f"{model.stem}.{name}.onnx"
        start = time.perf_counter()
        quantize_file(model, path, QuantizeRequest(precision, calib=calib if precision == "int8" else None,
                                                   keep_head=keep_head, preprocess=preprocess), log=lambda line: None)
        timings[f"{name}_quantize_s"] = time.perf_counter() - start
        start = time.perf_counter()
        rows[name] = compare(reference, detections(create_session(load_onnx(path), int8="exact"), pixels), threshold)
        timings[f"{name}_s"] = time.perf_counter() - start
        log(f"  {name:>15}: found {rows[name]['found']:.4f}, extra {rows[name]['extra']}, mean IoU "
            f"{rows[name]['mean_iou']:.4f}, score drift {rows[name]['score_drift']:.2e} (max "
            f"{rows[name]['max_score_drift']:.2e}), box shift mean {rows[name]['mean_box_shift_px']:.3f} px, max "
            f"{rows[name]['max_box_shift_px']:.3f} px")
    return {"models": rows, "images": len(pixels), "timings": {k: round(v, 1) for k, v in timings.items()}}


def measure_trained(calib_list: Path, workdir: Path, calib_num: int) -> dict:
    """``swin_demo_det`` through every variant, against its FP32 export on the held-out mosaics with their boxes."""
    from swin_trt.export import export_model
    from swin_trt.models.demo import demo_det_annotations, demo_det_images_dir
    from swin_trt.precision.calibrate_stage import calibrate_file
    from swin_trt.precision.quantize_stage import QuantizeRequest, quantize_file
    from swin_trt.validate.run import Options, run_validation

    model = workdir / "swin_demo_det.onnx"
    export_model("swin_demo_det", model)
    calib = workdir / "swin_demo_det.calib.json"
    calibrate_file(model, calib_list, calib, num=calib_num, min_images=1, progress=False, note=None)
    paths = {}
    for name, (precision, keep_head) in VARIANTS.items():
        paths[name] = workdir / f"swin_demo_det.{name}.onnx"
        quantize_file(model, paths[name], QuantizeRequest(precision, calib=calib if precision == "int8" else None,
                                                          keep_head=keep_head), log=lambda line: None)
    document = run_validation(Options(str(model), [str(paths[name]) for name in VARIANTS], data=demo_det_images_dir(),
                                      annotations=demo_det_annotations(), progress=False, layer_images=0))
    reference = document["reference_metrics"]
    rows = {"fp32": {"map": reference["map"], "ap50": reference["ap50"]}}
    for name, entry in zip(VARIANTS, document["candidates"]):
        rows[name] = {key: entry.get(key) for key in ("map", "map_change", "ap50", "ap50_change", "detection")}
        found = entry["detection"]
        log(f"  {name:>15}: mAP {entry['map']:.4f} ({100 * entry['map_change']:+.2f}), AP50 {entry['ap50']:.4f}, "
            f"found {found['found']:.4f}, extra {found['extra']}, mean IoU {found['mean_iou']:.4f}")
    return {"models": rows, "images": document["dataset"]["images"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", type=Path, help="detector ONNX files (default: the tests' four)")
    parser.add_argument("--calib-num", type=int, default=32)
    parser.add_argument("--eval-num", type=int, default=24)
    parser.add_argument("--score-threshold", type=float, default=0.0,
                        help="compare detections at or above this score (default %(default)s: every detection; "
                             "random-weight detectors score all their boxes alike)")
    parser.add_argument("--trained", action="store_true", help="measure the bundled trained swin_demo_det instead")
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    args = parser.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        calib_list, held_out = split_photos(ROOT / "swin_trt" / "assets" / "demo_images", workdir)
        if args.trained:
            log("swin_demo_det:")
            results["swin_demo_det"] = measure_trained(calib_list, workdir, args.calib_num)
        else:
            models = {path.stem: path for path in args.models} or export_detectors(workdir, KINDS)
            for name, path in models.items():
                log(f"{name}:")
                results[name] = measure(path, calib_list, held_out, workdir, args.calib_num, args.eval_num,
                                        args.score_threshold)
    import onnxruntime

    document = {"score_threshold": None if args.trained else args.score_threshold,
                "calibration_images": args.calib_num, "detectors": results,
                "environment": {"onnxruntime": onnxruntime.__version__}}
    if args.out:
        from swin_trt.io import write_json

        write_json(args.out, document)
        log(f"wrote {args.out}")
    else:
        print(json.dumps(document, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
