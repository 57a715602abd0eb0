"""kill -9 at every file-system step of a training run (checkpoint saves included) and of a resume.

A forked child runs the training and ends itself with os._exit just before its N-th file-system step
(fope.utils.set_fs_hook), for every N: no cleanup runs, exactly as after kill -9. Recovering the run
directory (``--resume`` when a checkpoint exists, else a fresh start) must then give the uninterrupted
run's metrics history, weights, optimizer state and summary, byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fope.train import train
from fope.train.checkpoint import find_checkpoint, verify_checkpoint

from .helpers import KILLED, assert_same_run, in_child, tiny_experiment


def _cfg(shards):
    # accumulation 2, two checkpoints (step 2, and the final one at step 3 that replaces it), validation at 2, 3
    return tiny_experiment(shards, max_steps=3, save_every=2, eval_every=2, warmup_steps=1)


def _recover(cfg, out: Path) -> None:
    if find_checkpoint(out) is not None:
        train(cfg, out, resume=True)
    else:
        train(cfg, out)


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    train(_cfg(shards), out)
    return out


def _events(fn, tmp: Path) -> list[str]:
    log = tmp / "events.txt"
    assert in_child(fn, events=log) == 0, log.read_text()[-2000:]
    return log.read_text().splitlines()


def test_kill_at_every_file_system_step_of_a_run(shards, reference, tmp_path, drill):
    """kill -9 (os._exit) before every file-system step of a 3-step run with two saves; the recovered run equals the
    uninterrupted one byte for byte."""
    cfg = _cfg(shards)
    events = _events(lambda: train(cfg, tmp_path / "count"), tmp_path)
    ops = {e.split()[0] for e in events}
    assert {"create", "write", "fsync", "rename", "fsync_dir", "mkdir", "append"} <= ops
    assert sum("checkpoint.tmp" in e for e in events) > 20  # the two saves are covered step by step
    first_save = _swaps_in(events)[0]  # the step that renames the first complete checkpoint.tmp into place
    for n in range(1, len(events) + 1):
        with drill.attempt():
            out = tmp_path / f"kill{n}"
            assert in_child(lambda out=out: train(cfg, out), crash_at=n) == KILLED, f"step {n} ({events[n - 1]})"
            if n > first_save:  # once a checkpoint was saved, a complete one survives every kill
                found = find_checkpoint(out)
                assert found is not None, f"killed before step {n} ({events[n - 1]}): no complete checkpoint left"
                verify_checkpoint(found)
            _recover(cfg, out)
            try:
                assert_same_run(out, reference)
            except AssertionError as e:
                raise AssertionError(f"killed before step {n}: {events[n - 1]}") from e
            shutil.rmtree(out)


def _swaps_in(events: list[str]) -> list[int]:
    """1-based steps that rename checkpoint.tmp/ to checkpoint/ (the event names the destination)."""
    return [i for i, e in enumerate(events, 1) if e.startswith("rename ") and e.endswith("/checkpoint")]


def test_a_checkpoint_is_on_disk_before_it_is_renamed_in(shards, tmp_path):
    """Before checkpoint.tmp/ is renamed to checkpoint/: every file in it was fsync'ed before its own rename, the
    folder it landed in was fsync'ed after that rename, and the save's last step is the fsync of checkpoint.tmp/
    itself (else a power cut just after the swap can leave a checkpoint/ whose files or entries never reached the
    disk, the previous checkpoint already gone)."""
    events = [e.split(" ", 1) for e in _events(lambda: train(_cfg(shards), tmp_path / "count"), tmp_path)]
    swaps = _swaps_in([" ".join(e) for e in events])
    assert len(swaps) == 2  # the two saves
    for swap in swaps:
        start = max(i for i, (op, path) in enumerate(events[:swap]) if op == "mkdir" and path.endswith(".tmp"))
        save = [e for e in events[start : swap - 1] if not (e[0] == "rename" and e[1].endswith("/checkpoint.prev"))]
        tmp = save[0][1]
        assert save[-1] == ["fsync_dir", tmp], (
            f"the save ending at step {swap} ends with {save[-1]}, not the fsync of {tmp}"
        )
        temp = None
        for i, (op, path) in enumerate(save):
            if op == "write":
                temp = path
            elif op == "rename":  # a file of the checkpoint moved to its final name inside checkpoint.tmp/
                assert ["fsync", temp] in save[:i], f"{path} renamed in before its data was fsync'ed"
                parent = path.rsplit("/", 1)[0]
                assert ["fsync_dir", parent] in save[i:], f"{parent} not fsync'ed after {path} was renamed in"


def test_kill_while_a_resume_cuts_the_metrics_back(shards, reference, tmp_path, drill):
    """kill -9 at every file-system step of a resume before its first training step (it rewrites metrics.jsonl and
    config.yaml): the history before the checkpoint survives and the run ends exactly like the uninterrupted one."""
    cfg = _cfg(shards)
    template = tmp_path / "template"
    events = _events(lambda: train(cfg, tmp_path / "count"), tmp_path)
    appends = [i for i, e in enumerate(events, 1) if e.startswith("append")]
    # killed just after the metrics line of step 3 was written: checkpoint at step 2, history up to 3
    assert in_child(lambda: train(cfg, template), crash_at=appends[2] + 1) == KILLED
    assert len((template / "metrics.jsonl").read_text().splitlines()) == 3
    shutil.copytree(template, tmp_path / "count2")
    resume_events = _events(lambda: train(cfg, tmp_path / "count2", resume=True), tmp_path)
    first_append = next(i for i, e in enumerate(resume_events, 1) if e.startswith("append"))
    assert any("metrics.jsonl" in e and e.startswith("rename") for e in resume_events[:first_append])
    for n in range(1, first_append + 1):
        with drill.attempt():
            out = tmp_path / f"kill{n}"
            shutil.copytree(template, out)
            assert in_child(lambda out=out: train(cfg, out, resume=True), crash_at=n) == KILLED
            assert len((out / "metrics.jsonl").read_text().splitlines()) >= 2  # the history before the checkpoint
            _recover(cfg, out)
            assert_same_run(out, reference)
            shutil.rmtree(out)
