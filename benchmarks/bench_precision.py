"""INT8 (and FP16) accuracy and ONNX Runtime CPU latency of swin-trt's explicit-precision graphs, against
ONNX Runtime's own ``quantize_static`` on the same model and data.

Model: the bundled ``swin_demo`` (trained on real photos; 112 px), exported with a dynamic batch and
rewritten with the plugin ops. Without it the benchmark falls back to the random-weight ``swin_pico_test``
and says so loudly: random weights make INT8 accuracy numbers meaningless.

Data (real photos from scikit-image, nothing synthetic):

* calibration: crops of the demo's twelve class photos from the cells its training used (never the held-out
  validation cells), written to a folder and calibrated through the same code as ``swin-trt calibrate``;
* evaluation: the bundled labelled validation images (``swin_trt/assets/demo_images``): top-1 agreement and
  logits cosine against FP32, and the accuracy drop.

Rows:

* ours, per method (entropy, percentile 99.99, max, mse): QDQ on MatMul/Gemm/Conv inputs and around the
  partition/reverse plugins, patch-embedding Conv and classifier kept float (the defaults);
* ours fp16 (float32 islands) for reference;
* ``quantize_static`` MinMax and Entropy: QDQ, per-channel weights (MatMul axis 1), int8 symmetric
  activations (what TensorRT accepts), the same scope (MatMul/Gemm/Conv, the attention's internals, the
  first Conv and the classifier excluded), on the plugin-lowered graph (its calibration must run the graph
  in plain ONNX Runtime), fed the same preprocessed calibration images.

Accuracy is measured with the Q/DQ fusions of ONNX Runtime off ("exact": each DQ runs, MatMuls in float),
i.e. the arithmetic TensorRT's INT8 kernels perform; the fast CPU path's accuracy is reported next to it.
Latency: FP32 and INT8 in the same process, interleaved run by run, median of ``--runs``, batch 1 and 8.
INT8 is timed both as ``create_session`` runs it today and with the CPU fixes of
``swin_trt.backends.onnxruntime.create_session`` (see that module).

    python benchmarks/bench_precision.py --out benchmarks/results/precision.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
from PIL import Image

TARGET_SPEEDUP = 1.3
DEFAULT_METHOD = "percentile"  # swin-trt calibrate's default
METHODS = ("entropy", "percentile", "max", "mse")
STATIC_METHODS = ("MinMax", "Entropy")
DEMO_PHOTOS = ("astronaut.png", "brick.png", "chelsea.png", "coffee.png", "coins.png", "grass.png",
               "gravel.png", "hubble_deep_field.jpg", "ihc.png", "motorcycle_left.png", "retina.jpg", "rocket.jpg")
GRID, VAL_CELLS = 3, ((0, 1), (1, 2), (2, 0))  # scripts/train_demo.py: the held-out cells


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def calibration_images(folder: Path) -> int:
    """Crops of the class photos from the cells training used (never a validation cell), at the training
    scales (side 0.15 to 0.3 of the photo's shorter side), centred and at two corners of each cell."""
    import skimage

    root = Path(skimage.__file__).parent / "data"
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for file in DEMO_PHOTOS:
        with Image.open(root / file) as image:
            photo = image.convert("RGB")
        xs = [round(i * photo.width / GRID) for i in range(GRID + 1)]
        ys = [round(i * photo.height / GRID) for i in range(GRID + 1)]
        short = min(photo.size)
        for row in range(GRID):
            for col in range(GRID):
                if (row, col) in VAL_CELLS:
                    continue
                x0, y0, x1, y1 = xs[col], ys[row], xs[col + 1], ys[row + 1]
                for scale in (0.15, 0.22, 0.3):
                    side = min(int(scale * short), x1 - x0, y1 - y0)
                    for k, (fx, fy) in enumerate(((0.5, 0.5), (0.0, 0.0), (1.0, 1.0))):
                        left = x0 + int(fx * (x1 - x0 - side))
                        top = y0 + int(fy * (y1 - y0 - side))
                        photo.crop((left, top, left + side, top + side)).save(
                            folder / f"{Path(file).stem}_{row}{col}_{scale}_{k}.png")
                        count += 1
    return count


def prepare_model(work: Path) -> tuple[Path, str, bool]:
    from swin_trt.export import export_model
    from swin_trt.models.registry import arch_names
    from swin_trt.surgery.rewrite_stage import rewrite_file

    arch, fallback = ("swin_demo", False) if "swin_demo" in arch_names() else ("swin_pico_test", True)
    if fallback:
        log("#" * 100 + "\n# WARNING: swin_demo is not bundled: falling back to swin_pico_test with RANDOM weights.\n"
            "# INT8 accuracy numbers below are NOT meaningful (no trained activations, no real classes).\n"
            + "#" * 100)
    export_model(arch, work / "model.onnx", dynamic_batch=8, check=False)
    rewrite_file(work / "model.onnx", work / "model.rw.onnx", fuse_attention=True)  # as measured
    return work / "model.rw.onnx", arch, fallback


def evaluation_set(model_path: Path, fallback_folder: Path):
    from swin_trt.data.images import list_images
    from swin_trt.io import read_sidecar
    from swin_trt.models.demo import demo_images_dir
    from swin_trt.data.model_input import resolve_input

    preprocessor = resolve_input(model_path).preprocessor
    class_names = list(read_sidecar(model_path)["config"].get("class_names", []))
    folder = demo_images_dir() if demo_images_dir().is_dir() else fallback_folder
    items = list_images(folder)
    pixels = preprocessor.normalize(np.stack([preprocessor.to_uint8(Image.open(i.path).convert("RGB"))
                                              for i in items]))
    labels = np.array([class_names.index(i.label) if i.label in class_names else -1 for i in items])
    return pixels, (labels if (labels >= 0).any() else None), str(folder)


def heldout_600(preprocessor):
    """600 validation crops (50 per class) drawn with scripts/train_demo.py's validation sampler and seed
    (cells never used for training): six times the bundled images, for a finer accuracy drop."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "scripts" / "train_demo.py"
    spec = importlib.util.spec_from_file_location("train_demo", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.default_rng([0, 1])  # train_demo.py: val_rng for --seed 0
    crops, labels = [], []
    for label, sampler in enumerate(module.CropSampler(photo) for photo in module.load_photos()):
        for index in range(module.VAL_PER_CLASS):
            crops.append(preprocessor.to_uint8(sampler.val_crop(rng, index)))
            labels.append(label)
    return preprocessor.normalize(np.stack(crops)), np.array(labels)


def accuracy_row(reference, logits, labels, fp32_acc) -> dict:
    from swin_trt.precision.evaluate import agreement

    result = agreement(reference, logits, labels)
    row = {"top1_agreement": result["top1_agreement"], "cosine": result["cosine"], "cosine_min": result["cosine_min"],
           "snr_db": result["snr_db"]}
    if labels is not None:
        row["acc1"] = result["acc1"]
        row["acc_drop"] = fp32_acc - result["acc1"]
    return row


def latency(sessions: dict, shape: tuple, runs: int) -> dict:
    """Median ms per run of each session, runs interleaved so that machine load hits all alike."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    feeds = {name: {s.get_inputs()[0].name: x} for name, s in sessions.items()}
    for name, session in sessions.items():
        for _ in range(3):
            session.run(None, feeds[name])
    times = {name: [] for name in sessions}
    for _ in range(runs):
        for name, session in sessions.items():
            start = time.perf_counter()
            session.run(None, feeds[name])
            times[name].append((time.perf_counter() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def quantize_static_model(lowered: onnx.ModelProto, calib_pixels: np.ndarray, method: str, exclude: list[str],
                          work: Path) -> onnx.ModelProto:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"input": calib_pixels[i:i + 8]} for i in range(0, len(calib_pixels), 8)])

        def get_next(self):
            return next(self.batches, None)

    source, target = work / f"lowered_{method}.onnx", work / f"static_{method}.onnx"
    onnx.save(lowered, source)
    quantize_static(str(source), str(target), Reader(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["MatMul", "Gemm", "Conv"], per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude,
                    calibrate_method=getattr(CalibrationMethod, method),
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                   "QDQOpTypePerChannelSupportToAxis": {"MatMul": 1}})
    return onnx.load(target)


def latency_at_scale(arch: str, calib_dir: Path, work: Path, runs: int, threads: int) -> dict:
    """FP32 vs INT8 at batch 1 on a full-size Swin (random weights: only the time is meaningful here)."""
    from swin_trt.backends.onnxruntime import create_session
    from swin_trt.export import export_model
    from swin_trt.precision.calibrate_stage import calibrate_file
    from swin_trt.precision.quantize_stage import QuantizeRequest, quantize_file
    from swin_trt.surgery.rewrite_stage import rewrite_file

    folder = work / arch
    folder.mkdir()
    export_model(arch, folder / "m.onnx", check=False)
    rewrite_file(folder / "m.onnx", folder / "m.rw.onnx", fuse_attention=True)  # as measured
    calibrate_file(folder / "m.rw.onnx", calib_dir, folder / "calib.json", num=16, min_images=1, progress=False)
    quantize_file(folder / "m.rw.onnx", folder / "m.int8.onnx", QuantizeRequest("int8", folder / "calib.json"),
                  log=lambda line: None)
    fp32, int8 = onnx.load(folder / "m.rw.onnx"), onnx.load(folder / "m.int8.onnx")
    size = [d.dim_value for d in fp32.graph.input[0].type.tensor_type.shape.dim]
    timing = latency({"fp32": create_session(fp32, threads=threads),
                      "ours_int8_cpu_session": create_session(int8, threads=threads, int8="fast")},
                     tuple(size), runs)
    result = {name: round(ms, 2) for name, ms in timing.items()}
    result.update(arch=arch, batch=size[0], weights="random (latency only)",
                  speedup_ours_int8=round(timing["fp32"] / timing["ours_int8_cpu_session"], 3))
    return result


def saturating_session(model: onnx.ModelProto, threads: int | None = None):
    """The fast CPU path without the uint8-weight fix: u8s8 kernels, which saturate on AVX2 (for comparison)."""
    from swin_trt.ops.lowering import lower_plugins
    from swin_trt.backends.ort_int8 import DISABLED, float_data_movement

    return plain_session(lower_plugins(float_data_movement(model)), "fast", threads, disabled=DISABLED["fast"])


def plain_session(model: onnx.ModelProto, mode: str, threads: int | None = None, disabled=None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    if mode == "exact":
        disabled = ["QDQSelectorActionTransformer", "QDQS8ToU8Transformer", "MatMulAddFusion"]
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"],
                                disabled_optimizers=disabled)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/precision.json"))
    parser.add_argument("--runs", type=int, default=30, help="timed runs per model and batch (median)")
    parser.add_argument("--calib-num", type=int, default=512)
    parser.add_argument("--latency-arch", default="swin_tiny_patch4_window7_224",
                        help="also time FP32 vs INT8 on this full-size arch ('none' to skip)")
    parser.add_argument("--threads", type=int, default=1,
                        help="ONNX Runtime intra-op threads for the timed sessions (1: steadiest on a shared machine)")
    args = parser.parse_args(argv)

    from swin_trt.backends.onnxruntime import create_session
    from swin_trt.ops.lowering import lower_plugins
    from swin_trt.precision.calibration import collect
    from swin_trt.precision.cache import make_cache
    from swin_trt.precision.evaluate import run_logits
    from swin_trt.precision.fp16 import to_fp16
    from swin_trt.precision.int8 import Int8Options, quantize_int8
    from swin_trt.precision.methods import compute_amax
    from swin_trt.precision.mixed import Budget, Built, mixed_precision
    from swin_trt.data.model_input import resolve_input
    from swin_trt.precision.sources import CalibrationSource

    work = Path(tempfile.mkdtemp(prefix="bench_precision_"))
    model_path, arch, fallback = prepare_model(work)
    model = onnx.load(model_path)
    preprocessor = resolve_input(model_path).preprocessor
    calib_dir = work / "calib"
    log(f"calibration images: {calibration_images(calib_dir)} crops in {calib_dir}")
    pixels, labels, eval_source = evaluation_set(model_path, calib_dir)
    log(f"evaluation: {len(pixels)} images from {eval_source} ({'labelled' if labels is not None else 'unlabelled'})")

    reference = run_logits(create_session(model), pixels)
    fp32_acc = float(np.mean(reference.argmax(1) == labels)) if labels is not None else None
    extra = None
    if not fallback:
        extra_pixels, extra_labels = heldout_600(preprocessor)
        extra_reference = run_logits(create_session(model), extra_pixels)
        extra = (extra_pixels, extra_labels, extra_reference, float(np.mean(extra_reference.argmax(1) == extra_labels)))
        log(f"held-out 600: FP32 acc1 {extra[3]:.4f}")

    def on_600(session) -> dict:
        if extra is None:
            return {}
        return {"heldout600": accuracy_row(extra[2], run_logits(session, extra[0]), extra[1], extra[3])}
    from swin_trt.io import read_sidecar

    results = {"model": arch, "weights": read_sidecar(model_path).get("weights"),
               "random_weights_fallback": fallback, "eval_images": len(pixels),
               "eval_source": str(Path(eval_source).relative_to(Path.cwd())) if Path(eval_source).is_relative_to(Path.cwd())
               else eval_source, "fp32_acc1": fp32_acc,
               "fp32_acc1_heldout600": extra[3] if extra else None, "rows": {}, "latency_ms": {}}

    # one pass of our calibration, four methods from the same histograms
    source = CalibrationSource(calib_dir, args.calib_num)
    start = time.perf_counter()
    histograms, seen = collect(model, source.crops(preprocessor), preprocessor, batch=8, progress=False)
    results["calibration"] = {"images": seen, "collect_s": round(time.perf_counter() - start, 2),
                              "tensors": len(histograms)}
    graphs, scales_by_method = {}, {}
    for method in METHODS:
        amax = {name: compute_amax(hist, method) for name, hist in histograms.items()}
        cache = make_cache(amax, method=method, percentile=99.99, model_sha256="", data={})
        scales = {name: entry["scale"] for name, entry in cache["tensors"].items()}
        scales_by_method[method] = scales
        graph, report = quantize_int8(model, scales, Int8Options())
        graphs[f"ours_{method}"] = graph
        exact = run_logits(create_session(graph, int8="exact"), pixels)
        fast = run_logits(create_session(graph, int8="fast"), pixels)
        row = accuracy_row(reference, exact, labels, fp32_acc)
        row.update(on_600(create_session(graph, int8="exact")))
        row["fast_path"] = accuracy_row(reference, fast, labels, fp32_acc)
        row["fast_path_u8s8_saturating"] = accuracy_row(
            reference, run_logits(saturating_session(graph), pixels), labels, fp32_acc)
        row["create_session"] = accuracy_row(reference, run_logits(create_session(graph), pixels), labels, fp32_acc)
        row["qdq_pairs"] = report.activation_pairs
        results["rows"][f"ours_{method}"] = row
        log(f"ours {method:10s} agreement {row['top1_agreement']:.4f} cosine {row['cosine']:.6f}"
            + (f" acc drop {row['acc_drop']:+.4f}" if labels is not None else ""))
    # the reverse plugin's Q/DQ quantizes the attention branch before its residual add: what does it cost?
    graph, _ = quantize_int8(model, scales_by_method["entropy"], Int8Options(exclude=("SwinWindowReverse_*",)))
    results["rows"]["ours_entropy_float_reverse"] = accuracy_row(
        reference, run_logits(create_session(graph, int8="exact"), pixels), labels, fp32_acc)
    fp16, _ = to_fp16(model)
    results["rows"]["ours_fp16"] = accuracy_row(reference, run_logits(create_session(fp16), pixels), labels, fp32_acc)
    results["rows"]["ours_fp16"].update(on_600(create_session(fp16)))
    # best: INT8 + FP16 under the default budget, sensitivity measured on calibration crops (not the eval set)
    held_out = preprocessor.normalize(np.stack(list(CalibrationSource(calib_dir, 64).crops(preprocessor))))

    def build(base, options):
        quantized, report = quantize_int8(base, scales_by_method["entropy"], options)
        return Built(to_fp16(quantized, int8_nodes=report.quantized)[0])

    start = time.perf_counter()
    built, mixed = mixed_precision(model, scales_by_method["entropy"], held_out, options=Int8Options(),
                                   budget=Budget(), build=build, log=log)
    best = built.model
    row = accuracy_row(reference, run_logits(create_session(best, int8="exact"), pixels), labels, fp32_acc)
    row.update(on_600(create_session(best, int8="exact")))
    row.update(fallback_layers=mixed.fallback, budget_met_on_held_out=mixed.met,
               all_int8_on_held_out=mixed.all_int8, seconds=round(time.perf_counter() - start, 1))
    results["rows"]["ours_best_entropy"] = row

    # ONNX Runtime's quantize_static, same scope, same calibration images
    lowered = lower_plugins(model)
    calib_pixels = preprocessor.normalize(np.stack(list(CalibrationSource(calib_dir, args.calib_num).crops(preprocessor))))
    compute = [n.name for n in lowered.graph.node if n.op_type in ("MatMul", "Gemm", "Conv")]
    exclude = [n for n in compute if n.startswith("SwinWindowAttention")] + [compute[0], compute[-1]]
    for method in STATIC_METHODS:
        start = time.perf_counter()
        graph = quantize_static_model(lowered, calib_pixels, method, exclude, work)
        seconds = time.perf_counter() - start
        graphs[f"quantize_static_{method}"] = graph
        row = accuracy_row(reference, run_logits(plain_session(graph, "exact"), pixels), labels, fp32_acc)
        row.update(on_600(plain_session(graph, "exact")))
        row["fast_path"] = accuracy_row(reference, run_logits(plain_session(graph, "fast"), pixels), labels, fp32_acc)
        row["quantize_s"] = round(seconds, 1)
        results["rows"][f"quantize_static_{method}"] = row
        log(f"quantize_static {method:7s} agreement {row['top1_agreement']:.4f} cosine {row['cosine']:.6f}"
            + (f" acc drop {row['acc_drop']:+.4f}" if labels is not None else ""))

    # latency: same process, interleaved
    h, w = preprocessor.crop
    ours = graphs[f"ours_{DEFAULT_METHOD}"]
    results["latency_ms"]["int8_graph"] = f"ours_{DEFAULT_METHOD}"
    for batch in (1, 8):
        t = args.threads
        sessions = {"fp32": create_session(model, threads=t),
                    "ours_int8_cpu_session": create_session(ours, threads=t, int8="fast"),
                    "ours_int8_create_session": create_session(ours, threads=t),
                    "ours_int8_u8s8_saturating": saturating_session(ours, t),
                    "quantize_static_MinMax": plain_session(graphs["quantize_static_MinMax"], "fast", threads=t)}
        timing = latency(sessions, (batch, 3, h, w), args.runs)
        results["latency_ms"][f"batch{batch}"] = {name: round(ms, 3) for name, ms in timing.items()}
        results["latency_ms"][f"batch{batch}"]["speedup_ours_int8"] = round(
            timing["fp32"] / timing["ours_int8_cpu_session"], 3)
        results["latency_ms"][f"batch{batch}"]["speedup_quantize_static"] = round(
            timing["fp32"] / timing["quantize_static_MinMax"], 3)
        log(f"batch {batch}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in timing.items()))

    if args.latency_arch != "none":
        large = latency_at_scale(args.latency_arch, calib_dir, work, max(5, args.runs // 3), args.threads)
        results["latency_ms"]["full_size"] = large
        log(f"{args.latency_arch} batch 1: FP32 {large['fp32']} ms, INT8 {large['ours_int8_cpu_session']} ms "
            f"({large['speedup_ours_int8']}x)")

    rows = results["rows"]
    if labels is not None:
        targets = {}
        for name, key in (("bundled96", None), ("heldout600", "heldout600")):
            def drop(row):
                return (row.get(key) or {}).get("acc_drop") if key else row.get("acc_drop")
            ours = {m: drop(rows[f"ours_{m}"]) for m in METHODS}
            static = {m: drop(rows[f"quantize_static_{m}"]) for m in STATIC_METHODS}
            if None in ours.values() or None in static.values():
                continue
            static_best = min(static.values())
            targets[name] = {"ours": ours, "quantize_static": static,
                             "ours_default_at_most_half_of_static_best":
                                 ours[DEFAULT_METHOD] <= 0.5 * static_best if static_best > 0
                                 else ours[DEFAULT_METHOD] <= 0}
        static_error = min(1 - rows[f"quantize_static_{m}"]["cosine"] for m in STATIC_METHODS)
        targets["logit_error_ratio_ours_default_vs_static_best"] = round(
            (1 - rows[f"ours_{DEFAULT_METHOD}"]["cosine"]) / max(static_error, 1e-12), 3)
        targets.update(int8_speedup_batch1=results["latency_ms"]["batch1"]["speedup_ours_int8"],
                       int8_speedup_batch8=results["latency_ms"]["batch8"]["speedup_ours_int8"],
                       speedup_met=results["latency_ms"]["batch8"]["speedup_ours_int8"] >= TARGET_SPEEDUP)
        if "full_size" in results["latency_ms"]:
            targets["int8_speedup_full_size_batch1"] = results["latency_ms"]["full_size"]["speedup_ours_int8"]
        results["targets"] = targets
    results["environment"] = {"threads": args.threads, "runs": args.runs,
                              "python": platform.python_version(), "machine": platform.machine(),
                              "cpu_count": os.cpu_count(), "onnxruntime": __import__("onnxruntime").__version__,
                              "load_average": os.getloadavg()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    return results


def table(results: dict) -> str:
    lines = [f"model {results['model']}" + (" (RANDOM WEIGHTS: accuracy meaningless)" if results["random_weights_fallback"] else "")
             + f", {results['eval_images']} eval images, FP32 acc1 {results['fp32_acc1']}",
             f"{'row':28s} {'agree':>7s} {'cosine':>9s} {'acc drop':>9s} {'fast-path agree':>16s}"]
    for name, row in results["rows"].items():
        drop = f"{row['acc_drop']:+.4f}" if "acc_drop" in row else "-"
        fast = f"{row['fast_path']['top1_agreement']:.4f}" if "fast_path" in row else "-"
        lines.append(f"{name:28s} {row['top1_agreement']:7.4f} {row['cosine']:9.6f} {drop:>9s} {fast:>16s}")
    for batch, timing in results["latency_ms"].items():
        if isinstance(timing, dict):
            lines.append(f"{batch}: " + ", ".join(f"{k}={v}" for k, v in timing.items()))
    return "\n".join(lines)


if __name__ == "__main__":
    main()
