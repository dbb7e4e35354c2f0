"""The report document (report.json, schema in docs/report-schema.md) from one run's measurements."""

from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

from ..backends.ort_int8 import has_qdq
from ..io import read_sidecar, sha256_file
from .gates import check
from .latency import latency_stats
from .model_precision import model_precision
from .schema import SCHEMA_VERSION, json_safe
from ..data.detection_outputs import ROLES as DETECTION_KINDS
from .segmentation import IGNORE_INDEX


def _machine() -> dict:
    import onnxruntime

    load = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None  # flags noisy latencies
    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(), "load_average_1min": load, "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__}


def _tool() -> dict:
    from .. import __version__

    return {"name": "swin-trt", "version": __version__}


def _calibration_caches(calib: Path | None, candidates: list[str]) -> list[Path]:
    """The cache given, else the caches the candidates' sidecars say they were quantized with."""
    if calib is not None:
        return [Path(calib)]
    caches = []
    for candidate in candidates:
        section = (read_sidecar(candidate) or {}).get("quantize") or {} if Path(candidate).is_file() else {}
        path = section.get("calib")
        if path and Path(path).is_file() and Path(path) not in caches:
            caches.append(Path(path))
    return caches


def calibration_overlap(items, calib: Path | None, candidates: list[str]) -> dict | None:
    """How many validation images are also calibration images, compared by content (sha256).

    A validation on calibration images overstates how well INT8 holds up; the report says how many there
    were. ``None`` when no calibration cache is known (FP16/FP32 candidates, or caches without hashes).
    """
    caches = _calibration_caches(calib, candidates)
    calibration: set[str] = set()
    for cache in caches:
        try:
            calibration |= set(json.loads(cache.read_text()).get("data", {}).get("sha256") or [])
        except (OSError, json.JSONDecodeError):
            continue
    if not calibration:
        return None
    shared = sum(sha256_file(item.path) in calibration for item in items if Path(item.path).is_file())
    return {"images": shared, "validation_images": len(items), "calibration_images": len(calibration),
            "caches": [str(c) for c in caches]}


def engine_variants(name: str) -> list[dict] | None:
    """An engine candidate's plugin variants as timed by ``build --compare`` (None: not compared)."""
    from ..model_ref import ModelRef

    ref = ModelRef.parse(name)
    if ref.kind != "engine":
        return None
    from ..engine.compare import comparison_rows

    return comparison_rows(ref.sidecar() or {}) or None


def _annotation_notes(annotations: dict | None) -> list[str]:
    """What the COCO evaluation could not use, said where a reader of the mAP will see it."""
    if not annotations:
        return []
    notes = []
    if annotations["unmatched_images"]:
        notes.append(f"{annotations['unmatched_images']} validated image(s) have no entry in {annotations['file']} "
                     f"(matched by file name): mAP is measured on the {annotations['images']} that do")
    if annotations["size_mismatches"]:
        notes.append(f"{annotations['size_mismatches']} annotated image(s) have another width/height in "
                     f"{annotations['file']} than the file validated: their boxes cannot line up, so mAP is wrong "
                     f"there; annotate the files as they are")
    if annotations["labels_outside_categories"]:
        notes.append(f"{annotations['labels_outside_categories']} label value(s) the models output are no category "
                     f"id of the annotations: those detections score nothing (labels are taken as category ids)")
    return notes


def _shape_notes(entries: list[dict]) -> list[str]:
    """Outputs whose shape differed from the reference's on some image, where no detection metric explains it."""
    notes = []
    for entry in entries:
        for output in entry.get("outputs") or []:
            if output.get("shape_mismatches") and output["kind"] not in DETECTION_KINDS:
                notes.append(f"{entry['name']}: output {output['name']} has another shape than the reference's on "
                             f"{output['shape_mismatches']} image(s): those images count cosine 0 and are left out "
                             f"of its errors")
    return notes


def assemble(options, models, data, data_source, label_source, result: dict, layers: dict, latency: dict,
             overlap: dict | None, notes: list[str], masks: Path | None = None) -> dict:
    entries = []
    for name, metrics in result["candidates"].items():
        proto = models.protos.get(name)
        entry = {"name": name, "backend": models.candidates[name].name, "precision": model_precision(name, proto),
                 **metrics, "latency": latency[name], "layers": layers[name], "engine_variants": engine_variants(name)}
        if proto is not None and has_qdq(proto):  # the validation calls ran the exact emulation: label it
            entry["latency_exact_emulation"] = latency_stats(models.candidates[name].samples)
        entries.append(entry)
    failures = [f for entry in entries for f in check(options.gates, entry)]
    reference_metrics = {**result["reference"], "backend": models.reference.name,
                         "precision": model_precision(options.reference, models.protos.get(options.reference)),
                         "latency": latency[options.reference]}
    images = result["reference"]["images"]
    clips = models.model_input.preprocessor if models.model_input.clips else None
    skipped = len(data.no_clips) if clips is not None else len(data.items) - images
    if skipped and clips is not None:
        notes.append(f"{skipped} video(s) gave no clip (unreadable, or shorter than {clips.length} frames): skipped")
    elif skipped:
        notes.append(f"{skipped} unreadable image(s) skipped")
    if overlap and overlap["images"]:
        notes.append(f"{overlap['images']} of the {overlap['validation_images']} validation images are also "
                     f"calibration images: accuracy on them overstates how well INT8 holds up; validate on "
                     f"held-out images")
    notes += _annotation_notes(result.get("annotations"))
    notes += _shape_notes(entries)
    if any(has_qdq(models.protos[c]) for c in options.candidates if c in models.protos):
        notes.append("INT8 (Q/DQ) ONNX candidates: accuracy measured with ONNX Runtime's Q/DQ fusions off (exact "
                     "INT8 arithmetic as TensorRT computes it); latency measured on the fast integer kernels infer "
                     "runs; the emulation's own time is latency_exact_emulation in report.json")
    notes.append("latency: each model on the path infer runs, timed on one batch of these images after warm-up "
                 "runs, on this machine; compare models measured in the same run only")
    preprocessor = models.model_input.preprocessor
    document = {
        "schema_version": SCHEMA_VERSION,
        "tool": _tool(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "reference": options.reference,
        "reference_metrics": reference_metrics,
        "data": str(options.data or "bundled demo images"),
        "dataset": {"source": str(data_source), "images": images, "listed": len(data.items), "skipped": skipped,
                    "labelled": int((data.labels >= 0).sum()),
                    "label_source": label_source if (data.labels >= 0).any() else None,
                    "label_mapping": data.mapping if (data.labels >= 0).any() else None,
                    "batch": options.batch, "layer_images": options.layer_images,
                    "calibration_overlap": overlap,
                    "annotations": result.get("annotations"),
                    "masks": ({"folder": str(masks), "ignore_index": IGNORE_INDEX,
                               "labelled_pixels": result["reference"].get("labelled_pixels", 0)}
                              if masks is not None else None),
                    "preprocessing": {**preprocessor.to_dict(), "origin": models.model_input.origin},
                    **({"clips": {"clips": images, "videos": len(data.items), "clip_len": clips.length,
                                  "clip_stride": clips.stride}} if clips is not None else {})},
        "candidates": entries,
        "gates": {"thresholds": options.gates.to_dict(), "passed": not failures, "failures": failures},
        "notes": notes,
    }
    return json_safe(document)
