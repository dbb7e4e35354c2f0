"""report.html: one self-contained file (inline CSS, figures as base64 PNG, no script, no network).

It must open from an e-mail attachment or a CI artifact on a machine with no access to anything, so
nothing is linked: every byte it shows is in the file.
"""

from __future__ import annotations

import base64
from html import escape

from .plots import make_plots, short_names
from .summary import calibration_overlap_text, data_count, data_noun, is_detector, is_segmentation, preprocessing_text

CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 24px auto;
       max-width: 1180px; color: #1d2330; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 17px; margin-top: 28px;
     border-bottom: 1px solid #d8dce4; padding-bottom: 4px; } h3 { font-size: 15px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; }
th, td { border: 1px solid #d8dce4; padding: 3px 6px; text-align: right; white-space: nowrap; }
th { background: #f1f3f7; white-space: normal; } td.text, th.text { text-align: left; white-space: normal; }
tr.reference td { background: #f8f9fb; font-style: italic; }
.verdict { padding: 10px 14px; border-radius: 6px; font-weight: 600; margin: 12px 0; }
.pass { background: #e3f4e6; color: #1c5d2b; } .fail { background: #fbe3e3; color: #8a1c1c; }
.none { background: #eef0f4; color: #3c4454; }
.bad { color: #b0201f; font-weight: 600; } .good { color: #1c6d31; }
figure { margin: 16px 0; } figure img { max-width: 100%; border: 1px solid #e4e7ee; }
figcaption { font-size: 12px; color: #5a6272; } code { font-size: 12px; }
.meta td { text-align: left; } .muted { color: #5a6272; font-size: 12px; }
td.tensor { max-width: 420px; } td.tensor code { word-break: break-all; } .scroll { overflow-x: auto; }
"""


def _num(value, digits: int = 4, signed: bool = False) -> str:
    if value is None:
        return "&infin;"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _sci(value) -> str:
    return "&mdash;" if value is None else f"{value:.2e}"


def _db(value) -> str:
    return "&infin;" if value is None else f"{value:.1f}"


def _pct(value, change=None) -> str:
    if value is None:
        return "&mdash;"
    text = f"{100 * value:.2f}%"
    if change is not None:
        css = "bad" if change < 0 else "good" if change > 0 else ""
        text += f' <span class="{css}">({100 * change:+.2f})</span>'
    return text


def _latency(latency) -> str:
    if not latency:
        return "&mdash;"
    return f"{latency['median_ms']:.2f} / {latency['p95_ms']:.2f} <span class=muted>(b{latency['batch']})</span>"


def _verdict(gates: dict) -> str:
    if not gates["thresholds"]:
        return ('<div class="verdict none">No gates set (--atol, --min-cosine, --min-agreement, --max-acc-drop, '
                '--max-miou-drop, --max-map-drop)</div>')
    if gates["passed"]:
        limits = ", ".join(f"{k} {v:g}" for k, v in gates["thresholds"].items())
        return f'<div class="verdict pass">PASSED every gate ({escape(limits)})</div>'
    items = "".join(f"<li>{escape(f['message'])}</li>" for f in gates["failures"])
    return f'<div class="verdict fail">FAILED {len(gates["failures"])} gate(s)<ul>{items}</ul></div>'


def _summary_table(document: dict, labels: dict) -> str:
    reference = document["reference_metrics"]
    labelled = "acc1" in reference
    head = ["model", "precision", "backend"]
    head += ["acc@1 (&Delta;)", "acc@5 (&Delta;)"] if labelled else []
    head += ["top-1 agree", "top-5 agree", "cosine (min)", "SNR dB", "max abs err", "mean abs err",
             "latency ms median / p95 (as infer runs it)"]
    rows = [f'<tr class="reference"><td class="text">reference: {escape(document["reference"])}</td>'
            f'<td>{escape(reference["precision"])}</td><td>{escape(reference["backend"])}</td>'
            + (f"<td>{_pct(reference['acc1'])}</td><td>{_pct(reference['acc5'])}</td>" if labelled else "")
            + "<td></td>" * 6 + f"<td>{_latency(reference.get('latency'))}</td></tr>"]
    failed = {(f["candidate"], f["metric"]) for f in document["gates"]["failures"]}

    def cell(name, metric, text):
        return f'<td class="bad">{text}</td>' if (name, metric) in failed else f"<td>{text}</td>"

    for c in document["candidates"]:
        name = c["name"]
        row = [f'<td class="text" title="{escape(name)}">{escape(labels[name])}</td>',
               f"<td>{escape(c['precision'])}</td><td>{escape(c['backend'])}</td>"]
        if labelled:
            row.append(cell(name, "acc1_drop", _pct(c.get("acc1"), c.get("acc1_change"))))
            row.append(f"<td>{_pct(c.get('acc5'), c.get('acc5_change'))}</td>")
        row += [cell(name, "top1_agreement", _pct(c["top1_agreement"])), f"<td>{_pct(c['top5_agreement'])}</td>",
                cell(name, "cosine", f"{_num(c['cosine'], 6)} ({_num(c['cosine_min'], 6)})"),
                f"<td>{_db(c['snr_db'])}</td>", cell(name, "max_abs_err", _sci(c["max_abs_err"])),
                f"<td>{_sci(c['mean_abs_err'])}</td>", f"<td>{_latency(c.get('latency'))}</td>"]
        rows.append("<tr>" + "".join(row) + "</tr>")
    header = "".join(f"<th>{h}</th>" for h in head)
    return f"<div class=scroll><table><tr>{header}</tr>{''.join(rows)}</table></div>"


def _outputs_table(document: dict, labels: dict) -> str:
    """Every output of every candidate, where a model has several outputs or maps (dense, backbones)."""
    rows = []
    for c in document["candidates"]:
        outputs = c.get("outputs") or []
        if len(outputs) < 2 and all(o["kind"] == "logits" and o.get("batch_axis", True) for o in outputs):
            continue
        for o in outputs:
            mismatches = o.get("shape_mismatches") or 0
            rows.append(f"<tr><td class=text>{escape(labels[c['name']])}</td><td class=text>{escape(o['name'])}</td>"
                        f"<td>{escape(o['kind'])}</td><td>{'&times;'.join(map(str, o['shape']))}</td>"
                        f"<td>{'yes' if o.get('batch_axis', True) else 'no'}</td>"
                        f"<td{' class=bad' if mismatches else ''}>{mismatches}</td>"
                        f"<td>{_db(o['snr_db'])}</td><td>{_num(o['cosine'], 6)}</td><td>{_sci(o['max_abs_err'])}</td>"
                        f"<td>{_sci(o['mean_abs_err'])}</td><td>{_pct(o.get('top1_agreement'))}</td></tr>")
    if not rows:
        return ""
    head = ("<tr><th class=text>model</th><th class=text>output</th><th>kind</th><th>shape per image (first image)</th>"
            "<th>batch axis</th><th>images of another shape</th><th>SNR dB</th><th>cosine</th><th>max abs err</th>"
            "<th>mean abs err</th><th>argmax agreement</th></tr>")
    return (f"<h2>Every output</h2><p class=muted>Outputs matched by position; every element compared, image by image. "
            f"An output without a batch axis (a batch-1 detector's boxes) is its image's whole array. An image whose "
            f"output has another shape than the reference's (another number of detections) counts cosine 0 and is "
            f"left out of the errors. Agreement of the argmax over the class axis: per image for logits, per pixel "
            f"for class maps; feature maps and detection outputs have none.</p>"
            f"<div class=scroll><table>{head}{''.join(rows)}</table></div>")


def _truth_cells(candidate: dict, failed: set, gated: str, other: str) -> list[str]:
    """Two cells of a metric against the ground truth, each with its change from the reference: ``gated``
    (marked bad where its ``<gated>_drop`` gate failed) and ``other``."""
    css = ' class="bad"' if (candidate["name"], f"{gated}_drop") in failed else ""
    return [f"<td{css}>{_pct(candidate.get(gated), candidate.get(f'{gated}_change'))}</td>",
            f"<td>{_pct(candidate.get(other), candidate.get(f'{other}_change'))}</td>"]


def _table(head: list[str], rows: list[str]) -> str:
    return f"<table><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{''.join(rows)}</table>"


def _detection_table(document: dict, labels: dict) -> str:
    """Detectors: agreement of the candidates' detections with the reference's; with annotations, mAP."""
    if not is_detector(document):
        return ""
    reference, annotations = document["reference_metrics"], document["dataset"].get("annotations")
    truth = annotations is not None
    head = ["model", "precision", "detections", "found", "extra", "mean IoU", "score drift (max)"]
    head += ["mAP@[.5:.95] (&Delta;)", "AP50 (&Delta;)"] if truth else []
    rows = [f'<tr class="reference"><td class="text">reference</td><td>{escape(reference["precision"])}</td>'
            f'<td>{reference["detection"]["detections"]}</td>' + "<td></td>" * 4
            + (f"<td>{_pct(reference.get('map'))}</td><td>{_pct(reference.get('ap50'))}</td>" if truth else "")
            + "</tr>"]
    failed = {(f["candidate"], f["metric"]) for f in document["gates"]["failures"]}
    for c in document["candidates"]:
        d = c["detection"]
        drift = "&mdash;" if d["score_drift"] is None else f"{_sci(d['score_drift'])} ({_sci(d['max_score_drift'])})"
        cells = [f'<td class="text" title="{escape(c["name"])}">{escape(labels[c["name"]])}</td>',
                 f"<td>{escape(c['precision'])}</td><td>{d['candidate']}</td>",
                 f"<td{' class=bad' if d['found'] is not None and d['found'] < 1 else ''}>{_pct(d['found'])}</td>",
                 f"<td{' class=bad' if d['extra'] else ''}>{d['extra']}</td>",
                 f"<td>{'&mdash;' if d['mean_iou'] is None else _num(d['mean_iou'])}</td><td>{drift}</td>"]
        if truth:
            cells += _truth_cells(c, failed, "map", "ap50")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = _table(head, rows)
    if truth:
        source = (f"mAP@[.5:.95] and AP50 by pycocotools against <code>{escape(annotations['file'])}</code>: "
                  f"{annotations['images']} images matched by file name, {annotations['boxes']} boxes; labels taken "
                  f"as category ids; every detection the model outputs, boxes mapped back to the original image "
                  f"through the preprocessing.")
    else:
        source = "No annotations: pass <code>--annotations FILE</code> (COCO instances JSON) for the true mAP."
    threshold = reference["detection"]["score_threshold"]
    return (f"<h2>Detections</h2><p class=muted>The detections scoring at least {threshold:g}, per image. Each "
            f"candidate detection, highest score first, is matched to the reference detection of the same label "
            f"with the highest IoU, if it is at least 0.5. Found: the share of the reference's detections matched. "
            f"Extra: the candidate's detections left unmatched. Score drift: mean (largest) |&Delta;score| of the "
            f"matches. {source}</p>{table}")


def _iou_cell(class_iou: list, index: int) -> str:
    value = class_iou[index] if index < len(class_iou) else None
    return "<td>&mdash;</td>" if value is None else f"<td>{value:.4f}</td>"


def _segmentation_table(document: dict, labels: dict) -> str:
    """Class maps: pixel and mIoU agreement with the reference; with label masks, mIoU and IoU per class."""
    if not is_segmentation(document):
        return ""
    reference, masks = document["reference_metrics"], document["dataset"].get("masks")
    truth = masks is not None and reference.get("miou") is not None
    head = ["model", "precision", "pixel agreement", "mIoU agreement"]
    head += ["mIoU (&Delta;)", "pixel accuracy (&Delta;)"] if truth else []
    rows = []
    if truth:
        rows.append(f'<tr class="reference"><td class="text">reference</td><td>{escape(reference["precision"])}</td>'
                    f"<td></td><td></td><td>{_pct(reference['miou'])}</td><td>{_pct(reference['pixel_accuracy'])}</td></tr>")
    failed = {(f["candidate"], f["metric"]) for f in document["gates"]["failures"]}
    for c in document["candidates"]:
        cells = [f'<td class="text" title="{escape(c["name"])}">{escape(labels[c["name"]])}</td>',
                 f"<td>{escape(c['precision'])}</td>", f"<td>{_pct(c.get('pixel_agreement'))}</td>",
                 f"<td>{_pct(c.get('miou_agreement'))}</td>"]
        if truth:
            cells += _truth_cells(c, failed, "miou", "pixel_accuracy")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = _table(head, rows)
    if truth:
        names = reference.get("class_names") or [str(i) for i in range(len(reference["class_iou"]))]
        models = [("reference", reference)] + [(labels[c["name"]], c) for c in document["candidates"]]
        per_class = "".join(f"<tr><td class=text>{escape(name)}</td>"
                            + "".join(_iou_cell(m.get("class_iou") or [], i) for _, m in models) + "</tr>"
                            for i, name in enumerate(names))
        table += ("<details><summary>IoU per class</summary><table><tr><th class=text>class</th>"
                  + "".join(f"<th>{escape(label)}</th>" for label, _ in models) + f"</tr>{per_class}</table></details>")
        source = (f"Against the label masks in <code>{escape(masks['folder'])}</code> ({masks['labelled_pixels']} "
                  f"labelled pixels; 255 = ignore). mIoU: IoU per class, averaged over the classes present in the "
                  f"masks or the prediction.")
    else:
        source = "No label masks: pass <code>--masks DIR</code> for the true mIoU."
    return (f"<h2>Segmentation</h2><p class=muted>The argmax of each class map per pixel. Pixel agreement: the share "
            f"of pixels where the candidate's class is the reference's. mIoU agreement: the IoU of the candidate's "
            f"classes with the reference's, per class, averaged. {source}</p>{table}")


def _variants_table(document: dict, labels: dict) -> str:
    """The plugin variants `build --compare` timed for an engine candidate, fastest kept."""
    parts = []
    for c in document["candidates"]:
        rows = c.get("engine_variants") or []
        if not rows:
            continue
        body = "".join(f"<tr><td class=text>{escape(r['variant'])}{' (kept)' if r['chosen'] else ''}</td>"
                       f"<td>{r['median_ms']:.3f}</td><td>{r['vs_fastest']:.3f}&times;</td>"
                       f"<td>{r['plugin_layers']}</td></tr>" for r in rows)
        parts.append(f"<h3>{escape(labels[c['name']])}</h3><table><tr><th class=text>variant</th><th>GPU ms "
                     f"(median)</th><th>vs fastest</th><th>plugin layers</th></tr>{body}</table>")
    if not parts:
        return ""
    return ("<h2>Plugin variants timed on the GPU</h2><p class=muted>Each variant of the same graph built and timed "
            "by <code>build --compare</code>; the fastest is the engine.</p>" + "".join(parts))


def _layer_row(t: dict) -> str:
    cells = [str(t["index"]), f"<code>{escape(t['name'])}</code>", escape(t["op"]),
             "&times;".join(map(str, t["shape"])), _db(t["snr_in_db"]), _db(t["snr_db"]), _db(t["snr_lost_db"]),
             f"<b>{_db(t['layer_snr_db'])}</b>", _num(t["cosine"], 6), _sci(t["max_abs_err"])]
    return "<tr>" + "".join(f"<td class='text tensor'>{c}</td>" if i == 1 else f"<td>{c}</td>"
                            for i, c in enumerate(cells)) + "</tr>"


def _layer_rows(tensors: list[dict]) -> str:
    return "".join(_layer_row(t) for t in tensors)


LAYER_HEAD = ("<tr><th>#</th><th class=text>tensor</th><th>op</th><th>shape</th><th>SNR in dB</th>"
              "<th>SNR out dB</th><th>SNR lost dB</th><th>layer SNR dB</th><th>cosine</th><th>max abs err</th></tr>")


def _layers(document: dict, labels: dict) -> str:
    parts = []
    for c in document["candidates"]:
        layers = c.get("layers")
        if not layers:
            continue
        title = f"<h3>{escape(labels[c['name']])} ({escape(c['precision'])})</h3>"
        if layers["status"] != "ok":
            parts.append(f"{title}<p>Skipped: {escape(layers['reason'])}</p>")
            continue
        by_name = {t["name"]: t for t in layers["tensors"]}
        worst = [by_name[n] for n in layers["worst"]]
        parts.append(
            f"{title}<p class=muted>{layers['compared']} tensors compared with <code>{escape(layers['fp32'])}</code>"
            f" on {layers['images']} images, matched by name and shape ({layers['shape_mismatches']} same-named "
            f"tensors differed in shape). Ranked by layer SNR, the SNR of the noise the layer adds by itself (lowest = "
            f"hurts most): its own damage, not what it inherited. SNR lost = SNR in &minus; SNR out.</p>"
            f"<div class=scroll><table>{LAYER_HEAD}{_layer_rows(worst)}</table></div>"
            f"<details><summary>all {len(layers['tensors'])} tensors in graph order</summary>"
            f"<div class=scroll><table>{LAYER_HEAD}{_layer_rows(layers['tensors'])}</table></div></details>")
    if not parts:
        return ""
    return "<h2>Which layers hurt (FP16 / INT8 candidates)</h2>" + "".join(parts)


def _meta(document: dict) -> str:
    dataset, machine, tool = document["dataset"], document["machine"], document["tool"]
    labels = (f"{dataset['labelled']} labelled ({dataset['label_source']}, mapped by {dataset['label_mapping']})"
              if dataset["labelled"] else "unlabelled: accuracy not measured, agreement only")
    rows = [("reference", document["reference"]), ("data", f"{dataset['source']}: {data_count(dataset)}, "
                                                           f"{labels}; batch {dataset['batch']}"),
            ("calibration overlap", calibration_overlap_text(dataset.get("calibration_overlap"), data_noun(dataset))),
            ("preprocessing", preprocessing_text(dataset.get("preprocessing"))),
            ("machine", f"{machine['processor']}, {machine['cpu_count']} CPUs, load {machine['load_average_1min']}, "
                        f"{machine['platform']}, onnxruntime {machine['onnxruntime']}"),
            ("created", f"{document['created']} by {tool['name']} {tool['version']} "
                        f"(report schema {document['schema_version']})")]
    return "<table class=meta>" + "".join(f"<tr><th>{k}</th><td>{escape(str(v))}</td></tr>" for k, v in rows) + \
        "</table>"


def render_html(document: dict, plots: dict[str, bytes] | None = None) -> str:
    """The whole report as one string; ``plots`` defaults to :func:`make_plots` of ``document``."""
    plots = make_plots(document) if plots is None else plots
    labels = short_names([c["name"] for c in document["candidates"]])
    figures = "".join(
        f'<figure><img alt="{escape(title)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        f"<figcaption>{escape(title)}</figcaption></figure>" for title, png in plots.items())
    if not plots:
        figures = "<p class=muted>No figures: nothing to plot in this run.</p>"
    notes = "".join(f"<li>{escape(n)}</li>" for n in document["notes"])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>swin-trt validation report</title>
<style>{CSS}</style></head><body>
<h1>swin-trt validation report</h1>
{_meta(document)}
{_verdict(document["gates"])}
<h2>Candidates against the reference</h2>
{_summary_table(document, labels)}
<p class=muted>Agreement: the candidate's top-1 equals (top-5 contains) the reference's top-1 (per pixel for class
maps). SNR: the reference output's energy over the error's, in dB (&infin; = identical); the first output's here.
Latency: per batch, on the path infer runs (INT8: the fast integer kernels; accuracy used the exact emulation), this machine.</p>
{_segmentation_table(document, labels)}
{_detection_table(document, labels)}
{_outputs_table(document, labels)}
{_variants_table(document, labels)}
<h2>Figures</h2>
{figures}
{_layers(document, labels)}
<h2>Notes</h2><ul>{notes}</ul>
<p class=muted>report.json beside this file has every number shown here (schema: docs/report-schema.md).</p>
</body></html>
"""
