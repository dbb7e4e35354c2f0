"""Dense prediction through the rewrite, on ONNX Runtime (CPU), with Swin-T-sized transformers models.

1. UperNet on a Swin-T backbone (transformers, random weights built from a config), exported by plain
   ``torch.onnx.export`` at 576x576 (no sidecar), rewritten through the CLI with ``--strict``: plugin counts,
   rewrite time, max abs error and class-map agreement against the source on scikit-image's photos, latency.
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
from swin_trt.data.preprocess import Preprocessor
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


def rewrite_cli(source: Path, output: Path) -> tuple[float, dict, str]:
    start = time.perf_counter()
    command = [sys.executable, "-c", "from swin_trt.cli import main; main()", "rewrite", str(source),
               "-o", str(output), "--strict", "--fuse-attention"]
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode:
        raise SystemExit(result.stdout + result.stderr)
    return seconds, json.loads(Path(f"{output}.json").read_text())["rewrite"], result.stdout


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
