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


def _statuses(output: str) -> dict[str, str]:
    """``{stage: "reused" | "done" | "skipped"}`` from compile's per-stage lines."""
    statuses = {}
    for line in output.splitlines():
        if line.startswith("[") and "] " in line:
            words = line.split("] ", 1)[1].split()
            if len(words) > 1 and words[1] in ("reused", "done", "skipped:"):
                statuses[words[0]] = words[1].rstrip(":")
    return statuses


@pytest.fixture
def own_data(tmp_path, crops_dir, photo_dir):
    """Copies of the calibration and validation images this test may change."""
    import shutil

    calib, val = tmp_path / "calib", tmp_path / "val"
    shutil.copytree(crops_dir, calib)
    shutil.copytree(photo_dir, val)
    return calib, val


def _repaint(path):
    """Change the pixels of an image, keeping its name."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    Image.eval(image, lambda v: 255 - v).save(path)


def test_reuse_follows_the_content_of_every_input(cli, tmp_path, own_data):
    calib, val = own_data
    args = ["compile", "--arch", "swin_pico_test", "--precision", "int8", "--calib-data", calib,
            "--val-data", val, "-o", tmp_path / "out"]
    cli(*args)
    assert set(_statuses(cli(*args).output).values()) <= {"reused", "skipped"}  # nothing changed

    _repaint(sorted(calib.iterdir())[3])  # same file names, other pixels
    statuses = _statuses(cli(*args).output)
    assert statuses["export"] == statuses["rewrite"] == "reused"
    assert statuses["calibrate"] == statuses["quantize"] == statuses["validate"] == "done"

    _repaint(sorted(val.iterdir())[0])
    statuses = _statuses(cli(*args).output)
    assert statuses["validate"] == "done"
    assert all(statuses[s] == "reused" for s in ("export", "rewrite", "calibrate", "quantize"))


def test_build_key_follows_the_plugin_library_content_and_the_environment(tmp_path, crops_dir, monkeypatch):
    """The engine is rebuilt after a change of plugin library, TensorRT version or GPU, and only then. The
    environment is faked here (no TensorRT or GPU on CI): what is tested is the reuse decision, not a build."""
    from swin_trt import environment
    from swin_trt.compiler.job import Artifacts, DataSources, plan
    from swin_trt.compiler.options import CompileOptions
    from swin_trt.compiler.stages import key_hash

    library = tmp_path / "libswin_trt_plugins.so"
    library.write_bytes(b"one build")
    options = CompileOptions(tmp_path / "out", arch="swin_pico_test", precision="fp32", plugins=library)
    files = Artifacts(options.outdir, options.precision)
    files.rewritten.parent.mkdir(parents=True)
    files.rewritten.write_bytes(b"graph")  # the build key reads the final graph's content ...
    files.exported.write_bytes(b"export")  # ... and the export its variants are made from (--compare)

    def build_key():
        stage = next(s for s in plan(options, files, DataSources(None, crops_dir)) if s.name == "build")
        return key_hash(stage.key())

    first = build_key()
    assert build_key() == first
    library.write_bytes(b"another build")  # same path, new content
    assert build_key() != first
    keys = set()
    for tensorrt, gpu in (("10.3.0", "Orin"), ("11.4.1", "Orin"), ("11.4.1", "H100")):
        fake = {"tensorrt": tensorrt, "gpu": {"name": gpu, "compute_capability": "8.7"}}
        monkeypatch.setattr(environment, "build_environment", lambda fake=fake: fake)
        keys.add(build_key())
        assert build_key() in keys  # unchanged environment: the same key
    assert len(keys) == 3


def test_int8_without_val_data_validates_on_held_out_images(cli, tmp_path, own_data):
    calib, _ = own_data
    result = cli("compile", "--arch", "swin_pico_test", "--precision", "int8", "--calib-data", calib,
                 "-o", tmp_path / "out")
    assert "no --val-data: validating on 6 of the 24 images" in result.output  # holdout.py's `val_data`, as compile says it
    document = json.loads((tmp_path / "out" / "report.json").read_text())
    assert document["dataset"]["images"] == 6
    assert document["dataset"]["calibration_overlap"]["images"] == 0
    cache = json.loads((tmp_path / "out" / "calib.json").read_text())
    assert cache["data"]["images"] == 18


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
