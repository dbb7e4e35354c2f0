"""FP32, rewritten, FP16 and INT8 accuracy of the bundled video demo ``swin3d_demo`` through the whole pipeline.

Model: ``swin3d_demo`` (scripts/train_video_demo.py), exported with a dynamic batch, rewritten with the plugin
ops (``--strict --fuse-attention``), then FP16 (float32 islands) and INT8 (explicit Q/DQ, percentile
calibration, the defaults of ``swin-trt quantize``).

Data (real photos from scikit-image, rendered into camera motions by the training script's own code, written
as H.264 MP4 like the bundled clips):

* calibration: clips of the *training* photos (never a held-out photo), from their own seed;
* evaluation: held-out clips of the three photos the model never saw, the first ``--per-class`` repeats of the
  training script's own held-out set (same generator, same order), in ``<motion>/`` class folders, through
  the same code as ``swin-trt validate`` on a folder of videos: top-1 against the motion, agreement with the
  FP32 export per clip.

INT8 runs as ``validate`` runs it: ONNX Runtime with its Q/DQ fusions off, the arithmetic TensorRT's INT8
kernels perform. The README's video-demo table quotes this script.

    python benchmarks/bench_video_swin.py --out benchmarks/results/video_swin.json
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CALIB_CLIPS = 64
CALIB_SEED = 7  # not the training run's seeds: other clips of the training photos
KEYS = ("acc1", "acc1_change", "acc5", "top1_agreement", "cosine", "snr_db", "max_abs_err")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _script():
    sys.path.insert(0, str(ROOT / "scripts"))
    import train_video_demo as script

    return script


def write_heldout(folder: Path, per_class: int, seed: int = 0) -> int:
    """The training script's held-out clips (its generator and order: repeat, then photo, then motion), the first
    ``per_class`` repeats, as ``<motion>/<photo>_<repeat>.mp4``; returns how many."""
    script = _script()
    photos = script.load_photos()
    sampler = script.ClipSampler([photos[name] for name in script.TEST_PHOTOS])
    rng = np.random.default_rng([seed, 1])
    count = 0
    for repeat in range(per_class):
        for photo, photo_name in enumerate(script.TEST_PHOTOS):
            for label, motion in enumerate(script.MOTIONS):
                clip = sampler.clip(rng, label, photo)
                (folder / motion).mkdir(parents=True, exist_ok=True)
                script.write_mp4(folder / motion / f"{photo_name}_{repeat:02d}.mp4", clip)
                count += 1
    return count


def write_calibration(folder: Path, count: int = CALIB_CLIPS, seed: int = CALIB_SEED) -> Path:
    """``count`` clips of the training photos, every motion in turn, as MP4s in ``folder``."""
    script = _script()
    photos = script.load_photos()
    sampler = script.ClipSampler([photos[n] for n in photos if n not in script.TEST_PHOTOS])
    rng = np.random.default_rng([seed, 3])
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        script.write_mp4(folder / f"{index:03d}.mp4", sampler.clip(rng, index % len(script.MOTIONS)))
    return folder


def measure(workdir: Path, per_class: int, method: str = "percentile") -> dict:
    """Export, rewrite, calibrate, quantize and validate ``swin3d_demo`` in ``workdir``; the report per model."""
    from swin_trt.export import export_model
    from swin_trt.precision.calibrate_stage import calibrate_file
    from swin_trt.precision.quantize_stage import QuantizeRequest, quantize_file
    from swin_trt.surgery.rewrite_stage import rewrite_file
    from swin_trt.validate.run import ValidateOptions, run_validation

    paths = {name: workdir / f"video.{name}.onnx" for name in ("fp32", "rewritten", "fp16", "int8")}
    timings = {}
    start = time.perf_counter()
    export_model("swin3d_demo", paths["fp32"], dynamic_batch=8)
    report = rewrite_file(paths["fp32"], paths["rewritten"], strict=True, fuse_attention=True)
    timings["export_rewrite_s"] = time.perf_counter() - start
    start = time.perf_counter()
    heldout = write_heldout(workdir / "heldout", per_class)
    calib_dir = write_calibration(workdir / "calib")
    timings["render_s"] = time.perf_counter() - start
    start = time.perf_counter()
    cache = calibrate_file(paths["rewritten"], calib_dir, workdir / "calib.json", num=CALIB_CLIPS, method=method,
                           progress=False, note=None)
    timings["calibrate_s"] = time.perf_counter() - start
    quantize_file(paths["rewritten"], paths["fp16"], QuantizeRequest("fp16"), log=lambda line: None)
    quantize_file(paths["rewritten"], paths["int8"], QuantizeRequest("int8", calib=workdir / "calib.json"),
                  log=lambda line: None)
    start = time.perf_counter()
    document = run_validation(ValidateOptions(str(paths["fp32"]), [str(paths[n]) for n in ("rewritten", "fp16", "int8")],
                                              data=workdir / "heldout", progress=False, layer_images=0))
    timings["validate_s"] = time.perf_counter() - start
    reference = document["reference_metrics"]
    rows = {"fp32": {"acc1": reference["acc1"], "acc5": reference["acc5"]}}
    for name, entry in zip(("rewritten", "fp16", "int8"), document["candidates"]):
        rows[name] = {key: entry.get(key) for key in KEYS}
    return {"models": rows, "clips": document["dataset"]["clips"], "heldout_clips_written": heldout,
            "plugin_nodes": report.counts(),
            "calibration": {"method": method, "clips": cache["data"].get("images"), "seed": CALIB_SEED},
            "timings": {k: round(v, 1) for k, v in timings.items()}}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the results here (JSON)")
    parser.add_argument("--per-class", type=int, default=8,
                        help="held-out repeats per (photo, motion): 3 photos x 8 motions each (default: %(default)s)")
    parser.add_argument("--method", default="percentile", help="calibration method (default: %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as workdir:
        result = measure(Path(workdir), args.per_class, args.method)
    import onnxruntime
    import torch

    result["environment"] = {"python": platform.python_version(), "torch": torch.__version__,
                             "onnxruntime": onnxruntime.__version__, "machine": platform.machine()}
    for name, row in result["models"].items():
        agreement = "" if row.get("top1_agreement") is None else \
            f", top-1 agreement {row['top1_agreement']:.4f}, cosine {row['cosine']:.6f}"
        log(f"{name:>9}: top-1 {row['acc1']:.4f}{agreement}")
    if args.out:
        from swin_trt.io import write_json

        write_json(args.out, result)
        log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
