"""`swin-trt validate`: reports over fp32 / rewritten / fp16 / int8 candidates, labels, gates, references."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from swin_trt.export import seeded_model
from swin_trt.io import read_sidecar
from swin_trt.validate.schema import SCHEMA_VERSION, missing_keys


@pytest.fixture(scope="module")
def models(pico_models):
    return pico_models


@pytest.fixture(scope="module")
def class_dir(tmp_path_factory, photo_dir):
    """The photos in an ImageFolder layout (class sub-folders); the pico model has no class names."""
    folder = tmp_path_factory.mktemp("classes")
    for index, photo in enumerate(sorted(photo_dir.iterdir())):
        target = folder / ("animals" if index % 2 else "things")
        target.mkdir(exist_ok=True)
        shutil.copy(photo, target / photo.name)
    return folder


@pytest.fixture(scope="module")
def full_run(cli, models, class_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    result = cli("validate", "--reference", models["fp32"], "--candidate", models["rewritten"],
                 "--candidate", models["fp16"], "--candidate", models["int8"], "--data", class_dir,
                 "--layer-images", 3, "-o", out, "--min-agreement", 0.5, "--max-acc-drop", 0.5)
    return result, out, json.loads((out / "report.json").read_text())


def test_report_document(full_run, models):
    _, _, document = full_run
    assert missing_keys(document) == [] and document["schema_version"] == SCHEMA_VERSION
    by_precision = {c["precision"]: c for c in document["candidates"]}
    assert set(by_precision) == {"fp32", "fp16", "int8"}
    rewritten, fp16, int8 = by_precision["fp32"], by_precision["fp16"], by_precision["int8"]
    assert rewritten["max_abs_err"] <= 1e-4 and rewritten["layers"] is None
    # fp16 keeps more of the signal than int8 weights, and both far less than the exact rewrite.
    assert int8["snr_db"] < fp16["snr_db"] < (rewritten["snr_db"] or float("inf"))
    for entry in document["candidates"]:
        for key in ("acc1", "acc5", "acc1_change", "acc5_change", "top5_agreement", "cosine_min", "mean_abs_err"):
            assert key in entry, key
        assert entry["latency"]["calls"] >= 1 and entry["latency"]["p95_ms"] >= entry["latency"]["median_ms"] > 0
        assert sum(entry["error_histogram"]["counts"]) == entry["images"] * 5  # 5 logits per image
    assert document["reference_metrics"]["latency"]["median_ms"] > 0
    assert document["dataset"]["label_source"] == "folders" and document["dataset"]["label_mapping"] == "imagefolder"
    assert document["gates"] == {"thresholds": {"min_agreement": 0.5, "max_acc_drop": 0.5}, "passed": True,
                                 "failures": []}


def test_layer_attribution_ranks_matched_tensors(full_run, models):
    _, _, document = full_run
    for precision in ("fp16", "int8"):
        layers = next(c for c in document["candidates"] if c["precision"] == precision)["layers"]
        assert layers["status"] == "ok" and layers["fp32"] == str(models["fp32"]) and layers["images"] == 3
        assert layers["compared"] > 50 and len(layers["worst"]) == 10
        ops = {t["op"] for t in layers["tensors"]}
        assert {"MatMul", "LayerNormalization", "Conv", "Gemm"} <= ops and "Reshape" not in ops
        ranked = {t["name"]: t for t in layers["tensors"]}
        own = [ranked[n]["layer_snr_db"] for n in layers["worst"]]
        assert own == sorted(own)  # worst (lowest layer SNR) first
        assert ranked["logits"]["snr_db"] == pytest.approx(
            next(c for c in document["candidates"] if c["precision"] == precision)["snr_db"], abs=6)
    int8 = next(c for c in document["candidates"] if c["precision"] == "int8")["layers"]
    # Only the weights are quantized: the layers that add error are the ones with weights.
    assert {next(t for t in int8["tensors"] if t["name"] == n)["op"] for n in int8["worst"][:5]} <= {
        "MatMul", "Gemm", "Conv"}


def test_terminal_summary_and_html(full_run):
    result, out, _ = full_run
    lines = result.output.splitlines()
    assert any(line.startswith("model") and "acc@1" in line and "ms med/p95" in line for line in lines)
    assert "layers adding the most error" in result.output and f"report: {out / 'report.html'}" in result.output
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 4
    assert "http://" not in html and "https://" not in html and "<link" not in html and "<script" not in html
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_gate_failure_names_metric_and_candidate_after_writing_the_report(cli, models, photo_dir, tmp_path):
    out = tmp_path / "gated"
    result = cli("validate", "--reference", models["fp32"], "--candidate", models["rewritten"],
                 "--candidate", models["int8"], "--data", photo_dir, "--layer-images", 0, "-o", out,
                 "--min-cosine", 0.9999999, "--atol", 1e-3, expect=1)
    assert "FAILED" in result.output and "pico.rw.int8.onnx: cosine" in result.output
    assert "max_abs_err" in result.output and "--atol" in result.output
    document = json.loads((out / "report.json").read_text())
    assert not document["gates"]["passed"]
    assert {(f["candidate"].rsplit("/", 1)[-1], f["metric"]) for f in document["gates"]["failures"]} == {
        ("pico.rw.int8.onnx", "cosine"), ("pico.rw.int8.onnx", "max_abs_err")}
    assert 'class="verdict fail"' in (out / "report.html").read_text()


def test_accuracy_gate_needs_labels(cli, models, photo_dir):
    result = cli("validate", "--reference", models["fp32"], "--candidate", models["rewritten"], "--data", photo_dir,
                 "--max-acc-drop", 0.01, expect=2)
    assert "--max-acc-drop needs labelled images" in result.output


def test_labels_file(cli, models, photo_dir, tmp_path):
    labels = tmp_path / "labels.txt"
    names = sorted(p.name for p in photo_dir.iterdir())
    labels.write_text("# path label\n" + "".join(f"{name} {i % 5}\n" for i, name in enumerate(names[:4])))
    result = cli("validate", "--reference", models["fp32"], "--candidate", models["rewritten"], "--data", photo_dir,
                 "--labels", labels, "--json")
    document = json.loads(result.stdout)
    assert document["dataset"]["label_source"] == "labels_file" and document["dataset"]["labelled"] == 4
    assert document["dataset"]["label_mapping"] == "index" and document["candidates"][0]["labelled"] == 4


def test_torch_reference_with_fp32_graph_for_layers(cli, models, photo_dir, tmp_path):
    seed = read_sidecar(models["fp32"])["weights"]["seed"]  # the random weights export_model drew
    weights = tmp_path / "pico.pth"
    torch.save(seeded_model("swin_pico_test", seed)[0].state_dict(), weights)
    result = cli("validate", "--reference", f"torch:swin_pico_test:{weights}", "--candidate", models["fp32"],
                 "--candidate", models["fp16"], "--data", photo_dir, "--limit", 3, "--layer-images", 2,
                 "--fp32", models["fp32"], "--json")
    document = json.loads(result.stdout)
    fp32, fp16 = document["candidates"]
    assert document["reference_metrics"]["backend"] == "torch" and fp32["max_abs_err"] < 1e-4
    assert fp16["layers"]["status"] == "ok" and fp16["layers"]["fp32"] == str(models["fp32"])


def test_torch_reference_without_fp32_graph_skips_layers_with_a_reason(cli, models, photo_dir):
    result = cli("validate", "--reference", "torch:swin_pico_test", "--candidate", models["fp16"],
                 "--data", photo_dir, "--limit", 1, "--json")
    layers = json.loads(result.stdout)["candidates"][0]["layers"]
    assert layers["status"] == "skipped" and "--fp32" in layers["reason"]


def test_engine_candidate_without_tensorrt_is_a_user_error(cli, models, photo_dir, tmp_path):
    try:
        import tensorrt  # noqa: F401  (only whether it imports matters)
    except (ImportError, OSError):
        pass
    else:
        pytest.skip("TensorRT is installed here: the engine would be opened for real")
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not really a plan")
    result = cli("validate", "--reference", models["fp32"], "--candidate", engine, "--data", photo_dir, expect=2)
    assert "TensorRT" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("args,message", [
    (["--candidate", "{rewritten}", "--candidate", "{rewritten}"], "given twice"),
    (["--candidate", "{rewritten}", "--fp32", "missing.onnx"], "--fp32 'missing.onnx' does not exist"),
    (["--candidate", "missing.onnx"], "does not exist"),
])
def test_bad_arguments(cli, models, photo_dir, args, message):
    args = [a.format(**models) for a in args]
    result = cli("validate", "--reference", models["fp32"], *args, "--data", photo_dir, expect=2)
    assert message in result.output
