"""Exact resume for every position-encoding kind in both training precisions: a run stopped with --stop-at, or
killed with SIGKILL at a random moment, and then recovered (``--resume`` when a checkpoint exists, else a fresh
start) ends byte for byte like the uninterrupted run: metrics history, weights, optimizer state, summary."""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

import fope.pos
from fope.train import train
from fope.train.checkpoint import find_checkpoint

from .helpers import assert_same_run, tiny_experiment

KILLS = 2  # random SIGKILL moments per kind and precision


def _cfg(shards, pe: str, precision: str):
    return tiny_experiment(shards, pe=pe, max_steps=6, save_every=2, eval_every=3, warmup_steps=1, precision=precision)


def _killed_at(fn, delay: float) -> int:
    """Run ``fn`` in a forked child and send it SIGKILL after ``delay`` seconds; its exit status (-9 when killed)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        code = 1
        try:
            fn()
            code = 0
        finally:
            os._exit(code)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
@pytest.mark.parametrize("pe", fope.pos.KINDS)
def test_stop_or_kill_then_resume_equals_the_uninterrupted_run(shards, tmp_path, drill, pe, precision):
    """Every kind x {bf16, fp32}: --stop-at 3 then --resume, and SIGKILL at random moments then recovery, end like
    the uninterrupted run, byte for byte."""
    cfg = _cfg(shards, pe, precision)
    ref = tmp_path / "ref"
    start = time.monotonic()
    assert _killed_at(lambda: train(cfg, ref), 60.0) == 0  # a forked child, like the killed ones: same timing
    duration = time.monotonic() - start
    with drill.attempt():
        out = tmp_path / "stopped"
        train(cfg, out, stop_at=3)
        train(cfg, out, resume=True)
        assert_same_run(out, ref)
    rng = random.Random(f"{pe}-{precision}")
    for i in range(KILLS):
        with drill.attempt():
            out = tmp_path / f"kill{i}"
            delay = rng.uniform(0.2, 1.0) * duration
            status = _killed_at(lambda out=out: train(cfg, out), delay)
            assert status in (0, -signal.SIGKILL), status
            if find_checkpoint(out) is not None:
                train(cfg, out, resume=True)
            else:
                shutil.rmtree(out, ignore_errors=True)
                train(cfg, out)
            try:
                assert_same_run(out, ref)
            except AssertionError as e:
                raise AssertionError(f"{pe} {precision}: killed after {delay:.2f}s of {duration:.2f}s") from e


def test_a_kill_lands_mid_run(shards, tmp_path):
    """The random kills above can land mid-run: killed half-way through, a run leaves a checkpoint and no summary."""
    cfg = _cfg(shards, "fope", "bf16")
    start = time.monotonic()
    assert _killed_at(lambda: train(cfg, tmp_path / "ref"), 60.0) == 0
    duration = time.monotonic() - start
    for fraction in (0.5, 0.7, 0.9):
        out: Path = tmp_path / f"k{fraction}"
        if _killed_at(lambda out=out: train(cfg, out), fraction * duration) == -signal.SIGKILL and (
            find_checkpoint(out) is not None and not (out / "summary.json").exists()
        ):
            return
    pytest.fail(f"no kill landed between a checkpoint and the end of a {duration:.2f}s run")
