"""The thread policy (swin_trt/backends/threads.py): defaults by workload, and the overrides in their order."""

import pytest

from swin_trt.backends import threads
from swin_trt.errors import UserError


@pytest.fixture
def four_cpus(monkeypatch):
    monkeypatch.setattr(threads, "usable_cpus", lambda: 4)
    monkeypatch.delenv(threads.ENV, raising=False)


def test_defaults_take_every_core_and_stream_does_not_spin(four_cpus):
    stream, batch, model = (threads.choose(w) for w in ("stream", "batch", "model"))
    assert (stream.threads, stream.spinning, stream.source) == (4, False, "default")
    assert (batch.threads, batch.spinning) == (4, True) and (model.threads, model.spinning) == (4, True)
    assert "4 threads of 4 CPUs, not spinning" in stream.describe() and "`threads` N" in stream.describe()


def test_environment_then_flag_override(four_cpus, monkeypatch):
    monkeypatch.setenv(threads.ENV, "2")
    from_env = threads.choose("stream")
    assert (from_env.threads, from_env.spinning, from_env.source) == (2, True, threads.ENV)  # a core left free
    flagged = threads.choose("stream", 3)
    assert (flagged.threads, flagged.source) == (3, "threads")  # the caller's threads win over the environment
    assert threads.choose("batch", 1).session_options() == {"threads": 1, "spinning": True}


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5"])
def test_a_bad_environment_value_says_what_to_set(four_cpus, monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(UserError, match=f"{threads.ENV}={value!r} is not a positive whole number"):
        threads.choose("batch")


def test_infer_says_its_policy_and_the_flag_overrides_it(cli, tmp_path, pico_dynamic, photo_dir, monkeypatch):
    monkeypatch.setenv(threads.ENV, "2")
    result = cli("infer", photo_dir, "-m", pico_dynamic, "--out", tmp_path / "a.jsonl", "--threads", "1")
    assert "ONNX Runtime runs 1 thread of" in result.output and "set by --threads" in result.output
    result = cli("infer", photo_dir, "-m", pico_dynamic, "--out", tmp_path / "b.jsonl")
    assert "ONNX Runtime runs 2 threads of" in result.output and f"set by {threads.ENV}" in result.output
