"""Scheduling of the grid with a fake backend: resume after a kill, interrupted training, changed settings."""

from __future__ import annotations

import dataclasses
import json

import pytest

from fope.reproduce.cli import build
from fope.reproduce.onerun import GridInterrupted
from fope.reproduce.scheduler import run_grid


def _quiet(_: str) -> None:
    pass


def test_every_run_trained_and_evaluated_once(tmp_path, tiny_preset, Fake):
    grid = build(tiny_preset)
    fake = Fake()
    status = run_grid(grid, tmp_path, backend=fake, log=_quiet)
    assert status["failed"] == {} and status["skipped"] == {}
    assert sorted(status["done"]) == sorted(r.name for r in grid.runs)
    trained = [d for d, _ in fake.trained]
    assert len(trained) == len(set(trained)) == len(grid.runs)
    # ppl and ppl_wiki for every run, passkey where the figure needs it
    assert len(fake.evaluated) == sum(2 + (r.passkey_trials > 0) for r in grid.runs)
    for run in grid.runs:
        assert (tmp_path / "runs" / run.name / "run.json").is_file()
    # a second call does nothing at all
    again = Fake()
    run_grid(grid, tmp_path, backend=again, log=_quiet)
    assert again.trained == [] and again.evaluated == []


@pytest.mark.parametrize("k", [0, 3, 7])
def test_killed_grid_continues_where_it_stopped(tmp_path, tiny_preset, k, Fake):
    grid = build(tiny_preset)
    with pytest.raises(KeyboardInterrupt):
        run_grid(grid, tmp_path, backend=Fake(kill_after=k), log=_quiet)
    rerun = Fake()
    run_grid(grid, tmp_path, backend=rerun, log=_quiet)
    names = [r.name for r in grid.runs]
    trained = [d.split("/runs/", 1)[1] for d, _ in rerun.trained]
    assert trained == names[k:]  # exactly the runs that had not finished, in grid order
    assert all(not resume for _, resume in rerun.trained)
    # evaluations of the k finished runs were not redone
    assert {d.split("/runs/", 1)[1] for d, _ in rerun.evaluated} == set(names[k:])


def test_interrupted_training_resumes_from_its_checkpoint(tmp_path, tiny_preset, Fake):
    grid = build(tiny_preset)
    victim = grid.runs[2].name
    with pytest.raises(GridInterrupted):
        run_grid(grid, tmp_path, backend=Fake(stop_once=(victim,)), log=_quiet)
    assert not (tmp_path / "runs" / victim / "run.json").exists()
    rerun = Fake()
    run_grid(grid, tmp_path, backend=rerun, log=_quiet)
    first = rerun.trained[0]
    assert first[0].endswith(f"runs/{victim}") and first[1] is True  # resume=True
    assert all(resume is False for _, resume in rerun.trained[1:])


def test_changed_eval_settings_redo_only_that_evaluation(tmp_path, tiny_preset, Fake):
    run_grid(build(tiny_preset), tmp_path, backend=Fake(), log=_quiet)
    more = dataclasses.replace(tiny_preset, passkey_trials=tiny_preset.passkey_trials + 1)
    grid = build(more)
    fake = Fake()
    run_grid(grid, tmp_path, backend=fake, log=_quiet)
    assert fake.trained == []
    # the main and extension runs use passkey_trials; ablations use ablation_passkey_trials
    expected = {r.name for r in grid.runs if r.passkey_trials == more.passkey_trials}
    assert {d.split("/runs/", 1)[1] for d, _ in fake.evaluated} == expected
    assert {kind for _, kind in fake.evaluated} == {"passkey"}


def test_changed_training_config_is_an_error(tmp_path, tiny_preset, Fake):
    grid = build(dataclasses.replace(tiny_preset, experiments=("main",), seeds=1))
    run_grid(grid, tmp_path, backend=Fake(), log=_quiet)
    changed = build(dataclasses.replace(tiny_preset, experiments=("main",), seeds=1, steps=5))
    with pytest.raises(ValueError, match="another config"):
        run_grid(changed, tmp_path, backend=Fake(), log=_quiet)


def test_failed_run_is_recorded_and_dependents_skipped(tmp_path, tiny_preset, Fake):
    class Failing(Fake):
        def train(self, cfg, run_dir, *, resume):
            if run_dir.as_posix().endswith("main/rope/seed0"):
                raise RuntimeError("boom")
            return super().train(cfg, run_dir, resume=resume)

    grid = build(tiny_preset)
    status = run_grid(grid, tmp_path, backend=Failing(), log=_quiet)
    assert set(status["failed"]) == {"main/rope/seed0"}
    assert "RuntimeError: boom" in status["failed"]["main/rope/seed0"]
    # the passkey task's models train from scratch (passkey_scratch): they do not depend on the main run
    assert set(status["skipped"]) == {"extension/rope+yarn", "extension/rope+fope"}
    assert "boom" in (tmp_path / "runs" / "main/rope/seed0" / "error.txt").read_text()


def test_lock_refuses_a_second_grid(tmp_path, tiny_preset, Fake):
    from fope.reproduce.records import grid_lock

    with grid_lock(tmp_path), pytest.raises(ValueError, match="in use"):
        run_grid(build(tiny_preset), tmp_path, backend=Fake(), log=_quiet)


def test_run_json_is_valid_json_and_records_the_config(tmp_path, tiny_preset, Fake):
    grid = build(dataclasses.replace(tiny_preset, experiments=("main",), seeds=1, pes=("rope",)))
    run_grid(grid, tmp_path, backend=Fake(), log=_quiet)
    rec = json.loads((tmp_path / "runs/main/rope/seed0/run.json").read_text())
    assert rec["config"]["model"]["pe"] == "rope"
    assert rec["config"]["model"]["train_len"] == tiny_preset.train_len
    assert rec["config"]["train"]["max_steps"] == tiny_preset.steps
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.slow  # spawns two worker processes that import torch (~20 s on a loaded 2-core machine)
def test_parallel_jobs_finish_the_grid_and_respect_dependencies(tmp_path, tiny_preset, Fake):
    grid = build(dataclasses.replace(tiny_preset, experiments=("main", "extension"), seeds=1))
    status = run_grid(grid, tmp_path, backend=Fake(), jobs=2, threads=1, log=_quiet)
    assert status["failed"] == {} and sorted(status["done"]) == sorted(r.name for r in grid.runs)
    for run in grid.runs:
        rec = json.loads((tmp_path / "runs" / run.name / "run.json").read_text())
        assert (tmp_path / "runs" / run.name / "eval" / "ppl.json").is_file()
        if run.init_from:  # a continued run starts only after its source finished
            src = json.loads((tmp_path / "runs" / run.init_from / "run.json").read_text())
            assert src["finished_at"] <= rec["finished_at"]


def test_progress_eta_counts_parallel_jobs_and_running_work():
    from fope.reproduce.scheduler import Progress

    p = Progress(start=0.0, jobs=2)
    assert "after the first run" in p.eta(3.0)
    p.finished(1.0, 120.0)  # one job needs 120 s per unit of cost
    # 3 units pending + a running unit half done (60 s in): 3.5 units x 120 s / 2 jobs = 210 s
    assert p.eta(3.0, [(1.0, 60.0)]) == "~4 min left"
    assert p.eta(0.0, [(1.0, 119.0)]) == "<1 min left"


@pytest.mark.slow  # spawns a grid process with two workers that import torch
def test_workers_stop_when_the_grid_process_is_killed(tmp_path):
    """kill -9 of the grid process leaves no orphan worker training on (Linux: parent-death signal)."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    if sys.platform != "linux":
        pytest.skip("the parent-death signal is Linux's")
    pids = tmp_path / "pids"
    pids.mkdir()
    here = Path(__file__).resolve().parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(here), str(here.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    grid = subprocess.Popen([sys.executable, str(here / "orphan_grid.py"), str(tmp_path / "out"), str(pids)], env=env)
    end = time.monotonic() + 180
    while len(list(pids.iterdir())) < 2:  # both workers are inside a (sleeping) training run
        assert grid.poll() is None and time.monotonic() < end, "the workers never started training"
        time.sleep(0.2)
    workers = [int(p.name) for p in pids.iterdir()]
    grid.send_signal(signal.SIGKILL)
    grid.wait()
    end = time.monotonic() + 30
    alive = workers
    while alive and time.monotonic() < end:
        time.sleep(0.2)
        alive = [
            w for w in workers if Path(f"/proc/{w}").exists() and Path(f"/proc/{w}/stat").read_text().split()[2] != "Z"
        ]
    for w in alive:  # clean up before failing
        os.kill(w, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived the killed grid process"


def test_session_is_recorded_before_the_first_run(tmp_path, monkeypatch):
    """sessions.json holds this session from its start, so a grid process killed outright (SIGKILL, or SIGTERM
    before any run finished) still leaves its start time and command; a finished run updates its wall time."""
    import json

    import fope.reproduce.scheduler as scheduler
    from fope.cli import main as fope_main

    out = tmp_path / "g"
    seen = {}

    def dies(grid, out_dir, **kwargs):  # stands in for a grid killed while its first run trains
        seen["sessions"] = json.loads((out_dir / "sessions.json").read_text())
        raise SystemExit(137)

    monkeypatch.setattr(scheduler, "run_grid", dies)
    with pytest.raises(SystemExit):
        fope_main(["reproduce", "--preset", "cpu-quick", "--out", str(out), "--no-figures"])
    assert len(seen["sessions"]) == 1
    first = seen["sessions"][0]
    assert first["command"].startswith("fope reproduce --preset cpu-quick") and 0 <= first["wall_s"] < 60
    assert "started" in first and "commit" in first


@pytest.mark.slow  # spawns a `fope reproduce` process (imports torch)
def test_sigterm_records_the_session_before_the_grid_dies(tmp_path):
    """`kill` (SIGTERM) of a running grid: the process still dies by the signal, as before (its workers checkpoint),
    but sessions.json now holds the wall time it ran."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(here), str(here.parents[1] / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    out = tmp_path / "g"
    grid = subprocess.Popen([sys.executable, str(here / "sigterm_grid.py"), str(out)], env=env)
    end = time.monotonic() + 120
    while not (out / "sessions.json").exists():
        assert grid.poll() is None and time.monotonic() < end, "the grid never started"
        time.sleep(0.1)
    time.sleep(1.5)
    grid.send_signal(signal.SIGTERM)
    assert grid.wait(timeout=60) == -signal.SIGTERM
    sessions = json.loads((out / "sessions.json").read_text())
    assert len(sessions) == 1 and sessions[0]["wall_s"] >= 1.5
