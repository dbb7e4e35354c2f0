"""Run a piece of a graph on a probe input, to learn what it computes.

The matchers find *candidate* regions structurally and then decide their attributes by evaluating the
region in ONNX Runtime and comparing with the op contract (swin_trt.ops.reference). A region is only
replaced when it computes exactly what the plugin will: exporters may spell a roll or a mask in many ways,
and a structural match alone would let a wrong guess through.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs


class Region:
    """The nodes between ``start`` tensors and an ``end`` tensor, and whatever else they read."""

    def __init__(self, graph: gs.Graph, starts: list[gs.Variable], end: gs.Variable):
        self.graph, self.starts, self.end = graph, starts, end
        self.nodes: list[gs.Node] = []
        self.external: list[gs.Variable] = []  # non-constant inputs other than the starts
        seen, stack = set(), [end]
        start_names = {s.name for s in starts}
        while stack:
            tensor = stack.pop()
            if tensor.name in start_names or isinstance(tensor, gs.Constant):
                continue
            if not tensor.inputs:
                if tensor not in self.external:
                    self.external.append(tensor)
                continue
            node = tensor.inputs[0]
            if id(node) in seen:
                continue
            seen.add(id(node))
            self.nodes.append(node)
            stack.extend(t for t in node.inputs if t.name)

    @property
    def self_contained(self) -> bool:
        return not self.external

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Evaluate the region: ``feeds`` maps start names to arrays; returns the end tensor."""
        import onnxruntime as ort

        inputs = [gs.Variable(s.name, dtype=_dtype(feeds[s.name]), shape=list(feeds[s.name].shape))
                  for s in self.starts]
        by_name = {t.name: t for t in inputs}

        def detached(tensor):
            # Fresh tensor objects: gs links tensors to their consumers, and the real graph must not
            # learn about the probe's nodes.
            if tensor.name not in by_name:
                by_name[tensor.name] = (gs.Constant(tensor.name, tensor.values) if isinstance(tensor, gs.Constant)
                                        else gs.Variable(tensor.name, dtype=tensor.dtype))
            return by_name[tensor.name]

        nodes = [gs.Node(node.op, node.name, attrs=dict(node.attrs), inputs=[detached(t) for t in node.inputs],
                         outputs=[detached(t) for t in node.outputs])
                 for node in reversed(self.nodes)]
        end = by_name[self.end.name]
        end.dtype = end.dtype or np.float32
        graph = gs.Graph(nodes=nodes, inputs=inputs, outputs=[end], opset=self.graph.opset)
        graph.cleanup().toposort()
        model = gs.export_onnx(graph)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
        return session.run(None, feeds)[0]


def _dtype(array: np.ndarray):
    return array.dtype.type
