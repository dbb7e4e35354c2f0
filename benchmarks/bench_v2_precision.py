"""Swin V2 through the precision stages (calibrate, quantize fp16/int8/best, validate), measured against a Swin V1
of the same geometry: how much INT8 and FP16 cost each, which layers hurt INT8 most, and how large the
activations get with FP16's range (max 65504) in mind.

######################################################################################################
# RANDOM WEIGHTS. No pretrained checkpoint can be downloaded here: both models get random weights from
# ``swin_trt.models.peers.randomize`` (same seed): weights ~ N(0, 1/fan_in), norm gains ~ N(1, 0.2), biases
# ~ N(0, 0.2), V2 logit scales up to the clamp (exp -> 100), so every path carries signal. Which layers hurt
# is therefore about each architecture's ARITHMETIC (cosine attention, post-norm, ...), not a trained model's
# accuracy; top-1 agreement is between random 1000-way logits. Activation sizes of trained models differ
# (trained V2 post-norm gains and V1 residual streams are not N(1, 0.2)).
######################################################################################################

Models: V2 = ``--arch`` (default ``swinv2_tiny_window8_256``: 256 px, window 8, embed 96, depths 2-2-6-2);
V1 = a ``SwinConfig`` of the same geometry (same size, patch, window, embed, depths, heads, MLP ratio, classes),
registered in-process under ``swinv1_same_geometry_as_<arch>`` with V2's preprocessing (crop_pct 0.9), since no
registered V1 arch has window 8 at 256 px. Each model's random weights are saved as a safetensors checkpoint and
go through ``swin-trt export --checkpoint``.

Pipeline per model, the project's own CLI commands (run in-process through click, so that ``quantize
--precision best``'s per-layer sensitivity can be captured from ``mixed_precision``; the exact command lines are
in the JSON): export (dynamic batch 8) -> rewrite (plugin window ops) -> calibrate (percentile 99.99, the
default) -> quantize int8 / fp16 / best -> validate (small: a functional check plus its per-tensor error view).

Data (real photos from scikit-image's ``skimage/data``, nothing synthetic; three disjoint sets of photos):

* calibration: square crops of 9 photos (``CALIB_PHOTOS``), ``--calib-num`` of them;
* probe: ``--probe-num`` crops of 4 other photos (``PROBE_PHOTOS``): ``best``'s held-out images, on which it
  measures each layer's sensitivity (each layer alone in INT8, everything else FP32: 1 - logits cosine);
* evaluation: ``--eval-num`` crops of 6 further photos (``EVAL_PHOTOS``): never used to calibrate or tune.

Measured, per model, on the evaluation crops against the FP32 export (ONNX Runtime CPU; INT8 graphs run with
the Q/DQ fusions off, i.e. TensorRT's INT8 arithmetic):

* int8, fp16, best: logits SNR ``10 log10(sum ref^2 / sum (ref - q)^2)``, mean and min cosine, top-1 agreement,
  whether any output is non-finite; best's fallback count (its budget: the defaults, on the probe crops);
* which layers hurt, two ways: (1) ``best``'s sensitivity ranking (each layer alone in INT8, on the probe crops):
  the 5 worst layers with stage, block and kind (qkv, q@kT, attn@v, proj, fc1, fc2, merge reduction, window
  partition/reverse) and the sum per kind; (2) INT8 with one kind kept float (``quantize --exclude``, all
  other layers INT8), on the evaluation crops: the SNR each kind costs in the full INT8 graph;
* ``swin-trt validate`` on a few evaluation crops: its own SNR and the tensors that lose the most signal;
* FP16 range: PyTorch FP32 forward hooks on the evaluation crops: the largest |activation| per stage on the
  residual stream, the branch outputs (attention / MLP; V2 feeds them to its post-norm), the post-norm outputs
  (V2) or pre-norm outputs (V1), every Linear's output and patch merging, as a fraction of FP16's max 65504.

    python benchmarks/bench_v2_precision.py                       # ~11 minutes on 2 cores
    python benchmarks/bench_v2_precision.py --arch swinv2_pico_test --out /tmp/v2p.json   # smoke test, ~1 min
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

FP16_MAX = 65504.0
SEED = 0
CALIB_PHOTOS = ("astronaut.png", "brick.png", "camera.png", "coins.png", "grass.png", "gravel.png",
                "hubble_deep_field.jpg", "motorcycle_left.png", "motorcycle_right.png")
PROBE_PHOTOS = ("retina.jpg", "clock_motion.png", "cell.png", "text.png")
EVAL_PHOTOS = ("chelsea.png", "coffee.png", "rocket.jpg", "ihc.png", "moon.png", "page.png")
# (side as a fraction of the photo's shorter side, x position, y position) of each square crop, in the order used
CROPS = ((1.0, 0.5, 0.5), (0.6, 0.0, 0.0), (0.6, 1.0, 1.0), (0.6, 1.0, 0.0), (0.6, 0.0, 1.0), (0.8, 0.5, 0.5),
         (0.45, 0.5, 0.5), (0.45, 0.0, 0.5), (0.45, 1.0, 0.5), (0.45, 0.5, 0.0))
RANDOM_WEIGHTS_NOTE = ("RANDOM WEIGHTS (peers.randomize, same seed for V1 and V2): which layers hurt is about the "
                       "architecture's arithmetic, not a trained model's accuracy; top-1 agreement is between "
                       "random logits")
START = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - START:6.0f} s] {message}", file=sys.stderr, flush=True)


def clean(value):
    """JSON-safe: numpy scalars to Python, non-finite floats to strings."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


# ----------------------------------------------------------------------------------------------------- data
def write_crops(folder: Path, photos: tuple[str, ...], num: int) -> list[str]:
    """``num`` square crops, round-robin over ``photos`` (layout by layout), written as PNG files."""
    import skimage
    from PIL import Image

    root = Path(skimage.__file__).parent / "data"
    folder.mkdir(parents=True, exist_ok=True)
    images = {}
    for file in photos:
        with Image.open(root / file) as image:
            images[file] = image.convert("RGB")
    written = []
    for layout, (scale, fx, fy) in enumerate(CROPS):
        for file, photo in images.items():
            if len(written) == num:
                return written
            side = int(scale * min(photo.size))
            left, top = int(fx * (photo.width - side)), int(fy * (photo.height - side))
            name = f"{len(written):03d}_{Path(file).stem}_{layout}.png"
            photo.crop((left, top, left + side, top + side)).save(folder / name)
            written.append(name)
    if len(written) < num:
        raise SystemExit(f"asked for {num} crops of {len(photos)} photos; at most {len(CROPS) * len(photos)}")
    return written


def load_pixels(folder: Path, model_path: Path) -> np.ndarray:
    """Every image in ``folder`` (name order), preprocessed as ``model_path``'s sidecar says."""
    from PIL import Image

    from swin_trt.data.model_input import resolve_input

    preprocessor = resolve_input(model_path).preprocessor
    files = sorted(folder.glob("*.png"))
    return preprocessor.normalize(np.stack([preprocessor.to_uint8(Image.open(f).convert("RGB")) for f in files]))


# ------------------------------------------------------------------------------------------------- commands
class Commands:
    """Runs ``swin-trt`` commands in this process (click), recording each line, its time and any failure."""

    def __init__(self, work: Path):
        self.work = work
        self.records: list[dict] = []

    def show(self, args) -> str:
        return "swin-trt " + " ".join(shlex.quote(str(a).replace(str(self.work), "$WORK")) for a in args)

    def run(self, model: str, *args) -> dict:
        from click.testing import CliRunner

        from swin_trt.cli import main

        line = self.show(args)
        log(f"{model}: {line}")
        start = time.perf_counter()
        result = CliRunner().invoke(main, [str(a) for a in args])
        record = {"model": model, "command": line, "seconds": round(time.perf_counter() - start, 1),
                  "exit_code": result.exit_code, "ok": result.exit_code == 0}
        if result.exit_code != 0:
            error = result.output.strip().splitlines()[-12:]
            if result.exception is not None and not isinstance(result.exception, SystemExit):
                error += traceback.format_exception(*result.exc_info)[-6:]
            record["error"] = "\n".join(error).replace(str(self.work), "$WORK")
            log(f"{model}: FAILED (exit {result.exit_code}):\n{record['error']}")
        record["output_tail"] = [x.replace(str(self.work), "$WORK") for x in result.output.strip().splitlines()[-6:]]
        self.records.append(record)
        return record


def v1_twin(spec):
    """Register (in this process) a V1 arch with ``spec``'s geometry and preprocessing; returns its name."""
    from swin_trt.models import SwinConfig
    from swin_trt.models.registry import ArchSpec, arch_names, register

    c = spec.config
    name = f"swinv1_same_geometry_as_{spec.name}"
    if name not in arch_names():
        config = SwinConfig(img_size=c.img_size, patch_size=c.patch_size, in_chans=c.in_chans,
                            num_classes=c.num_classes, embed_dim=c.embed_dim, depths=c.depths, num_heads=c.num_heads,
                            window_size=c.window_size, mlp_ratio=c.mlp_ratio, qkv_bias=c.qkv_bias)
        register(ArchSpec(name, config, f"Swin V1 with {spec.name}'s geometry (bench_v2_precision.py only)",
                          spec.preprocessing))
    return name


def random_checkpoint(arch: str, seed: int, path: Path) -> int:
    """``arch`` with ``peers.randomize`` weights, saved as safetensors; returns the parameter count."""
    import torch
    from safetensors.torch import save_file

    from swin_trt.models import get_arch
    from swin_trt.models.peers import randomize

    spec = get_arch(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = randomize(spec.build(spec.config), seed)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------- metrics
def logits_of(path: Path, pixels: np.ndarray, threads: int) -> np.ndarray:
    import onnx

    from swin_trt.backends.onnxruntime import create_session
    from swin_trt.precision.evaluate import run_logits

    return run_logits(create_session(onnx.load(str(path)), threads=threads, int8="exact"), pixels)


def compare(reference: np.ndarray, candidate: np.ndarray) -> dict:
    from swin_trt.precision.evaluate import agreement

    finite = bool(np.isfinite(candidate).all())
    result = agreement(reference, np.nan_to_num(candidate, nan=0.0, posinf=FP16_MAX, neginf=-FP16_MAX))
    return {"snr_db": result["snr_db"], "cosine": result["cosine"], "cosine_min": result["cosine_min"],
            "top1_agreement": result["top1_agreement"], "top5_agreement": result["top5_agreement"],
            "max_abs_err": result["max_abs_err"], "outputs_finite": finite, "images": result["images"]}


# ------------------------------------------------------------------------------------------ layer naming
KIND_GROUPS = {"attention input (qkv + window partition)": {"qkv", "window partition (attention input)"},
               "attention core (q@kT + attn@v)": {"q@kT", "attn@v"}}
LOCATION = re.compile(r"layers\.(\d+)/(?:blocks/blocks\.(\d+)|downsample)")


def describe_layers(model_path: Path, names: list[str]) -> dict[str, dict]:
    """``{node name: {stage, block, kind}}`` for quantizable nodes of the rewritten FP32 graph."""
    import onnx

    model = onnx.load(str(model_path), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    producer = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for i in node.input:
            consumers.setdefault(i, []).append(node)
    by_name = {n.name: n for n in model.graph.node}

    def from_softmax(tensor: str, depth: int = 4) -> bool:
        node = producer.get(tensor)
        if node is None or depth == 0:
            return False
        if node.op_type == "Softmax":
            return True
        if node.op_type in ("MatMul", "Gemm", "Conv"):
            return False
        return any(from_softmax(i, depth - 1) for i in node.input)

    def located(node) -> tuple[int | None, int | None]:
        seen, frontier = set(), [node]
        for _ in range(5):  # plugin nodes have generated names: look at their neighbours'
            nxt = []
            for n in frontier:
                match = LOCATION.search(n.name)
                if match:
                    return int(match.group(1)), (int(match.group(2)) if match.group(2) else None)
                seen.add(id(n))
                near = [c for o in n.output for c in consumers.get(o, [])]
                near += [producer[i] for i in n.input if i in producer]
                nxt += [m for m in near if id(m) not in seen]
            frontier = nxt
        return None, None

    out = {}
    for name in names:
        node = by_name.get(name)
        if node is None:
            out[name] = {"stage": None, "block": None, "kind": "?"}
            continue
        stage, block = located(node)
        if node.op_type == "Conv":
            kind, stage = "patch embedding conv", 0
        elif node.op_type == "Gemm":
            kind = "classifier"
        elif node.op_type == "SwinWindowPartition":
            kind = "window partition (attention input)"
        elif node.op_type == "SwinWindowReverse":
            kind = "window reverse (attention output)"
        elif len(node.input) > 1 and node.input[1] in weights:
            kind = ("merge reduction" if "/downsample/" in name else "fc1" if "/mlp/fc1/" in name
                    else "fc2" if "/mlp/fc2/" in name else "proj" if "/attn/proj/" in name else "qkv")
        else:
            kind = "attn@v" if any(from_softmax(i) for i in node.input) else "q@kT"
        out[name] = {"stage": stage, "block": block, "kind": kind}
    return out


# --------------------------------------------------------------------------------------- activations (FP16)
def activation_maxima(arch: str, checkpoint: Path, pixels: np.ndarray, batch: int = 8) -> dict:
    """Largest |x| per stage (FP32 PyTorch, forward hooks) at the places FP16 range matters."""
    import torch
    from torch import nn

    from swin_trt.models import create_model

    model, spec, _ = create_model(arch, checkpoint)
    v2 = spec.family == "swin_v2"
    found: dict[tuple, float] = {}
    residual_per_block: dict[int, list[float]] = {}

    def note(stage, where, tensor):
        value = float(tensor.detach().abs().max())
        found[(stage, where)] = max(found.get((stage, where), 0.0), value)

    def out_hook(stage, where):
        return lambda module, inputs, output: note(stage, where, output)

    def in_hook(stage, where):
        return lambda module, inputs: note(stage, where, inputs[0])

    hooks = [model.patch_embed.register_forward_hook(out_hook(0, "residual")),
             model.norm.register_forward_hook(out_hook("head", "final_norm")),
             model.head.register_forward_hook(out_hook("head", "logits"))]
    for s, stage in enumerate(model.layers):
        residual_per_block[s] = [0.0] * len(stage.blocks)
        if not isinstance(stage.downsample, nn.Identity):
            hooks += [stage.downsample.reduction.register_forward_hook(out_hook(s, "merge_reduction")),
                      stage.downsample.norm.register_forward_hook(out_hook(s, "merge_norm")),
                      stage.downsample.register_forward_hook(out_hook(s, "residual"))]
        for b, block in enumerate(stage.blocks):
            def block_out(module, inputs, output, s=s, b=b):
                note(s, "residual", output)
                residual_per_block[s][b] = max(residual_per_block[s][b], float(output.detach().abs().max()))
            hooks.append(block.register_forward_hook(block_out))
            # the residual stream between attention and MLP: what the MLP branch reads
            hooks.append((block.mlp if v2 else block.norm2).register_forward_pre_hook(in_hook(s, "residual")))
            hooks.append(block.attn.register_forward_hook(out_hook(s, "attn_branch")))
            hooks.append(block.mlp.register_forward_hook(out_hook(s, "mlp_branch")))
            norm_kind = "post_norm" if v2 else "pre_norm"
            hooks += [block.norm1.register_forward_hook(out_hook(s, norm_kind)),
                      block.norm2.register_forward_hook(out_hook(s, norm_kind))]
            hooks += [block.attn.proj.register_forward_hook(out_hook(s, "proj")),
                      block.mlp.fc1.register_forward_hook(out_hook(s, "fc1")),
                      block.mlp.fc2.register_forward_hook(out_hook(s, "fc2"))]
            attn = block.attn
            project = attn.project_qkv  # V2 calls F.linear with qkv's weight: wrap the method, not the module

            def project_qkv(x, project=project, s=s):
                y = project(x)
                note(s, "qkv", y)
                return y
            attn.project_qkv = project_qkv
    with torch.no_grad():
        for start in range(0, len(pixels), batch):
            model(torch.from_numpy(pixels[start:start + batch]))
    for hook in hooks:
        hook.remove()
    stages = {}
    for (stage, where), value in found.items():
        stages.setdefault(str(stage), {})[where] = value
    overall = max(found.items(), key=lambda item: item[1])
    residual = max(v for (s, w), v in found.items() if w == "residual")
    branch = max(v for (s, w), v in found.items() if w in ("attn_branch", "mlp_branch"))
    norms = [v for (s, w), v in found.items() if w == "post_norm"]
    return {
        "per_stage": stages,
        "residual_per_block": {str(s): v for s, v in residual_per_block.items()},
        "max_residual": residual, "max_residual_fp16_ratio": residual / FP16_MAX,
        "max_branch_output": branch, "max_branch_output_fp16_ratio": branch / FP16_MAX,
        "max_post_norm_output": max(norms) if norms else None,
        "max_post_norm_output_fp16_ratio": max(norms) / FP16_MAX if norms else None,
        "max_any": overall[1], "max_any_at": f"stage {overall[0][0]} {overall[0][1]}",
        "max_any_fp16_ratio": overall[1] / FP16_MAX,
        "images": len(pixels),
        "note": ("V2 blocks: x + post_norm(branch); the branch output (attn_branch/mlp_branch) is what the post-norm "
                 "normalises, the residual stream what it feeds. V1 blocks: x + branch(pre_norm(x)). 'qkv', 'proj', "
                 "'fc1', 'fc2', 'merge_reduction': Linear outputs (FP16 tensors in the FP16 graph)"),
    }


# -------------------------------------------------------------------------------------------- per model
def sensitivity_ranking(captured, model_path: Path, calib: Path, probe_dir: Path, threads: int) -> tuple[dict, str]:
    """best's per-layer sensitivity when it measured one; else the same probe run here."""
    if captured is not None and captured.sensitivity:
        return dict(captured.sensitivity), "quantize --precision best (mixed_precision's probe)"
    import onnx

    from swin_trt.backends.onnxruntime import create_session
    from swin_trt.precision import cache as cache_io
    from swin_trt.precision.evaluate import agreement, run_logits
    from swin_trt.precision.int8 import Int8Options, quantizable_nodes, quantize_int8
    from swin_trt.precision.switchable import build_probe, flags, probe_layers

    model = onnx.load(str(model_path))
    scales = {n: float(e["scale"]) for n, e in cache_io.read_cache(calib, model_path)["tensors"].items()}
    pixels = load_pixels(probe_dir, model_path)
    _, plan = quantize_int8(model, scales, Int8Options())
    probe = build_probe(model, scales, [n for n in quantizable_nodes(model) if n not in plan.left_float])
    session = create_session(probe, threads=threads, int8="exact")
    reference = run_logits(create_session(model, threads=threads), pixels)
    result = {}
    for layer in probe_layers(probe):
        metrics = agreement(reference, run_logits(session, pixels, feeds=flags(probe, {layer})))
        result[layer] = {"cosine": round(metrics["cosine"], 6), "top1_agreement": round(metrics["top1_agreement"], 4)}
    return result, "switchable probe run by this benchmark (best met its budget with every layer INT8)"


def run_model(label: str, arch: str, args, work: Path, dirs: dict, commands: Commands) -> dict:
    import swin_trt.precision.quantize_stage as quantize_stage

    folder = work / label
    folder.mkdir()
    timings = {}
    t = time.perf_counter()
    checkpoint = folder / "random.safetensors"
    params = random_checkpoint(arch, args.seed, checkpoint)
    timings["checkpoint_s"] = time.perf_counter() - t
    paths = {k: folder / f"model.{k}.onnx" for k in ("fp32", "rw", "int8", "fp16", "best", "int8_x")}  # x: kinds float
    paths["fp32"] = folder / "model.onnx"
    threads = str(args.threads)
    result = {"arch": arch, "params": params, "checkpoint": "random (peers.randomize), safetensors"}

    def step(name, *cli):
        t = time.perf_counter()
        record = commands.run(label, *cli)
        timings[f"{name}_s"] = round(time.perf_counter() - t, 1)
        return record["ok"]

    if not step("export", "export", "--arch", arch, "--checkpoint", checkpoint, "--dynamic-batch", 8,
                "-o", paths["fp32"]):
        return {**result, "failed": "export"}
    if not step("rewrite", "rewrite", paths["fp32"], "-o", paths["rw"]):
        return {**result, "failed": "rewrite"}
    calib = folder / "calib.json"
    if not step("calibrate", "calibrate", paths["rw"], "--data", dirs["calib"], "--num", args.calib_num,
                "--threads", threads, "--quiet", "-o", calib):
        return {**result, "failed": "calibrate"}
    ok = {"int8": step("quantize_int8", "quantize", paths["rw"], "--precision", "int8", "--calib", calib,
                       "-o", paths["int8"]),
          "fp16": step("quantize_fp16", "quantize", paths["rw"], "--precision", "fp16", "-o", paths["fp16"])}
    captured = {}
    original = quantize_stage.mixed_precision

    def capturing(*a, **k):  # keep best's MixedReport: its sensitivity of every layer
        built, report = original(*a, **k)
        captured["report"] = report
        return built, report
    quantize_stage.mixed_precision = capturing
    try:
        ok["best"] = args.best and step("quantize_best", "quantize", paths["rw"], "--precision", "best", "--calib",
                                        calib, "--data", dirs["probe"], "--eval-num", args.probe_num,
                                        "-o", paths["best"])
    finally:
        quantize_stage.mixed_precision = original

    # accuracy on the evaluation crops
    t = time.perf_counter()
    pixels = load_pixels(dirs["eval"], paths["fp32"])
    reference = logits_of(paths["fp32"], pixels, args.threads)
    result["fp32_logits_max_abs"] = float(np.abs(reference).max())
    result["fp32_logits_std"] = float(reference.std())
    for precision in ("int8", "fp16", "best"):
        if ok.get(precision):
            result[precision] = compare(reference, logits_of(paths[precision], pixels, args.threads))
            log(f"{label} {precision}: SNR {result[precision]['snr_db']:.2f} dB, cosine "
                f"{result[precision]['cosine']:.6f}, top-1 agreement {result[precision]['top1_agreement']:.3f}")
    timings["evaluate_s"] = round(time.perf_counter() - t, 1)
    for precision in ("int8", "fp16", "best"):
        sidecar = paths[precision].with_name(paths[precision].name + ".json")
        if ok.get(precision) and sidecar.is_file():
            section = json.loads(sidecar.read_text())["quantize"]
            if precision == "best":
                best = section.get("best", {})
                result["best"].update(
                    fallback_layers=len(best.get("fallback", [])), budget=best.get("budget"),
                    budget_met_on_probe=best.get("budget_met"), all_int8_on_probe=best.get("all_int8"),
                    int8_layers=section.get("int8", {}).get("quantized_nodes"))
            elif precision == "int8":
                result["int8"].update(int8_layers=section["int8"]["quantized_nodes"],
                                      qdq_pairs=section["int8"]["qdq_pairs"], left_float=section["int8"]["left_float"])
            else:
                result["fp16"]["fp32_nodes"] = section.get("fp16", {}).get("fp32_nodes")

    # per-layer sensitivity (each layer alone in INT8, on the probe crops)
    t = time.perf_counter()
    ranking, source = sensitivity_ranking(captured.get("report"), paths["rw"], calib, dirs["probe"], args.threads)
    where = describe_layers(paths["rw"], list(ranking))
    ordered = sorted(ranking, key=lambda n: (ranking[n]["cosine"], ranking[n]["top1_agreement"]))
    layers = [{"layer": n, **where[n], "one_minus_cosine": round(1 - ranking[n]["cosine"], 7),
               "top1_agreement": ranking[n]["top1_agreement"]} for n in ordered]
    by_kind: dict[str, dict] = {}
    for row in layers:
        entry = by_kind.setdefault(row["kind"], {"layers": 0, "sum_one_minus_cosine": 0.0,
                                                 "max_one_minus_cosine": 0.0})
        entry["layers"] += 1
        entry["sum_one_minus_cosine"] += row["one_minus_cosine"]
        entry["max_one_minus_cosine"] = max(entry["max_one_minus_cosine"], row["one_minus_cosine"])
    by_kind = dict(sorted(by_kind.items(), key=lambda item: -item[1]["sum_one_minus_cosine"]))
    result["sensitivity"] = {"source": source, "probe_images": args.probe_num, "layers_measured": len(layers),
                             "measure": "1 - mean logits cosine vs FP32 with only this layer in INT8 (probe crops)",
                             "top5": layers[:5], "by_kind": by_kind, "all": layers}
    timings["sensitivity_s"] = round(time.perf_counter() - t, 1)

    # INT8 with one kind of layer kept float (every other layer INT8), on the evaluation crops: how much of the
    # INT8 loss each kind explains, on real numbers rather than one layer at a time. qkv and the window
    # partition quantize the same tensor (the partition's Q/DQ output feeds qkv), so they are also tried together.
    if ok.get("int8"):
        t = time.perf_counter()
        groups = {kind: {kind} for kind in by_kind}
        groups.update(KIND_GROUPS)
        kept = {}
        for group, kinds in groups.items():
            excluded = [row["layer"] for row in layers if row["kind"] in kinds]
            if not excluded:
                continue
            cli = ["quantize", paths["rw"], "--precision", "int8", "--calib", calib]
            for name in excluded:
                cli += ["--exclude", name]
            if commands.run(label, *cli, "-o", paths["int8_x"])["ok"]:
                metrics = compare(reference, logits_of(paths["int8_x"], pixels, args.threads))
                kept[group] = {"layers_kept_float": len(excluded), "snr_db": metrics["snr_db"],
                               "snr_gain_db": metrics["snr_db"] - result["int8"]["snr_db"],
                               "cosine": metrics["cosine"], "top1_agreement": metrics["top1_agreement"],
                               "outputs_finite": metrics["outputs_finite"]}
                log(f"{label} int8 with {group} kept float: SNR {metrics['snr_db']:.2f} dB "
                    f"({kept[group]['snr_gain_db']:+.2f})")
        result["int8_kind_kept_float"] = dict(sorted(kept.items(), key=lambda item: -item[1]["snr_gain_db"]))
        timings["int8_kind_kept_float_s"] = round(time.perf_counter() - t, 1)

    # FP16 range: activations in FP32 PyTorch on the same evaluation crops
    t = time.perf_counter()
    result["fp16_activations"] = activation_maxima(arch, checkpoint, pixels)
    timings["activations_s"] = round(time.perf_counter() - t, 1)

    # validate: the project's own comparison (functional check + its per-tensor error view), kept small
    if args.validate_limit:
        report_dir = folder / "validate"
        candidates = [a for p in ("int8", "fp16", "best") if ok.get(p) for a in ("--candidate", paths[p])]
        if step("validate", "validate", "--reference", paths["fp32"], *candidates, "--data", dirs["eval"],
                "--limit", args.validate_limit, "--batch", 2, "--layer-images", 1, "--calib", calib,
                "--threads", threads, "-o", report_dir):
            document = json.loads((report_dir / "report.json").read_text())
            summary = {}
            for candidate in document["candidates"]:
                tensors = [x for x in (candidate.get("layers") or {}).get("tensors", [])
                           if x.get("layer_snr_db") is not None]
                worst = sorted(tensors, key=lambda x: x["layer_snr_db"])[:5]
                summary[Path(candidate["name"]).name.split(".")[1]] = {  # model.<int8|fp16|best>.onnx
                    "name": Path(candidate["name"]).name, "precision": candidate["precision"],
                    "images": candidate["images"], "snr_db": candidate["snr_db"], "cosine": candidate["cosine"],
                    "top1_agreement": candidate["top1_agreement"],
                    "tensors_adding_most_error": [{"tensor": x["name"], "op": x["op"],
                                                   "layer_snr_db": x["layer_snr_db"], "snr_in_db": x["snr_in_db"],
                                                   "snr_db": x["snr_db"]} for x in worst]}
            result["validate"] = {"images": args.validate_limit, "gates": document.get("gates"),
                                  "candidates": summary, "notes": document.get("notes")}
    result["timings"] = {k: round(v, 1) for k, v in timings.items()}
    return result


# --------------------------------------------------------------------------------------------------- main
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="swinv2_tiny_window8_256", help="the V2 arch (V1 gets its geometry)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/v2_precision.json"))
    parser.add_argument("--seed", type=int, default=SEED, help="peers.randomize seed (both models)")
    parser.add_argument("--calib-num", type=int, default=48, help="calibration crops")
    parser.add_argument("--eval-num", type=int, default=24, help="evaluation crops")
    parser.add_argument("--probe-num", type=int, default=8,
                        help="held-out crops for best's sensitivity probe and budget (each layer costs one pass)")
    parser.add_argument("--validate-limit", type=int, default=4, help="images for `swin-trt validate` (0: skip)")
    parser.add_argument("--no-best", dest="best", action="store_false", help="skip --precision best")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="ONNX Runtime / torch threads")
    parser.add_argument("--work", type=Path, help="keep the intermediate files here (default: a temp dir)")
    args = parser.parse_args(argv)

    import onnxruntime
    import torch

    from swin_trt.models import get_arch

    log("#" * 100 + f"\n# {RANDOM_WEIGHTS_NOTE}\n" + "#" * 100)
    os.environ["SWIN_TRT_THREADS"] = str(args.threads)
    torch.set_num_threads(args.threads)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_v2_precision_"))
    work.mkdir(parents=True, exist_ok=True)
    dirs = {"calib": work / "calib", "probe": work / "probe", "eval": work / "eval"}
    crops = {"calib": write_crops(dirs["calib"], CALIB_PHOTOS, args.calib_num),
             "probe": write_crops(dirs["probe"], PROBE_PHOTOS, args.probe_num),
             "eval": write_crops(dirs["eval"], EVAL_PHOTOS, args.eval_num)}
    spec = get_arch(args.arch)
    v1 = v1_twin(spec)
    commands = Commands(work)
    models = {}
    for label, arch in (("v1", v1), ("v2", spec.name)):
        started = time.perf_counter()
        try:
            models[label] = run_model(label, arch, args, work, dirs, commands)
        except Exception as exc:  # noqa: BLE001 - record it and go on with the other model
            models[label] = {"arch": arch, "failed": f"{type(exc).__name__}: {exc}",
                             "traceback": traceback.format_exc().splitlines()[-8:]}
            log(f"{label}: {traceback.format_exc()}")
        models[label]["seconds"] = round(time.perf_counter() - started, 1)
    c = spec.config
    results = {
        "what": "INT8 / FP16 / best of Swin V2 vs Swin V1 at the same geometry, through swin-trt's own commands",
        "weights": RANDOM_WEIGHTS_NOTE, "random_weights": True, "seed": args.seed,
        "geometry": {"img_size": list(c.img_size), "patch": c.patch_size, "window": c.window_size,
                     "embed_dim": c.embed_dim, "depths": list(c.depths), "heads": list(c.num_heads),
                     "classes": c.num_classes},
        "archs": {"v1": v1 + " (registered in-process by this benchmark)", "v2": spec.name},
        "data": {"source": "scikit-image sample photos (skimage/data), square crops",
                 "calibration": {"photos": list(CALIB_PHOTOS), "crops": len(crops["calib"])},
                 "probe": {"photos": list(PROBE_PHOTOS), "crops": len(crops["probe"]),
                           "used_for": "best's sensitivity and budget"},
                 "evaluation": {"photos": list(EVAL_PHOTOS), "crops": len(crops["eval"])},
                 "disjoint_photos": True},
        "calibration_method": "percentile 99.99 (swin-trt calibrate's default)",
        "int8_arithmetic": "Q/DQ fusions off in ONNX Runtime (each DQ runs, MatMuls in float): TensorRT's INT8 math",
        "summary": summary(models),
        "models": models,
        "commands": commands.records,
        "failures": [r for r in commands.records if not r["ok"]]
                    + [{"model": k, "failed": v["failed"]} for k, v in models.items() if "failed" in v],
        "runtime_s": round(time.perf_counter() - START, 1),
        "environment": {"threads": args.threads, "python": platform.python_version(), "machine": platform.machine(),
                        "processor": platform.processor(), "cpu_count": os.cpu_count(),
                        "onnxruntime": onnxruntime.__version__, "torch": torch.__version__,
                        "load_average": os.getloadavg()},
        "rerun": " ".join(["python benchmarks/bench_v2_precision.py",
                           *map(shlex.quote, sys.argv[1:] if argv is None else argv)]),
        "notes": [
            "one-layer sensitivities come from mixed_precision, which rounds cosines to 6 decimals: on Swin-T most "
            "single layers cost 1e-6..1e-4, so small ones tie (a kind can sum to 0)",
            "SNR differences under ~0.5 dB between the kept-float variants are within the noise of 24 images",
            "validate runs on only --validate-limit images with 1 image for its per-tensor view: a functional check",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(clean(results), indent=2) + "\n")
    print(table(results))
    print(f"wrote {args.out} ({results['runtime_s']:.0f} s)")
    return results


def summary(models: dict) -> dict:
    """The key numbers, V1 next to V2."""
    def get(model, *keys):
        value = models.get(model, {})
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        return value

    rows = {}
    for model in ("v1", "v2"):
        row = {}
        for precision in ("int8", "fp16", "best"):
            for metric in ("snr_db", "cosine", "top1_agreement", "outputs_finite"):
                row[f"{precision}_{metric}"] = get(model, precision, metric)
        row["best_fallback_layers"] = get(model, "best", "fallback_layers")
        row["best_int8_layers"] = get(model, "best", "int8_layers")
        row["worst_layers"] = [f"{x['kind']} stage {x['stage']} "
                               f"{'merge' if x['block'] is None else 'block ' + str(x['block'])} "
                               f"({x['one_minus_cosine']:.2e})"
                               for x in get(model, "sensitivity", "top5") or []]
        row["worst_kind_one_at_a_time"] = next(iter(get(model, "sensitivity", "by_kind") or {}), None)
        row["int8_snr_gain_db_kind_kept_float"] = {k: round(v["snr_gain_db"], 2) for k, v in
                                                   (get(model, "int8_kind_kept_float") or {}).items()}
        for key in ("max_residual", "max_branch_output", "max_post_norm_output", "max_any", "max_any_at",
                    "max_any_fp16_ratio"):
            row[key] = get(model, "fp16_activations", key)
        rows[model] = row
    return rows


def table(results: dict) -> str:
    s = results["summary"]
    lines = [f"{results['weights']}", f"{'':34s} {'V1':>14s} {'V2':>14s}"]

    def fmt(value):
        if value is None:
            return "-"
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, float):
            return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
        return str(value)

    for key in ("int8_snr_db", "int8_cosine", "int8_top1_agreement", "fp16_snr_db", "fp16_cosine",
                "fp16_top1_agreement", "fp16_outputs_finite", "best_snr_db", "best_cosine", "best_top1_agreement",
                "best_fallback_layers", "best_int8_layers", "worst_kind_one_at_a_time", "max_residual",
                "max_branch_output",
                "max_post_norm_output", "max_any", "max_any_fp16_ratio"):
        lines.append(f"{key:34s} {fmt(s['v1'].get(key)):>14s} {fmt(s['v2'].get(key)):>14s}")
    lines.append("INT8 SNR gain (dB) with one kind of layer kept float:")
    gains = {model: s[model]["int8_snr_gain_db_kind_kept_float"] for model in ("v1", "v2")}
    kinds = list(dict.fromkeys([*gains["v2"], *gains["v1"]]))
    for kind in kinds:
        lines.append(f"  {kind:42s} {fmt(gains['v1'].get(kind)):>6s} {fmt(gains['v2'].get(kind)):>14s}")
    for model in ("v1", "v2"):
        lines.append(f"{model} worst layers (INT8 alone, 1 - cosine): " + "; ".join(s[model]["worst_layers"]))
    for failure in results["failures"]:
        lines.append(f"FAILED: {failure}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
