"""How many threads ONNX Runtime runs on, chosen by workload: the default is the fast one, said once.

ONNX Runtime's own default (one intra-op thread per core, idle threads spinning) is right only when the model
has the CPU to itself: beside a video decoder its spinning threads take the decoder's core away. Measured on a
2-core x86 box (``benchmarks/bench_pipeline.py --arch swin_demo --frames 240 --size 320x240 --batch 8``,
``benchmarks/results/pipeline.json``; each fixed setting alternated with the default, ratios per pair):

* both cores, spinning on (ONNX Runtime's default): 0.89x the default below;
* one thread (the old advice, ``--threads 1``): 0.82-0.90x;
* both cores, spinning off (the default): the fastest pipeline, about 120 fps, 0.76 of what the model alone
  does with both cores (170 fps): decoding and preprocessing need CPU time the model cannot have.

So every workload gives ONNX Runtime every core; what differs is spinning:

* ``stream`` (``infer`` on files, cameras, streams): a decoding thread runs beside the model all the time, so
  idle ONNX Runtime threads sleep instead of spinning, and the decoder runs whenever they wait.
* ``batch`` (``validate``, ``calibrate``, ``quantize --precision best``): images are read between batches in
  the same thread, never beside the model: threads spin.
* ``model`` (benchmarks of the model alone): every core, spinning.

On 4-16 cores (a Jetson Orin has 6-12 Arm cores) the same reasoning holds: one stream's decoder needs a
fraction of one core, and sleeping workers give it that core when it needs it. Several streams or a heavy decoder
(4K H.265) may want ``--threads`` lower. ``--threads N`` (where a command has it) and the environment variable
``SWIN_TRT_THREADS=N`` override the count, in that order; ``stream`` keeps spinning off whenever ONNX Runtime
has every core, and allows it when an override leaves a core free.
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
    source: str  # "default", "threads" (the caller's ``threads``) or the environment variable's name
    cpus: int

    def session_options(self) -> dict:
        """The options an ``ort`` backend takes (:data:`swin_trt.backends.base.OPTIONS`)."""
        return {"threads": self.threads, "spinning": self.spinning}

    def describe(self) -> str:
        plural = "s" if self.threads > 1 else ""
        spin = ("" if self.threads == 1 else ", spinning" if self.spinning else ", not spinning")
        why = (f"{self.workload}: {WORKLOADS[self.workload]}" if self.source == "default" else
               "set by `threads`" if self.source == "threads" else f"set by {self.source}")
        return (f"ONNX Runtime runs {self.threads} thread{plural} of {self.cpus} CPUs{spin} ({why}; "
                f"`threads` N or {ENV}=N to change it)")


def _from_environment() -> int | None:
    text = os.environ.get(ENV, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"{ENV}={text!r} is not a positive whole number of threads: set e.g. {ENV}=2, or unset it")
    return int(text)


def choose(workload: str, threads: int | None = None) -> ThreadPolicy:
    """The thread policy for ``workload`` (see the module doc); ``threads`` is the caller's choice (the command's
    ``--threads``)."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}: one of {', '.join(WORKLOADS)}")
    cpus = usable_cpus()
    source = "threads" if threads else ENV
    threads = threads or _from_environment()
    if threads is None:
        source = "default"
        threads = cpus
    # Beside a decoder, threads that spin on every core would take its core away.
    spinning = not (workload == "stream" and threads >= cpus and cpus > 1)
    return ThreadPolicy(workload, threads, spinning, source, cpus)
