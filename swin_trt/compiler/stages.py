"""compile's runner: each :class:`~swin_trt.stage.Stage` once, in order, reused where nothing it depends on changed.

``OUTDIR/pipeline.json`` records, per stage, the hash of its key (:meth:`~swin_trt.stage.Stage.key`: its
inputs' content, its options, its environment) and the sha256 of every output. A stage whose key is
unchanged and whose outputs are all there, unmodified, is reused instead of run again. A key is computed
just before its stage runs, because its inputs are the outputs of the stages before it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..io import sha256_file, write_json
from ..stage import Stage, key_hash

STATE_FILE = "pipeline.json"

__all__ = ["STATE_FILE", "StageResult", "StageRunner", "key_hash"]


@dataclass
class StageResult:
    name: str
    status: str  # "ran", "reused", "skipped"
    seconds: float
    summary: str
    outputs: list[Path] = field(default_factory=list)


class StageRunner:
    """Runs stages in order against the state file in ``outdir``, one line per stage."""

    def __init__(self, outdir: Path, echo: Callable[[str], None], force: bool = False):
        self.outdir, self.echo, self.force = outdir, echo, force
        self.state_path = outdir / STATE_FILE
        self.state = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        self.results: list[StageResult] = []

    def _reusable(self, stage: Stage, key: str) -> bool:
        record = self.state.get(stage.name)
        if self.force or not record or record.get("key") != key:
            return False
        recorded = record.get("outputs", {})
        return all(path.is_file() and recorded.get(path.name) == sha256_file(path) for path in stage.outputs)

    def run_all(self, stages: list[Stage]) -> list[StageResult]:
        for number, stage in enumerate(stages, 1):
            self.results.append(self._run(stage, f"[{number}/{len(stages)}] {stage.name:<9}"))
        return self.results

    def _run(self, stage: Stage, prefix: str) -> StageResult:
        reason = stage.unavailable()
        if reason:
            self.echo(f"{prefix} skipped: {reason}")
            return StageResult(stage.name, "skipped", 0.0, stage.skipped_note or reason)
        key = key_hash(stage.key())
        if self._reusable(stage, key):
            summary = self.state[stage.name].get("summary", "")
            self.echo(f"{prefix} reused (inputs unchanged)  {summary}")
            return StageResult(stage.name, "reused", 0.0, summary, stage.outputs)
        self.echo(f"{prefix} ...")
        start = time.perf_counter()
        summary = stage.summary(stage.run())
        seconds = time.perf_counter() - start
        self.state[stage.name] = {"key": key, "summary": summary, "seconds": seconds,
                                  "outputs": {p.name: sha256_file(p) for p in stage.outputs if p.is_file()}}
        write_json(self.state_path, self.state)
        self.echo(f"{prefix} done in {seconds:.1f}s  {summary}")
        return StageResult(stage.name, "ran", seconds, summary, stage.outputs)

    def table(self) -> str:
        lines = [f"{'stage':<10}{'status':<9}{'seconds':>8}  artifact / note"]
        for r in self.results:
            artifact = ", ".join(p.name for p in r.outputs) if r.outputs else r.summary
            lines.append(f"{r.name:<10}{r.status:<9}{r.seconds:>8.1f}  {artifact}")
        return "\n".join(lines)
