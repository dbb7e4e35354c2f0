"""``--precision best``: INT8 where it is harmless, FP16 elsewhere, under an accuracy budget against FP32.

1. Sensitivity: each layer quantized alone (everything else float32), on the held-out images, through the
   switchable probe graph (:mod:`.switchable`): output cosine and top-1 agreement against FP32. A layer's
   sensitivity is ``1 - cosine`` (continuous, so it ranks even when top-1 does not move).
2. Fallback search: the k most sensitive layers stay unquantized; the smallest k whose all-but-k INT8
   probe meets ``min_cosine`` and ``min_agreement`` is found by bisection (error grows with the set of
   quantized layers), then the real graph (INT8 layers + FP16 elsewhere) is built and checked; while it
   misses the budget, more layers fall back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np
import onnx

from .defaults import DEFAULT_MIN_AGREEMENT, DEFAULT_MIN_COSINE
from .evaluate import agreement, run_logits
from .int8 import Int8Options, quantizable_nodes, quantize_int8
from ..backends.onnxruntime import create_session
from .switchable import build_probe, flags, probe_layers

logger = logging.getLogger(__name__)


@dataclass
class Budget:
    min_agreement: float = DEFAULT_MIN_AGREEMENT
    min_cosine: float = DEFAULT_MIN_COSINE

    def holds(self, metrics: dict) -> bool:
        return metrics["top1_agreement"] >= self.min_agreement and metrics["cosine"] >= self.min_cosine


@dataclass(frozen=True)
class Built:
    """A graph ``build`` made, with the reports that describe it (handed back to the caller as they are)."""
    model: onnx.ModelProto
    reports: dict = field(default_factory=dict)


@dataclass
class MixedReport:
    sensitivity: dict[str, dict] = field(default_factory=dict)  # layer -> {cosine, top1_agreement}
    fallback: list[str] = field(default_factory=list)  # most sensitive first
    all_int8: dict = field(default_factory=dict)
    final: dict = field(default_factory=dict)
    met: bool = False

    def to_dict(self) -> dict:
        return {"fallback": [{"layer": name, **self.sensitivity[name]} for name in self.fallback],
                "all_int8": self.all_int8, "final": self.final, "budget_met": self.met,
                "layers_measured": len(self.sensitivity)}


def _summary(metrics: dict) -> dict:
    # 9 decimals: one layer alone in INT8 costs 1e-6..1e-4 of cosine on Swin-T, so 6 decimals tied whole
    # families of layers at 0 and the ranking (which layers fall back first) lost its order
    return {"cosine": round(metrics["cosine"], 9), "top1_agreement": round(metrics["top1_agreement"], 4)}


def mixed_precision(model: onnx.ModelProto, scales: dict[str, float], pixels: np.ndarray, *,
                    options: Int8Options, budget: Budget, build: Callable[[onnx.ModelProto, Int8Options], Built],
                    log: Callable[[str], None] | None = None) -> tuple[Built, MixedReport]:
    """Returns ``(the final Built, MixedReport)``. ``build(model, options)`` makes the real mixed graph
    (INT8 QDQ + FP16 base) for a set of fallbacks in ``options.skip``. ``log`` hears the search's steps
    (default: this module's logger, at INFO)."""
    log = log or logger.info
    report = MixedReport()
    reference = run_logits(create_session(model), pixels)
    _, plan = quantize_int8(model, scales, options)  # which layers the options leave quantizable at all
    candidates = [name for name in quantizable_nodes(model) if name not in plan.left_float]
    probe = build_probe(model, scales, candidates)
    layers = probe_layers(probe)
    session = create_session(probe, int8="exact")

    def measure(on) -> dict:
        return agreement(reference, run_logits(session, pixels, feeds=flags(probe, on)))

    everything = set(layers)
    report.all_int8 = _summary(measure(everything))
    log(f"all {len(layers)} INT8 layers: cosine {report.all_int8['cosine']:.6f}, "
        f"top-1 agreement {report.all_int8['top1_agreement']:.4f} (budget: cosine >= {budget.min_cosine}, "
        f"agreement >= {budget.min_agreement}) on {len(pixels)} held-out images")
    order: list[str] = []

    def rank() -> list[str]:
        log(f"measuring the sensitivity of {len(layers)} layers (each alone in INT8)")
        for layer in layers:
            report.sensitivity[layer] = _summary(measure({layer}))
        return sorted(layers, key=lambda name: (report.sensitivity[name]["cosine"],
                                                report.sensitivity[name]["top1_agreement"]))

    k = 0
    if not budget.holds(report.all_int8):
        order = rank()
        k = _smallest_fallback(order, lambda n: budget.holds(measure(everything - set(order[:n]))))
    while True:
        skip = frozenset(order[:k])
        final = build(model, replace(options, skip=skip))
        report.final = _summary(agreement(reference, run_logits(create_session(final.model, int8="exact"), pixels)))
        report.met = budget.holds(report.final)
        if report.met:
            break
        if not order:  # the FP16 parts cost more than the probe (FP32 around INT8) showed: rank now
            order = rank()
        if k >= len(order):
            break
        k = min(len(order), k + max(1, len(order) // 10))
        log(f"mixed graph: cosine {report.final['cosine']:.6f}, top-1 agreement "
            f"{report.final['top1_agreement']:.4f}: budget missed, {k} layers fall back")
    report.fallback = list(order[:k])
    return final, report


def _smallest_fallback(order: list[str], passes: Callable[[int], bool]) -> int:
    """The smallest n in [0, len(order)] with ``passes(n)`` (assumed monotone); len(order) if none."""
    lo, hi = 0, len(order)
    if not passes(hi):
        return hi
    while lo < hi:
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
