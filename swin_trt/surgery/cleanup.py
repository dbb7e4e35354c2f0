"""Clean-up passes: fold the shape arithmetic exporters leave, fold constants, drop dead nodes.

The TorchScript exporter computes every reshape target at run time (Shape -> Gather -> Unsqueeze ->
Concat chains), and torchvision's and Hugging Face's Swin even build their attention masks in the graph
(ConstantOfShape, ScatterND, Range). Most of it depends only on the input shape; a detector's head also
sizes tensors from pixel values (a box count after NMS), and those are never folded: :mod:`.dependence`
follows the pixels through values and shapes, and only what they cannot reach is a candidate. Each
candidate is evaluated at several input sizes and several pixel contents per size (:mod:`.probes`: batch,
and height/width where they are dynamic); a value that differs between contents stays computed, whatever
the analysis said; equal values become constants; a reshape target that differs only where it copies its input's
dim gets 0 there and may get one -1; everything else that depends on the size stays computed, so the graph
still runs at every size. Then the folded chains are dead and cleanup drops them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from .. import graph as graphs
from ..errors import UserError
from . import probes
from .dependence import analyse

@dataclass
class Folding:
    """What shape folding did: how many tensors became constants, which stayed computed (they depend on
    the input size or on the pixels), and the input sizes the graph was evaluated at."""

    folded: int = 0
    kept: list[str] = field(default_factory=list)
    sizes: list[dict[str, int]] = field(default_factory=list)
    pixel_dependent: list[str] = field(default_factory=list)  # differed between contents at one size


def _evaluate(model: onnx.ModelProto, names: list[str], sizes: dict[str, int], shapes_of=()) -> list[dict]:
    """Run ``model`` at the dynamic dims ``sizes`` on each probe content; per content, the named tensors and
    the shapes of ``shapes_of`` (as ``"<name>.shape"``)."""
    import onnxruntime as ort

    probe = graphs.copy(model)
    for name in shapes_of:
        probe.graph.node.append(onnx.helper.make_node("Shape", [name], [f"{name}.shape"]))
    names = list(names) + [f"{name}.shape" for name in shapes_of]
    existing = {o.name for o in probe.graph.output}
    for name in names:
        if name not in existing:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 4  # a size the model rejects is expected here: the caller reports it
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return [dict(zip(names, session.run(names, probes.content_feeds(model, sizes, content))))
            for content in range(probes.CONTENTS)]


def _same(first: np.ndarray, second: np.ndarray) -> bool:
    return first.shape == second.shape and np.array_equal(first, second)


def _evaluate_at_probe_sizes(model, names, shapes_of) -> tuple[list[dict], list[dict], set[str]]:
    """Evaluate at the candidate sizes the graph accepts, as many as the dynamic dims need. Returns the values
    of the first content per size, the sizes, and the names whose value differed between contents."""
    dims = probes.dynamic_dims(model)
    values, sizes, failures, varying = [], [], [], set()
    for candidate in dims.candidates():
        try:
            runs = _evaluate(model, names, candidate, shapes_of)
        except Exception as exc:  # onnxruntime raises its own exception types; a size the model rejects
            failures.append(f"{probes.describe(candidate)}: {str(exc).splitlines()[0][:300]}")
        else:
            varying.update(name for name in names if not all(_same(runs[0][name], run[name]) for run in runs[1:]))
            values.append(runs[0])
            sizes.append(candidate)
        if len(values) == dims.wanted:
            break
    if len(values) < min(dims.wanted, 2) or not values:
        raise UserError("could not evaluate the graph's shape arithmetic: ONNX Runtime failed at "
                        + "; ".join(failures) + ". Check that the ONNX file runs in ONNX Runtime; for dynamic "
                        "height/width the model must accept sizes like 224x320 and 288x256 (multiples of 32)")
    return values, sizes, varying


def fold_shape_arithmetic(model: onnx.ModelProto) -> tuple[onnx.ModelProto, Folding]:
    """Replace run-time shape arithmetic by constants where neither the input size nor the pixels change it."""
    graph = gs.import_onnx(model)
    dependence = analyse(graph)
    # Frontier: foldable tensors that feed nodes the pixels reach. Only they need values.
    frontier = {}
    for node in graph.nodes:
        if not any(t.name in dependence.pixel_values for t in node.inputs if t.name):
            continue
        for index, tensor in enumerate(node.inputs):
            if isinstance(tensor, gs.Variable) and tensor.name and dependence.foldable(tensor):
                frontier.setdefault(tensor.name, []).append((node, index))
    if not frontier:
        return model, Folding()
    names = sorted(frontier)
    reshape_inputs = ()
    if not probes.dynamic_dims(model).static:  # the input shapes of reshapes tell copied dims from free ones
        reshape_inputs = sorted({node.inputs[0].name for consumers in frontier.values() for node, index in consumers
                                 if node.op == "Reshape" and index == 1})
    values, sizes, varying = _evaluate_at_probe_sizes(model, names, reshape_inputs)
    folding = Folding(sizes=sizes, pixel_dependent=sorted(varying))
    for name in names:
        first = values[0][name]
        if name in varying:
            constant = None  # the analysis missed an op whose result follows the pixels: leave it computed
        elif all(_same(first, v[name]) for v in values[1:]):
            constant = first
        else:
            constant = _reshape_target_with_copies(name, frontier[name], values)
        if constant is None:
            folding.kept.append(name)
            continue
        replacement = gs.Constant(f"{name}__folded", np.asarray(constant))
        for node, index in frontier[name]:
            node.inputs[index] = replacement
            if node.op == "Reshape" and 0 in constant:
                node.attrs["allowzero"] = 0  # 0 now means "copy the input's dim" (the dynamo exporter sets 1)
        folding.folded += 1
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    return gs.export_onnx(graph), folding


def _reshape_target_with_copies(name, consumers, values):
    """A Reshape target that differs between probe sizes: a position that copies the input's dim becomes 0,
    one other position may become -1; otherwise the target stays computed."""
    if not all(node.op == "Reshape" and index == 1 for node, index in consumers):
        return None
    arrays = [v[name] for v in values]
    if any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
        return None
    target = arrays[0].copy()
    free = []
    for position in np.nonzero(np.any([a != arrays[0] for a in arrays[1:]], axis=0))[0]:
        copies_input = all(
            position < len(v[f"{node.inputs[0].name}.shape"]) and v[f"{node.inputs[0].name}.shape"][position]
            == v[name][position] for v in values for node, _ in consumers)
        if copies_input:
            target[position] = 0
        else:
            free.append(position)
    if len(free) > 1 or (free and -1 in target):
        return None
    if free:
        target[free[0]] = -1
    return target


def simplify(model: onnx.ModelProto) -> tuple[onnx.ModelProto, Folding]:
    """Shape-arithmetic folding, constant folding, cleanup, toposort and shape inference."""
    import onnxruntime as ort

    model, folding = fold_shape_arithmetic(model)
    graph = gs.import_onnx(model)
    _forget_pixel_dependent_shapes(graph)
    ort.set_default_logger_severity(3)  # constant folding's sessions would warn about optimizers they skip
    graph.fold_constants(error_ok=True).cleanup().toposort()
    for node in list(graph.nodes):  # Identity nodes the TorchScript exporter leaves for aliases
        if node.op == "Identity" and node.inputs and node.outputs[0] not in graph.outputs:
            source, target = node.inputs[0], node.outputs[0]
            for consumer in list(target.outputs):
                consumer.inputs[consumer.inputs.index(target)] = source
            node.outputs.clear()
    graph.cleanup().toposort()
    model = gs.export_onnx(graph)
    model = onnx.shape_inference.infer_shapes(model)
    return model, folding


def _forget_pixel_dependent_shapes(graph: gs.Graph) -> None:
    """Drop the recorded shapes of tensors whose shape the pixels decide. Exporters record the shapes they
    traced (a box count of 100, say), and onnx-graphsurgeon's constant folding would fold a ``Shape`` of such a
    tensor from that record. Graph outputs keep the shape the user exported."""
    pixel_shapes = analyse(graph).pixel_shapes
    outputs = {t.name for t in graph.outputs}
    for name, tensor in graph.tensors().items():
        if name in pixel_shapes and name not in outputs and isinstance(tensor, gs.Variable):
            tensor.shape = None


def specialize(model: onnx.ModelProto, sizes: dict[str, int]) -> onnx.ModelProto:
    """A static copy of ``model`` at the input sizes ``sizes``, all its shape arithmetic folded: what the
    window matchers probe. Node and data-tensor names stay those of ``model``."""
    static, _ = simplify(probes.with_static_inputs(model, sizes))
    return static
