"""One diagnostics channel: Python :mod:`logging` under the ``swin_trt`` logger.

Library modules log through ``logging.getLogger(__name__)``: notes at INFO ("assuming the ImageNet recipe",
the thread policy), what went wrong but did not stop the work at WARNING ("skipping broken.jpg"), details at
DEBUG; progress lines come from ``swin_trt.progress``. The library installs no handler of its own, so a program
that configures nothing sees warnings (Python's last-resort handler) and not the notes; ``swin-trt`` (and
:func:`configure`) writes them to stderr as ``note: ...``, ``warning: ...``, ``error: ...``.

Level: ``-q`` (warnings and errors), ``-v`` (debug), else ``SWIN_TRT_LOG_LEVEL`` (DEBUG, INFO, WARNING or
ERROR), else INFO. The variable also works for library use: set, it installs the same stderr handler when
``swin_trt`` is imported.
"""

from __future__ import annotations

import logging
import os
import sys

ROOT = "swin_trt"
ENV = "SWIN_TRT_LOG_LEVEL"
LEVELS = {"DEBUG": logging.DEBUG, "INFO": logging.INFO, "WARNING": logging.WARNING, "ERROR": logging.ERROR}
_PREFIX = {logging.DEBUG: "debug", logging.INFO: "note", logging.WARNING: "warning", logging.ERROR: "error",
           logging.CRITICAL: "error"}


class _Format(logging.Formatter):
    """``note: message`` (INFO), ``warning: ...``, ``error: ...``; DEBUG names its logger; progress lines
    (``swin_trt.progress``) are printed as they are."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if record.name == f"{ROOT}.progress" and record.levelno == logging.INFO:
            return message
        prefix = _PREFIX.get(record.levelno, record.levelname.lower())
        if record.levelno == logging.DEBUG:
            return f"{prefix}: [{record.name}] {message}"
        return f"{prefix}: {message}"


class _StderrHandler(logging.StreamHandler):
    """Writes to ``sys.stderr`` as it is when a record is emitted (not as it was when the handler was made),
    so that a redirected or captured stderr (click's CliRunner, pytest) gets the lines."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it; the property always answers sys.stderr
        pass


def level_from_environment() -> int | None:
    """``SWIN_TRT_LOG_LEVEL`` as a logging level; ``None`` when unset. Raises ValueError when it names none."""
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    if text.upper() not in LEVELS:
        raise ValueError(f"{ENV}={text!r} is not a log level: set it to one of {', '.join(LEVELS)}, or unset it")
    return LEVELS[text.upper()]


def configure(level: int = logging.INFO) -> logging.Handler:
    """Send ``swin_trt``'s records at ``level`` and above to stderr (one handler, however often called)."""
    logger = logging.getLogger(ROOT)
    handler = next((h for h in logger.handlers if isinstance(h, _StderrHandler)), None)
    if handler is None:
        handler = _StderrHandler()
        handler.setFormatter(_Format())
        logger.addHandler(handler)
    logger.setLevel(level)
    handler.setLevel(level)
    return handler


def configure_from_environment() -> None:
    """Library use: apply ``SWIN_TRT_LOG_LEVEL`` when it is set (a bad value is said once, as a warning)."""
    try:
        level = level_from_environment()
    except ValueError as exc:
        logging.getLogger(ROOT).warning("%s", exc)
        return
    if level is not None:
        configure(level)
