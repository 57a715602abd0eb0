"""No process outlives its grid, no temporary file outlives a stop (after kill -9: the next start removes them)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fope.cli import main
from fope.train import train

from . import procs
from .helpers import tiny_experiment

HERE = Path(__file__).parent


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    end = time.monotonic() + timeout
    alive = pids
    while alive and time.monotonic() < end:
        time.sleep(0.2)
        alive = [p for p in pids if procs.alive(p)]
    return alive


@pytest.mark.skipif(sys.platform != "linux", reason="/proc and the parent-death signal are Linux's")
def test_kill_9_of_a_grid_with_two_training_workers_leaves_no_process(shards, tmp_path):
    """kill -9 of a `--jobs 2` grid whose workers are inside real training runs: both checkpoint on the SIGTERM the
    kernel sends them and exit (before, they then waited forever for a parent that was gone)."""
    pids = tmp_path / "pids"
    pids.mkdir()
    grid = procs.start(
        str(tmp_path / "out"), str(pids), str(shards), script=HERE / "grid_drill.py", stderr=tmp_path / "err.txt"
    )
    end = time.monotonic() + 240
    while len(list(pids.iterdir())) < 2:
        assert grid.poll() is None, (tmp_path / "err.txt").read_text()[-3000:]
        assert time.monotonic() < end, "the workers never started training"
        time.sleep(0.2)
    workers = [int(p.name) for p in pids.iterdir()]
    family = procs.children(grid.pid)
    grid.send_signal(signal.SIGKILL)
    grid.wait()
    alive = _wait_gone(family, 60)
    for p in alive:  # clean up before failing
        subprocess.run(["kill", "-9", str(p)], check=False)
    assert not alive, f"{alive} outlived the killed grid (workers {workers})"
    runs = list((tmp_path / "out" / "runs").glob("**/checkpoint/state.pt"))
    assert len(runs) == 2, runs  # each worker checkpointed before it went


@pytest.mark.skipif(sys.platform != "linux", reason="getppid polling is tested where the grid runs (Linux)")
def test_idle_worker_exits_when_its_grid_is_gone(tmp_path):
    """A worker waiting for its next run when the grid dies exits at once (it would wait forever otherwise)."""
    code = (
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import os, time\\n"
        "from fope.reproduce.scheduler import _init_worker\\n"
        "_init_worker(None, os.getppid())\\n"
        "print(os.getpid(), flush=True)\\n"
        "time.sleep(600)'], stdout=subprocess.PIPE, text=True)\n"
        "print(child.stdout.readline().strip(), flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=procs.env(), text=True)
    worker = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert not _wait_gone([worker], 15), "the idle worker outlived its grid"


def test_write_probe_and_temp_files_are_removed_by_the_next_start(shards, tmp_path):
    """Temp files a kill -9 left (the write probe, an atomic write's .tmp, a half-copied OUT/model file) are gone
    once the run starts again; a finished run leaves none."""
    cfg = tiny_experiment(shards, max_steps=4, save_every=2, eval_every=2, warmup_steps=1)
    out = tmp_path / "run"
    train(cfg, out, stop_at=2)
    planted = [
        out / ".fope-write-test.abc123.tmp",
        out / ".metrics.jsonl.x1.tmp",
        out / "model" / ".model.safetensors.x2.tmp",
        out / "checkpoint" / ".state.pt.x3.tmp",
    ]
    for p in planted:
        p.write_bytes(b"partial")
    train(cfg, out, resume=True)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_grid_temp_files_are_removed_at_grid_start(tmp_path):
    """Temp files of grid records (run.json, eval results, results.json) left by a kill are removed when the grid
    starts (holding its lock)."""
    import dataclasses

    from fope.reproduce import get_preset
    from fope.reproduce.cli import build
    from fope.reproduce.scheduler import run_grid

    out = tmp_path / "grid"
    planted = [
        out / ".results.json.a.tmp",
        out / "runs" / "main" / "rope" / "seed0" / ".run.json.b.tmp",
        out / "runs" / "main" / "rope" / "seed0" / "eval" / ".ppl.json.c.tmp",
    ]
    for p in planted:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("{")

    class Failing:
        def train(self, cfg, run_dir, *, resume):
            raise RuntimeError("not needed here")

    preset = dataclasses.replace(get_preset("cpu"), steps=4, warmup_steps=1, seeds=1, experiments=("main",))
    run_grid(build(preset), out, backend=Failing(), log=lambda s: None)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def _text_corpus(path: Path, mb: int) -> None:
    import random

    rng = random.Random(0)
    words = [f"w{i}" for i in range(2000)]
    with open(path, "w") as f:
        while f.tell() < mb << 20:
            f.write(" ".join(rng.choice(words) for _ in range(60)) + "\n\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from fope.data import train_tokenizer

    root = tmp_path_factory.mktemp("corpus")
    _text_corpus(root / "big.txt", 6)
    tok = train_tokenizer((root / "big.txt").read_text()[:200_000].split("\n\n"), 300)
    tok.save(root / "tok.json")
    return root / "big.txt", root / "tok.json"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_stop_while_tokenising_leaves_no_corpus_bin(corpus, tmp_path, sig):
    """SIGTERM while `fope data prepare` tokenises: its temp folder (corpus.bin) is removed and it exits 143; after
    kill -9 the next preparation removes it and completes."""
    text, tok = corpus
    out = tmp_path / "shards"
    argv = ["data", "prepare", "--corpus", str(text), "--tokenizer", str(tok), "--out", str(out), "--splits", "train"]
    proc = procs.start(*argv, stderr=tmp_path / "err.txt")
    end = time.monotonic() + 120
    while not any(p.stat().st_size > 0 for p in out.glob(".*.tmp/corpus.bin")):
        assert proc.poll() is None, (tmp_path / "err.txt").read_text()[-2000:]
        assert time.monotonic() < end, "tokenisation never started"
        time.sleep(0.05)
    proc.send_signal(sig)
    rc = proc.wait(timeout=120)
    left = list(out.glob(".*.tmp"))
    if sig == signal.SIGTERM:
        assert rc == 143 and not left, (rc, left, (tmp_path / "err.txt").read_text()[-2000:])
        assert (tmp_path / "err.txt").read_text().strip().splitlines()[-1] == "terminated"
        return
    assert rc == -9 and left  # kill -9: nothing can clean up at once...
    rc, err = procs.fope(*argv)
    assert rc == 0, err
    assert not list(out.glob(".*.tmp")) and (out / "meta.json").is_file()  # ...the next start does
    assert main(["data", "info", str(out), "--verify"]) == 0
