"""Progress for long work: a live bar on a terminal, one summary line in a log.

tqdm redraws its bar with carriage returns; where stderr is a file or a CI log every redraw stays in the log
as noise. So a bar is drawn only when stderr is a terminal; elsewhere the same calls log one line when the
work ends ("calibrate: 512 img in 12.3 s"), at INFO on the ``swin_trt.progress`` logger. Where that logger
is set above INFO (``swin-trt -q``, ``SWIN_TRT_LOG_LEVEL=WARNING``) there is neither bar nor line; a library
user who configured nothing still gets the bar on a terminal.
"""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger(__name__)


def silenced() -> bool:
    """True when the ``swin_trt`` hierarchy was set to a level above INFO (``-q``): no bar, no line."""
    logger = log
    while logger is not None and logger.level == logging.NOTSET and logger.parent is not None:
        logger = logger.parent
    return logger is not None and logger.parent is not None and logger.level > logging.INFO


def interactive() -> bool:
    """True when stderr is a terminal a bar can redraw in place."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr (pytest capture, daemons)
        return False


class _LineProgress:
    """tqdm's small interface (update, close, context manager) logging one line at close."""

    def __init__(self, total, desc, unit):
        self.total, self.desc, self.unit = total, desc, unit
        self.n = 0
        self.started = time.perf_counter()
        self.closed = False

    def update(self, count: int = 1) -> None:
        self.n += count

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        seconds = time.perf_counter() - self.started
        log.info("%s: %s %s in %.1f s", self.desc, self.n, self.unit, seconds)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Silent(_LineProgress):
    def close(self) -> None:
        self.closed = True


def progress_bar(total: int | None, desc: str, unit: str = "it", enabled: bool = True, leave: bool = False,
                 position: int | None = None):
    """A bar for ``total`` steps: tqdm on a terminal, a closing summary line otherwise, nothing if disabled
    (or :func:`silenced`). ``position``: the line of a nested bar (tqdm's)."""
    if not enabled or silenced():
        return _Silent(total, desc, unit)
    if interactive():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, position=position)
    return _LineProgress(total, desc, unit)
