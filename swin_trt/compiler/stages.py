"""Stages that run once: each has a key (its options and the hashes of its inputs) and its outputs.

``OUTDIR/pipeline.json`` records, per stage, the key's hash and the sha256 of every output. A stage whose
key is unchanged and whose outputs are all there, unmodified, is reused instead of run again.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..io import sha256_file, write_json

STATE_FILE = "pipeline.json"


@dataclass
class Stage:
    name: str
    key: dict  # JSON-serialisable: options, and sha256 of every input file
    outputs: list[Path]
    run: Callable[[], str]  # does the work, returns a one-line summary


@dataclass
class StageResult:
    name: str
    status: str  # "ran", "reused", "skipped", "failed"
    seconds: float
    summary: str
    outputs: list[Path] = field(default_factory=list)


def key_hash(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()


class StageRunner:
    """Runs stages in order against the state file in ``outdir``, printing one line per stage."""

    def __init__(self, outdir: Path, echo: Callable[[str], None], total: int, force: bool = False):
        self.outdir, self.echo, self.total, self.force = outdir, echo, total, force
        self.state_path = outdir / STATE_FILE
        self.state = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        self.results: list[StageResult] = []

    def _reusable(self, stage: Stage) -> bool:
        record = self.state.get(stage.name)
        if self.force or not record or record.get("key") != key_hash(stage.key):
            return False
        recorded = record.get("outputs", {})
        return all(path.is_file() and recorded.get(path.name) == sha256_file(path) for path in stage.outputs)

    def run(self, stage: Stage) -> StageResult:
        number = len(self.results) + 1
        prefix = f"[{number}/{self.total}] {stage.name:<9}"
        if self._reusable(stage):
            result = StageResult(stage.name, "reused", 0.0, self.state[stage.name].get("summary", ""),
                                 stage.outputs)
            self.echo(f"{prefix} reused (inputs unchanged)  {result.summary}")
        else:
            self.echo(f"{prefix} ...")
            start = time.perf_counter()
            summary = stage.run()
            seconds = time.perf_counter() - start
            result = StageResult(stage.name, "ran", seconds, summary, stage.outputs)
            self.state[stage.name] = {"key": key_hash(stage.key), "summary": summary, "seconds": seconds,
                                      "outputs": {p.name: sha256_file(p) for p in stage.outputs if p.is_file()}}
            write_json(self.state_path, self.state)
            self.echo(f"{prefix} done in {seconds:.1f}s  {summary}")
        self.results.append(result)
        return result

    def skip(self, name: str, reason: str, note: str) -> StageResult:
        """Record a stage that cannot run here: ``reason`` in full on its line, ``note`` in the table."""
        number = len(self.results) + 1
        self.echo(f"[{number}/{self.total}] {name:<9} skipped: {reason}")
        result = StageResult(name, "skipped", 0.0, note)
        self.results.append(result)
        return result

    def table(self) -> str:
        lines = [f"{'stage':<10}{'status':<9}{'seconds':>8}  artifact / note"]
        for r in self.results:
            artifact = ", ".join(p.name for p in r.outputs) if r.outputs else r.summary
            lines.append(f"{r.name:<10}{r.status:<9}{r.seconds:>8.1f}  {artifact}")
        return "\n".join(lines)
