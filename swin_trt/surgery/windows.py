"""Find window partition (pad + cyclic shift + partition) and window reverse (reverse + unshift + crop).

Both are anchored on the transpose every Swin implementation uses to move window axes together,
``Transpose(perm=[0, 1, 3, 2, 4, 5])`` on a 6-D reshape. From there the matcher walks up (partition:
through Pad and Slice/Concat rolls) or down (reverse: through crops and rolls) to the region's ends, then
probes the region to read its window, shift and pad order off what it computes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from ..graph import producer
from ..ops import reference, schema
from .region import Region

WINDOW_PERM = [0, 1, 3, 2, 4, 5]
# Video Swin (3D windows, (B, T, H, W, C) maps): partition and reverse each have their own permutation of the
# 8-D reshape, (B, nT, wt, nH, wh, nW, ww, C) -> (B, nT, nH, nW, wt, wh, ww, C) and back.
PARTITION_PERM_3D = [0, 1, 3, 5, 2, 4, 6, 7]
REVERSE_PERM_3D = [0, 1, 4, 2, 5, 3, 6, 7]


@dataclass
class WindowMatch:
    op: str  # schema.PARTITION or schema.REVERSE
    anchor: gs.Node
    start: gs.Variable
    end: gs.Variable
    nodes: list
    attrs: dict
    pad_orders: tuple = (1, 0)  # the pad orders the probes cannot tell apart (the window divides the map)
    flat_output: bool = False  # a reverse whose region ends at (B, H*W, C): the exporter merged two reshapes
    any_size: bool = False  # the node must be right at every input size (dynamic height/width)
    feature_map: gs.Variable | None = None  # reverse at any size: the (B, H, W, C) map its block partitioned

    @property
    def is_3d(self) -> bool:
        return len(self.attrs["window_size"]) == 3

    @property
    def sizes(self) -> tuple[int, ...]:
        """The map's ``(H, W)`` (3D: ``(T, H, W)``)."""
        return tuple(self.attrs[n] for n in (("frames",) if self.is_3d else ()) + ("height", "width"))

    @property
    def padded(self) -> tuple[int, ...]:
        """``(Hp, Wp)`` (3D: ``(Tp, Hp, Wp)``)."""
        return reference.padded_size(self.attrs["height"], self.attrs["width"], self.attrs["window_size"],
                                     frames=self.attrs.get("frames"))

    @property
    def n_windows(self) -> int:
        return reference.num_windows(self.attrs["height"], self.attrs["width"], self.attrs["window_size"],
                                     frames=self.attrs.get("frames"))


def _size_attrs(sizes, channels: int, window) -> dict:
    """``height``/``width`` (3D: and ``frames``), channels and window of a match."""
    attrs = {"frames": sizes[0]} if len(sizes) == 3 else {}
    attrs.update(height=sizes[-2], width=sizes[-1], channels=channels, window_size=tuple(window))
    return attrs


def window_anchors(graph: gs.Graph) -> list[gs.Node]:
    perms = (WINDOW_PERM, PARTITION_PERM_3D, REVERSE_PERM_3D)
    return [n for n in graph.nodes if n.op == "Transpose" and list(n.attrs.get("perm", [])) in perms]


def _anchor_rank(anchor: gs.Node, op: str) -> int | None:
    """2 or 3 (the window's rank) if ``anchor`` can be the transpose of ``op``, else None."""
    perm = list(anchor.attrs.get("perm", []))
    if perm == WINDOW_PERM:
        return 2
    if perm == (PARTITION_PERM_3D if op == schema.PARTITION else REVERSE_PERM_3D):
        return 3
    return None


def _single_consumer(tensor: gs.Variable):
    return tensor.outputs[0] if len(tensor.outputs) == 1 else None


def _roll_source(concat: gs.Node):
    """If ``concat`` joins slices of one tensor (how exporters spell torch.roll), return that tensor. A roll by 0
    (Video Swin's unshifted T) may join the tensor itself and an empty slice of it."""
    if len(concat.inputs) < 2:
        return None
    sources = []
    for tensor in concat.inputs:
        node = producer(tensor)
        if node is not None and node.op == "Slice":
            sources.append(node.inputs[0])
        elif isinstance(tensor, gs.Variable):
            sources.append(tensor)
        else:
            return None
    if len({t.name for t in sources}) != 1 or all(t is tensor for t, tensor in zip(sources, concat.inputs)):
        return None
    return sources[0]


def _whole_slice(node: gs.Node) -> bool:
    """``node`` is a Slice that keeps its whole (static) input in order: starts 0, steps 1, same shape."""
    if node.op != "Slice" or len(node.inputs) < 3 or not _static(node.inputs[0].shape, 0) \
            or node.inputs[0].shape != node.outputs[0].shape:
        return False
    starts, steps = node.inputs[1], node.inputs[4] if len(node.inputs) > 4 else None
    return isinstance(starts, gs.Constant) and not np.any(starts.values) and (
        steps is None or (isinstance(steps, gs.Constant) and np.all(steps.values == 1)))


def _static(shape, from_dim=1) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape[from_dim:])


def _probe_batch(tensor: gs.Variable) -> int:
    dim = tensor.shape[0]
    return dim if isinstance(dim, int) else 1


def _match_partition(anchor: gs.Node) -> WindowMatch | None:
    rank = _anchor_rank(anchor, schema.PARTITION)
    reshape = producer(anchor.inputs[0])
    if rank is None:
        return None
    if reshape is None or reshape.op != "Reshape":
        return None
    source = reshape.inputs[0]
    while (node := producer(source)) is not None:  # walk up through pads and rolls
        if node.op == "Pad":
            source = node.inputs[0]
        elif node.op == "Concat" and (rolled := _roll_source(node)) is not None:
            source = rolled
        elif _whole_slice(node):
            source = node.inputs[0]  # a roll by 0 as the dynamo exporter writes it (MONAI's unshifted dims): x[0:n]
        else:
            break
    end = anchor.outputs[0]
    while (consumer := _single_consumer(end)) is not None and consumer.op == "Reshape":
        end = consumer.outputs[0]
        if end.shape is not None and len(end.shape) == 3:
            break
    shape = anchor.outputs[0].shape  # (B, nWh, nWw, wh, ww, C); 3D: (B, nWt, nWh, nWw, wt, wh, ww, C)
    if not (_static(source.shape) and len(source.shape) == rank + 2 and _static(shape)
            and len(shape) == 2 * rank + 2 and end.shape is not None and len(end.shape) == 3):
        return None
    *sizes, channels = source.shape[1:]
    return WindowMatch(schema.PARTITION, anchor, source, end, [],
                       _size_attrs(sizes, channels, shape[rank + 1:2 * rank + 1]))


def _match_reverse(anchor: gs.Node) -> WindowMatch | None:
    rank = _anchor_rank(anchor, schema.REVERSE)
    reshape = producer(anchor.inputs[0])
    if rank is None:
        return None
    if reshape is None or reshape.op != "Reshape":
        return None
    start = reshape.inputs[0]
    while (node := producer(start)) is not None and node.op == "Reshape" and len(start.shape or []) != 3:
        start = node.inputs[0]
    merged = _single_consumer(anchor.outputs[0])
    if merged is None or merged.op != "Reshape":
        return None
    end = merged.outputs[0]
    while True:  # walk down through crops (Slice) and rolls (Slice+Slice -> Concat)
        consumers = list(end.outputs)
        if len(consumers) == 1 and consumers[0].op == "Slice":
            end = consumers[0].outputs[0]
            continue
        concats = {id(c.outputs[0].outputs[0]): c.outputs[0].outputs[0] for c in consumers
                   if c.op == "Slice" and len(c.outputs[0].outputs) == 1}
        concats.update({id(c): c for c in consumers if c.op == "Concat"})  # a roll by 0 joins the tensor itself
        if len(consumers) >= 2 and all(c.op in ("Slice", "Concat") for c in consumers) and len(concats) == 1:
            concat = next(iter(concats.values()))
            if concat.op == "Concat" and _roll_source(concat) is end:
                end = concat.outputs[0]
                continue
        break
    shape = anchor.outputs[0].shape  # (B, nWh, wh, nWw, ww, C); 3D: (B, nWt, wt, nWh, wh, nWw, ww, C)
    if not (_static(start.shape) and len(start.shape) == 3 and _static(shape) and len(shape) == 2 * rank + 2
            and _static(end.shape) and len(end.shape) in ((3, 4) if rank == 2 else (5,))):
        return None
    window = tuple(shape[2:2 * rank + 1:2])
    if len(end.shape) == 3:  # merged straight to (B, H*W, C): no crop, no roll in between
        if end is not merged.outputs[0]:
            return None
        sizes, channels = (shape[1] * shape[2], shape[3] * shape[4]), shape[5]
    else:
        *sizes, channels = end.shape[1:]
    return WindowMatch(schema.REVERSE, anchor, start, end, [], _size_attrs(sizes, channels, window),
                       flat_output=len(end.shape) == 3)


def _decide_partition(graph: gs.Graph, match: WindowMatch) -> bool:
    """Probe with position codes; read shift and pad order off the output."""
    sizes, channels = match.sizes, match.attrs["channels"]
    batch = _probe_batch(match.start)
    codes = (np.arange(math.prod(sizes), dtype=np.float32) + 1).reshape(1, *sizes, 1)
    probe = np.broadcast_to(codes, (batch, *sizes, channels)).copy()
    region = Region(graph, [match.start], match.end)
    if not region.self_contained:
        return False
    out = region.run({match.start.name: probe})
    tokens = math.prod(match.attrs["window_size"])
    if out.shape[-2:] != (tokens, channels):
        return False
    got = out[: len(out) // batch, :, 0].astype(np.int64) - 1  # first image: source index, -1 = padding
    first = int(got[0, 0])
    if first < 0:
        return False
    return _accept(match, region, got, reference.partition_index, _unravel(first, sizes))


def _decide_reverse(graph: gs.Graph, match: WindowMatch) -> bool:
    sizes, channels = match.sizes, match.attrs["channels"]
    rows, tokens = match.start.shape[0], match.start.shape[1]
    n_windows = match.n_windows
    batch = rows // n_windows if isinstance(rows, int) else 1
    codes = (np.arange(n_windows * tokens, dtype=np.float32) + 1).reshape(n_windows, tokens, 1)
    probe = np.broadcast_to(np.tile(codes, (batch, 1, 1)), (batch * n_windows, tokens, channels)).copy()
    region = Region(graph, [match.start], match.end)
    if not region.self_contained:
        return False
    out = region.run({match.start.name: probe})
    if match.flat_output and out.shape[1:] == (math.prod(sizes), channels):
        out = out.reshape(-1, *sizes, channels)
    if out.shape[1:] != (*sizes, channels):
        return False
    got = out[0, ..., 0].reshape(-1).astype(np.int64) - 1
    where = np.nonzero(got == 0)[0]
    if len(where) != 1:
        return False
    return _accept(match, region, got, reference.reverse_index, _unravel(int(where[0]), sizes))


def _unravel(flat: int, sizes) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, sizes))


def _accept(match: WindowMatch, region: Region, got: np.ndarray, contract_index, shift) -> bool:
    """Keep ``match`` if the probed index map ``got`` is the contract's for ``shift`` in either pad order.

    Where the window divides the map both orders agree: ``pad_orders`` keeps every order that fits, so
    that probes at other sizes can narrow it down."""
    height, width, window = match.attrs["height"], match.attrs["width"], match.attrs["window_size"]
    if not all(s < w for s, w in zip(shift, window)):
        return False
    orders = (1,) if match.is_3d else (1, 0)  # 3D windows are padded, then shifted (the contract has no other)
    fits = tuple(pad_first for pad_first in orders
                 if np.array_equal(got, contract_index(height, width, window, shift, bool(pad_first),
                                                       frames=match.attrs.get("frames"))))
    if not fits:
        return False
    match.attrs.update(shift_size=shift, pad_first=fits[0])
    match.pad_orders = fits
    match.nodes = region.nodes
    return True


def find_window_ops(graph: gs.Graph) -> tuple[list[WindowMatch], list[gs.Node]]:
    """All partitions and reverses in ``graph``; also the anchors that matched neither (for --strict)."""
    matches, unmatched = [], []
    for anchor in window_anchors(graph):
        found = None
        for build, decide in ((_match_partition, _decide_partition), (_match_reverse, _decide_reverse)):
            candidate = build(anchor)
            if candidate is not None and decide(graph, candidate):
                found = candidate
                break
        if found is None:
            unmatched.append(anchor)
        else:
            matches.append(found)
    return matches, unmatched


def paired_partition(reverse: WindowMatch, partitions: list[WindowMatch], limit: int = 200) -> WindowMatch | None:
    """The partition of the same block: the nearest one upstream of the reverse's windows (through the
    attention and the projections)."""
    by_end = {m.end.name: m for m in partitions}
    queue, seen = [reverse.start], set()
    while queue and len(seen) < limit:
        tensor = queue.pop(0)
        if tensor.name in by_end:
            return by_end[tensor.name]
        if tensor.name in seen or isinstance(tensor, gs.Constant):
            continue
        seen.add(tensor.name)
        if tensor.inputs:
            queue.extend(t for t in tensor.inputs[0].inputs if isinstance(t, gs.Variable))
    return None


def plugin_nodes(match: WindowMatch, name: str) -> list[gs.Node]:
    """The plugin node (first), and a Reshape to (B, H*W, C) where the region ended flat. A reverse carries
    its output size as ``height``/``width``, or, in a graph that runs at any size, reads it from its
    feature-map input."""
    fields = dict(window_size=match.attrs["window_size"], shift_size=match.attrs["shift_size"],
                  pad_first=match.attrs["pad_first"])
    inputs = [match.start]
    if match.op == schema.REVERSE:
        if match.any_size:
            inputs.append(match.feature_map)
        else:
            fields.update({name: match.attrs[name] for name in schema.size_attributes(match.attrs)})
    attrs = schema.plugin_attributes(match.op, len(inputs), **fields)
    if not match.flat_output:
        return [gs.Node(match.op, name, attrs=attrs, inputs=inputs, outputs=[match.end], domain=schema.DOMAIN)]
    image = gs.Variable(f"{name}/output", dtype=match.end.dtype)
    flat = gs.Constant(f"{name}/flat_shape", np.array([0, -1, match.attrs["channels"]], np.int64))
    return [gs.Node(match.op, name, attrs=attrs, inputs=inputs, outputs=[image], domain=schema.DOMAIN),
            gs.Node("Reshape", f"{name}/flatten", inputs=[image, flat], outputs=[match.end])]
