"""One run of a grid: train it unless it has finished, evaluate what is missing, write its records.

A run with ``run.json`` is not trained again; a run with a checkpoint but no ``run.json`` was interrupted and is
continued with fope.train's exact resume; evaluations with a result file of the same settings are skipped.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .backends import Backend
from .experiments import Grid, Run
from .records import (
    check_same_config,
    config_fingerprint,
    eval_record,
    jsonable,
    run_dir,
    run_record,
    write_json_atomic,
)
from .runconfig import eval_requests, run_config


class GridInterrupted(KeyboardInterrupt):
    """Training stopped on a signal (a checkpoint was written); rerunning the command continues."""


def is_complete(out: Path, grid: Grid, run: Run) -> bool:
    record = run_record(out, run)
    if record is None:
        return False
    if record.get("config") != config_fingerprint(run_config(grid, run, out), run):
        raise ValueError(
            f"run {run.name!r} in {run_dir(out, run.name)} was trained with another config than the "
            "grid asks for now (the preset or its overrides changed); use a new --out directory, or move "
            f"{run_dir(out, run.name)} aside to train it again"
        )
    return all(eval_record(out, run, req) is not None for req in eval_requests(grid.preset, run, record["corpus"]))


def do_run(grid: Grid, run: Run, out: Path, backend: Backend, say: Callable[[str], None]) -> None:
    path = run_dir(out, run.name)
    cfg = run_config(grid, run, out)
    record = run_record(out, run)
    if record is None:
        check_same_config(cfg, path, run.name)
        resume = _has_checkpoint(path)
        if resume:
            say(f"  resuming {run.name} from its checkpoint")
        tic = time.perf_counter()
        with _output_to(path / "log.txt"):
            summary = backend.train(cfg, path, resume=resume)
        wall = time.perf_counter() - tic
        if not summary.get("finished", False):
            raise GridInterrupted(
                f"training of {run.name} stopped at step {summary.get('step')} ({summary.get('stopped')})"
            )
        record = {
            "name": run.name,
            "key": run.key,
            "config": config_fingerprint(cfg, run),
            "overrides": run.overrides,
            "init_from": run.init_from,
            "corpus": cfg.data.corpus,
            "train_len": cfg.model.train_len,
            "train_wall_s": wall,
            "summary": {k: v for k, v in summary.items() if k != "losses"},
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        write_json_atomic(path / "run.json", record)
        loss = summary.get("final_loss")
        say(f"  trained {run.name} in {wall:.0f} s" + (f" (final loss {loss:.3f})" if loss is not None else ""))
    for req in eval_requests(grid.preset, run, cfg.data.corpus):
        if eval_record(out, run, req) is not None:
            continue
        tic = time.perf_counter()
        with _output_to(path / "log.txt"):
            result = backend.evaluate(path, req)
        wall = time.perf_counter() - tic
        write_json_atomic(
            path / "eval" / f"{req.kind}.json", {**jsonable(result), "request": jsonable(req.settings), "wall_s": wall}
        )
        say(f"  eval {run.name} {req.kind}: {_brief(result)} ({wall:.0f} s)")


@contextlib.contextmanager
def _output_to(log_file: Path) -> Iterator[None]:
    """Send what training/evaluation print (progress bars, notes) to the run's log file, not the grid's console."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "a") as fh, contextlib.redirect_stdout(fh), contextlib.redirect_stderr(fh):
        yield


def _has_checkpoint(path: Path) -> bool:
    try:
        from fope.train.checkpoint import find_checkpoint
    except ImportError:  # pragma: no cover - fope.train is part of the package
        return (path / "checkpoint").is_dir()
    return find_checkpoint(path) is not None


def _brief(result: dict) -> str:
    by = result.get("by_length") or {}
    items = list(by.items())
    return ", ".join(f"{k}: {float(v):.3g}" for k, v in items[:6] if v is not None)
