"""Progress for long work: a live bar on a terminal, one summary line in a log.

tqdm redraws its bar with carriage returns; where stderr is a file or a CI log every redraw stays in the log
as noise. So a bar is drawn only when stderr is a terminal; elsewhere the same calls print one line when the
work ends ("calibrate: 512 img in 12.3 s").
"""

from __future__ import annotations

import sys
import time


def interactive() -> bool:
    """True when stderr is a terminal a bar can redraw in place."""
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr (pytest capture, daemons)
        return False


class _LineProgress:
    """tqdm's small interface (update, close, context manager) printing one line at close."""

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
        print(f"{self.desc}: {self.n} {self.unit} in {seconds:.1f} s", file=sys.stderr, flush=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Silent(_LineProgress):
    def close(self) -> None:
        self.closed = True


def progress_bar(total: int | None, desc: str, unit: str = "it", enabled: bool = True, leave: bool = False,
                 position: int | None = None):
    """A bar for ``total`` steps: tqdm on a terminal, a closing summary line otherwise, nothing if disabled.
    ``position``: the line of a nested bar (tqdm's)."""
    if not enabled:
        return _Silent(total, desc, unit)
    if interactive():
        from tqdm import tqdm

        return tqdm(total=total, desc=desc, unit=unit, leave=leave, dynamic_ncols=True, position=position)
    return _LineProgress(total, desc, unit)
