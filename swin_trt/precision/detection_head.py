"""Where a detector's head begins: the part of the graph after the backbone and neck, kept out of INT8 and FP16.

A Swin detector is a backbone and a neck (the FPN) that compute dense feature maps of a fixed shape, then a head:
the RPN and ROI heads or the dense classification/regression towers, box decoding, top-k, NMS and the final
selection. The head is found from the structure of the graph, not from the names one exporter gives its nodes.
It starts at either of two kinds of node, and takes in everything computed from them:

* an op whose output shape depends on the pixel values (``NonZero``, ``NonMaxSuppression``, ``If`` ...,
  :data:`swin_trt.surgery.dependence.DATA_DEPENDENT_SHAPE_OPS`): score thresholds, top-k over kept boxes, NMS
  and everything after them (ROI pooling, the box head, its decoding) are computed from such an output;
* a MatMul/Gemm/Conv whose weights are shared with another one: detection heads run the same layers over every
  pyramid level (torchvision's and mmdetection's RPN, RetinaNet and FCOS heads), which backbones and necks never
  do. That brings in the head's towers, which run before any data-dependent op.

The head's ``selection`` is the part computed from the data-dependent ops alone: which boxes are kept and how
they are scored (NMS, top-k, ROI pooling and the box head that reads the kept proposals). Everything else is
the backbone and neck. A graph with neither kind of node (a classifier, a segmenter) has no head. A head
without shared weights (per-level YOLO-style towers) is found from its NMS onwards only; its towers then count
as the neck.

On torchvision's FCOS, Faster R-CNN, RetinaNet and Mask R-CNN on a Swin-T + FPN this splits every layer exactly:
Swin and FPN on one side, ``rpn``/``roi_heads``/``head`` on the other (tests/test_detection_stages.py).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import onnx
import onnx_graphsurgeon as gs

from ..surgery.dependence import DATA_DEPENDENT_SHAPE_OPS
from .points import COMPUTE_OPS, node_name


@dataclass(frozen=True)
class DetectionHead:
    """The head of a detector graph; empty (``found`` false) for a graph without one."""

    nodes: frozenset[str]  # names of the head's nodes, as :func:`.points.node_name` gives them
    selection: frozenset[str]  # the part of the head computed from its data-dependent ops
    data_dependent: tuple[str, ...]  # the ops whose output shape depends on the pixels
    shared_layers: tuple[str, ...]  # compute nodes whose weights another one shares (the per-level towers)
    outputs: tuple[str, ...]  # the graph outputs computed in the head (a detector's boxes, scores, labels)

    @property
    def found(self) -> bool:
        return bool(self.nodes)

    @property
    def variable_outputs(self) -> bool:
        """Some output's shape depends on the image (a detection count): the model is a detector."""
        return bool(self.data_dependent) and bool(self.outputs)

    def to_dict(self) -> dict:
        return {"nodes": len(self.nodes), "selection_nodes": len(self.selection),
                "data_dependent_ops": len(self.data_dependent),
                "first_data_dependent": self.data_dependent[0] if self.data_dependent else None,
                "shared_weight_layers": len(self.shared_layers), "outputs": list(self.outputs)}


def _weight_source(tensor: gs.Tensor) -> gs.Tensor | None:
    """The constant behind ``tensor``, through ``Identity`` aliases (torch.onnx writes one per deduplicated
    initializer) and the ``DequantizeLinear`` of an INT8 weight; ``None`` when it is computed."""
    while not isinstance(tensor, gs.Constant):
        producer = tensor.inputs[0] if tensor.inputs else None
        if producer is None or producer.op not in ("Identity", "DequantizeLinear", "Constant"):
            return None
        if producer.op == "Constant":
            return tensor
        tensor = producer.inputs[0]
    return tensor


def find_detection_head(model: onnx.ModelProto | gs.Graph) -> DetectionHead:
    """The head of ``model`` (see the module docstring). Node names are the graph's, or ``<op>_<position>`` for
    unnamed nodes, positions counted in the graph's own order (as quantization names them)."""
    graph = gs.import_onnx(model) if isinstance(model, onnx.ModelProto) else model
    names = {id(node): node_name(node, position) for position, node in enumerate(graph.nodes)}
    data_dependent = [node for node in graph.nodes if node.op in DATA_DEPENDENT_SHAPE_OPS]
    by_weight: dict[int, list[gs.Node]] = defaultdict(list)
    for node in graph.nodes:
        if node.op in COMPUTE_OPS and len(node.inputs) > 1:
            weight = _weight_source(node.inputs[1])
            if weight is not None:
                by_weight[id(weight)].append(node)
    shared = [node for group in by_weight.values() if len(group) > 1 for node in group]
    selection = _downstream(data_dependent, names)
    head = _downstream([*data_dependent, *shared], names)
    produced = {tensor.name for node in head.values() for tensor in node.outputs}
    return DetectionHead(frozenset(names[key] for key in head), frozenset(names[key] for key in selection),
                         tuple(names[id(node)] for node in data_dependent),
                         tuple(names[id(node)] for node in shared),
                         tuple(tensor.name for tensor in graph.outputs if tensor.name in produced))


def _downstream(entries: list[gs.Node], graph_nodes: dict[int, str]) -> dict[int, gs.Node]:
    """``entries`` and every node of the graph computed from them (the consumers of their outputs, transitively),
    by id. Consumers inside subgraphs are skipped: their ``If``/``Loop`` node is an entry itself."""
    found: dict[int, gs.Node] = {}
    frontier = list(entries)
    while frontier:
        node = frontier.pop()
        if id(node) in graph_nodes and id(node) not in found:
            found[id(node)] = node
            frontier += [consumer for tensor in node.outputs for consumer in tensor.outputs]
    return found
