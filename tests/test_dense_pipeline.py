"""Dense models through the pipeline, on the test-sized segmenter ``swin_pico_seg_test`` (random weights,
80 px, class map output): export records a whole-image input, calibrate stretches the whole image (with or
without a sidecar, at --img-size on dynamic graphs), validate reports pixel agreement, mIoU agreement and the
true mIoU against label masks (and gates on it), infer writes the class histogram per frame and overlays the
class map, and compile runs end to end."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import onnx
import pytest
from PIL import Image

from swin_trt.backends.onnxruntime import create_session
from swin_trt.data.images import list_images, open_rgb
from swin_trt.preprocess import Preprocessing

from conftest import sum_atol

ARCH = "swin_pico_seg_test"
SIZE = (80, 80)
CLASSES = 5


@pytest.fixture(scope="module")
def seg(tmp_path_factory):
    """The segmenter exported static and with dynamic height/width, each rewritten (with sidecars)."""
    from swin_trt.export import export_model
    from swin_trt.surgery.rewrite_stage import rewrite_file

    folder = tmp_path_factory.mktemp("seg")
    paths = {"fp32": folder / "seg.onnx", "rw": folder / "seg.rw.onnx", "dyn": folder / "dyn.onnx",
             "dyn_rw": folder / "dyn.rw.onnx"}
    export_model(ARCH, paths["fp32"], check=False)
    rewrite_file(paths["fp32"], paths["rw"], strict=True)
    export_model(ARCH, paths["dyn"], dynamic_size=True, dynamic_batch=4)
    rewrite_file(paths["dyn"], paths["dyn_rw"], strict=True)
    return paths


def _stretched(path, size=SIZE):
    return Preprocessing(crop_pct=1.0, resize="stretch").at(size)(open_rgb(path))


def _argmax(model_path, images, size=SIZE) -> np.ndarray:
    session = create_session(onnx.load(model_path))
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: _stretched(p, size)[None]})[0].argmax(axis=1) for p in images])


@pytest.fixture(scope="module")
def masks(seg, crops_dir, tmp_path_factory):
    """Label masks = the reference's own argmax (so its mIoU is exactly 1), with a band of ignored pixels."""
    folder = tmp_path_factory.mktemp("masks")
    images = [item.path for item in list_images(crops_dir)]
    for path, mask in zip(images, _argmax(seg["fp32"], images)):
        mask = mask.astype(np.uint8)
        mask[:3] = 255
        Image.fromarray(mask, mode="L").save(folder / f"{path.stem}.png")
    return folder


def _sidecar(path):
    return json.loads(path.with_name(path.name + ".json").read_text())


def test_dense_exports_record_the_whole_image_as_input(seg, tmp_path):
    from swin_trt.export import export_model

    static, dynamic = _sidecar(seg["fp32"]), _sidecar(seg["dyn"])
    assert static["task"] == "segmentation" and static["preprocessing"]["fit"] == "stretch"
    assert static["outputs"] == [{"name": "logits", "shape": [1, CLASSES, *SIZE]}]
    assert dynamic["outputs"] == [{"name": "logits", "shape": ["batch", CLASSES, "height", "width"]}]
    assert dynamic["check"]["onnxruntime_max_abs_err"] < 1e-4  # also checked at a second, larger size
    # a classifier's backbone export is dense too: no classification centre crop
    export_model("swin_pico_test", tmp_path / "features.onnx", features=True, check=False)
    export_model("swin_pico_test", tmp_path / "classifier.onnx", check=False)
    assert _sidecar(tmp_path / "features.onnx")["preprocessing"]["fit"] == "stretch"
    assert _sidecar(tmp_path / "classifier.onnx")["preprocessing"]["fit"] == "crop"
    assert _sidecar(tmp_path / "classifier.onnx")["task"] == "classification"


def test_calibrate_dense_graphs_on_whole_images(seg, crops_dir, tmp_path, cli):
    cache = tmp_path / "calib.json"
    cli("calibrate", seg["rw"], "--data", crops_dir, "-o", cache, "--quiet")
    used = json.loads(cache.read_text())
    assert used["preprocessing"]["fit"] == "stretch" and used["preprocessing"]["crop"] == list(SIZE)
    # the fit reaches the pixels: a centre crop measures other ranges
    cli("calibrate", seg["rw"], "--data", crops_dir, "-o", tmp_path / "crop.json", "--quiet", "--resize", "crop")
    cropped = json.loads((tmp_path / "crop.json").read_text())
    assert cropped["preprocessing"]["fit"] == "crop"
    assert any(cropped["tensors"][k]["amax"] != v["amax"] for k, v in used["tensors"].items())
    # without a sidecar: dense outputs -> stretched by default, said once
    bare = tmp_path / "bare.onnx"
    shutil.copy(seg["rw"], bare)
    result = cli("calibrate", bare, "--data", crops_dir, "-o", tmp_path / "bare.json", "--quiet")
    assert "whole image stretched" in result.stderr
    assert json.loads((tmp_path / "bare.json").read_text())["preprocessing"]["fit"] == "stretch"
    # a dynamic graph: its recorded size, or --img-size
    cli("calibrate", seg["dyn_rw"], "--data", crops_dir, "-o", tmp_path / "dyn.json", "--quiet")
    assert json.loads((tmp_path / "dyn.json").read_text())["preprocessing"]["crop"] == list(SIZE)
    cli("calibrate", seg["dyn_rw"], "--data", crops_dir, "-o", tmp_path / "dyn96.json", "--quiet",
        "--img-size", "96x112")
    assert json.loads((tmp_path / "dyn96.json").read_text())["preprocessing"]["crop"] == [96, 112]
    bare_dynamic = tmp_path / "bare_dyn.onnx"
    shutil.copy(seg["dyn_rw"], bare_dynamic)
    result = cli("calibrate", bare_dynamic, "--data", crops_dir, "-o", tmp_path / "x.json", expect=2)
    assert "--img-size" in result.output and not (tmp_path / "x.json").exists()


def _negated(source, path):
    """A 'candidate' whose class map is the reference's argmin: a real model with a worse mIoU."""
    model = onnx.load(source)
    output = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{o}_raw" if o == output else o for o in node.output]
    model.graph.node.append(onnx.helper.make_node("Neg", [f"{output}_raw"], [output], name="negate"))
    onnx.save(model, path)
    return path


def test_validate_reports_miou_against_masks(seg, crops_dir, masks, tmp_path, cli):
    worse = _negated(seg["fp32"], tmp_path / "worse.onnx")
    result = cli("validate", "--reference", seg["fp32"], "--candidate", seg["rw"], "--candidate", worse,
                 "--data", crops_dir, "--masks", masks, "-o", tmp_path / "report", "--layer-images", "0")
    assert "class maps, argmax per pixel (label masks from" in result.output
    document = json.loads((tmp_path / "report" / "report.json").read_text())
    reference, (rewritten, negated) = document["reference_metrics"], document["candidates"]
    images = len(list_images(crops_dir))
    assert document["dataset"]["masks"] == {"folder": str(masks), "ignore_index": 255,
                                            "labelled_pixels": images * (SIZE[0] - 3) * SIZE[1]}
    # the masks are the reference's own argmax: everything it is compared with is exact
    assert reference["miou"] == 1.0 and reference["pixel_accuracy"] == 1.0
    assert len(reference["class_iou"]) == CLASSES
    assert rewritten["miou"] == 1.0 and rewritten["miou_change"] == 0.0
    assert rewritten["pixel_agreement"] == rewritten["top1_agreement"] == 1.0 and rewritten["miou_agreement"] == 1.0
    assert rewritten["outputs"][0]["kind"] == "class_map" and rewritten["outputs"][0]["miou"] == 1.0
    # the argmin: agreement and mIoU measured, not assumed
    truth = _argmax(seg["fp32"], [i.path for i in list_images(crops_dir)])
    flipped = _argmax(worse, [i.path for i in list_images(crops_dir)])
    assert negated["pixel_agreement"] == pytest.approx(float((truth == flipped).mean()))
    labelled = truth[:, 3:], flipped[:, 3:]
    iou = [np.sum((labelled[0] == c) & (labelled[1] == c)) / np.sum((labelled[0] == c) | (labelled[1] == c))
           for c in range(CLASSES) if np.any((labelled[0] == c) | (labelled[1] == c))]
    assert negated["miou"] == pytest.approx(float(np.mean(iou)))
    assert negated["miou_change"] == pytest.approx(negated["miou"] - 1.0) and negated["miou_change"] < 0
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>Segmentation</h2>" in html and "IoU per class" in html and 'alt="Segmentation by precision"' in html
    # the gate
    result = cli("validate", "--reference", seg["fp32"], "--candidate", worse, "--data", crops_dir, "--masks", masks,
                 "--layer-images", "0", "--max-miou-drop", "0.01", expect=1)
    assert "miou_drop" in result.output and str(worse) in result.output


def test_masks_are_checked_before_anything_runs(seg, crops_dir, masks, tmp_path, cli, pico_models):
    result = cli("validate", "--reference", pico_models["fp32"], "--candidate", pico_models["rewritten"],
                 "--data", crops_dir, "--masks", masks, "-o", tmp_path / "r1", expect=2)
    assert "--masks needs a segmentation model" in result.output and not (tmp_path / "r1").exists()
    partial = tmp_path / "partial"
    shutil.copytree(masks, partial)
    next(partial.iterdir()).unlink()
    result = cli("validate", "--reference", seg["fp32"], "--candidate", seg["rw"], "--data", crops_dir,
                 "--masks", partial, "-o", tmp_path / "r2", expect=2)
    assert "no mask for 1 of" in result.output and not (tmp_path / "r2").exists()
    result = cli("validate", "--reference", seg["fp32"], "--candidate", seg["rw"], "--data", crops_dir,
                 "--max-miou-drop", "0.01", expect=2)
    assert "--max-miou-drop needs label masks" in result.output


def test_one_dynamic_dense_graph_validates_at_any_img_size(seg, crops_dir, masks, cli):
    for size in ("80x80", "96x112"):
        document = json.loads(cli("validate", "--reference", seg["dyn"], "--candidate", seg["dyn_rw"], "--data",
                                  crops_dir, "--masks", masks, "--img-size", size, "--layer-images", "0",
                                  "--json").stdout)
        height, width = map(int, size.split("x"))
        candidate = document["candidates"][0]
        assert document["dataset"]["preprocessing"]["crop"] == [height, width]
        assert candidate["outputs"][0]["shape"] == [CLASSES, height, width]
        assert candidate["max_abs_err"] <= 1e-4 and candidate["miou_agreement"] == 1.0
        assert document["dataset"]["masks"]["labelled_pixels"] > 0  # masks resized to the class map's size


def test_infer_writes_class_histograms_and_overlays_the_map(seg, crops_dir, tmp_path, cli):
    from swin_trt.video.synth import make_pan_zoom_video

    out = tmp_path / "preds.jsonl"
    cli("infer", crops_dir, "-m", seg["rw"], "--out", out, "--topk", "2")
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    images = list_images(crops_dir)
    assert len(lines) == len(images)
    for line, item in zip(lines, images):
        assert "scores" not in line and len(line["classes"]) == len(line["shares"]) <= 2
        counts = np.bincount(_argmax(seg["rw"], [item.path]).ravel(), minlength=CLASSES) / (SIZE[0] * SIZE[1])
        expected = {f"class_{c}": float(counts[c]) for c in np.argsort(-counts, kind="stable") if counts[c] > 0}
        assert list(line["histogram"]) == list(expected)
        shares = list(expected.values())  # pixel counts / pixels, each one float32 division: half an ulp of 1
        np.testing.assert_allclose(list(line["histogram"].values()), shares, rtol=0, atol=sum_atol(1.0, 1))
        assert line["classes"] == list(expected)[:2] and sum(line["histogram"].values()) == pytest.approx(1.0)
    clip = tmp_path / "clip.mp4"
    make_pan_zoom_video(clip, frames=6, size=(96, 72), fps=6)
    video = tmp_path / "overlay.mp4"
    cli("infer", clip, "-m", seg["fp32"], "--out", tmp_path / "clip.jsonl", "--save-video", video, "--batch", "3")
    import av

    with av.open(str(video)) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    assert len(frames) == len((tmp_path / "clip.jsonl").read_text().splitlines()) == 6
    with av.open(str(clip)) as container:
        plain = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    # the map is blended over the whole frame (stretch): the lower half, below the legend, changed everywhere
    assert np.abs(frames[3][40:].astype(int) - plain[3][40:].astype(int)).mean() > 10


def test_compile_a_segmenter_to_int8_with_masks(crops_dir, masks, tmp_path, cli):
    outdir = tmp_path / "out"
    result = cli("compile", "--arch", ARCH, "--precision", "int8", "--calib-data", crops_dir, "--val-masks", masks,
                 "-o", outdir)
    assert "mIoU agr" in result.output
    document = json.loads((outdir / "report.json").read_text())
    assert document["dataset"]["masks"]["folder"] == str(masks)
    rewritten, int8 = document["candidates"]
    assert rewritten["miou"] == 1.0 and int8["precision"] == "int8"
    assert int8["miou"] is not None and int8["pixel_agreement"] is not None
    assert document["dataset"]["calibration_overlap"]["images"] == 0


def test_int8_feature_maps_read_the_partitions_int8_input(seg):
    """In an INT8 graph of any size, a reverse's and a shifted attention's dims-only feature map is its block's
    partition input as quantized (int8), so no float tensor stays alive for its dims; the graph runs at two
    sizes exactly as with the float map bound (dims only)."""
    import onnx_graphsurgeon as gs

    from swin_trt.ops import schema
    from swin_trt.precision.int8 import quantize_int8
    from swin_trt.precision.points import quant_points

    source = onnx.load(seg["dyn_rw"])
    scales = {p.tensor: 0.05 for p in quant_points(gs.import_onnx(source))}
    quantized, _ = quantize_int8(source, scales)
    graph = gs.import_onnx(quantized)
    partition_inputs = {n.inputs[0].name for n in graph.nodes if n.op == schema.PARTITION}
    maps = [n.inputs[schema.FEATURE_MAP_INPUT[n.op]] for n in graph.nodes
            if n.op in schema.FEATURE_MAP_INPUT and schema.has_feature_map(n.op, len(n.inputs))]
    assert len(maps) == sum(n.op == schema.REVERSE for n in graph.nodes) >= 4  # (attention is not fused here)
    assert all(m.dtype == np.int8 and m.inputs[0].op == "QuantizeLinear" and m.name in partition_inputs
               for m in maps)
    float_maps = gs.import_onnx(quantized)
    for node in float_maps.nodes:
        if node.op in schema.FEATURE_MAP_INPUT and schema.has_feature_map(node.op, len(node.inputs)):
            int8_map = node.inputs[schema.FEATURE_MAP_INPUT[node.op]]
            node.inputs[schema.FEATURE_MAP_INPUT[node.op]] = int8_map.inputs[0].inputs[0]  # the float map
    rng = np.random.default_rng(0)
    for size in (SIZE, (96, 112)):
        x = rng.standard_normal((2, 3, *size)).astype(np.float32)
        got, expected = (create_session(m, int8="exact").run(None, {"input": x})[0]
                         for m in (quantized, gs.export_onnx(float_maps)))
        np.testing.assert_array_equal(got, expected)
