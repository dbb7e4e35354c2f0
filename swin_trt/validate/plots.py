"""The report's figures as PNG bytes (matplotlib Figure objects: no display, no global backend switch)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from ..model_ref import ModelRef
from .metrics import SNR_CEILING_DB


def short_names(names: list[str]) -> dict[str, str]:
    """File names where they are unique (full names otherwise): plot labels must stay readable."""
    short = {n: n if ModelRef.parse(n).kind == "torch" else Path(n).name for n in names}
    if len(set(short.values())) != len(short):
        return {n: n for n in names}
    return short


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _accuracy(new, document: dict, labels: dict) -> bytes:
    candidates = document["candidates"]
    reference = document["reference_metrics"]
    figure, axis = new((8, 3.6))
    if "acc1" in reference:
        rows = [("reference", reference.get("precision", ""), reference["acc1"], reference["acc5"])]
        rows += [(labels[c["name"]], c["precision"], c.get("acc1", 0.0), c.get("acc5", 0.0)) for c in candidates]
        series, title = ("acc@1", "acc@5"), "Accuracy by precision (labelled images)"
    else:
        rows = [(labels[c["name"]], c["precision"], c["top1_agreement"], c["top5_agreement"]) for c in candidates
                if c["top1_agreement"] is not None]  # feature outputs have no class axis to agree on
        if not rows:
            return None
        series, title = ("top-1 agreement", "top-5 agreement"), "Agreement with the reference (unlabelled images)"
    x = np.arange(len(rows))
    for offset, label, column in ((-0.2, series[0], 2), (0.2, series[1], 3)):
        values = [r[column] for r in rows]
        bars = axis.bar(x + offset, values, 0.4, label=label)
        axis.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=7)
    axis.set_xticks(x, [f"{r[0]}\n{r[1]}" for r in rows], fontsize=8)
    axis.set_ylim(0, 1.12)
    axis.set_title(title)
    axis.legend(loc="lower right", fontsize=8)
    return _png(figure)


def _ceiling(snr) -> float:
    """None (infinite in report.json) and anything above the ceiling plot at the ceiling."""
    return SNR_CEILING_DB if snr is None else min(snr, SNR_CEILING_DB)


def _layer_snr(new, document: dict, labels: dict) -> bytes | None:
    attributed = [c for c in document["candidates"] if (c.get("layers") or {}).get("status") == "ok"]
    if not attributed:
        return None
    figure, (top, bottom) = new((10, 6), 2, 1, sharex=True)
    for entry in attributed:
        tensors = entry["layers"]["tensors"]
        x = [t["index"] for t in tensors]
        snr = [_ceiling(t["snr_db"]) for t in tensors]
        label = f"{labels[entry['name']]} ({entry['precision']})"
        top.plot(x, snr, marker=".", markersize=3, linewidth=1, label=label)
        # Points, not a line: neighbours in graph order are not a series. Layers that add no noise
        # (layer SNR infinite) are left out.
        adding = [t for t in tensors if t["layer_snr_db"] is not None and t["layer_snr_db"] < SNR_CEILING_DB]
        bottom.scatter([t["index"] for t in adding], [t["layer_snr_db"] for t in adding], s=9, label=label)
        for t in sorted(adding, key=lambda t: t["layer_snr_db"])[:3]:
            bottom.annotate(t["op"], (t["index"], t["layer_snr_db"]), fontsize=7, xytext=(4, 2),
                            textcoords="offset points")
    top.set_ylabel("SNR vs FP32 (dB)")
    top.set_title("Per-layer SNR along the network (higher is better)")
    top.legend(fontsize=8)
    bottom.set_ylabel("SNR of the noise the\nlayer adds (dB, low = hurts)")
    bottom.set_xlabel("compared tensor, in FP32 graph order")
    return _png(figure)


def _latency(new, document: dict, labels: dict) -> bytes | None:
    rows = [("reference", document["reference_metrics"])]
    rows += [(labels[c["name"]], c) for c in document["candidates"]]
    rows = [(name, entry) for name, entry in rows if entry.get("latency")]
    if not rows:
        return None
    figure, axis = new((8, 0.5 * len(rows) + 1.5))
    medians = [entry["latency"]["median_ms"] for _, entry in rows]
    p95 = [entry["latency"]["p95_ms"] for _, entry in rows]
    y = np.arange(len(rows))
    axis.barh(y, medians, xerr=[np.zeros(len(rows)), np.subtract(p95, medians)], capsize=3, color="#4c72b0")
    axis.set_yticks(y, [f"{name} ({entry['precision']}, {entry['backend']}, batch {entry['latency']['batch']})"
                        for name, entry in rows], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlabel("ms per batch: bar = median, whisker = p95")
    axis.set_title("Latency by precision on this machine, on the path infer runs")
    return _png(figure)


def _histograms(new, document: dict, labels: dict) -> bytes | None:
    candidates = [c for c in document["candidates"] if c.get("error_histogram")]
    if not candidates:
        return None
    figure, axis = new((8, 3.6))
    for entry in candidates:
        edges = np.asarray(entry["error_histogram"]["bin_edges"])
        counts = np.asarray(entry["error_histogram"]["counts"], dtype=float)
        # Bin i spans [edges[i-1], edges[i]); bin 0 (below 1e-9, zeros included) is drawn at 1e-9.5.
        left = np.concatenate([[edges[0] / 10 ** 0.5], edges])
        axis.step(left, counts / max(counts.sum(), 1), where="post",
                  label=f"{labels[entry['name']]} ({entry['precision']})")
    # Of the first output: logits for a classifier, but a detector's boxes, a backbone's first stage.
    first = (document["reference_metrics"].get("outputs") or [{"kind": "logits"}])[0]
    what = "logit" if first["kind"] == "logits" else f"element of {first.get('name', 'the first output')}"
    axis.set_xscale("log")
    axis.set_xlabel(f"|candidate - reference| per {what} (leftmost step: exactly 0 or below 1e-9)")
    axis.set_ylabel(f"fraction of {what}s")
    axis.set_title("Error histograms of the logits" if first["kind"] == "logits" else
                   f"Error histograms of the first output ({first.get('name', '?')}, {first['kind']})")
    axis.legend(fontsize=8)
    return _png(figure)


def _segmentation(new, document: dict, labels: dict) -> bytes | None:
    """Per model: mIoU against the label masks, and the candidates' mIoU and pixel agreement with the reference."""
    reference = document["reference_metrics"]
    candidates = [c for c in document["candidates"] if c.get("miou_agreement") is not None]
    if not candidates:
        return None
    rows = [("reference", reference.get("precision", ""), reference.get("miou"), None, None)] \
        if reference.get("miou") is not None else []
    rows += [(labels[c["name"]], c["precision"], c.get("miou"), c["miou_agreement"], c["pixel_agreement"])
             for c in candidates]
    series = [(2, "mIoU (label masks)"), (3, "mIoU agreement with the reference"), (4, "pixel agreement")]
    series = [(column, name) for column, name in series if any(r[column] is not None for r in rows)]
    figure, axis = new((8, 3.8))
    x = np.arange(len(rows))
    width = 0.8 / len(series)
    for k, (column, name) in enumerate(series):
        positions = [i for i, r in enumerate(rows) if r[column] is not None]
        values = [rows[i][column] for i in positions]
        bars = axis.bar(x[positions] + (k - (len(series) - 1) / 2) * width, values, width, label=name)
        axis.bar_label(bars, labels=[f"{v:.3f}" for v in values], fontsize=7)
    axis.set_xticks(x, [f"{r[0]}\n{r[1]}" for r in rows], fontsize=8)
    axis.set_ylim(0, 1.3)  # room above the bars for the legend
    axis.set_title("Segmentation by precision: mIoU and agreement with the reference")
    axis.legend(loc="upper center", ncol=len(series), fontsize=8)
    return _png(figure)


def _class_iou(new, document: dict, labels: dict) -> bytes | None:
    """IoU of every class against the label masks, reference and candidates side by side."""
    reference = document["reference_metrics"]
    if reference.get("class_iou") is None:
        return None
    rows = [("reference", reference["class_iou"])]
    rows += [(labels[c["name"]], c["class_iou"]) for c in document["candidates"] if c.get("class_iou")]
    classes = len(reference["class_iou"])
    names = reference.get("class_names") or [str(i) for i in range(classes)]
    figure, axis = new((max(8, 0.6 * classes + 2), 3.8))
    x = np.arange(classes)
    width = 0.8 / len(rows)
    for k, (name, iou) in enumerate(rows):
        values = [np.nan if v is None else v for v in iou]  # a class absent from masks and predictions: no bar
        axis.bar(x + (k - (len(rows) - 1) / 2) * width, values, width, label=name)
    axis.set_xticks(x, names, fontsize=8, rotation=30, ha="right")
    axis.set_ylim(0, 1.05)
    axis.set_ylabel("IoU")
    axis.set_title("IoU per class against the label masks")
    axis.legend(fontsize=8)
    return _png(figure)


def _detection(new, document: dict, labels: dict) -> bytes | None:
    """Per candidate: the share of the reference's detections found, extra detections (as a share of the
    reference's) and mean IoU of the matches; with annotations, beside it mAP and AP50 of every model."""
    reference = document["reference_metrics"]
    candidates = [c for c in document["candidates"] if c.get("detection")]
    if reference.get("detection") is None or not candidates:
        return None
    truth = reference.get("map") is not None
    figure, axes = new((11, 3.8) if truth else (8, 3.8), 1, 2 if truth else 1)
    agreement = axes[0] if truth else axes
    count = max(reference["detection"]["detections"], 1)
    series = [("found", [c["detection"]["found"] for c in candidates]),
              ("extra (share of the reference's count)", [c["detection"]["extra"] / count for c in candidates]),
              ("mean IoU of the matches", [c["detection"]["mean_iou"] for c in candidates])]
    x = np.arange(len(candidates))
    width = 0.8 / len(series)
    for k, (name, values) in enumerate(series):
        shown = [np.nan if v is None else v for v in values]
        bars = agreement.bar(x + (k - 1) * width, shown, width, label=name)
        agreement.bar_label(bars, labels=["-" if v is None else f"{v:.3f}" for v in values], fontsize=7)
    agreement.set_xticks(x, [f"{labels[c['name']]}\n{c['precision']}" for c in candidates], fontsize=8)
    agreement.set_ylim(0, 1.3)  # room above the bars for the legend
    agreement.set_title(f"Detections against the reference (score >= "
                        f"{reference['detection']['score_threshold']:g})")
    agreement.legend(loc="upper center", ncol=2, fontsize=7)
    if truth:
        rows = [("reference", reference)] + [(labels[c["name"]], c) for c in candidates]
        x = np.arange(len(rows))
        for offset, key, name in ((-0.2, "map", "mAP@[.5:.95]"), (0.2, "ap50", "AP50")):
            values = [entry.get(key) for _, entry in rows]
            bars = axes[1].bar(x + offset, [np.nan if v is None else v for v in values], 0.4, label=name)
            axes[1].bar_label(bars, labels=["-" if v is None else f"{v:.3f}" for v in values], fontsize=7)
        axes[1].set_xticks(x, [name for name, _ in rows], fontsize=8)
        axes[1].set_ylim(0, 1.3)
        axes[1].set_title("mAP against the annotations (pycocotools)")
        axes[1].legend(loc="upper center", ncol=2, fontsize=8)
    return _png(figure)


def make_plots(document: dict) -> dict[str, bytes]:
    """``{title: PNG bytes}`` for every figure that has data."""
    # Figure objects, not pyplot: no global backend switch in a caller's process (a notebook's).
    from matplotlib.figure import Figure

    def new(size, *grid, **options):
        figure = Figure(figsize=size)
        return figure, figure.subplots(*grid, **options)

    labels = short_names([c["name"] for c in document["candidates"]])
    figures = {"Accuracy by precision": _accuracy, "Segmentation by precision": _segmentation,
               "IoU per class": _class_iou, "Detections by precision": _detection, "Per-layer SNR": _layer_snr,
               "Latency by precision": _latency, "Error histograms": _histograms}
    plots = {}
    for title, draw in figures.items():
        png = draw(new, document, labels)
        if png:
            plots[title] = png
    return plots
