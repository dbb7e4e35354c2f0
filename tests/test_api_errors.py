"""The library speaks its own API; the CLI speaks flags (swin_trt/cli/flags.py).

A message raised or logged below ``swin_trt/cli/`` names what the caller passed by its Python name in
backticks (```dla_core```), never by a flag; the CLI shows the flag of the command that ran (``--dla-core``):
from the command's click parameters, else from ``PARAMETER_FLAGS``. Fast: no model is exported here.
"""

from __future__ import annotations

import ast
import importlib
import logging
import re
import threading
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from swin_trt import diagnostics
from swin_trt.cli import main as cli_main
from swin_trt.cli.flags import PARAMETER_FLAGS, flag_for, to_flags
from swin_trt.errors import UserError

# Backticked names in library messages that no command has a flag for, and why.
LIBRARY_ONLY = {
    "cuda_graph": "TensorRTBackend(cuda_graph=True): a Python-API option; no command captures CUDA graphs",
}
NOT_PARAMETERS = {
    "av": "the PyAV package (`pip install av`), not a parameter: the CLI shows it without backticks",
}

ROOT = Path(__file__).resolve().parents[1]
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
NAME = re.compile(r"`([a-z_][a-z0-9_]*)`")
LOG_METHODS = {"debug", "info", "warning", "error", "exception", "critical"}


def _message_calls(tree: ast.AST):
    """``(line, expression)`` of what a user reads: each ``raise``d expression, each call of an exception class
    (``return UserError(...)`` too) and each ``log.<level>(...)``/``logger.<level>(...)`` call."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            yield node.lineno, node.exc
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            if name.endswith(("Error", "Unavailable")) or name == "GateFailed":
                yield node.lineno, node
            elif isinstance(func, ast.Attribute) and func.attr in LOG_METHODS \
                    and isinstance(func.value, ast.Name) and func.value.id in ("log", "logger"):
                yield node.lineno, node


def _texts(expression: ast.AST) -> list[str]:
    """The string constants in ``expression``, f-string parts included."""
    return [node.value for node in ast.walk(expression) if isinstance(node, ast.Constant)
            and isinstance(node.value, str)]


def library_messages() -> list[tuple[str, int, str]]:
    """``(file, line, text)`` of every message below swin_trt/ but cli/."""
    package = ROOT / "swin_trt"
    found = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if (package / "cli") in path.parents:
            continue
        for line, expression in _message_calls(ast.parse(path.read_text(), relative)):
            found += [(relative, line, text) for text in _texts(expression)]
    return found


def all_commands() -> list[click.Command]:
    ctx = click.Context(cli_main)
    return [cli_main.get_command(ctx, name) for name in cli_main.list_commands(ctx)]


def test_library_messages_name_parameters_not_flags():
    messages = library_messages()
    assert len(messages) > 200
    offences = [f"{path}:{line}: {', '.join(FLAG.findall(text))} in {text!r}" for path, line, text in messages
                if FLAG.search(text)]
    assert offences == [], ("name the parameter in backticks (`dla_core`, not --dla-core); the CLI shows the "
                            "flag (swin_trt/cli/flags.py):\n" + "\n".join(offences))


def test_every_named_parameter_has_a_flag_somewhere():
    commands = all_commands()
    names = {name for _, _, text in library_messages() for name in NAME.findall(text)}
    assert {"dla_core", "img_size", "url", "queue_delay_us"} <= names  # the scan sees what it should
    unknown = sorted(name for name in names - set(LIBRARY_ONLY) - set(NOT_PARAMETERS)
                     if not any(flag_for(name, command) for command in commands))
    assert unknown == [], ("no command has a flag for these: add the click parameter, an entry of "
                           f"PARAMETER_FLAGS, or list them here as LIBRARY_ONLY with the reason: {unknown}")
    flagged = sorted(name for name in set(LIBRARY_ONLY) if any(flag_for(name, c) for c in commands))
    assert flagged == [], f"listed as library-only, but a command has a flag for them: {flagged}"


def test_the_table_names_real_flags_of_real_commands():
    commands = {command.name: command for command in all_commands()}
    every_flag = {opt for command in commands.values() for param in command.params for opt in param.opts}
    for name, entry in PARAMETER_FLAGS.items():
        for command_name, flag in (entry.items() if isinstance(entry, dict) else [(None, entry)]):
            assert flag in every_flag, (name, flag)
            if command_name is not None:
                own = {opt for param in commands[command_name].params for opt in param.opts}
                assert flag in own, (name, command_name, flag)


# --- to_flags ----------------------------------------------------------------------------------------------

@click.command("probe")
@click.argument("model")
@click.option("-o", "--output")
@click.option("--frame-count", "frames", type=int)
@click.option("--keep-head/--quantize-head", default=True)
def probe(model, output, frames, keep_head):
    """A command with an argument, a short and long option, a renamed option and a boolean pair."""


def test_to_flags_uses_the_command_then_the_table_and_leaves_other_text():
    message = ("`model` `output` `frames` `keep_head` `opset` `kind` `unknown_name` `swin-trt calibrate` "
               "`Upper` `a.onnx` --x `frames`")
    assert to_flags(message, probe) == ("MODEL --output --frame-count --keep-head --opset kind unknown_name "
                                        "`swin-trt calibrate` `Upper` `a.onnx` --x --frame-count")
    assert to_flags("`frames` and `timeout`", None) == "frames and timeout"


def test_a_per_command_entry_applies_to_its_command_only():
    assert PARAMETER_FLAGS["timeout"] == {"serve": "--startup-timeout"}
    commands = {command.name: command for command in all_commands()}
    assert to_flags("a longer `timeout`", commands["serve"]) == "a longer --startup-timeout"
    assert to_flags("a longer `timeout`", commands["infer"]) == "a longer --timeout"  # infer's own
    assert to_flags("a longer `timeout`", commands["build"]) == "a longer timeout"


# --- the CLI maps what the library raises and logs -------------------------------------------------------

@click.command("inner")
@click.option("--frame-count", "frames", type=int, default=1)
@click.option("--from-thread", is_flag=True)
def inner(frames, from_thread):
    """Says things in the library's words: a note (from a worker thread too), then an error."""
    log = logging.getLogger("swin_trt.video.inference_loop")
    log.info("%s is %d", "`frames`", frames)  # the name in an argument: mapped as the message reads
    if from_thread:
        worker = threading.Thread(target=log.warning, args=("`frames` from a worker thread",))
        worker.start()
        worker.join()
    if frames < 1:
        raise UserError(f"`frames` {frames} must be >= 1 (see `swin-trt infer`)")


@click.group("nested")
def nested():
    """A group below the group."""


nested.add_command(inner)


@click.command("outer")
@click.option("--depth", type=int, default=0)
@click.pass_context
def outer(ctx, depth):
    """Runs inner through ctx.invoke."""
    ctx.invoke(inner, frames=depth)


@pytest.fixture
def run(monkeypatch):
    group = importlib.import_module("swin_trt.cli.main")  # the module (the package's `main` is the group)
    for name, attribute in (("inner", "inner"), ("nested", "nested"), ("outer", "outer")):
        monkeypatch.setitem(group._COMMANDS, name, (__name__, attribute, "A test command."))
    monkeypatch.delenv(diagnostics.ENV, raising=False)

    def invoke(*args, expect=2):
        result = CliRunner().invoke(cli_main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == expect, result.output
        return result

    yield invoke
    diagnostics.configure(logging.INFO)


def test_an_error_shows_the_flag_of_the_command_that_raised_it(run):
    result = run("inner", "--frame-count", "0")
    assert "error: --frame-count 0 must be >= 1 (see `swin-trt infer`)" in result.stderr
    assert "note: --frame-count is 0" in result.stderr


def test_nested_commands_map_with_the_innermost_command(run):
    assert "error: --frame-count 0 must be >= 1" in run("nested", "inner", "--frame-count", "0").stderr
    assert "error: --frame-count -1 must be >= 1" in run("outer", "--depth", "-1").stderr


def test_notes_from_worker_threads_and_after_the_run(run, caplog):
    result = run("inner", "--from-thread", expect=0)
    assert "warning: --frame-count from a worker thread" in result.stderr
    with caplog.at_level(logging.INFO, logger="swin_trt"):
        logging.getLogger("swin_trt.video.inference_loop").warning("`frames` after the run")
    assert "`frames` after the run" in caplog.text  # library use after a command: the library's words


def test_the_library_names_the_parameter_and_the_cli_the_flag(cli, tmp_path):
    from swin_trt.video.model import load_classifier

    with pytest.raises(UserError) as raised:
        load_classifier(str(tmp_path / "m.onnx"), "trt")
    message = str(raised.value)
    assert "`kind` trt cannot run" in message and "(or use `kind` auto)" in message and not FLAG.search(message)

    result = cli("infer", tmp_path, "-m", tmp_path / "m.onnx", "--backend", "trt", expect=2)
    assert "error: --backend trt cannot run" in result.stderr and "(or use --backend auto)" in result.stderr
    assert "`kind`" not in result.stderr
