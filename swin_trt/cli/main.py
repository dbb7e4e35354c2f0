"""The ``swin-trt`` command group and the error policy every subcommand shares.

A :class:`~swin_trt.errors.UserError` prints ``error: <message>`` and exits 2 with no traceback; a failed
gate prints its message and exits 1. Subcommands register themselves in ``_COMMANDS`` (lazily imported, so
``swin-trt --help`` stays fast and an optional dependency of one command never breaks another).

Flags: the library's messages name parameters (```dla_core```); errors, failed gates and the notes and
warnings of a run show the flags of the command that ran instead (``--dla-core``; :mod:`.flags`).

Diagnostics: the group configures the ``swin_trt`` logger once per run (:mod:`swin_trt.diagnostics`): notes
as ``note: ...`` and warnings as ``warning: ...`` on stderr; ``-q`` keeps warnings and errors, ``-v`` adds
debug lines, ``SWIN_TRT_LOG_LEVEL`` sets the level when neither is given. A command's results stay on stdout.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

from .. import diagnostics
from ..errors import GateFailed, UserError
from .flags import LOG_FLAGS, failing_command, to_flags

# name -> (module, attribute, one-line help)
_COMMANDS = {
    "archs": ("swin_trt.cli.archs", "archs", "List the named Swin configs."),
    "export": ("swin_trt.cli.export", "export", "Export a Swin to ONNX with a provenance sidecar."),
    "rewrite": ("swin_trt.cli.rewrite", "rewrite", "Replace the window ops of an ONNX Swin by plugin nodes."),
    "validate": ("swin_trt.cli.validate", "validate", "Compare candidates with a reference on real images."),
    "calibrate": ("swin_trt.cli.calibrate", "calibrate", "Collect INT8 activation ranges from real images or video."),
    "quantize": ("swin_trt.cli.quantize", "quantize", "Put FP16 / INT8 / mixed precision into the ONNX graph."),
    "compile": ("swin_trt.cli.compile", "compile_", "One command: export, rewrite, calibrate, quantize, build, validate."),
    "build": ("swin_trt.cli.build", "build", "Build a TensorRT engine (needs TensorRT and a GPU)."),
    "infer": ("swin_trt.cli.infer", "infer", "Classify images, video files, cameras or streams."),
    "serve": ("swin_trt.cli.serve", "serve", "Serve a model with NVIDIA's Triton Inference Server."),
    "package": ("swin_trt.cli.package", "package", "Write a deployable bundle for Triton or DeepStream."),
}


class SwinTrtGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(_COMMANDS)

    def get_command(self, ctx, name):
        if name not in _COMMANDS:
            return None
        module, attribute, _ = _COMMANDS[name]
        return getattr(importlib.import_module(module), attribute)

    def format_commands(self, ctx, formatter):
        rows = [(name, help_text) for name, (_, _, help_text) in sorted(_COMMANDS.items())]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"error: {to_flags(str(exc), failing_command(exc, ctx))}", err=True)
            sys.exit(UserError.exit_code)
        except GateFailed as exc:
            click.echo(f"FAILED: {to_flags(str(exc), failing_command(exc, ctx))}", err=True)
            sys.exit(GateFailed.exit_code)
        finally:
            LOG_FLAGS.command = None  # the command ran: library use after it sees its messages as they are


def _log_level(quiet: bool, verbose: bool) -> int:
    if quiet and verbose:
        raise UserError("-q/--quiet and -v/--verbose contradict each other: pass one of them")
    if quiet:
        return logging.WARNING
    if verbose:
        return logging.DEBUG
    try:
        level = diagnostics.level_from_environment()
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return logging.INFO if level is None else level


@click.group(cls=SwinTrtGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="swin-trt")
@click.option("-q", "--quiet", is_flag=True,
              help=f"Warnings and errors only: no notes, no progress ({diagnostics.ENV}=WARNING does the same).")
@click.option("-v", "--verbose", is_flag=True, help=f"Debug lines too ({diagnostics.ENV}=DEBUG does the same).")
def main(quiet, verbose):
    """swin-trt: compile Swin Transformers to TensorRT engines, every stage checked on the CPU.

    \b
    Pipeline: export -> rewrite -> calibrate -> quantize -> build -> validate -> infer
    \b
    Example:
      swin-trt export --arch swin_demo -o out/model.onnx
    """
    handler = diagnostics.configure(_log_level(quiet, verbose))  # a UserError here is exit 2 (SwinTrtGroup.invoke)
    ctx = click.get_current_context()  # the subcommand's flags also for notes from worker threads (no context there)
    name = ctx.invoked_subcommand
    LOG_FLAGS.install(handler, ctx.command.get_command(ctx, name) if name else None)
