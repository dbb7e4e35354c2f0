"""How many threads ONNX Runtime runs on, chosen by workload: the default is the fast one, said once.

ONNX Runtime's own default (one intra-op thread per core, idle threads spinning) is right only when the model
has the CPU to itself. Measured on a 2-core box (benchmarks/bench_threads.py, results/threads.json): video
inference with that default reached 0.40 of model-only throughput, because decoding and ONNX Runtime fought
for both cores; one ONNX Runtime thread left a core to the decoder and reached 0.92. So:

* ``stream`` (``infer`` on files, cameras, streams): a decoding thread runs beside the model all the time.
  ONNX Runtime gets every core but one, and its threads may spin: the decoder has a core of its own.
* ``batch`` (``validate``, ``calibrate``, ``quantize --precision best``): images are read between batches in
  the same thread, never beside the model, so ONNX Runtime gets every core.
* ``model`` (benchmarks of the model alone): every core.

On 4-16 cores (a Jetson Orin has 6-12 Arm cores) the same rule holds: decoding one stream needs about one
core, so ``stream`` leaves one; several streams or a heavy decoder (4K H.265) may want ``--threads`` lower.
``--threads N`` (where a command has it) and the environment variable ``SWIN_TRT_THREADS=N`` override the
choice, in that order; with an override that takes every core, ``stream`` turns spinning off so that the
decoder is not starved.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import UserError

ENV = "SWIN_TRT_THREADS"
WORKLOADS = {"stream": "decoding runs beside the model", "batch": "images are read between batches",
             "model": "the model runs alone"}


def usable_cpus() -> int:
    """The CPUs this process may run on (a container's or taskset's limit, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ThreadPolicy:
    workload: str
    threads: int  # ONNX Runtime intra-op threads (the calling thread included)
    spinning: bool  # whether idle ONNX Runtime threads busy-wait
    source: str  # "default", "--threads" or the environment variable's name
    cpus: int

    def session_options(self) -> dict:
        """The options an ``ort`` backend takes (:data:`swin_trt.backends.base.OPTIONS`)."""
        return {"threads": self.threads, "spinning": self.spinning}

    def describe(self) -> str:
        plural = "s" if self.threads > 1 else ""
        spin = ("" if self.threads == 1 else ", spinning" if self.spinning else ", not spinning")
        why = (f"{self.workload}: {WORKLOADS[self.workload]}" if self.source == "default" else
               f"set by {self.source}")
        return (f"ONNX Runtime runs {self.threads} thread{plural} of {self.cpus} CPUs{spin} ({why}; "
                f"--threads N or {ENV}=N to change it)")


def _from_environment() -> int | None:
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"{ENV}={text!r} is not a positive whole number of threads: set e.g. {ENV}=2, or unset it")
    return int(text)


def choose(workload: str, threads: int | None = None) -> ThreadPolicy:
    """The thread policy for ``workload`` (see the module doc); ``threads`` is the command's ``--threads``."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}: one of {', '.join(WORKLOADS)}")
    cpus = usable_cpus()
    source = "--threads" if threads else ENV
    threads = threads or _from_environment()
    if threads is None:
        source = "default"
        threads = max(1, cpus - 1) if workload == "stream" else cpus
    # Beside a decoder, threads that spin on every core would take its core away.
    spinning = not (workload == "stream" and threads >= cpus and cpus > 1)
    return ThreadPolicy(workload, threads, spinning, source, cpus)
