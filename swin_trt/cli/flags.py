"""Library messages name parameters; the command line names flags. This module maps the one to the other.

Below ``cli/`` a message names what the caller passed by its Python name in backticks (``"`dla_core` needs a
board with DLA cores ..."``): what a library user wrote. The CLI shows the same message with the flag the
user typed (``--dla-core``), through :func:`to_flags`. A parameter's flag comes first from the running
command's own click parameters (its ``name`` -> its longest ``--option``), so each flag is defined once, where
the command declares it; then from :data:`PARAMETER_FLAGS`, for library names that differ from the click
names. A backticked name found in neither just loses its backticks; anything else in backticks (a command
such as ``swin-trt calibrate``, a file name) stays as it is.
"""

from __future__ import annotations

import logging
import re

import click

# Library parameter names that are no click parameter name of the command that reaches them: a flag for any
# command (str), or per command name (dict). Most are another stage's flag named by advice ("re-export with
# `opset` 17"), or a library name that a command spells otherwise (serve's `timeout` is --startup-timeout).
PARAMETER_FLAGS: dict[str, str | dict[str, str]] = {
    # export's flags, named by the stages after it (calibrate, quantize, infer, serve, package)
    "dynamic_batch": "--dynamic-batch",
    "dynamic_size": "--dynamic-size",
    "img_size": "--img-size",
    "opset": "--opset",
    "features": "--features",
    "fold_normalization": "--fold-normalization",
    # rewrite's variant, named by build when a plugin node cannot be built
    "window_ops": "--window-ops",
    "fuse_attention": "--fuse-attention",
    "fuse_gathers": "--fuse-gathers",
    # compile runs the stages: their parameters under compile's names
    "num": {"compile": "--calib-num"},  # calibrate_file / CalibrateOptions(num=...)
    "method": {"compile": "--calib-method"},
    "masks": {"compile": "--val-masks"},  # validation Options(masks=...), MaskSet
    "annotations": {"compile": "--val-annotations"},
    # validate: Options(outputs=...) is the click parameter detection_outputs
    "outputs": {"validate": "--outputs"},
    # infer: load_classifier(kind=..., labels_file=...), connect_classifier / TritonClientBackend(url=...)
    "kind": {"infer": "--backend"},
    "labels_file": {"infer": "--labels"},
    "url": {"infer": "--server"},
    # serve and package: ServeOptions / BundleOptions(queue_delay_us=...), TritonServer.wait_ready(timeout=...),
    # write_triton_bundle(repository=...), write_deepstream_bundle(folder=...)
    "queue_delay_us": "--max-queue-delay-us",
    "timeout": {"serve": "--startup-timeout"},
    "repository": {"package": "--output"},
    "folder": {"package": "--output"},
    # build --compare: compare_model(variant_specs=..., runs=..., warmup=...)
    "variant_specs": {"build": "--variant"},
    "runs": {"build": "--compare-runs"},
    "warmup": {"build": "--compare-warmup"},
    # a library function that a flag chooses: package --triton writes what write_triton_bundle writes
    "write_triton_bundle": "--triton",
}

_PARAMETER = re.compile(r"`([a-z_][a-z0-9_]*)`")


def command_flags(command: click.Command | None) -> dict[str, str]:
    """``{parameter name: flag}`` of ``command``: an option's longest ``--opt`` (several options that set one
    name, as package's ``--triton``/``--deepstream``, are joined by ``/``); an argument's metavar (``MODEL``)."""
    flags: dict[str, list[str]] = {}
    for param in command.params if command is not None else ():
        if param.name is None:
            continue
        if isinstance(param, click.Argument):
            shown = param.human_readable_name
        else:
            long = [opt for opt in param.opts if opt.startswith("--")] or list(param.opts)
            shown = max(long, key=len)
        if shown not in flags.setdefault(param.name, []):
            flags[param.name].append(shown)
    return {name: "/".join(shown) for name, shown in flags.items()}


def flag_for(name: str, command: click.Command | None) -> str | None:
    """The flag of parameter ``name`` in ``command``: its own click parameter, else :data:`PARAMETER_FLAGS`."""
    own = command_flags(command).get(name)
    if own is not None:
        return own
    entry = PARAMETER_FLAGS.get(name)
    if isinstance(entry, dict):
        return entry.get(command.name) if command is not None else None
    return entry


def to_flags(message: str, command: click.Command | None) -> str:
    """``message`` with each backticked parameter name replaced by its flag in ``command`` (unknown names lose
    their backticks; backticked text that is no identifier stays as it is)."""
    flags = command_flags(command)

    def replace(match: re.Match) -> str:
        name = match.group(1)
        return flags.get(name) or flag_for(name, command) or name

    return _PARAMETER.sub(replace, message)


def failing_command(exc: BaseException, ctx: click.Context) -> click.Command | None:
    """The innermost command ``exc`` was raised in, below the group of ``ctx``: found in the contexts of the
    frames it passed through (click's ``Group.invoke``/``Command.invoke``/``Context.invoke`` each hold one), so
    a subcommand of a nested group, or a command run through ``ctx.invoke``, is found too; the group itself
    when it was raised there. Without a traceback: the subcommand ``ctx`` invoked."""
    found = None
    trace = exc.__traceback__
    while trace is not None:
        local = trace.tb_frame.f_locals
        context = next((local[key] for key in ("sub_ctx", "ctx", "self")
                        if isinstance(local.get(key), click.Context)), None)
        if context is not None:
            found = context
        trace = trace.tb_next
    if found is not None:
        return found.command
    name = ctx.invoked_subcommand
    if name and isinstance(ctx.command, click.Group):
        return ctx.command.get_command(ctx, name)
    return None


class FlagNames(logging.Filter):
    """Shows the library's notes and warnings with flags while a command runs: the current click context's
    command's flags (or, on a worker thread, which has no click context, those of :attr:`command`, the
    subcommand being run; ``None`` once it ran)."""

    command: click.Command | None = None

    def install(self, handler: logging.Handler, command: click.Command | None) -> None:
        """Filter ``handler``'s records (once, however often called) for ``command``."""
        if self not in handler.filters:
            handler.addFilter(self)
        self.command = command

    def filter(self, record: logging.LogRecord) -> bool:
        context = click.get_current_context(silent=True)
        command = context.command if context is not None else self.command
        if command is not None:
            message = record.getMessage()
            mapped = to_flags(message, command) if "`" in message else message
            if mapped != message:
                record.msg, record.args = mapped, ()
        return True


LOG_FLAGS = FlagNames()  # the CLI installs it on the swin_trt logger's stderr handler (main.py)
