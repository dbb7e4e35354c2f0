"""What users bring: a Swin exported with plain torch.onnx.export by timm or torchvision code, any input and
output names, static or dynamic batch, no sidecar. Every command that reads images takes it with no extra
flag (the ImageNet defaults, said once on stderr), and each preprocessing flag overrides them."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner

from swin_trt.backends.onnxruntime import create_session
from swin_trt.cli import main
from swin_trt.data.images import list_images, open_rgb
from swin_trt.preprocess import PRESETS, Preprocessing

NOTE = "assuming the ImageNet recipe"
SIZE = (64, 64)
PEER = dict(embed_dim=16, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=5)


def peer(impl: str) -> torch.nn.Module:
    torch.manual_seed(0)
    if impl == "timm":
        from timm.models.swin_transformer import SwinTransformer

        return SwinTransformer(img_size=SIZE, **PEER).eval()
    from torchvision.models.swin_transformer import SwinTransformer

    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[1, 2], window_size=[4, 4],
                           num_classes=5).eval()


def user_export(impl: str, dynamic: bool, path, input_name="x", output_name="scores"):
    """What a user's own script does: torch.onnx.export, names of their choosing, nothing else."""
    axes = {input_name: {0: "n"}, output_name: {0: "n"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(peer(impl), (torch.randn(1, 3, *SIZE),), str(path), dynamo=False, opset_version=17,
                          input_names=[input_name], output_names=[output_name], dynamic_axes=axes)
    assert not path.with_name(path.name + ".json").exists()
    return path


def run_cli(*args, expect=0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, f"exit {result.exit_code}:\n{result.output}"
    return result


CASES = [("timm", False), ("timm", True), ("torchvision", False), ("torchvision", True)]


@pytest.mark.parametrize("impl,dynamic", CASES, ids=[f"{i}-{'dynamic' if d else 'static'}" for i, d in CASES])
def test_user_export_goes_through_every_command(tmp_path, crops_dir, photo_dir, impl, dynamic):
    source = user_export(impl, dynamic, tmp_path / "user.onnx", input_name="images", output_name="class_scores")
    rewritten, calib, int8 = tmp_path / "user.rw.onnx", tmp_path / "calib.json", tmp_path / "user.int8.onnx"
    run_cli("rewrite", source, "-o", rewritten, "--strict")
    result = run_cli("calibrate", rewritten, "--data", crops_dir, "-o", calib)
    assert result.stderr.count(NOTE) == 1  # said once, on stderr
    run_cli("quantize", rewritten, "--precision", "int8", "--calib", calib, "-o", int8)
    result = run_cli("validate", "--reference", source, "--candidate", rewritten, "--candidate", int8,
                     "--data", photo_dir, "--json")
    document = json.loads(result.stdout)
    rw, q = document["candidates"]
    assert rw["max_abs_err"] <= 1e-4
    assert q["snr_db"] is not None and 10 < q["snr_db"] < 140
    assert document["dataset"]["preprocessing"]["origin"] == "defaults"
    assert [o["name"] for o in q["outputs"]] == ["class_scores"] and q["outputs"][0]["kind"] == "logits"
    out = tmp_path / "preds.jsonl"
    run_cli("infer", photo_dir, "--model", int8, "--out", out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(list(photo_dir.iterdir()))


def _first_image(photo_dir):
    return open_rgb(list_images(photo_dir)[0].path)


def test_each_override_flag_changes_what_the_model_sees(tmp_path, photo_dir):
    """--preprocess, --mean, --std, --interpolation, --crop-pct and --resize each reach the pixels."""
    from swin_trt.data.model_input import PreprocessOptions, resolve_input

    model = user_export("timm", False, tmp_path / "user.onnx")
    image = _first_image(photo_dir)
    default = resolve_input(model, note=None).preprocessor
    assert default.recipe == Preprocessing() and default.crop == SIZE
    variants = {"preset": PreprocessOptions(preset="inception"), "mean": PreprocessOptions(mean=(0.5, 0.4, 0.3)),
                "std": PreprocessOptions(std=(0.5, 0.5, 0.5)), "interpolation": PreprocessOptions(interpolation="nearest"),
                "crop_pct": PreprocessOptions(crop_pct=1.0), "resize": PreprocessOptions(resize="stretch")}
    base = default(image)
    for name, options in variants.items():
        changed = resolve_input(model, options, note=None).preprocessor
        assert changed.crop == SIZE
        assert not np.allclose(changed(image), base), name
    assert resolve_input(model, PreprocessOptions(preset="none"), note=None).preprocessor(image).max() > 100


def test_override_flags_through_the_cli(tmp_path, photo_dir):
    """Flags override the recipe and are carried forward by rewrite, then used by validate."""
    source = user_export("torchvision", False, tmp_path / "user.onnx")
    rewritten = tmp_path / "user.rw.onnx"
    run_cli("rewrite", source, "-o", rewritten, "--preprocess", "inception", "--interpolation", "bilinear")
    recorded = json.loads(rewritten.with_name(rewritten.name + ".json").read_text())["preprocessing"]
    assert recorded["mean"] == list(PRESETS["inception"].mean) and recorded["interpolation"] == "bilinear"
    assert "assumed" not in recorded
    result = run_cli("validate", "--reference", rewritten, "--candidate", source, "--data", photo_dir, "--json",
                     "--crop-pct", "0.9", "--mean", "0.4,0.4,0.4", "--std", "0.3,0.3,0.3", "--resize", "crop")
    assert NOTE not in result.stderr
    used = json.loads(result.stdout)["dataset"]["preprocessing"]
    assert used["crop_pct"] == 0.9 and used["mean"] == [0.4] * 3 and used["std"] == [0.3] * 3
    assert used["interpolation"] == "bilinear" and used["origin"] == "flags"


def test_dynamic_height_and_width_take_img_size(tmp_path, photo_dir):
    source = tmp_path / "any_size.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Conv2d(3, 4, 3, stride=2).eval(), (torch.randn(1, 3, 32, 32),), str(source),
                          dynamo=False, input_names=["pixel_values"], output_names=["features"],
                          dynamic_axes={"pixel_values": {0: "n", 2: "h", 3: "w"}})
    result = run_cli("validate", "--reference", source, "--candidate", source.as_posix(), "--data", photo_dir,
                     expect=2)
    assert "--img-size" in result.output and "pixel_values" in result.output
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(source.read_bytes())
    result = run_cli("validate", "--reference", source, "--candidate", copy, "--data", photo_dir, "--json",
                     "--img-size", "48x80")
    document = json.loads(result.stdout)
    assert document["dataset"]["preprocessing"]["crop"] == [48, 80]
    features = document["candidates"][0]["outputs"][0]
    assert features["kind"] == "class_map" and features["shape"] == [4, 23, 39] and features["max_abs_err"] == 0


def test_models_of_different_input_sizes_are_refused(tmp_path, photo_dir):
    small = user_export("timm", False, tmp_path / "small.onnx")
    big = tmp_path / "big.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(torch.nn.Conv2d(3, 4, 3).eval(), (torch.randn(1, 3, 96, 96),), str(big), dynamo=False)
    result = run_cli("validate", "--reference", small, "--candidate", big, "--data", photo_dir, "-o",
                     tmp_path / "report", expect=2)
    assert "64x64" in result.output and "96x96" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "report").exists()


def test_dense_outputs_get_pixel_agreement(tmp_path, photo_dir):
    """A (B, C, H, W) class map: agreement per pixel; several outputs: every output compared."""
    from swin_trt.validate.compare import output_kind

    assert output_kind((5,), 1) == "logits"
    assert output_kind((21, 16, 16), 1) == "class_map"
    assert output_kind((96, 16, 16), 4) == "features" and output_kind((49, 96), 1) == "features"

    class TwoMaps(torch.nn.Module):
        def forward(self, x):
            return torch.nn.functional.avg_pool2d(x, 4), torch.nn.functional.max_pool2d(x, 8)

    source = tmp_path / "maps.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(TwoMaps().eval(), (torch.randn(1, 3, 64, 64),), str(source), dynamo=False,
                          output_names=["stage1", "stage2"])
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(source.read_bytes())
    document = json.loads(run_cli("validate", "--reference", source, "--candidate", copy, "--data", photo_dir,
                                  "--json").stdout)
    outputs = document["candidates"][0]["outputs"]
    assert [(o["name"], o["kind"], o["shape"]) for o in outputs] == [("stage1", "features", [3, 16, 16]),
                                                                      ("stage2", "features", [3, 8, 8])]
    assert document["candidates"][0]["top1_agreement"] is None


def test_rewritten_graph_equals_source_on_real_photos(tmp_path, photo_dir):
    """The numbers behind 'within 1e-4', measured directly in ONNX Runtime on the default preprocessing."""
    from swin_trt.surgery.rewrite_stage import rewrite_file

    source = user_export("timm", True, tmp_path / "user.onnx")
    rewrite_file(source, tmp_path / "rw.onnx", strict=True)
    pre = Preprocessing().at(SIZE)
    pixels = np.stack([pre(open_rgb(item.path)) for item in list_images(photo_dir)])
    expected = create_session(onnx.load(source)).run(None, {"x": pixels})[0]
    got = create_session(onnx.load(tmp_path / "rw.onnx")).run(None, {"x": pixels})[0]
    assert np.abs(expected - got).max() <= 1e-4


def test_compile_starts_from_a_user_export(tmp_path, crops_dir):
    source = user_export("torchvision", True, tmp_path / "user.onnx", input_name="pixel_values")
    outdir = tmp_path / "out"
    result = run_cli("compile", "--onnx", source, "--precision", "int8", "--calib-data", crops_dir, "-o", outdir)
    assert "[1/5] rewrite" in result.output and "export" not in result.output.split("[1/5]")[1].split("\n")[0]
    document = json.loads((outdir / "report.json").read_text())
    assert document["reference"] == str(source)
    assert document["candidates"][0]["max_abs_err"] <= 1e-4
    assert document["dataset"]["calibration_overlap"]["images"] == 0
    result = run_cli("compile", "--onnx", source, "--arch", "swin_pico_test", "-o", tmp_path / "both", expect=2)
    assert "not both" in result.output and not (tmp_path / "both").exists()
