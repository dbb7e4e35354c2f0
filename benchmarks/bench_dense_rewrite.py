"""Dense prediction through the rewrite, on ONNX Runtime (CPU), with Swin-T-sized transformers models.

1. UperNet on a Swin-T backbone (transformers, random weights built from a config), exported by plain
   ``torch.onnx.export`` at 576x576 (no sidecar), rewritten through the CLI with ``--strict``: plugin counts,
   rewrite time, max abs error and class-map agreement against the source on scikit-image's photos, latency.
   Then INT8 through the CLI as a user would run it: ``calibrate`` on crops of scikit-image's other photos,
   ``quantize --precision int8``, ``validate`` against the rewritten FP32 graph on the six photos above
   (never calibrated on): SNR, logits cosine and class-map (pixel) agreement from its report.json.
2. A Swin-T ``SwinBackbone`` exported with dynamic batch, height and width (at 512x640, where every stage is
   padded), rewritten once: the one graph against the source at 448x448 and 512x640, latency at each.

    python benchmarks/bench_dense_rewrite.py --out benchmarks/results/dense_rewrite.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from swin_trt.backends.onnxruntime import create_session
from swin_trt.preprocess import Preprocessor
from swin_trt.io import write_json

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def photos(size) -> np.ndarray:
    from PIL import Image
    from skimage import data

    pre = Preprocessor(size)
    return np.stack([pre(Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB")) for name in PHOTOS])


class Outputs(torch.nn.Module):
    def __init__(self, model, kind):
        super().__init__()
        self.model, self.kind = model, kind

    def forward(self, pixel_values):
        out = self.model(pixel_values=pixel_values)
        return out.logits if self.kind == "upernet" else tuple(out.feature_maps)


def export(kind: str, size, path: Path, dynamic: bool) -> float:
    from transformers import SwinBackbone, SwinConfig, UperNetConfig, UperNetForSemanticSegmentation

    torch.manual_seed(0)
    swin = SwinConfig(out_features=["stage1", "stage2", "stage3", "stage4"])  # Swin-T
    model = (UperNetForSemanticSegmentation(UperNetConfig(backbone_config=swin, num_labels=150))
             if kind == "upernet" else SwinBackbone(swin))
    start = time.perf_counter()
    axes = {"input": {0: "batch", 2: "height", 3: "width"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Outputs(model, kind).eval(), (torch.randn(1, 3, *size),), str(path), dynamo=False,
                          opset_version=17, input_names=["input"], dynamic_axes=axes)
    return time.perf_counter() - start


def swin_trt(*args) -> tuple[float, str]:
    """Run the CLI; its seconds and stdout (exit with its output on failure)."""
    start = time.perf_counter()
    command = [sys.executable, "-c", "from swin_trt.cli import main; main()", *map(str, args)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(result.stdout + result.stderr)
    return time.perf_counter() - start, result.stdout


def rewrite_cli(source: Path, output: Path) -> tuple[float, dict, str]:
    seconds, printed = swin_trt("rewrite", source, "-o", output, "--strict", "--fuse-attention")
    return seconds, json.loads(Path(f"{output}.json").read_text())["rewrite"], printed


def save_photos(folder: Path, names) -> Path:
    from PIL import Image
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        Image.fromarray(np.asarray(getattr(data, name)())).convert("RGB").save(folder / f"{name}.png")
    return folder


# scikit-image's photos that ship in the wheel, other than PHOTOS (kidney, lily, eagle, skin need a download)
CALIB_PHOTOS = ("camera", "cat", "horse", "logo", "coins", "page", "text", "moon", "retina", "brick", "grass",
                "gravel", "colorwheel", "clock")


def int8_cli(rewritten: Path, tmp: Path, calib_num: int) -> dict:
    """calibrate -> quantize --precision int8 -> validate, as a user would; the INT8 row of report.json."""
    calib = save_photos(tmp / "calib", CALIB_PHOTOS)
    val = save_photos(tmp / "val", PHOTOS)
    seconds = {"calibrate": swin_trt("calibrate", rewritten, "--data", calib, "--num", calib_num, "--batch", 2,
                                     "-o", tmp / "calib.json")[0]}
    int8 = tmp / "upernet.int8.onnx"
    seconds["quantize"] = swin_trt("quantize", rewritten, "--precision", "int8", "--calib", tmp / "calib.json",
                                   "-o", int8)[0]
    seconds["validate"] = swin_trt("validate", "--reference", rewritten, "--candidate", int8, "--data", val,
                                   "--batch", 2, "--layer-images", 0, "-o", tmp / "report")[0]
    row = json.loads((tmp / "report" / "report.json").read_text())["candidates"][-1]
    keys = ("precision", "snr_db", "cosine", "pixel_agreement", "max_abs_err")
    return {"calib_images": len(list(calib.iterdir())), "eval_images": len(PHOTOS), "seconds": seconds,
            **{k: row.get(k) for k in keys}}


def median_ms(session, x, runs: int) -> float:
    name = session.get_inputs()[0].name
    session.run(None, {name: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def compare(source: Path, rewritten: Path, size, runs: int) -> dict:
    reference = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    candidate = create_session(onnx.load(str(rewritten)))
    errors, agreement = [], []
    for image in photos(size):
        x = image[None]
        expected = reference.run(None, {"input": x})
        got = candidate.run(None, {"input": x})
        errors.append(max(float(np.abs(a - b).max()) for a, b in zip(expected, got)))
        if expected[0].ndim == 4 and len(expected) == 1:  # a class map: per-pixel argmax agreement
            agreement.append(float((expected[0].argmax(1) == got[0].argmax(1)).mean()))
    x = photos(size)[:1]
    row = {"size": list(size), "max_abs_err": max(errors), "original_ms": median_ms(reference, x, runs),
           "rewritten_ms": median_ms(candidate, x, runs)}
    if agreement:
        row["argmax_agreement_min"] = min(agreement)
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calib-num", type=int, default=14, help="calibration photos for the INT8 step")
    parser.add_argument("--int8-only", action="store_true", help="stop after UperNet (skip the backbone)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/dense_rewrite.json"))
    args = parser.parse_args()
    result = {"machine": {"processor": platform.processor() or platform.machine(),
                          "python": platform.python_version(), "onnxruntime": ort.__version__,
                          "torch": torch.__version__}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        upernet, backbone = tmp / "upernet.onnx", tmp / "backbone.onnx"
        export_s = export("upernet", (576, 576), upernet, dynamic=False)
        seconds, report, printed = rewrite_cli(upernet, tmp / "upernet.rw.onnx")
        print(printed.splitlines()[0])
        result["upernet_swin_t_576"] = {"export_seconds": export_s, "rewrite_seconds": seconds,
                                        "plugins": report["plugins"], "unmatched": report["unmatched"],
                                        **compare(upernet, tmp / "upernet.rw.onnx", (576, 576), args.runs)}
        result["upernet_swin_t_576"]["int8"] = int8_cli(tmp / "upernet.rw.onnx", tmp, args.calib_num)
        if args.int8_only:
            write_json(args.out, result)
            print(json.dumps(result, indent=2))
            return
        export_s = export("backbone", (512, 640), backbone, dynamic=True)
        seconds, report, printed = rewrite_cli(backbone, tmp / "backbone.rw.onnx")
        print(printed.splitlines()[0])
        result["swin_t_backbone_dynamic"] = {
            "export_seconds": export_s, "rewrite_seconds": seconds, "plugins": report["plugins"],
            "shape_tensors_kept": report["cleanup"]["shape_tensors_kept"],
            "probe_sizes": report["cleanup"]["probe_sizes"],
            "sizes": [compare(backbone, tmp / "backbone.rw.onnx", size, args.runs)
                      for size in ((448, 448), (512, 640))]}
    write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
