"""Clean-up passes: fold the shape arithmetic exporters leave, fold constants, drop dead nodes.

The TorchScript exporter computes every reshape target at run time (Shape -> Gather -> Unsqueeze ->
Concat chains), and torchvision's Swin even builds its attention mask in the graph (ConstantOfShape,
ScatterND). None of it depends on pixel values, only on the input shape, and only the batch is dynamic.
So each such tensor is evaluated at two batch sizes: equal values become constants; a reshape target that
differs in one position becomes a constant with -1 there. Then the chains are dead and cleanup drops them.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from .. import graph as graphs

# Ops that cannot be folded (random) or that we never want to treat as shape arithmetic.
_NEVER_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"}
PROBE_BATCHES = (1, 2)


def _data_independent(graph: gs.Graph) -> set[str]:
    """Names of tensors computed only from constants and input *shapes*."""
    independent: set[str] = set()
    for node in graph.toposort().nodes:  # toposort so producers come first
        if node.op in _NEVER_FOLD:
            continue
        if node.op in graphs.SHAPE_OPS:
            ok = True
        else:
            ok = all(isinstance(t, gs.Constant) or t.name in independent or t.name == "" for t in node.inputs)
        if ok:
            independent.update(t.name for t in node.outputs)
    return independent


def _batch_dims(graph: gs.Graph) -> bool:
    return any(not isinstance(t.shape[0], int) for t in graph.inputs if t.shape)


def _evaluate(model: onnx.ModelProto, names: list[str], batch: int, shapes_of=()) -> dict[str, np.ndarray]:
    """Run ``model`` on zeros of batch ``batch``; return the named tensors and the shapes of ``shapes_of``
    (as ``"<name>.shape"``)."""
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
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {}
    for tensor in session.get_inputs():
        shape = [batch if not isinstance(d, int) else d for d in tensor.shape]
        dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16}.get(tensor.type, np.float32)
        feeds[tensor.name] = np.zeros(shape, dtype=dtype)
    values = session.run(names, feeds)
    return dict(zip(names, values))


def fold_shape_arithmetic(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """Replace run-time shape arithmetic by constants. Returns the model and how many tensors were fixed."""
    graph = gs.import_onnx(model)
    independent = _data_independent(graph)
    # Frontier: data-independent tensors that feed data-dependent nodes. Only they need values.
    frontier = {}
    for node in graph.nodes:
        if node.op in graphs.SHAPE_OPS or all(t.name in independent or isinstance(t, gs.Constant) for t in node.inputs):
            continue
        for index, tensor in enumerate(node.inputs):
            if isinstance(tensor, gs.Variable) and tensor.name in independent and tensor not in graph.inputs:
                frontier.setdefault(tensor.name, []).append((node, index))
    if not frontier:
        return model, 0
    names = sorted(frontier)
    batches = PROBE_BATCHES if _batch_dims(graph) else PROBE_BATCHES[:1]
    reshape_inputs = sorted({node.inputs[0].name for consumers in frontier.values() for node, index in consumers
                             if node.op == "Reshape" and index == 1} if len(batches) > 1 else set())
    values = [_evaluate(model, names, batch, reshape_inputs) for batch in batches]
    fixed = 0
    for name in names:
        first = values[0][name]
        constant = None
        if all(np.array_equal(first, v[name]) and first.shape == v[name].shape for v in values[1:]):
            constant = first
        else:
            constant = _reshape_target_with_batch(name, frontier[name], values)
        if constant is None:
            continue
        replacement = gs.Constant(f"{name}__folded", np.asarray(constant))
        for node, index in frontier[name]:
            node.inputs[index] = replacement
        fixed += 1
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    return gs.export_onnx(graph), fixed


def _reshape_target_with_batch(name, consumers, values):
    """A Reshape target that differs between batches: a position that copies the input's dim becomes 0,
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


def simplify(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """Shape-arithmetic folding, constant folding, cleanup, toposort and shape inference."""
    model, fixed = fold_shape_arithmetic(model)
    graph = gs.import_onnx(model)
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
    return model, {"shape_tensors_folded": fixed}
