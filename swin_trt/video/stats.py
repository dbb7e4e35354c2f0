"""Run statistics in constant memory: counters, per-stage seconds and a latency histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


class LatencyHistogram:
    """Percentiles of latencies over any number of frames, to 0.5 % and in fixed memory.

    Log-spaced bins from 10 us to 1000 s: a stream that runs for days keeps the same ~3,700 counters,
    where a list of every latency would grow without end.
    """

    LOW, HIGH, STEP = 1e-5, 1e3, 1.005  # seconds, seconds, bin width ratio

    def __init__(self):
        self._bins = math.ceil(math.log(self.HIGH / self.LOW) / math.log(self.STEP)) + 1
        self.counts = np.zeros(self._bins, dtype=np.int64)
        self.count = 0

    def add(self, seconds: float) -> None:
        position = math.log(max(seconds, self.LOW) / self.LOW) / math.log(self.STEP)
        self.counts[min(int(position), self._bins - 1)] += 1
        self.count += 1

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile in seconds (the geometric middle of its bin); None when empty."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q / 100 * self.count))
        index = int(np.searchsorted(np.cumsum(self.counts), rank))
        return self.LOW * self.STEP ** (index + 0.5)


@dataclass
class RunStats:
    frames: int = 0  # frames predicted (a clip model: clips)
    decoded: int = 0  # frames decoded from the source (including those --every skips)
    dropped: int = 0  # frames (a clip model: whole clips) discarded by --realtime because inference fell behind
    corrupt: int = 0  # frames/packets that failed to decode
    decode_s: float = 0.0
    preprocess_s: float = 0.0
    infer_s: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False  # stopped by Ctrl-C
    error: str | None = None  # why the backend stopped answering (a remote server went away); None: it did not
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    unit: str = "frames"  # what ``frames`` and ``dropped`` count: frames, or a clip model's clips

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def latency_ms(self) -> dict[str, float | None]:
        return {f"p{q}": None if (v := self.latency.percentile(q)) is None else v * 1000 for q in (50, 95, 99)}

    def to_dict(self) -> dict:
        return {"frames": self.frames, "unit": self.unit, "decoded": self.decoded, "dropped": self.dropped,
                "corrupt": self.corrupt, "interrupted": self.interrupted, "error": self.error, "fps": self.fps,
                "wall_s": self.wall_s,
                "latency_ms": self.latency_ms(),
                "time_s": {"decode": self.decode_s, "preprocess": self.preprocess_s, "infer": self.infer_s}}

    def summary(self) -> str:
        lat = self.latency_ms()
        lat_text = " / ".join("-" if v is None else f"{v:.1f}" for v in lat.values())
        rate = "fps" if self.unit == "frames" else f"{self.unit}/s"
        return (f"{self.unit} {self.frames}  dropped {self.dropped}  corrupt {self.corrupt}  "
                f"{rate} {self.fps:.1f}  ({self.decoded}{'' if self.unit == 'frames' else ' frames'} decoded in "
                f"{self.wall_s:.2f} s"
                f"{', interrupted' if self.interrupted else ''})\n"
                f"latency ms p50/p95/p99: {lat_text}\n"
                f"time s: decode {self.decode_s:.2f}  preprocess {self.preprocess_s:.2f}  "
                f"infer {self.infer_s:.2f}")
