"""Run a grid: train every run, evaluate it, skip what is done, say what is left.

Runs go one at a time in this process (``jobs=1``) or ``jobs`` at a time in spawned processes; a run that continues
another one starts once its source has finished. The work of one run is `onerun.do_run`, done by a `Backend`
(`backends`), so the scheduling is tested with fakes. The files it writes: `records`.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fope.utils import Terminated, atomic_write

from .backends import Backend
from .experiments import Grid, Run
from .onerun import GridInterrupted, do_run, is_complete
from .records import grid_lock, jsonable, remove_grid_temps, run_dir
from .runconfig import run_config


@dataclass
class Progress:
    """Remaining-time estimate from the runs finished in this session.

    Each finished run gives its own wall time per unit of cost (one job's speed); the remaining cost is what is
    pending plus what the running runs have not done yet, and ``jobs`` runs go at the same time.
    """

    start: float
    jobs: int = 1
    cost_done: float = 0.0
    time_done: float = 0.0

    def finished(self, cost: float, seconds: float) -> None:
        self.cost_done += cost
        self.time_done += seconds

    def eta(self, pending_cost: float, running: list[tuple[float, float]] | None = None) -> str:
        """``pending_cost``: runs not started; ``running``: (cost, seconds since start) of the runs in progress."""
        if self.cost_done <= 0:
            return "time left: known after the first run"
        per_unit = self.time_done / self.cost_done  # seconds of one job per unit of cost
        left = pending_cost + sum(max(c - t / per_unit, 0.0) for c, t in running or [])
        minutes = left * per_unit / max(self.jobs, 1) / 60
        return f"~{minutes:.0f} min left" if minutes >= 1 else "<1 min left"


class _InlineExecutor:
    """The `concurrent.futures` interface, running each task at submission (``jobs=1``: no processes)."""

    def submit(self, fn: Callable, *args: Any) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except (KeyboardInterrupt, GridInterrupted):
            raise
        except Exception as e:
            fut.set_exception(e)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


_PARENT: int | None = None  # in a worker: the grid process's pid
_BUSY = False  # in a worker: inside a run (not waiting for the next one)
_DEATHSIG = False  # in a worker: the kernel sends SIGTERM when the grid dies (Linux)


def _die_with(parent: int) -> None:
    """Linux: have the kernel send this worker SIGTERM when the grid process dies, even by ``kill -9``, so no
    orphan keeps training (SIGTERM inside fope.train checkpoints and stops at the next micro-batch)."""
    import ctypes
    import signal

    global _DEATHSIG
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: _watch_parent asks for the stop itself
        return
    PR_SET_PDEATHSIG = 1
    _DEATHSIG = prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM)) == 0
    if os.getppid() != parent:  # the grid died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def _watch_parent(parent: int, interval: float = 0.5) -> None:
    """A worker's daemon thread: once the grid process is gone, end the worker as soon as nothing is left to save.

    A worker in a run has been sent SIGTERM (by the kernel, or here where the kernel cannot): training checkpoints
    and stops, and `_worker` then exits instead of returning its result to nobody. A worker waiting for its next
    run would wait forever (other workers keep the task pipe open): it exits at once."""
    import signal
    import threading

    def watch() -> None:
        asked = False
        while True:
            time.sleep(interval)
            if os.getppid() == parent:
                continue
            if not _BUSY:
                os._exit(0)
            if not asked and not _DEATHSIG:
                os.kill(os.getpid(), signal.SIGTERM)
            asked = True

    threading.Thread(target=watch, name="fope-watch-grid", daemon=True).start()


def _init_worker(threads: int | None, parent: int | None = None) -> None:
    from fope.utils import keep_freed_memory, raise_on_sigterm

    global _PARENT
    if parent is not None:
        _PARENT = parent
        _die_with(parent)
        _watch_parent(parent)
        # SIGTERM outside training: cleanup runs before the worker ends; an idle worker just ends (no traceback)
        raise_on_sigterm(quiet=lambda: not _BUSY)
    keep_freed_memory()  # a spawned worker starts with glibc's defaults
    if threads:
        import torch

        torch.set_num_threads(threads)


def _worker(grid: Grid, run: Run, out: Path, backend: Backend) -> None:
    """One run in a worker process (module level so that the spawn start method can import it). When the grid
    process died meanwhile, the worker ends here: nobody would read its result or send it another run."""
    global _BUSY
    _BUSY = True
    try:
        do_run(grid, run, out, backend, lambda s: print(s, flush=True))
    except Exception:
        _record_error(out, run)
        raise
    except Terminated:  # cleanup ran (finally blocks); end as SIGTERM ends a process, without a traceback
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(143)
    finally:
        _BUSY = False
        if _PARENT is not None and os.getppid() != _PARENT:
            os._exit(0)


def _record_error(out: Path, run: Run) -> None:
    atomic_write(run_dir(out, run.name) / "error.txt", traceback.format_exc())


def run_grid(
    grid: Grid,
    out_dir: str | Path,
    *,
    backend: Backend,
    jobs: int = 1,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
    on_run_done: Callable[[], None] | None = None,
) -> dict:
    """Train and evaluate every run of ``grid`` into ``out_dir`` (resumable); return a status dict.

    Args:
        jobs: runs executed at the same time, each in its own process (1: in this process, in order). A run that
            continues another one starts once its source has finished.
        threads: torch threads per run (None: torch's default). On a 2-core machine two 1-thread jobs use the
            cores better than one 2-thread job for these small models.

    Status: ``{"done": [...], "failed": {name: error}, "skipped": {name: reason}, "session_s": s}``. A failing run
    is recorded in ``runs/<name>/error.txt`` and the grid goes on (runs that continue from it are skipped).
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1, got {jobs}")
    out = Path(out_dir)
    say = log or (lambda s: print(s, flush=True))
    runs = grid.runs
    index = {r.name: i for i, r in enumerate(runs, 1)}
    todo = [r for r in runs if not is_complete(out, grid, r)]
    pending = list(todo)
    status: dict[str, Any] = {"done": [r.name for r in runs if r not in todo], "failed": {}, "skipped": {}}
    progress = Progress(start=time.perf_counter(), jobs=jobs)
    started: dict[str, float] = {}
    with grid_lock(out):
        remove_grid_temps(out)  # left by a kill during an atomic write (nothing else writes here now)
        say(
            f"grid {grid.preset.name}: {len(runs)} runs, {len(runs) - len(todo)} already done, output {out}"
            + (f", {jobs} at a time" if jobs > 1 else "")
        )
        if jobs > 1 and hasattr(backend, "prepare"):  # tokenizer + shards once, before processes race for them
            seen: set[str] = set()
            for run in todo:
                cfg = run_config(grid, run, out)
                key = json.dumps(jsonable(cfg.to_dict()["data"]), sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    backend.prepare(cfg)
        if jobs == 1:
            _init_worker(threads)
            executor: Any = _InlineExecutor()
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            executor = ProcessPoolExecutor(
                max_workers=jobs,
                mp_context=mp.get_context("spawn"),
                initializer=_init_worker,
                initargs=(threads, os.getpid()),
            )
        running: dict[Future, Run] = {}
        try:
            while pending or running:
                for run in list(pending):
                    if len(running) >= jobs:
                        break
                    src = run.init_from
                    if src in status["failed"] or src in status["skipped"]:
                        pending.remove(run)
                        status["skipped"][run.name] = f"its source run {src} did not finish"
                        say(f"[{index[run.name]}/{len(runs)}] skip {run.name}: {status['skipped'][run.name]}")
                        continue
                    if src is not None and src not in status["done"]:
                        continue  # its source is still pending or running
                    pending.remove(run)
                    now = time.perf_counter()
                    eta = progress.eta(
                        sum(r.cost for r in pending) + run.cost,
                        [(r.cost, now - started[r.name]) for r in running.values()],
                    )
                    say(f"[{index[run.name]}/{len(runs)}] {run.name} ... {len(pending)} left after it, {eta}")
                    started[run.name] = now
                    if jobs == 1:
                        fut = executor.submit(do_run, grid, run, out, backend, say)
                    else:
                        fut = executor.submit(_worker, grid, run, out, backend)
                    running[fut] = run
                if not running:
                    continue
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    run = running.pop(fut)
                    err = fut.exception()
                    if isinstance(err, (GridInterrupted, KeyboardInterrupt)):
                        raise err
                    if err is not None:
                        status["failed"][run.name] = f"{type(err).__name__}: {err}"
                        if jobs == 1:
                            atomic_write(
                                run_dir(out, run.name) / "error.txt",
                                "".join(traceback.format_exception(type(err), err, err.__traceback__)),
                            )
                        say(
                            f"  FAILED {run.name}: {type(err).__name__}: {err} "
                            f"(traceback in {run_dir(out, run.name) / 'error.txt'})"
                        )
                        continue
                    progress.finished(run.cost, time.perf_counter() - started[run.name])
                    status["done"].append(run.name)
                    if on_run_done is not None:
                        on_run_done()
        except (GridInterrupted, KeyboardInterrupt):
            say("interrupted; rerun the same command to continue where it stopped")
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True)
    status["session_s"] = time.perf_counter() - progress.start
    return status
