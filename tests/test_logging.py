"""One diagnostics channel: the ``swin_trt`` logger (swin_trt/diagnostics.py). The CLI shows notes as
``note: ...`` on stderr; ``-q`` keeps warnings and errors, ``-v`` adds debug lines, ``SWIN_TRT_LOG_LEVEL``
works for every command and for library use; the library itself neither prints nor warns through
``warnings`` for what it has to say."""

from __future__ import annotations

import ast
import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from swin_trt import diagnostics
from swin_trt.cli import main as cli_main
from swin_trt.progress import progress_bar

ROOT = Path(__file__).resolve().parents[1]


@click.command()
def speak():
    """What library modules say, at every level, and one progress line."""
    logging.getLogger("swin_trt.data.model_input").debug("a detail")
    logging.getLogger("swin_trt.data.model_input").info("an assumption")
    logging.getLogger("swin_trt.precision.sources").warning("skipping broken.jpg")
    with progress_bar(3, "calibrate", unit="img") as bar:
        bar.update(3)
    click.echo("the result")


@pytest.fixture
def run(monkeypatch):
    group = importlib.import_module("swin_trt.cli.main")  # the module (the package's `main` is the group)

    monkeypatch.setitem(group._COMMANDS, "speak", (__name__, "speak", "Say something at every level."))
    monkeypatch.delenv(diagnostics.ENV, raising=False)

    def invoke(*args, expect=0, env=None):
        result = CliRunner().invoke(cli_main, [*args, "speak"], env=env, catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    yield invoke
    diagnostics.configure(logging.INFO)  # as a plain run leaves it, whatever a test set


def test_notes_and_warnings_go_to_stderr_as_users_read_them(run):
    result = run()
    assert result.stdout == "the result\n"
    lines = result.stderr.splitlines()
    assert "note: an assumption" in lines and "warning: skipping broken.jpg" in lines
    assert any(line.startswith("calibrate: 3 img in ") for line in lines)  # the progress line, as it was
    assert "a detail" not in result.stderr


def test_quiet_hides_notes_and_progress_not_warnings(run):
    for flag in ("-q", "--quiet"):
        result = run(flag)
        assert result.stdout == "the result\n"
        assert result.stderr.splitlines() == ["warning: skipping broken.jpg"]


def test_verbose_shows_debug_lines_with_their_logger(run):
    result = run("-v")
    assert "debug: [swin_trt.data.model_input] a detail" in result.stderr.splitlines()
    assert "note: an assumption" in result.stderr


@pytest.mark.parametrize("value,shown,hidden", [
    ("DEBUG", ["a detail", "an assumption", "skipping"], []),
    ("info", ["an assumption", "skipping"], ["a detail"]),
    ("WARNING", ["skipping"], ["a detail", "an assumption", "calibrate: 3 img"]),
    ("ERROR", [], ["a detail", "an assumption", "skipping", "calibrate: 3 img"]),
])
def test_the_environment_variable_sets_the_level(run, value, shown, hidden):
    result = run(env={diagnostics.ENV: value})
    assert all(text in result.stderr for text in shown) and not any(text in result.stderr for text in hidden)
    assert result.stdout == "the result\n"


def test_flags_win_over_the_environment_and_a_bad_value_is_exit_2(run):
    assert "an assumption" not in run("-q", env={diagnostics.ENV: "DEBUG"}).stderr
    assert "a detail" in run("-v", env={diagnostics.ENV: "ERROR"}).stderr
    refused = run(env={diagnostics.ENV: "loud"}, expect=2)
    assert f"error: {diagnostics.ENV}='loud' is not a log level" in refused.stderr
    assert "-q/--quiet and -v/--verbose" in run("-q", "-v", expect=2).stderr


def test_a_real_command_note_follows_the_flags(cli, tmp_path, pico_dynamic, photo_dir, monkeypatch):
    monkeypatch.delenv(diagnostics.ENV, raising=False)
    result = cli("infer", photo_dir, "-m", pico_dynamic, "--out", tmp_path / "a.jsonl")
    assert "note: ONNX Runtime runs" in result.stderr
    result = cli("-q", "infer", photo_dir, "-m", pico_dynamic, "--out", tmp_path / "b.jsonl")
    assert "ONNX Runtime runs" not in result.stderr and "note:" not in result.stderr
    assert len((tmp_path / "b.jsonl").read_text().splitlines()) == len((tmp_path / "a.jsonl").read_text().splitlines())
    result = cli("infer", photo_dir, "-m", pico_dynamic, "--out", tmp_path / "c.jsonl")
    assert "note: ONNX Runtime runs" in result.stderr  # -q lasted one run


_LIBRARY_USE = """
import logging, swin_trt
log = logging.getLogger("swin_trt.precision.sources")
log.info("an assumption")
log.warning("skipping broken.jpg")
"""


@pytest.mark.parametrize("value,expected", [
    (None, "skipping broken.jpg\n"),  # Python's last-resort handler: warnings only, as they are
    ("INFO", "note: an assumption\nwarning: skipping broken.jpg\n"),
    ("ERROR", ""),
])
def test_library_use_sees_warnings_and_the_variable_works(value, expected):
    env = {k: v for k, v in os.environ.items() if k != diagnostics.ENV}
    if value is not None:
        env[diagnostics.ENV] = value
    done = subprocess.run([sys.executable, "-c", _LIBRARY_USE], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == expected and done.stdout == ""


def _offences(path: Path) -> list[str]:
    """print(...) calls, warnings.warn(...) calls and ``print`` passed as a callback (``echo=print``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Name) and node.id == "print":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: print")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "warn" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "warnings":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: warnings.warn")
    return found


def test_library_code_neither_prints_nor_warns_outside_the_logger():
    package = ROOT / "swin_trt"
    files = [p for p in package.rglob("*.py") if (package / "cli") not in p.parents]
    assert len(files) > 50
    offences = [line for path in files for line in _offences(path)]
    assert offences == [], "log through logging.getLogger(__name__) instead:\n" + "\n".join(offences)
