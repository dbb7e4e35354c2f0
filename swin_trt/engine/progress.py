"""A bar per TensorRT build phase, nested as TensorRT nests them (IProgressMonitor, TensorRT >= 10).

Bars come from :func:`swin_trt.progress.progress_bar`: live on a terminal; in a log, one line per top-level
phase when it ends (nested phases, one per layer or tactic, would flood it).
"""

from __future__ import annotations


def make_progress_monitor(trt):
    """An ``IProgressMonitor`` driving progress bars, or None where this TensorRT has no progress monitor."""
    if not hasattr(trt, "IProgressMonitor"):
        return None
    from ..progress import interactive, progress_bar

    class PhaseProgressMonitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)  # pybind11 trampolines need the base initialised explicitly
            self.bars = {}

        # TensorRT calls these from its build thread and ignores what they raise, so they never raise.
        def phase_start(self, phase_name, parent_phase, num_steps):
            try:
                depth = len(self.bars)
                self.bars[phase_name] = progress_bar(num_steps, phase_name, unit="step", leave=depth == 0,
                                                     enabled=depth == 0 or interactive(), position=depth)
            except Exception:
                pass

        def step_complete(self, phase_name, step):
            try:
                bar = self.bars.get(phase_name)
                if bar is not None:
                    bar.update(step + 1 - bar.n)
            except Exception:
                pass
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            try:
                bar = self.bars.pop(phase_name, None)
                if bar is not None:
                    bar.update(max((bar.total or 0) - bar.n, 0))
                    bar.close()
            except Exception:
                pass

    return PhaseProgressMonitor()
