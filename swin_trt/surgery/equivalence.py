"""Prove a rewrite kept what the graph computes: run source and result on the same inputs, compare everything.

Every rewrite is checked before it is handed back: both graphs run in ONNX Runtime (plugin nodes through
their CPU lowerings, no graph optimisations, so each runs as written) at every probe size the rewrite used,
on several pixel contents each (:func:`.probes.content_feeds`: noise, a smooth pattern and a real photo, on
which a trained detector finds something to compare). Every output must have the same shape and
type; integer outputs (labels, indices) must be equal; float outputs may differ by float32 rounding only.

The bound: the rewrite folds constants and replaces gathers (exact) and lowers fused attention into the
same ops in the same order; where an op is reordered, each one costs at most a few units in the last
place. :data:`ULPS` of the output's largest magnitude covers that through a Swin's depth by two orders of
magnitude, while a wrong window, shift or bias changes outputs by whole percent. On the detectors and
classifiers in the tests the measured difference is 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from ..errors import UserError
from ..ops.lowering import lower_plugins
from . import probes

ULPS = 1024  # float32 units in the last place of each output's largest magnitude: the rounding allowed
EPS32 = float(np.finfo(np.float32).eps)


_ADVICE = ("A rewrite must never change what a graph computes: keep the source graph (or keep the window ops "
           "native), and report the graph to swin-trt")


class RewriteChangedGraph(UserError):
    """The rewritten graph computes something else than its source: it is not written."""


@dataclass
class Equivalence:
    """What was compared: sizes, contents per size, and the largest difference seen per output."""

    sizes: list[dict] = field(default_factory=list)
    contents: int = probes.CHECK_CONTENTS
    max_abs_diff: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"sizes": self.sizes, "contents": self.contents, "max_abs_diff": self.max_abs_diff}

    def describe(self) -> str:
        worst = max(self.max_abs_diff.values(), default=0.0)
        at = "; ".join(probes.describe(s) for s in self.sizes)
        return (f"checked against the source: {len(self.max_abs_diff)} output(s) at {at} on {self.contents} pixel "
                f"contents each: equal (largest difference {worst:.3g})")


def _session(model: onnx.ModelProto):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(lower_plugins(model).SerializeToString(), options, providers=["CPUExecutionProvider"])


def _difference(expected: np.ndarray, got: np.ndarray) -> tuple[float, str]:
    """The largest absolute difference and, where it is beyond rounding, why the two differ ("" if alike)."""
    if expected.shape != got.shape:
        return float("inf"), f"shape {list(got.shape)} where the source gives {list(expected.shape)}"
    if expected.dtype != got.dtype:
        return float("inf"), f"type {got.dtype} where the source gives {expected.dtype}"
    if expected.size == 0:
        return 0.0, ""
    if not np.issubdtype(expected.dtype, np.floating):
        unequal = np.flatnonzero(expected.ravel() != got.ravel())
        return (0.0, "") if not len(unequal) else (float("inf"), f"{len(unequal)} of {expected.size} values differ")
    expected64, got64 = expected.astype(np.float64), got.astype(np.float64)
    if not np.array_equal(np.isnan(expected64), np.isnan(got64)):
        return float("inf"), "NaN where the source has a number (or the other way round)"
    finite = np.isfinite(expected64)
    if not np.array_equal(expected64[~finite & ~np.isnan(expected64)], got64[~finite & ~np.isnan(got64)]):
        return float("inf"), "infinities differ"
    diff = np.abs(expected64[finite] - got64[finite])
    worst = float(diff.max(initial=0.0))
    scale = float(np.abs(expected64[finite]).max(initial=0.0))
    bound = ULPS * EPS32 * scale
    if worst > bound:
        index = int(np.flatnonzero(finite.ravel())[int(diff.argmax())])
        return worst, (f"max abs difference {worst:.3g} > {bound:.3g} ({ULPS} float32 ulps of its largest value "
                       f"{scale:.3g}) at flat index {index}")
    return worst, ""


def probe_sizes(model: onnx.ModelProto, sizes: list[dict]) -> list[dict]:
    """The sizes to compare at: those the rewrite probed, or for a graph it never needed to run, the first
    candidates (one for a static graph)."""
    if sizes:
        return list(sizes)
    dims = probes.dynamic_dims(model)
    return dims.candidates()[:dims.wanted]


def check_equivalent(source: onnx.ModelProto, result: onnx.ModelProto, sizes: list[dict]) -> Equivalence:
    """Run ``source`` and ``result`` at every size of ``sizes`` on every probe content and compare each output.

    Raises :class:`RewriteChangedGraph` naming the first output that differs, where and by how much."""
    sizes = probe_sizes(source, sizes)
    checked = Equivalence(sizes=[])
    before, after = _session(source), _session(result)
    names = [o.name for o in before.get_outputs()]
    if len(after.get_outputs()) != len(names):
        raise RewriteChangedGraph(f"the rewritten graph has {len(after.get_outputs())} outputs where its source has "
                                  f"{len(names)}: nothing was written. This is a bug in the rewrite: please report it")
    for size in sizes:
        ran = 0
        for content in range(probes.CHECK_CONTENTS):
            feeds = probes.content_feeds(source, size, content)
            try:
                expected = before.run(None, feeds)
            except Exception:  # onnxruntime's own types: a size the source rejects says nothing of the rewrite
                continue
            ran += 1
            where = f"at {probes.describe(size)} on pixel content {content}"
            try:
                got = after.run(None, feeds)
            except Exception as exc:  # the source ran on these inputs: the rewrite broke the graph
                raise RewriteChangedGraph(f"the rewritten graph fails in ONNX Runtime {where}, where its source runs: "
                                          f"{str(exc).splitlines()[0][:300]}. Nothing was written. " + _ADVICE) from None
            for name, e, g in zip(names, expected, got):
                worst, why = _difference(np.asarray(e), np.asarray(g))
                if why:
                    raise RewriteChangedGraph(f"the rewritten graph differs from its source: output {name!r} {where}: "
                                              f"{why}. Nothing was written. " + _ADVICE)
                checked.max_abs_diff[name] = max(checked.max_abs_diff.get(name, 0.0), worst)
        if ran:
            checked.sizes.append(size)
    if not checked.sizes:
        raise UserError("could not check the rewrite: the source graph failed in ONNX Runtime at every probe size "
                        f"({'; '.join(probes.describe(s) for s in sizes)}). Check that it runs in ONNX Runtime")
    return checked
