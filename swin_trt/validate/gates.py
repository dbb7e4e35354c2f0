"""Deployment gates: thresholds on a candidate's metrics; a failure names the metric and the candidate."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Gates:
    atol: float | None = None  # max_abs_err must be <= atol
    min_cosine: float | None = None  # cosine (mean over images) must be >= this
    min_agreement: float | None = None  # top1_agreement must be >= this
    max_acc_drop: float | None = None  # reference acc1 - candidate acc1 must be <= this (a fraction)
    max_miou_drop: float | None = None  # reference mIoU - candidate mIoU must be <= this (label masks)
    max_map_drop: float | None = None  # reference mAP - candidate mAP must be <= this (COCO annotations)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def check(gates: Gates, entry: dict) -> list[dict]:
    """The failed gates of one candidate entry (``name`` and metrics, as in report.json).

    The accuracy, mIoU and mAP gates allow 1e-9 of slack: they are ratios, and 0.5 - 0.49 is not exactly 0.01.
    """
    name, failures = entry["name"], []

    def fail(metric, value, option, threshold, relation):
        failures.append({"candidate": name, "metric": metric, "value": value, "gate": option,
                         "threshold": threshold,
                         "message": f"{name}: {metric} {value:.6g} {relation} {option} {threshold:g}"})

    if gates.atol is not None and entry["max_abs_err"] > gates.atol:
        fail("max_abs_err", entry["max_abs_err"], "--atol", gates.atol, ">")
    elif gates.atol is not None and entry.get("shape_mismatches"):  # images with no element to hold to --atol
        failures.append({"candidate": name, "metric": "shape_mismatches", "value": entry["shape_mismatches"],
                         "gate": "--atol", "threshold": gates.atol,
                         "message": f"{name}: the first output's shape differs from the reference's on "
                                    f"{entry['shape_mismatches']} image(s) (another number of detections): "
                                    f"--atol {gates.atol:g} cannot hold there"})
    if gates.min_cosine is not None and entry["cosine"] < gates.min_cosine:
        fail("cosine", entry["cosine"], "--min-cosine", gates.min_cosine, "<")
    if gates.min_agreement is not None and entry["top1_agreement"] is None:
        failures.append({"candidate": name, "metric": "top1_agreement", "value": None, "gate": "--min-agreement",
                         "threshold": gates.min_agreement,
                         "message": f"{name}: top1_agreement is not measured for feature or detection outputs (no "
                                    f"class axis): gate them with --min-cosine or --atol (detectors: --max-map-drop)"})
    elif gates.min_agreement is not None and entry["top1_agreement"] < gates.min_agreement:
        fail("top1_agreement", entry["top1_agreement"], "--min-agreement", gates.min_agreement, "<")
    if gates.max_acc_drop is not None and "acc1_change" in entry and -entry["acc1_change"] > gates.max_acc_drop + 1e-9:
        fail("acc1_drop", -entry["acc1_change"], "--max-acc-drop", gates.max_acc_drop, ">")
    if gates.max_miou_drop is not None and entry.get("miou_change") is not None \
            and -entry["miou_change"] > gates.max_miou_drop + 1e-9:
        fail("miou_drop", -entry["miou_change"], "--max-miou-drop", gates.max_miou_drop, ">")
    if gates.max_map_drop is not None and entry.get("map_change") is None:
        failures.append({"candidate": name, "metric": "map_drop", "value": None, "gate": "--max-map-drop",
                         "threshold": gates.max_map_drop,
                         "message": f"{name}: mAP is not measured (no annotated box on the validated images): "
                                    f"--max-map-drop needs annotations with boxes on them"})
    elif gates.max_map_drop is not None and -entry["map_change"] > gates.max_map_drop + 1e-9:
        fail("map_drop", -entry["map_change"], "--max-map-drop", gates.max_map_drop, ">")
    return failures
