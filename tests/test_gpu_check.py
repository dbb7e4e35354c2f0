"""scripts/gpu_check.sh: on a machine without what it needs it says what is missing and exits 2; and a run stopped at
any point (TERM, INT, KILL) keeps valid JSON for every step that finished, and a valid summary.

The stopping tests run the script's own step runner with its test steps (selftest_ok, selftest_fail,
selftest_sleep_<s>), which need no GPU; on a GPU machine the real steps build, test and benchmark for minutes:
run those by hand there, not here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
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
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu_check.d", "gpu_check.json", "gpu_check.log"]
    assert not list((tmp_path / "gpu_check.d").glob("[0-9][0-9]-*"))  # no step ran


def test_without_python_it_says_so_and_exits_2(tmp_path):
    done = _run(tmp_path, PYTHON=str(tmp_path / "no-python"))
    assert done.returncode == 2
    assert "missing" in done.stdout and "no-python" in done.stdout


STEPS = "selftest_ok,selftest_fail,selftest_sleep_30,selftest_ok"


def _start(tmp_path, steps=STEPS):
    # Output to a file, not a pipe: a step orphaned by a KILL would hold a pipe open until it ends.
    with open(tmp_path / "stdout.txt", "w") as stdout:
        return subprocess.Popen(["bash", str(SCRIPT)], stdout=stdout, stderr=subprocess.STDOUT,
                                env={**os.environ, "OUT": str(tmp_path), "SWIN_GPU_CHECK_STEPS": steps},
                                preexec_fn=_default_signals)


def _default_signals() -> None:
    """INT and TERM at their defaults in the script: bash cannot trap a signal ignored when it starts, and a test
    run in the background of a non-interactive shell (nohup, `&`) inherits SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _wait_for(path: Path, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def _finished_steps(tmp_path):
    """Every step JSON must parse (whatever moment the run was stopped at)."""
    return [json.loads(p.read_text()) for p in sorted((tmp_path / "gpu_check.d").glob("[0-9][0-9]-*.json"))]


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_mid_step_keeps_every_finished_step_and_writes_a_summary(tmp_path, signum, code):
    started = time.monotonic()
    run = _start(tmp_path)
    _wait_for(tmp_path / "gpu_check.d" / "03-selftest_sleep_30.log")  # step 3 (30 s) is running
    run.send_signal(signum)
    run.wait(timeout=15)
    assert run.returncode == code, (tmp_path / "stdout.txt").read_text()
    assert time.monotonic() - started < 12  # the sleeping step was stopped, not waited for
    steps = _finished_steps(tmp_path)
    assert [(s["step"], s["status"], s["exit_status"]) for s in steps] == [
        ("selftest_ok", "pass", 0), ("selftest_fail", "fail", 3), ("selftest_sleep_30", "interrupted", code)]
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["status"] == "interrupted" and summary["steps"] == steps
    log = (tmp_path / "gpu_check.log").read_text()
    assert f"received SIG{signal.Signals(signum).name[3:]}" in log and "selftest: failing on purpose" in log
    assert (tmp_path / "gpu_check.d" / "02-selftest_fail.log").read_text() == "selftest: failing on purpose\n"


def test_a_kill_leaves_the_summary_of_the_last_finished_step(tmp_path):
    run = _start(tmp_path, "selftest_ok,selftest_fail,selftest_sleep_5,selftest_ok")  # (the orphan sleeps 5 s)
    _wait_for(tmp_path / "gpu_check.d" / "03-selftest_sleep_5.log")
    time.sleep(0.3)  # the summary after step 2 is written before step 3 starts; let nothing be half-written
    run.kill()  # no trap runs: what is on disk must already be valid
    run.wait(timeout=15)
    steps = _finished_steps(tmp_path)
    assert [(s["step"], s["status"]) for s in steps] == [("selftest_ok", "pass"), ("selftest_fail", "fail")]
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["status"] == "running" and summary["steps"] == steps


def test_a_run_to_the_end_writes_each_step_and_the_result(tmp_path):
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "OUT": str(tmp_path),
                               "SWIN_GPU_CHECK_STEPS": "selftest_ok,selftest_sleep_0"})
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert summary["status"] == "pass" and [s["status"] for s in summary["steps"]] == ["pass", "pass"]
    assert summary["steps"] == _finished_steps(tmp_path)
    assert all(s["limit_s"] > 0 and s["seconds"] >= 0 for s in summary["steps"])


def test_step_limits_fit_eight_minutes():
    """The limits the script gives its real steps, plus its probe, fit the 8 minutes of an H100 run."""
    text = SCRIPT.read_text()
    table = re.search(r"^declare -A LIMIT=\((.*)\)$", text, re.M).group(1)
    limits = {name: int(value) for name, value in re.findall(r"\[(\w+)\]=(\d+)", table)}
    assert set(limits) == {"configure", "build", "ctest", "plugin_device", "gpu_tests", "bench_kernels"}
    assert sum(limits.values()) + 30 <= 480, limits
    assert re.search(r"^BUDGET=\$\{SWIN_GPU_CHECK_BUDGET:-\$\(\((\d+) \* SCALE\)\)\}$", text, re.M).group(1) == "460"
