"""One plugin node in an ONNX graph, and running it through the CPU lowering: shared by the lowering tests
(tests/test_lowering.py, tests/test_ops_3d.py)."""

import onnxruntime as ort
from onnx import helper

from swin_trt.ops import schema
from swin_trt.ops.lowering import lower_plugins


def plugin_model(op, attrs, inputs, node_inputs=None, inits=()):
    """One plugin node, built with the schema's helpers; ``inputs`` are (name, elem_type, shape), with str dims
    for dynamic ones."""
    node_inputs = node_inputs or [name for name, _, _ in inputs]
    node = helper.make_node(op, node_inputs, ["y"], domain=schema.DOMAIN,
                            **schema.plugin_attributes(op, len(node_inputs), **attrs))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info("y", inputs[0][1], None)], initializer=list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid(schema.DOMAIN, 1)])


def run(model, feeds):
    """The node's output in ONNX Runtime, with the plugin lowered."""
    session = ort.InferenceSession(lower_plugins(model).SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]
