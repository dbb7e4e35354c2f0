"""report.json: its version, the keys every consumer may rely on, and JSON-safe numbers.

docs/report-schema.md documents every field. Bump SCHEMA_VERSION when a key changes meaning or goes away;
adding keys does not bump it.
"""

from __future__ import annotations

import math

# 1 was the unversioned first `validate --json` (name, max_abs_err, cosine, top1_agreement, ...).
SCHEMA_VERSION = 2

CANDIDATE_KEYS = ("name", "backend", "precision", "images", "max_abs_err", "mean_abs_err", "cosine",
                  "top1_agreement", "top5_agreement", "snr_db", "latency", "error_histogram", "layers")
DOCUMENT_KEYS = ("schema_version", "tool", "created", "machine", "reference", "reference_metrics", "data",
                 "dataset", "candidates", "gates", "notes")


def json_safe(value):
    """Infinite or NaN floats -> ``None`` (JSON has no such numbers); recurses into dicts and lists.

    An SNR of ``None`` means the two outputs were identical (infinite SNR); see the schema doc.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def missing_keys(document: dict) -> list[str]:
    """Keys the schema promises that ``document`` lacks (empty for a valid report)."""
    missing = [k for k in DOCUMENT_KEYS if k not in document]
    for index, entry in enumerate(document.get("candidates", [])):
        missing += [f"candidates[{index}].{k}" for k in CANDIDATE_KEYS if k not in entry]
    return missing
