"""The rewrite pipeline: simplify, match, replace, clean up; and the report of what it did.

Which plugin families replace their native ops is a choice (:mod:`swin_trt.surgery.variant`).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field

import onnx
import onnx_graphsurgeon as gs

from ..errors import UserError
from ..ops import schema
from . import attention, windows
from .cleanup import simplify
from .fuse_gathers import fuse_gathers as fuse_block_gathers
from .equivalence import Equivalence, check_equivalent
from .variant import DEFAULT_FUSE_ATTENTION, DEFAULT_FUSE_GATHERS, DEFAULT_WINDOW_OPS, WINDOW_OPS
from .matching import find_window_ops


@dataclass
class Replacement:
    op: str
    name: str
    start: str
    end: str
    replaced_nodes: int
    attrs: dict

    def describe(self) -> str:
        shown = {k: v for k, v in self.attrs.items() if not k.startswith("plugin_")}
        fields = " ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in shown.items())
        return f"{self.name:34s} {self.op:20s} {self.replaced_nodes:3d} nodes  {self.start} -> {self.end}  {fields}"


@dataclass
class RewriteReport:
    replacements: list[Replacement] = field(default_factory=list)
    unmatched: list[tuple[str, str, str]] = field(default_factory=list)  # (node, op, reason)
    ops_before: dict = field(default_factory=dict)
    ops_after: dict = field(default_factory=dict)
    cleanup: dict = field(default_factory=dict)
    kept_native: dict = field(default_factory=dict)  # op -> count found but left as native ops (by choice)
    variant: dict = field(default_factory=dict)  # {"window_ops": ..., "fuse_attention": ..., "fuse_gathers": ...}
    unfused: list[tuple[str, str]] = field(default_factory=list)  # fuse_gathers: (attention node, why it stayed)
    equivalence: Equivalence | None = None  # how the result was checked against its source

    def counts(self) -> dict:
        return dict(collections.Counter(r.op for r in self.replacements))

    def to_dict(self) -> dict:
        return {"replacements": [r.__dict__ | {"attrs": {k: (list(v) if isinstance(v, tuple) else v)
                                                         for k, v in r.attrs.items()}}
                                 for r in self.replacements],
                "unmatched": [{"node": n, "op": o, "reason": r} for n, o, r in self.unmatched],
                "unfused": [{"node": n, "reason": r} for n, r in self.unfused],
                "plugins": self.counts(), "kept_native": self.kept_native, "variant": self.variant,
                "ops_before": self.ops_before, "ops_after": self.ops_after, "cleanup": self.cleanup,
                "equivalence": self.equivalence.to_dict() if self.equivalence else None}

    def format(self) -> str:
        total_before, total_after = sum(self.ops_before.values()), sum(self.ops_after.values())
        found = collections.Counter(self.counts()) + collections.Counter(self.kept_native)
        lines = [f"found {sum(found.values())} window ops: "
                 + ", ".join(f"{n} {op}" for op, n in sorted(found.items()))]
        lines += ["  " + r.describe() for r in self.replacements]
        if self.kept_native:
            lines.append("kept as native ops (--window-ops native): "
                         + ", ".join(f"{n} {op}" for op, n in sorted(self.kept_native.items())))
        if not self.variant.get("fuse_attention", True):
            lines.append("attention left to TensorRT (the default; --fuse-attention replaces it by "
                         "SwinWindowAttention)")
        if self.variant.get("fuse_gathers"):
            fused = self.counts().get(schema.FUSED_ATTENTION, 0)
            lines.append(f"gathers fused into attention: {fused} block(s) as {schema.FUSED_ATTENTION} (qkv and output "
                         f"projections on the token map, no partition/reverse pass)")
            lines += [f"  left unfused: {node}: {reason}" for node, reason in self.unfused]
        if self.unmatched:
            lines.append(f"left as they were ({len(self.unmatched)}):")
            lines += [f"  {node} ({op}): {reason}" for node, op, reason in self.unmatched]
        kept = self.cleanup.get("shape_tensors_kept", 0)
        lines.append(f"nodes: {total_before} -> {total_after} "
                     f"(shape arithmetic folded: {self.cleanup.get('shape_tensors_folded', 0)} tensors"
                     + (f", {kept} kept computed: they depend on the input size)" if kept else ")"))
        ops = sorted(set(self.ops_before) | set(self.ops_after),
                     key=lambda op: -max(self.ops_before.get(op, 0), self.ops_after.get(op, 0)))
        if self.equivalence is not None:
            lines.append(self.equivalence.describe())
        lines.append("  " + "op".ljust(22) + "before  after")
        lines += [f"  {op:22s}{self.ops_before.get(op, 0):6d} {self.ops_after.get(op, 0):6d}" for op in ops]
        return "\n".join(lines)


def _fuse(graph: gs.Graph, report: RewriteReport) -> None:
    """Fuse the gathers of every block that allows it; the report lists one replacement per fused block."""
    fusions, report.unfused = fuse_block_gathers(graph)
    by_name = {r.name: r for r in report.replacements}
    for fusion in fusions:
        absorbed = [by_name.pop(name) for name in fusion.absorbed]
        by_name[fusion.name] = Replacement(schema.FUSED_ATTENTION, fusion.name, fusion.start, fusion.end,
                                           sum(r.replaced_nodes for r in absorbed), fusion.attrs)
    report.replacements = list(by_name.values())
    graph.cleanup().toposort()


def _op_counts(model: onnx.ModelProto) -> dict:
    return dict(collections.Counter(n.op_type for n in model.graph.node))


def rewrite(model: onnx.ModelProto, fuse_attention: bool = DEFAULT_FUSE_ATTENTION, strict: bool = False,
            window_ops: str = DEFAULT_WINDOW_OPS, fuse_gathers: bool = DEFAULT_FUSE_GATHERS):
    """Replace the Swin window ops of ``model`` by plugin nodes. Returns ``(rewritten model, RewriteReport)``.

    ``window_ops="native"`` keeps partition/reverse as the exporter wrote them (shape arithmetic folded);
    ``fuse_attention`` also replaces each attention core by SwinWindowAttention; ``fuse_gathers`` (with both)
    then turns each block that allows it into one SwinFusedWindowAttention between its projections
    (:mod:`.fuse_gathers`). The result is run beside
    ``model`` before it is returned (:mod:`.equivalence`); one that computes anything else raises
    :class:`~.equivalence.RewriteChangedGraph`.
    """
    if window_ops not in WINDOW_OPS:
        raise UserError(f"`window_ops` {window_ops!r}: choose one of {', '.join(WINDOW_OPS)}")
    if fuse_gathers and not (fuse_attention and window_ops == "plugin"):
        raise UserError("`fuse_gathers` fuses each block's partition, attention and reverse into one node: it needs "
                        "`fuse_attention` and `window_ops` plugin")
    source = model
    report = RewriteReport(ops_before=_op_counts(model),
                           variant={"window_ops": window_ops, "fuse_attention": bool(fuse_attention),
                                    "fuse_gathers": bool(fuse_gathers)})
    model, folding = simplify(model)
    report.cleanup = {"shape_tensors_folded": folding.folded, "shape_tensors_kept": len(folding.kept),
                      "probe_sizes": folding.sizes}
    graph = gs.import_onnx(model)
    found = find_window_ops(model, graph, folding, fuse_attention)
    window_matches, attention_matches = found.windows, found.attention
    if not window_matches and not attention_matches:
        raise UserError("no Swin window ops found in this graph (no window partition/reverse pattern): is it "
                        "a Swin Transformer exported with `swin-trt export`, timm, torchvision or transformers?")
    report.unmatched += found.unmatched
    if window_ops == "native":
        report.kept_native = dict(collections.Counter(m.op for m in window_matches))
        window_matches = []
    counters = collections.Counter()
    for match in window_matches + attention_matches:
        op = match.op if isinstance(match, windows.WindowMatch) else schema.ATTENTION
        counters[op] += 1
        name = f"{op}_{counters[op] - 1}"
        match.end.inputs.clear()  # detach the old producer first; cleanup then drops the dead region
        if isinstance(match, windows.WindowMatch):
            nodes = windows.plugin_nodes(match, name)
        else:
            nodes = attention.plugin_nodes(match, name)
        node = next(n for n in nodes if n.op == op)
        report.replacements.append(Replacement(op, name, match.start.name, match.end.name, len(match.nodes),
                                               {k: v for k, v in node.attrs.items()}))
        graph.nodes.extend(nodes)
    if strict and report.unmatched:
        names = "; ".join(f"{n} ({o}): {reason}" for n, o, reason in report.unmatched)
        raise UserError(f"`strict`: {len(report.unmatched)} window op(s) were not matched: {names}. "
                        f"Drop `strict` to keep them as ordinary ONNX ops.")
    graph.cleanup().toposort()
    if fuse_gathers:
        _fuse(graph, report)
    rewritten = gs.export_onnx(graph)
    if report.replacements and not any(o.domain == schema.DOMAIN for o in rewritten.opset_import):
        rewritten.opset_import.extend([onnx.helper.make_opsetid(schema.DOMAIN, schema.OPSET_VERSION)])
    report.ops_after = _op_counts(rewritten)
    report.equivalence = check_equivalent(source, rewritten, folding.sizes)
    return rewritten, report
