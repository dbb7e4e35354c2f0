"""The terminal summary: one table row per model, then the worst layers of each FP16 / INT8 candidate."""

from __future__ import annotations

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


def format_summary(document: dict, report_path=None, layers: int = 5) -> str:
    reference = document["reference_metrics"]
    labelled = "acc1" in reference
    labels = short_names([c["name"] for c in document["candidates"]])
    head = ["model", "precision"] + (["acc@1 (chg)", "acc@5 (chg)"] if labelled else [])
    head += ["top1 agr", "top5 agr", "cosine", "SNR dB", "max abs", "mean abs", "ms med/p95"]
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
    lines = [f"{dataset['images']} images ({dataset['labelled']} labelled) from {dataset['source']}; "
             f"reference {document['reference']}", *_table(rows)]
    for c in document["candidates"]:
        info = c.get("layers")
        if not info:
            continue
        if info["status"] != "ok":
            lines.append(f"{labels[c['name']]}: per-layer attribution skipped: {info['reason']}")
            continue
        by_name = {t["name"]: t for t in info["tensors"]}
        lines.append(f"{labels[c['name']]} ({c['precision']}): layers adding the most error "
                     f"({info['compared']} tensors compared on {info['images']} images)")
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
