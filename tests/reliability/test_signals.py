"""Signals on a real `fope train` process: SIGTERM inside a long step, a second Ctrl-C, Ctrl-C during start-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fope.train import train

from .helpers import records, tiny_experiment

WORKER = Path(__file__).with_name("signal_worker.py")
ACCUM = 4  # micro-batches per step


def _cfg(shards):
    return tiny_experiment(
        shards, max_steps=4, save_every=10, eval_every=2, warmup_steps=1, global_batch=8, micro_batch=2
    )


def _env() -> dict:
    src = str(Path(__file__).parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "OMP_NUM_THREADS": "1"}


def _start(tmp_path: Path, cfg, delay: float, *extra: str) -> tuple[subprocess.Popen, Path, Path]:
    cfg.to_yaml(tmp_path / "a.yaml")
    out, err = tmp_path / "run", tmp_path / "stderr.txt"
    with open(err, "w") as stderr:  # the child writes through its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(tmp_path / "a.yaml"), str(out), str(delay), str(ACCUM), *extra],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=_env(),
            text=True,
        )
    return proc, out, err


def _wait_for(err: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while text not in err.read_text():
        assert proc.poll() is None, err.read_text()[-2000:]
        assert time.monotonic() < end, f"no {text!r} in time"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    train(_cfg(shards), out)
    return out


def test_sigterm_inside_a_long_step_stops_at_the_next_micro_batch(shards, reference, tmp_path):
    """SIGTERM inside a long step stops at the next micro-batch with a checkpoint; the resumed run equals the uninterrupted one."""
    cfg = _cfg(shards)
    proc, out, err = _start(tmp_path, cfg, 2.0)
    _wait_for(err, "micro-batch 2.1", proc)  # inside step 2 (4 micro-batches of 2 s)
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=120)
    text = err.read_text()
    assert proc.returncode == 143, text[-2000:]  # stopped by SIGTERM with its checkpoint: 128 + 15
    assert "micro-batch 2.2" not in text  # honoured when micro-batch 2.1 ended: the rest of the step never ran
    assert "stopped after step 1 (SIGTERM)" in stdout
    train(cfg, out, resume=True)
    assert records(out) == records(reference)  # the dropped step is redone exactly


def test_second_ctrl_c_aborts_at_once(shards, reference, tmp_path):
    """A second Ctrl-C during a 30-s micro-batch ends the process within seconds."""
    cfg = _cfg(shards)
    proc, out, err = _start(tmp_path, cfg, 30.0)
    _wait_for(err, "micro-batch 2.1", proc)
    proc.send_signal(signal.SIGINT)
    _wait_for(err, "Ctrl-C again to abort at once", proc)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert time.monotonic() - sent < 15.0  # inside a 30-s micro-batch: not waited for
    assert proc.returncode == -signal.SIGINT  # killed by SIGINT: the shell reports exit status 130
    assert "Traceback" not in err.read_text()
    train(cfg, out)  # no checkpoint yet: the run starts afresh and ends like the reference
    assert records(out) == records(reference)


def _default_sigint() -> None:
    """A test runner started in the background by a non-interactive shell ignores SIGINT, and so would the child
    (Python then installs no KeyboardInterrupt handler): give the child a terminal's default disposition."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_start_up_exits_130_without_traceback(shards, tmp_path):
    """Ctrl-C while torch is imported exits 130 without a traceback."""
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    for attempt in range(5):
        err, out = tmp_path / f"stderr{attempt}.txt", tmp_path / f"run{attempt}"
        with open(err, "w") as stderr:  # the child writes through its own copy of the descriptor
            proc = subprocess.Popen(
                [sys.executable, "-m", "fope.cli", "train", str(tmp_path / "a.yaml"), "--out", str(out)],
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_env(),
                text=True,
                preexec_fn=_default_sigint,
            )
        end = time.monotonic() + 120
        maps = Path(f"/proc/{proc.pid}/maps")
        while "libtorch" not in (maps.read_text() if maps.exists() else ""):  # importing torch: start-up
            assert proc.poll() is None and time.monotonic() < end, err.read_text()
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
        text = err.read_text()
        if "stopped after step" in stdout or "Resume with" in stdout:  # the training loop took it (also 130)
            continue  # a loaded machine let start-up finish before the signal arrived: retry
        assert proc.returncode == 130, text[-2000:]
        assert "Traceback" not in text and text.strip().splitlines()[-1] == "interrupted"
        return
    pytest.fail("the signal never arrived during start-up in 5 attempts")
