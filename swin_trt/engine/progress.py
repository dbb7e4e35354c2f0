"""A tqdm bar per TensorRT build phase, nested as TensorRT nests them (IProgressMonitor, TensorRT >= 10)."""

from __future__ import annotations


def make_progress_monitor(trt):
    """An ``IProgressMonitor`` driving tqdm bars, or None where this TensorRT has no progress monitor."""
    if not hasattr(trt, "IProgressMonitor"):
        return None
    from tqdm import tqdm

    class TqdmProgressMonitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)  # pybind11 trampolines need the base initialised explicitly
            self.bars = {}

        # TensorRT calls these from its build thread and ignores what they raise, so they never raise.
        def phase_start(self, phase_name, parent_phase, num_steps):
            try:
                depth = len(self.bars)
                self.bars[phase_name] = tqdm(total=num_steps, desc=phase_name, position=depth,
                                             leave=depth == 0, dynamic_ncols=True)
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
                    bar.update((bar.total or 0) - bar.n)
                    bar.close()
            except Exception:
                pass

    return TqdmProgressMonitor()
