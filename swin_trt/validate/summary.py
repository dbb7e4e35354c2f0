"""The terminal summary: one table row per model, then the worst layers of each FP16 / INT8 candidate."""

from __future__ import annotations

from pathlib import Path

from .plots import short_names


def _pct(value, change=None) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" + (f" ({100 * change:+.2f})" if change is not None else "")


def _db(value) -> str:
    return "inf" if value is None else f"{value:.1f}"


def _latency(latency) -> str:
    return f"{latency['median_ms']:.2f}/{latency['p95_ms']:.2f}" if latency else "-"


def _table(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths)))
            for row in rows]


def data_noun(dataset: dict) -> str:
    """What the validation data are made of: ``images``, ``videos`` (a clip model's) or ``volumes``."""
    if dataset.get("clips"):
        return "videos"
    return "volumes" if (dataset.get("preprocessing") or {}).get("layout") == "NCDHW" else "images"


def data_count(dataset: dict) -> str:
    """``16 images``, ``16 clips from 16 videos`` or ``3 volumes``: what was compared."""
    clips = dataset.get("clips")
    if clips:
        return f"{clips['clips']} clips from {clips['videos']} videos"
    return f"{dataset['images']} {data_noun(dataset)}"


def calibration_overlap_text(overlap: dict | None, noun: str = "images") -> str:
    if not overlap:
        return "no calibration cache known (FP16/FP32 candidates, or pass --calib)"
    verdict = "held out" if overlap["images"] == 0 else "OVERSTATES INT8 accuracy"
    return (f"{overlap['images']} of {overlap['validation_images']} validation {noun} are also among the "
            f"{overlap['calibration_images']} calibration {noun} (by content hash): {verdict}")


def preprocessing_text(pre: dict | None) -> str:
    if not pre:
        return "-"
    origin = {"defaults": "ASSUMED defaults for what the model outputs (it records none)", "flags": "from the flags",
              "sidecar": "from the model's sidecar", "arch": "from the arch"}.get(pre.get("origin"), pre.get("origin"))
    if pre.get("layout") == "NCDHW":  # a volume model's (swin_trt.data.volumes)
        how = f"ScaleIntensityRange {pre['intensity']}" if pre.get("intensity") else "cast only"
        return f"volumes {'x'.join('?' if d is None else str(d) for d in pre['volume_shape'])}, {how}"
    fit = f"crop_pct {pre['crop_pct']}" if pre.get("fit", "crop") == "crop" else "stretched"
    size = "x".join(map(str, pre["crop"])) if pre.get("crop") else "?"
    return (f"{size}, mean {pre['mean']}, std {pre['std']}, {pre['interpolation']}, {fit}: {origin}")


def _outputs(label: str, outputs: list[dict]) -> list[str]:
    """Per-output lines where there is more to say than the first output's row (several outputs, maps)."""
    if len(outputs) < 2 and all(o["kind"] == "logits" and o.get("batch_axis", True) for o in outputs):
        return []
    lines = [f"{label}: per output"]
    for o in outputs:
        agreement = "" if o.get("top1_agreement") is None else f"  argmax agreement {_pct(o['top1_agreement'])}"
        if o.get("miou_agreement") is not None:
            agreement = f"  pixel agreement {_pct(o['pixel_agreement'])}, mIoU agreement {_pct(o['miou_agreement'])}"
        if o.get("shape_mismatches"):
            agreement += f"  SHAPE DIFFERS on {o['shape_mismatches']} image(s)"
        axis = "" if o.get("batch_axis", True) else " (no batch axis: whole per image)"
        lines.append(f"  {o['name']} {o['kind']} {'x'.join(map(str, o['shape']))}{axis}: SNR {_db(o['snr_db'])} dB, "
                     f"cosine {o['cosine']:.6f}, max abs {o['max_abs_err']:.2e}{agreement}")
    return lines


def is_segmentation(document: dict) -> bool:
    """The models' first output is a class map: the report has a segmentation section."""
    outputs = document["reference_metrics"].get("outputs") or []
    return bool(outputs) and outputs[0]["kind"] == "class_map"


def _segmentation(document: dict, labels: dict) -> list[str]:
    """One row per model: pixel and mIoU agreement with the reference; mIoU and pixel accuracy with masks."""
    if not is_segmentation(document):
        return []
    reference, masks = document["reference_metrics"], document["dataset"].get("masks")
    truth = masks is not None and reference.get("miou") is not None
    head = ["segmentation", "pixel agr", "mIoU agr"] + (["mIoU (chg)", "pixel acc (chg)"] if truth else [])
    dice = any(c.get("mean_dice_agreement") is not None for c in document["candidates"])  # volumes: Dice per class
    head += ["Dice agr (per class)"] if dice else []
    rows = [head]
    if truth:
        rows.append(["reference", "", "", _pct(reference["miou"]), _pct(reference["pixel_accuracy"])])
    for c in document["candidates"]:
        row = [labels[c["name"]], _pct(c.get("pixel_agreement")), _pct(c.get("miou_agreement"))]
        if truth:
            row += [_pct(c.get("miou"), c.get("miou_change")),
                    _pct(c.get("pixel_accuracy"), c.get("pixel_accuracy_change"))]
        if dice:
            per_class = " ".join("-" if d is None else f"{d:.4f}" for d in c.get("dice_agreement") or [])
            row.append(f"{_pct(c.get('mean_dice_agreement'))} ({per_class})")
        rows.append(row)
    source = (f"label masks from {masks['folder']}, {masks['labelled_pixels']} labelled pixels" if truth else
              "no label masks (--masks DIR adds the true mIoU)")
    return [f"class maps, argmax per pixel ({source}):"] + _table(rows)


def is_detector(document: dict) -> bool:
    """The models are detectors (boxes, scores, labels): the report has a detection section."""
    return document["reference_metrics"].get("detection") is not None


def _sci(value) -> str:
    return "-" if value is None else f"{value:.2e}"


def _detection(document: dict, labels: dict) -> list[str]:
    """One row per model: the share of the reference's detections found, extra ones, IoU and score drift of
    the matches; with annotations, mAP and AP50 and their change."""
    if not is_detector(document):
        return []
    reference = document["reference_metrics"]
    annotations = document["dataset"].get("annotations")
    truth = annotations is not None
    head = ["detections", "count", "found", "extra", "mean IoU", "score drift (max)"]
    head += ["mAP (chg)", "AP50 (chg)"] if truth else []
    rows = [head, ["reference", str(reference["detection"]["detections"]), "", "", "", ""]
            + ([_pct(reference.get("map")), _pct(reference.get("ap50"))] if truth else [])]
    for c in document["candidates"]:
        d = c["detection"]
        drift = "-" if d["score_drift"] is None else f"{_sci(d['score_drift'])} ({_sci(d['max_score_drift'])})"
        rows.append([labels[c["name"]], str(d["candidate"]), _pct(d["found"]), str(d["extra"]),
                     "-" if d["mean_iou"] is None else f"{d['mean_iou']:.4f}", drift]
                    + ([_pct(c.get("map"), c.get("map_change")), _pct(c.get("ap50"), c.get("ap50_change"))]
                       if truth else []))
    threshold = reference["detection"]["score_threshold"]
    source = (f"mAP@[.5:.95] by pycocotools against {annotations['file']}, {annotations['images']} images, "
              f"{annotations['boxes']} boxes" if truth else "no annotations (--annotations FILE adds the true mAP)")
    return [f"detections scoring >= {threshold:g}, matched to the reference's by IoU >= 0.5 and label ({source}):"] \
        + _table(rows)


def format_summary(document: dict, report_path=None, layers: int = 5) -> str:
    reference = document["reference_metrics"]
    labelled = "acc1" in reference
    labels = short_names([c["name"] for c in document["candidates"]])
    head = ["model", "precision"] + (["acc@1 (chg)", "acc@5 (chg)"] if labelled else [])
    head += ["top1 agr", "top5 agr", "cosine", "SNR dB", "max abs", "mean abs", "ms med/p95 (infer path)"]
    rows = [head, ["reference", reference["precision"]]
            + ([_pct(reference["acc1"]), _pct(reference["acc5"])] if labelled else [])
            + ["", "", "", "", "", "", _latency(reference.get("latency"))]]
    for c in document["candidates"]:
        rows.append([labels[c["name"]], c["precision"]]
                    + ([_pct(c.get("acc1"), c.get("acc1_change")), _pct(c.get("acc5"), c.get("acc5_change"))]
                       if labelled else [])
                    + [_pct(c["top1_agreement"]), _pct(c["top5_agreement"]), f"{c['cosine']:.6f}", _db(c["snr_db"]),
                       f"{c['max_abs_err']:.2e}", f"{c['mean_abs_err']:.2e}", _latency(c.get("latency"))])
    dataset = document["dataset"]
    clips = dataset.get("clips")
    counted = (f"{clips['clips']} clips of {clips['clip_len']} frames every {clips['clip_stride']} from "
               f"{clips['videos']} videos ({dataset['labelled']} labelled)" if clips else
               f"{data_count(dataset)} ({dataset['labelled']} labelled)")
    lines = [f"{counted} from {dataset['source']}; reference {document['reference']}",
             f"preprocessing: {preprocessing_text(dataset.get('preprocessing'))}"]
    if dataset.get("calibration_overlap"):
        overlap = calibration_overlap_text(dataset["calibration_overlap"], data_noun(dataset))
        lines.append(f"calibration overlap: {overlap}")
    lines += _table(rows)
    lines += _segmentation(document, labels)
    lines += _detection(document, labels)
    for c in document["candidates"]:
        lines += _outputs(labels[c["name"]], c.get("outputs") or [])
    for c in document["candidates"]:
        info = c.get("layers")
        if not info:
            continue
        if info["status"] != "ok":
            lines.append(f"{labels[c['name']]}: per-layer attribution skipped: {info['reason']}")
            continue
        by_name = {t["name"]: t for t in info["tensors"]}
        lines.append(f"{labels[c['name']]} ({c['precision']}): layers adding the most error "
                     f"({info['compared']} tensors compared on {info['images']} "
                     f"{'clips' if clips else 'images'})")
        for name in info["worst"][:layers]:
            t = by_name[name]
            lines.append(f"  layer SNR {_db(t['layer_snr_db']):>5} dB  SNR {_db(t['snr_in_db']):>5} -> "
                         f"{_db(t['snr_db']):>5} dB  {t['op']:<12} {name}")
    gates = document["gates"]
    if gates["thresholds"]:
        lines.append("gates: " + ("passed" if gates["passed"] else f"{len(gates['failures'])} FAILED"))
    if report_path is not None:
        lines.append(f"report: {report_path}")
    return "\n".join(lines)


def one_line(document: dict) -> str:
    """Each candidate's agreement in one line (compile's stage table)."""
    parts = []
    for entry in document.get("candidates", []):
        name = Path(entry["name"]).name
        agreement = entry["top1_agreement"]
        agreement = "-" if agreement is None else f"{agreement:.3f}"
        if entry.get("detection") is not None:  # a detector: the reference's detections found, and the mAP
            found = entry["detection"]
            mean_ap = "" if entry.get("map") is None else f", mAP {entry['map']:.4f} ({entry['map_change']:+.4f})"
            parts.append(f"{name}: found {found['found']:.3f} of {found['reference']} detections, "
                         f"{found['extra']} extra{mean_ap}")
            continue
        if entry.get("miou_agreement") is not None:  # a class map: agreement per pixel, and the mIoU
            miou = "" if entry.get("miou") is None else f", mIoU {entry['miou']:.4f} ({entry['miou_change']:+.4f})"
            if entry.get("mean_dice_agreement") is not None:  # a volume model: per voxel, and Dice per class
                miou += f", Dice agr {entry['mean_dice_agreement']:.4f}"
            parts.append(f"{name}: pixel agr {agreement}, mIoU agr {entry['miou_agreement']:.3f}{miou}")
            continue
        parts.append(f"{name}: top1 agr {agreement}, cos {entry['cosine']:.5f}")
    return "; ".join(parts)
