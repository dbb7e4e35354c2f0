"""Find the window ops of a graph whose input size may be dynamic, ready to be replaced in that graph.

The matchers probe regions in ONNX Runtime, which needs static shapes and regions that read only
constants. A graph exported with a dynamic batch, height or width computes reshape targets and masks from
its input's shape at run time. So matching runs on a static copy of the graph at one probe size (all shape
arithmetic folded: :func:`.cleanup.specialize`) and, when height or width are dynamic, on a second copy at
another size. An op is replaced only where both copies find it with the same size-independent attributes
(window, shift, pad order, heads, scale, bias table): that is what makes one plugin node right at every
size. The matches are then bound to the tensors of the graph itself (the names are the same), where the
plugin nodes replace the regions, and the size arithmetic that fed them dies with them.

Where height and width are dynamic, reverse and shifted attention get the block's feature map (the
partition's input) as their size source instead of ``height``/``width`` attributes (``ops/schema.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from ..ops import schema
from . import attention, probes, windows
from .cleanup import Folding, specialize


@dataclass
class Matches:
    windows: list = field(default_factory=list)  # windows.WindowMatch
    attention: list = field(default_factory=list)  # attention.AttentionMatch
    unmatched: list = field(default_factory=list)  # (node name, op, reason)
    pairs: dict = field(default_factory=dict)  # id(reverse or attention match) -> its block's partition


def _match(graph: gs.Graph, fuse_attention: bool) -> Matches:
    found = Matches()
    window_matches, unmatched_anchors = windows.find_window_ops(graph)
    partitions = [m for m in window_matches if m.op == schema.PARTITION]
    found.windows = window_matches
    found.unmatched = [(n.name, n.op, "window transpose that is neither a partition nor a reverse")
                       for n in unmatched_anchors]
    for match in window_matches:
        if match.op == schema.REVERSE:
            found.pairs[id(match)] = windows.paired_partition(match, partitions)
    if fuse_attention:
        matches, unmatched = attention.find_attention(graph, partitions)
        found.attention = matches
        found.unmatched += [(n.name, n.op, reason) for n, reason in unmatched]
        by_end = {p.end.name: p for p in partitions}
        for match in matches:
            found.pairs[id(match)] = attention.feeding_partition(match.start, by_end)
    return found


def _window_key(match) -> tuple:
    return match.op, match.start.name, match.end.name


def _differences(first, second) -> list[str]:
    """Size-independent attributes on which two matches of the same op disagree."""
    names = ("window_size", "shift_size", "num_heads", "scale", "cosine")
    differ = [f"{n} {first.attrs[n]} vs {second.attrs.get(n)}" for n in names
              if n in first.attrs and tuple(np.ravel(first.attrs[n])) != tuple(np.ravel(second.attrs.get(n)))]
    if "head_scale" in first.attrs and not np.allclose(first.attrs["head_scale"], second.attrs.get("head_scale", []),
                                                       rtol=1e-5):
        differ.append("head_scale")
    if isinstance(first, windows.WindowMatch) and not set(first.pad_orders) & set(second.pad_orders):
        differ.append(f"pad_first {first.pad_orders} vs {second.pad_orders}")
    if isinstance(first, attention.AttentionMatch) and (
            first.table.shape != second.table.shape or not np.allclose(first.table, second.table, atol=1e-5)):
        differ.append("relative position bias")
    return differ


def _grid_size(attrs: dict) -> int:
    """Positions in an attention match's padded grid (``height x width``, 3D ``x frames``)."""
    return math.prod(int(attrs[name]) for name in schema.size_attributes(attrs))


def _agree(first: Matches, second: Matches, sizes: list[dict]) -> Matches:
    """The matches found alike at both probe sizes; the rest become unmatched, with the reason."""
    at = [probes.describe(s) for s in sizes[:2]]
    kept = Matches(unmatched=list(first.unmatched), pairs=first.pairs)
    named = {name for name, _, _ in kept.unmatched}
    kept.unmatched += [u for u in second.unmatched if u[0] not in named]
    others = {_window_key(m): m for m in second.windows}
    others.update({m.anchor.name: m for m in second.attention})
    for match in first.windows + first.attention:
        is_window = isinstance(match, windows.WindowMatch)
        key = _window_key(match) if is_window else match.anchor.name
        other = others.get(key)
        node, op = (match.anchor.name, match.anchor.op)
        if other is None:
            if node not in {u[0] for u in kept.unmatched}:
                kept.unmatched.append((node, op, f"matched at {at[0]} but not at {at[1]}"))
            continue
        differ = _differences(match, other)
        if differ:
            kept.unmatched.append((node, op, f"depends on the input size ({'; '.join(differ)}; at {at[0]} and "
                                             f"{at[1]}): the export fixed a size-dependent choice, e.g. a window "
                                             f"shrunk to a small stage; export at a size where every stage is "
                                             f"larger than the window"))
            continue
        if is_window:
            match.pad_orders = tuple(o for o in match.pad_orders if o in other.pad_orders)
            match.attrs["pad_first"] = match.pad_orders[0]
            kept.windows.append(match)
        else:
            if _grid_size(other.attrs) > _grid_size(match.attrs):
                match.table = other.table  # read off more windows: more entries seen without a mask added
            kept.attention.append(match)
    return kept


def _bind(found: Matches, graph: gs.Graph, any_size: bool) -> Matches:
    """Point the matches (made on a static copy) at the same-named tensors of ``graph``."""
    tensors = graph.tensors()
    bound = Matches(unmatched=found.unmatched)
    for match in found.windows + found.attention:
        partition = found.pairs.get(id(match))
        names = [t.name for t in (match.inputs if isinstance(match, attention.AttentionMatch) else [match.start])]
        names.append(match.end.name)
        if any_size and partition is not None:
            names.append(partition.start.name)
        if not all(name in tensors for name in names):
            bound.unmatched.append((match.anchor.name, match.anchor.op, "its tensors are not in the graph"))
            continue
        if any_size:
            needs_map = (match.op == schema.REVERSE if isinstance(match, windows.WindowMatch)
                         else any(match.attrs["shift_size"]))
            if needs_map and partition is None:
                bound.unmatched.append((match.anchor.name, match.anchor.op, "no partition found for its block: "
                                        "it cannot read the spatial size at run time"))
                continue
            match.any_size = True
            match.feature_map = tensors[partition.start.name] if needs_map else None
        if isinstance(match, attention.AttentionMatch):
            match.inputs = [tensors[t.name] for t in match.inputs]
            bound.attention.append(match)
        else:
            match.start = tensors[match.start.name]
            bound.windows.append(match)
        match.end = tensors[match.end.name]
    return bound


def find_window_ops(model: onnx.ModelProto, graph: gs.Graph, folding: Folding, fuse_attention: bool) -> Matches:
    """Window ops of ``model`` (``graph`` is its import, where they will be replaced)."""
    dims = probes.dynamic_dims(model)
    if dims.static:
        return _match(graph, fuse_attention)
    sizes = folding.sizes or dims.candidates()[:2]
    found = _match(gs.import_onnx(specialize(model, sizes[0])), fuse_attention)
    if dims.spatial:
        # the last size the model accepted: the one with the fewest stages the common windows divide, so
        # that the pad order (which only shows where there is padding) is decided
        sizes = [sizes[0], sizes[-1]]
        found = _agree(found, _match(gs.import_onnx(specialize(model, sizes[1])), fuse_attention), sizes)
    return _bind(found, graph, any_size=bool(dims.spatial))
