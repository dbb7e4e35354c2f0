"""`swin-trt compile` on the CPU: every ONNX artifact produced and validated, stages reused, recipes, gates."""

import json

import onnx
import pytest

from swin_trt.compiler.stages import STATE_FILE


@pytest.fixture(scope="module")
def compiled(tmp_path_factory, crops_dir, photo_dir):
    from click.testing import CliRunner

    from swin_trt.cli import main

    outdir = tmp_path_factory.mktemp("compile") / "out"
    args = ["compile", "--arch", "swin_pico_test", "--precision", "int8", "--calib-data", str(crops_dir),
            "--val-data", str(photo_dir), "-o", str(outdir)]
    first = CliRunner().invoke(main, args, catch_exceptions=False)
    second = CliRunner().invoke(main, args, catch_exceptions=False)
    return outdir, first, second, args


def test_compile_produces_every_artifact(compiled):
    outdir, first, _, _ = compiled
    assert first.exit_code == 0, first.output
    for name in ("model.onnx", "model.onnx.json", "model.rewritten.onnx", "calib.json", "model.int8.onnx",
                 "model.int8.onnx.json", "report.json", "report.html", STATE_FILE):
        assert (outdir / name).is_file(), name
    for line in ("[1/6] export", "[2/6] rewrite", "[3/6] calibrate", "[4/6] quantize", "[6/6] validate"):
        assert line in first.output
    assert "build     skipped" in first.output and "TensorRT" in first.output
    int8 = onnx.load(outdir / "model.int8.onnx")
    assert any(n.op_type == "QuantizeLinear" for n in int8.graph.node)
    report = json.loads((outdir / "report.json").read_text())
    names = [c["name"] for c in report["candidates"]]
    assert any(n.endswith("model.int8.onnx") for n in names)
    rewritten = next(c for c in report["candidates"] if c["name"].endswith("model.rewritten.onnx"))
    assert rewritten["max_abs_err"] <= 1e-4


def test_second_run_reuses_every_stage(compiled):
    outdir, _, second, _ = compiled
    assert second.exit_code == 0, second.output
    assert second.output.count("reused (inputs unchanged)") == 5  # all but the skipped build


def test_changed_input_reruns_downstream_only(compiled, tmp_path):
    from click.testing import CliRunner

    from swin_trt.cli import main

    outdir, _, _, args = compiled
    result = CliRunner().invoke(main, args + ["--calib-method", "max"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "[1/6] export    reused" in result.output and "[2/6] rewrite   reused" in result.output
    assert "[3/6] calibrate done" in result.output and "[4/6] quantize  done" in result.output


def test_recipe_and_gate(cli, tmp_path, photo_dir):
    recipe = tmp_path / "fp16.toml"
    recipe.write_text(f'arch = "swin_pico_test"\nprecision = "fp16"\nval-data = "{photo_dir}"\n'
                      f'min-agreement = 1.01\n')
    result = cli("compile", "--recipe", recipe, "-o", tmp_path / "out", expect=1)
    assert "top1_agreement" in result.output and "--min-agreement" in result.output
    assert (tmp_path / "out" / "model.fp16.onnx").is_file() and (tmp_path / "out" / "report.html").is_file()


def test_int8_without_calibration_data_is_a_clear_error(cli, tmp_path):
    result = cli("compile", "--arch", "swin_pico_test", "--precision", "int8", "-o", tmp_path / "out", expect=2)
    assert "needs --calib-data" in result.output
    assert not (tmp_path / "out").exists()


def test_recipe_with_unknown_key(cli, tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('arch = "swin_pico_test"\nprecison = "fp16"\n')
    result = cli("compile", "--recipe", recipe, "-o", tmp_path / "out", expect=2)
    assert "precison" in result.output
