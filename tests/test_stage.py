"""The one Stage type: a reuse key that follows from inputs, options and environment, never written by hand."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from swin_trt import stage as stages
from swin_trt.stage import FINGERPRINT, NOT_IN_KEY, Stage, key_hash


@dataclass(frozen=True)
class Options:
    size: int = 1
    table: Path | None = None  # enters by content
    names: Path | None = field(default=None, metadata=FINGERPRINT(lambda p: p.read_text().split()[0]))
    progress: bool = field(default=True, metadata=NOT_IN_KEY)


class Copy(Stage[str]):
    name = "copy"
    environment = ("onnxruntime",)

    def __init__(self, source: Path, output: Path, options: Options):
        super().__init__({"source": source}, [output], options)

    def work(self) -> str:
        self.outputs[0].write_bytes(self.inputs["source"].read_bytes())
        return "copied"


@pytest.fixture
def files(tmp_path):
    source, table, names = tmp_path / "in.bin", tmp_path / "table.bin", tmp_path / "names.txt"
    source.write_bytes(b"a")
    table.write_bytes(b"t")
    names.write_text("first second")
    return source, table, names


def _key(source, options, output=Path("out.bin")) -> str:
    return key_hash(Copy(source, output, options).key())


def test_the_key_follows_every_input_and_option_by_content(files, tmp_path):
    source, table, names = files
    options = Options(table=table, names=names)
    first = _key(source, options)
    assert _key(source, options) == first
    assert _key(source, replace(options, progress=False)) == first  # how a run reports: not in the key
    moved = tmp_path / "moved.bin"
    moved.write_bytes(source.read_bytes())
    assert _key(moved, options) == first  # a file counts by its content, wherever it lies
    assert _key(source, replace(options, size=2)) != first
    source.write_bytes(b"b")
    assert _key(source, options) != first
    source.write_bytes(b"a")
    table.write_bytes(b"u")  # a Path option: by content
    assert _key(source, options) != first
    table.write_bytes(b"t")
    names.write_text("first third")  # a declared fingerprint reads only the first name
    assert _key(source, options) == first
    names.write_text("other")
    assert _key(source, options) != first


def test_the_key_follows_the_declared_environment(files, monkeypatch):
    source, table, names = files
    first = _key(source, Options())
    monkeypatch.setitem(stages.ENVIRONMENT, "onnxruntime", lambda: "0.0-fake")
    assert _key(source, Options()) != first
    monkeypatch.setitem(stages.ENVIRONMENT, "tensorrt", lambda: "not declared by Copy")
    changed = _key(source, Options())
    monkeypatch.setitem(stages.ENVIRONMENT, "tensorrt", lambda: "still not declared")
    assert _key(source, Options()) == changed


def test_a_folder_counts_by_its_files(tmp_path):
    folder = tmp_path / "images"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.png").write_bytes(b"1")
    first = stages.fingerprint(folder)
    (folder / "a" / "1.png").write_bytes(b"2")
    assert stages.fingerprint(folder) != first


def test_an_option_without_a_fingerprint_is_refused():
    with pytest.raises(TypeError, match="no fingerprint"):
        stages.fingerprint(object())


def test_every_pipeline_stage_is_a_stage_named_after_its_step():
    from swin_trt.engine.build import BuildStage
    from swin_trt.export import ExportStage
    from swin_trt.precision.calibrate_stage import CalibrateStage
    from swin_trt.precision.quantize_stage import QuantizeStage
    from swin_trt.surgery.rewrite_stage import RewriteStage
    from swin_trt.validate.run import ValidateStage

    for cls, step in ((ExportStage, "export"), (RewriteStage, "rewrite"), (CalibrateStage, "calibrate"),
                      (QuantizeStage, "quantize"), (BuildStage, "build"), (ValidateStage, "validate")):
        assert issubclass(cls, Stage) and cls.name == step and cls.__name__ == f"{step.capitalize()}Stage"
