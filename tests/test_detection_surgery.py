"""A rewrite never changes what a graph computes, detectors included (issue 23).

Detector heads size tensors from pixel values (NMS, top-k with a computed k, NonZero): folding one of those
shapes into a constant changes the detections. These tests hold the rewrite to its source on real photos,
image by image, and check the pieces that make that so: the pixel-dependence analysis, probing on several
contents, and the equivalence check that refuses a graph that differs.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from swin_trt.surgery import cleanup, equivalence
from swin_trt.surgery.dependence import analyse
from swin_trt.surgery.rewrite import rewrite


def _count_graph() -> onnx.ModelProto:
    """``x (1, 8)`` -> the indices of its entries above 0.5, as a ``(K, 1)`` float column: K is data-dependent,
    and the Reshape's target is built from ``Shape(NonZero(...))``."""
    nodes = [
        helper.make_node("Greater", ["x", "half"], ["above"]),
        helper.make_node("NonZero", ["above"], ["where"]),  # (2, K)
        helper.make_node("Shape", ["where"], ["where_shape"]),
        helper.make_node("Gather", ["where_shape", "one"], ["count"]),  # (1,) = [K]
        helper.make_node("Concat", ["count", "one"], ["target"], axis=0),  # [K, 1]
        helper.make_node("Gather", ["where", "one_scalar"], ["columns"], axis=0),  # (K,)
        helper.make_node("Cast", ["columns"], ["columns_f"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["columns_f", "target"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "count", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.array(0.5, np.float32), "half"),
                     numpy_helper.from_array(np.array([1], np.int64), "one"),
                     numpy_helper.from_array(np.array(1, np.int64), "one_scalar")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model, x):
    import onnxruntime as ort

    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_shape_of_a_nonzero_result_stays_computed():
    model = _count_graph()
    dependence = analyse(__import__("onnx_graphsurgeon").import_onnx(model))
    assert {"where", "target", "y"} <= dependence.pixel_shapes
    assert {"where_shape", "count", "target"} <= dependence.pixel_values  # the count is the pixels' doing
    simplified, folding = cleanup.simplify(model)
    assert "Shape" in {n.op_type for n in simplified.graph.node}, "the box count was folded into a constant"
    for x in (np.zeros((1, 8), np.float32), np.linspace(0, 1, 8, dtype=np.float32)[None], np.ones((1, 8), np.float32)):
        np.testing.assert_array_equal(_run(simplified, x), _run(model, x))


def _with_target(model: onnx.ModelProto, target: list[int], then_flatten: bool = False) -> onnx.ModelProto:
    """``model`` with its Reshape target folded to ``target``; ``then_flatten``: the column flattened to a row."""
    changed = onnx.ModelProto()
    changed.CopyFrom(model)
    changed.graph.initializer.append(numpy_helper.from_array(np.array(target, np.int64), "folded_target"))
    reshape = next(n for n in changed.graph.node if n.op_type == "Reshape")
    reshape.input[1] = "folded_target"
    if then_flatten:
        reshape.output[0] = "column"
        changed.graph.node.append(helper.make_node("Flatten", ["column"], ["y"], axis=0))
    return changed


def test_folding_what_the_pixels_change_is_refused():
    """A count folded as one probe content had it: the equivalence check refuses the graph, naming the output,
    whether it then differs in shape or fails to run on another content."""
    model = _count_graph()
    assert equivalence.check_equivalent(model, model, [{}]).max_abs_diff == {"y": 0.0}
    with pytest.raises(equivalence.RewriteChangedGraph, match="output 'y'.*shape"):
        equivalence.check_equivalent(model, _with_target(model, [-1, 1], then_flatten=True), [{}])
    with pytest.raises(equivalence.RewriteChangedGraph, match="fails in ONNX Runtime"):
        equivalence.check_equivalent(model, _with_target(model, [3, 1]), [{}])


def test_equivalence_bound_tells_rounding_from_change():
    expected = np.array([[0.0, 100.0, -3.0]], np.float32)
    rounding = expected + np.float32(100.0) * equivalence.EPS32 * 4  # a few ulps of the largest value
    assert equivalence._difference(expected, rounding)[1] == ""
    assert "max abs difference" in equivalence._difference(expected, expected + np.float32(0.05))[1]
    assert "values differ" in equivalence._difference(np.arange(4), np.arange(4)[::-1].copy())[1]


@pytest.fixture(scope="module")
def photo_inputs(photo_dir):
    """The six real photos at the detectors' 320x320, 0..1 pixels (torchvision detectors normalise inside)."""
    from PIL import Image

    from conftest import DETECTOR_SIZE

    return [np.asarray(Image.open(p).convert("RGB").resize((DETECTOR_SIZE,) * 2), np.float32).transpose(2, 0, 1)[None]
            / 255 for p in sorted(photo_dir.iterdir())]


def _detections(model: onnx.ModelProto, images) -> list[list[np.ndarray]]:
    from swin_trt.backends.onnxruntime import create_session

    session = create_session(model, threads=1)
    return [session.run(None, {"images": image}) for image in images]


@pytest.mark.parametrize("kind", ["fcos", "faster_rcnn"])
def test_detectors_rewrite_to_the_same_detections(kind, detector_onnx, photo_inputs, photo_dir, tmp_path, cli):
    """Every rewrite mode gives the source's detections on each photo (count, boxes, scores, labels), and
    `validate` of the last one against its source, which sees every detection, says so."""
    source = onnx.load(str(detector_onnx(kind)))
    expected = _detections(source, photo_inputs)
    assert all(len(boxes) > 10 for boxes, _, _ in expected), "the test needs detections to compare"
    for mode in (dict(), dict(window_ops="native"), dict(strict=True, fuse_attention=True)):
        rewritten, report = rewrite(source, **mode)
        assert report.replacements or report.kept_native, mode
        assert report.equivalence is not None and report.equivalence.sizes
        for image, (boxes, scores, labels), (got_boxes, got_scores, got_labels) in zip(
                range(len(photo_inputs)), expected, _detections(rewritten, photo_inputs)):
            assert got_boxes.shape == boxes.shape, (mode, image)
            np.testing.assert_allclose(got_boxes, boxes, atol=1e-2, rtol=0, err_msg=f"{mode} image {image}")
            np.testing.assert_allclose(got_scores, scores, atol=1e-4, rtol=0, err_msg=f"{mode} image {image}")
            np.testing.assert_array_equal(got_labels, labels, err_msg=f"{mode} image {image}")
    onnx.save(rewritten, str(tmp_path / "rewritten.onnx"))
    document = json.loads(cli("validate", "--reference", detector_onnx(kind), "--candidate", tmp_path / "rewritten.onnx",
                              "--data", photo_dir, "--layer-images", 0, "--json").stdout)
    candidate = document["candidates"][0]
    assert candidate["detection"]["reference"] == sum(len(boxes) for boxes, _, _ in expected)
    assert (candidate["detection"]["found"], candidate["detection"]["extra"]) == (1.0, 0)
    assert candidate["detection"]["max_score_drift"] == 0 and candidate["max_abs_err"] == 0
