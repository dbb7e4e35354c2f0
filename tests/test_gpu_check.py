"""scripts/gpu_check.sh on a machine without what it needs: it says what is missing and exits 2.

(On a GPU machine the script builds, tests and benchmarks for minutes: run it by hand there, not here.)
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "gpu_check.sh"


def _gpu_visible() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def _run(tmp_path, **env):
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OUT": str(tmp_path), **env})


@pytest.mark.skipif(_gpu_visible(), reason="a CUDA GPU is visible: the script would run for minutes")
def test_without_a_gpu_it_says_what_is_missing_and_exits_2(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "cannot run on this machine; missing:" in done.stdout and "a CUDA GPU" in done.stdout
    document = json.loads((tmp_path / "gpu_check.json").read_text())
    assert document["status"] == "missing" and any("CUDA GPU" in m for m in document["missing"])
    assert document["steps"] == [] and document["build"] is None  # nothing was built
    assert "a CUDA GPU" in (tmp_path / "gpu_check.log").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check.json", "gpu_check.log"]


def test_without_python_it_says_so_and_exits_2(tmp_path):
    done = _run(tmp_path, PYTHON=str(tmp_path / "no-python"))
    assert done.returncode == 2
    assert "missing" in done.stdout and "no-python" in done.stdout
