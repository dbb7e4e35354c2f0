"""One validation run: open the models, stream the data through them, attribute errors to layers, and
assemble the report document (report.json's schema, see docs/report-schema.md)."""

from __future__ import annotations

import datetime
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

from ..backends.base import Backend, open_backend
from ..errors import UserError
from .compare import Labelled, batches, compare, label_items, list_labelled, resolve_preprocessing
from ..backends.ort_int8 import has_qdq
from .gates import Gates, check
from .latency import TimedBackend, latency_stats
from .model_precision import model_precision, needs_layer_attribution
from .schema import SCHEMA_VERSION, json_safe


@dataclass
class Options:
    reference: str
    candidates: list[str]
    data: Path | None = None
    labels: Path | None = None
    batch: int = 8
    limit: int | None = None
    fp32: Path | None = None  # the FP32 ONNX graph for layer attribution when the reference is PyTorch
    layer_images: int = 8
    progress: bool = True
    gates: Gates = field(default_factory=Gates)


def default_data() -> Path:
    from ..models.demo import demo_images_dir

    folder = demo_images_dir()
    if not folder.is_dir():
        raise UserError("no --data given and the package's demo images are missing: pass --data DIR")
    return folder


def _is_onnx(model: str) -> bool:
    return not model.startswith("torch:") and not model.endswith((".engine", ".plan"))


def _load_onnx(model: str):
    from ..backends.onnxruntime import load_onnx

    return load_onnx(model)


def _open(model: str, protos: dict) -> Backend:
    if model in protos:  # already loaded for its precision: don't parse a large graph twice
        from ..backends.onnxruntime import OnnxRuntimeBackend

        # Exact Q/DQ arithmetic: the numbers TensorRT's INT8 kernels compute (see backends/ort_int8.py).
        return OnnxRuntimeBackend(protos[model], int8="exact")
    return open_backend(model)


def _machine() -> dict:
    import onnxruntime

    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None  # flags noisy latencies
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_average_1min": load, "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__}


def _tool() -> dict:
    from .. import __version__

    return {"name": "swin-trt", "version": __version__}


def _preprocessing(options: Options, reference: Backend):
    preprocessor, class_names = resolve_preprocessing(options.reference, *options.candidates)
    model = getattr(reference, "model", None)  # a torch reference: its checkpoint may change size or head
    if model is not None:
        from dataclasses import replace

        preprocessor = replace(preprocessor, crop=tuple(reference.input_shape[2:]))
        class_names = list(model.config.class_names)
    return preprocessor, class_names


def _layer_images(data: Labelled, preprocessor, count: int):
    """The first ``count`` readable images, preprocessed, one at a time."""
    if count <= 0:
        return
    for pixels, _ in batches(data, preprocessor, 1, progress=False):
        yield pixels[0]
        count -= 1
        if count == 0:
            return


def _layers(options: Options, candidate: str, protos: dict, data: Labelled, preprocessor, notes: list[str]) -> dict:
    from .layers import attribute_layers

    if options.fp32 is not None:
        fp32_path = str(options.fp32)
    elif _is_onnx(options.reference):
        fp32_path = options.reference
    else:
        reason = "the reference is PyTorch: pass --fp32 model.onnx (the FP32 graph) to compare layers"
        notes.append(f"{candidate}: per-layer attribution skipped ({reason})")
        return {"status": "skipped", "reason": reason}
    if options.layer_images <= 0:
        return {"status": "skipped", "reason": "--layer-images 0"}
    fp32 = protos[fp32_path] if fp32_path in protos else _load_onnx(fp32_path)
    result = attribute_layers(fp32, protos[candidate], _layer_images(data, preprocessor, options.layer_images))
    if not result["compared"]:
        reason = f"no intermediate tensor of {fp32_path} has the same name and shape in the candidate"
        notes.append(f"{candidate}: per-layer attribution found nothing to compare ({reason})")
        return {"status": "skipped", "reason": reason}
    return {"status": "ok", "fp32": fp32_path, **result}


def run_validation(options: Options) -> dict:
    """Compare every candidate with the reference; returns the report document (JSON-safe)."""
    if len(set(options.candidates)) != len(options.candidates):
        raise UserError("a --candidate is given twice: name each model once")
    if options.batch < 1:
        raise UserError("--batch must be >= 1")
    if options.fp32 is not None and not Path(options.fp32).is_file():
        raise UserError(f"--fp32 {str(options.fp32)!r} does not exist: pass the FP32 ONNX graph")
    data_source = options.data or default_data()
    items, label_source = list_labelled(data_source, options.labels)
    if options.limit:
        items = items[:options.limit]
    if not items:
        raise UserError(f"no images (jpg, png, webp, bmp) found in {str(data_source)!r}")

    protos = {m: _load_onnx(m) for m in [options.reference, *options.candidates] if _is_onnx(m)}
    reference = TimedBackend(_open(options.reference, protos))
    candidates = {c: TimedBackend(_open(c, protos)) for c in options.candidates}
    preprocessor, class_names = _preprocessing(options, reference.inner)
    data = label_items(items, class_names)
    labelled = bool((data.labels >= 0).any())
    if options.gates.max_acc_drop is not None and not labelled:
        raise UserError("--max-acc-drop needs labelled images: an ImageFolder layout (one folder per class) "
                        "or --labels FILE")
    try:
        result = compare(reference, candidates, data, preprocessor, options.batch, options.progress)
    finally:
        for backend in [reference, *candidates.values()]:
            backend.close()

    notes = []
    entries = []
    for name, metrics in result["candidates"].items():
        precision = model_precision(name, protos.get(name))
        layers = None
        if needs_layer_attribution(precision):
            layers = (_layers(options, name, protos, data, preprocessor, notes) if name in protos else
                      {"status": "skipped", "reason": "per-layer attribution needs an ONNX candidate (run it on the "
                                                      "FP16/INT8 ONNX graph the engine was built from)"})
        entry = {"name": name, "backend": candidates[name].name, "precision": precision, **metrics,
                 "latency": latency_stats(candidates[name].samples), "layers": layers}
        entries.append(entry)
    failures = [f for entry in entries for f in check(options.gates, entry)]
    reference_metrics = {**result["reference"], "backend": reference.name,
                         "precision": model_precision(options.reference, protos.get(options.reference)),
                         "latency": latency_stats(reference.samples)}
    skipped = len(items) - result["reference"]["images"]
    if skipped:
        notes.append(f"{skipped} unreadable image(s) skipped")
    if any(has_qdq(protos[c]) for c in options.candidates if c in protos):
        notes.append("INT8 (Q/DQ) ONNX candidates ran with ONNX Runtime's Q/DQ fusions off: exact INT8 "
                     "arithmetic as TensorRT computes it (ORT's x86 integer kernels saturate); their CPU latency "
                     "is that of fake quantization")
    notes.append("latency: wall time of each backend's infer calls on this machine while validate ran, the "
                  "first call dropped as warm-up; compare backends measured in the same run only")
    document = {
        "schema_version": SCHEMA_VERSION,
        "tool": _tool(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "reference": options.reference,
        "reference_metrics": reference_metrics,
        "data": str(options.data or "bundled demo images"),
        "dataset": {"source": str(data_source), "images": result["reference"]["images"], "listed": len(items),
                    "skipped": skipped, "labelled": int((data.labels >= 0).sum()),
                    "label_source": label_source if labelled else None,
                    "label_mapping": data.mapping if labelled else None,
                    "batch": options.batch, "layer_images": options.layer_images},
        "candidates": entries,
        "gates": {"thresholds": options.gates.to_dict(), "passed": not failures, "failures": failures},
        "notes": notes,
    }
    return json_safe(document)


def write_report(document: dict, outdir: str | Path) -> dict[str, Path]:
    """report.json and report.html in ``outdir``, each written atomically."""
    from ..io import atomic_output, write_json
    from .report_html import render_html

    outdir = Path(outdir)
    paths = {"json": outdir / "report.json", "html": outdir / "report.html"}
    write_json(paths["json"], document)
    with atomic_output(paths["html"]) as temporary:
        temporary.write_text(render_html(document), encoding="utf-8")
    return paths


__all__ = ["Options", "run_validation", "write_report", "default_data"]
