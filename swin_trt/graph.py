"""Editing ONNX graphs: onnx-graphsurgeon, and the few helpers and op sets that every stage shares.

Everything in swin-trt that restructures a graph (surgery, plugin lowering, FP16 and INT8 insertion, the
switchable probe, the ONNX Runtime CPU copy) does it with onnx-graphsurgeon and the helpers here. Only
copies made to be evaluated, which just gain extra graph outputs (:func:`with_outputs`; surgery's
shape-folding probe, which also appends the Shape nodes it reads), are appended to as protobuf.

Why onnx-graphsurgeon rather than onnx-ir (both are installed):

* surgery and plugin lowering were already written in it, and it is NVIDIA's tool for preparing graphs
  for TensorRT, the target here: one graph layer, not two;
* its tensors are linked (``tensor.inputs``: the producer, ``tensor.outputs``: the consumers), so no module
  rebuilds producer/consumer maps; ``cleanup`` drops dead nodes and unused initializers and ``toposort``
  orders nodes, where hand-written versions of both used to live;
* a graph is imported into new objects, so editing it never touches the caller's ``ModelProto`` (no copy).

onnx-ir 1.1 would serve as well (it keeps more model metadata through a round trip, which :func:`export`
carries over by hand), but adopting it would mean a second layer or rewriting surgery for no gain here.
"""

from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")  # the explicit INT8 pairs swin-trt writes and TensorRT reads
QUANTIZE_OPS = (*QDQ_OPS, "DynamicQuantizeLinear")  # any op that (de)quantizes: what makes a graph INT8
SHAPE_OPS = ("Shape", "Size")  # their outputs depend on the shape of their input, never on its values


def load_onnx(path, weights: bool = True) -> onnx.ModelProto:
    """Read an ONNX file (``weights=False``: the graph without its external weights). A missing file, bytes
    that are not ONNX and a graph without nodes are :class:`~swin_trt.errors.UserError`s: every stage reads
    models through here, so every stage says the same."""
    from pathlib import Path

    from .errors import UserError

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist: check the path")
    try:
        model = onnx.load(str(path), load_external_data=weights)
    except Exception as exc:  # onnx raises DecodeError, google.protobuf errors, ... for non-ONNX bytes
        raise UserError(f"{str(path)!r} is not an ONNX model ({type(exc).__name__}): pass a .onnx file "
                        f"written by `swin-trt export` or another exporter") from None
    if not model.graph.node:
        raise UserError(f"{str(path)!r} is not an ONNX model (no graph nodes): pass a .onnx file")
    return model


def copy(model: onnx.ModelProto) -> onnx.ModelProto:
    """A deep copy, for code that must hand a ``ModelProto`` to a library which edits it in place."""
    duplicate = onnx.ModelProto()
    duplicate.CopyFrom(model)
    return duplicate


def export(graph: gs.Graph, like: onnx.ModelProto | None = None) -> onnx.ModelProto:
    """``graph`` as a model. Initializers no node reads are not written (a graph's tensors are the ones its
    nodes use); dead nodes go with ``graph.cleanup()`` and ``graph.toposort()`` orders nodes, before this.

    ``like``: the model ``graph`` was imported from, whose model-level fields onnx-graphsurgeon does not carry
    (doc string, domain, version, metadata) are kept.
    """
    model = gs.export_onnx(graph)
    if like is not None:
        model.doc_string, model.domain, model.model_version = like.doc_string, like.domain, like.model_version
        model.metadata_props.extend(like.metadata_props)
    return model


def producer(tensor: gs.Tensor) -> gs.Node | None:
    """The node that computes ``tensor``; ``None`` for graph inputs and constants."""
    return tensor.inputs[0] if tensor.inputs else None


def is_constant(tensor: gs.Tensor) -> bool:
    """An initializer or the output of a ``Constant`` node: a value fixed in the graph."""
    node = producer(tensor)
    return isinstance(tensor, gs.Constant) or (node is not None and node.op == "Constant")


def with_outputs(model: onnx.ModelProto, names, *, default_type: int | None = None,
                 keep=None) -> tuple[onnx.ModelProto, dict[str, int]]:
    """``model`` with shape inference run and each node output in ``names`` also a graph output.

    Returns the new model and ``{name: ONNX element type}`` of the tensors it exposes (including those that
    were outputs already). A tensor whose type inference leaves open gets ``default_type``, or is left out
    when that is ``None``; ``keep(element type)`` can leave out more (e.g. all but float tensors). Graph
    inputs and names no node produces are left out.
    """
    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*graph.value_info, *graph.output, *graph.input]}
    produced = {out for node in graph.node for out in node.output}
    outputs = {o.name for o in graph.output}
    exposed = {}
    for name in names:
        elem = types.get(name) or default_type
        if name not in produced or elem is None or (keep is not None and not keep(elem)):
            continue
        exposed[name] = elem
        if name not in outputs:
            graph.output.append(onnx.helper.make_tensor_value_info(name, elem, None))
            outputs.add(name)
    return inferred, exposed
