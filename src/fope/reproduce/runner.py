"""Run a grid: train every run, evaluate it, skip what is done, say what is left.

Layout of the output directory ``OUT``:
    OUT/runs/<run name>/            a fope.train run directory (config.yaml, metrics.jsonl, model/, checkpoint/)
    OUT/runs/<run name>/run.json    written atomically once the run finished training (its summary)
    OUT/runs/<run name>/eval/<kind>.json
                                    one evaluation (kind: ``ppl``, ``ppl_<other corpus>``, ``passkey``), written
                                    atomically; it is redone only if its settings change
    OUT/results.json, OUT/report.md, OUT/figures/*.png   (fope.reproduce.report)

Resuming: a run with ``run.json`` is skipped; a run with a checkpoint but no ``run.json`` was interrupted and is
continued with fope.train's exact resume; evaluations with a result file of the same settings are skipped. A run
directory whose ``config.yaml`` differs from what the grid asks now is an error (use another ``--out``).

The work itself is done by a `Backend` (`LocalBackend`: fope.train + fope.eval in this process;
`TorchrunBackend`: each training run under ``torchrun``), so the scheduling is tested with fakes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .experiments import Grid, Run
from .presets import GridPreset

RUNS_DIR = "runs"


@dataclass(frozen=True)
class EvalRequest:
    """One evaluation of one run: ``kind`` names its result file, ``settings`` fully determine it."""

    kind: str
    settings: dict


class Backend(Protocol):
    """What the runner needs done; `LocalBackend` is the real one."""

    def train(self, cfg: Any, run_dir: Path, *, resume: bool) -> dict:
        """Train (or finish) the run; return fope.train's summary (with ``finished``)."""

    def evaluate(self, run_dir: Path, request: EvalRequest) -> dict:
        """Evaluate the trained model in ``run_dir``; return a dict with at least ``by_length``."""


class GridInterrupted(KeyboardInterrupt):
    """Training stopped on a signal (a checkpoint was written); rerunning the command continues."""


# --------------------------------------------------------------------------- configs
def base_overrides(preset: GridPreset, base_cfg: Any) -> dict[str, Any]:
    """The overrides every run of the preset gets (training length, budget, tokenizer, device)."""
    p = preset
    out: dict[str, Any] = {
        "model.train_len": p.train_len, "train.max_steps": p.steps, "train.warmup_steps": p.warmup_steps,
        "train.global_batch": p.global_batch, "train.micro_batch": p.micro_batch, "train.lr": p.lr,
        "train.eval_every": 0, "train.save_every": max(10, p.steps // 5), "train.device": p.device,
        "data.eval_corpora": [],
    }
    if base_cfg.data.tokenizer.startswith("train:"):
        out["data.tokenizer"] = f"train:{p.vocab_size}"
        out["model.vocab_size"] = p.vocab_size
    return out


def base_config(preset: GridPreset) -> Any:
    """The fope.train config every run of ``preset`` starts from (before its own overrides); cached."""
    key = json.dumps(preset.to_dict(), sort_keys=True, default=str)
    if key not in _BASE_CACHE:
        from fope.train import apply_overrides, load_preset

        base = load_preset(preset.base)
        cfg = apply_overrides(base, base_overrides(preset, base))
        if preset.train_overrides:
            cfg = apply_overrides(cfg, dict(preset.train_overrides))
        _BASE_CACHE.clear()
        _BASE_CACHE[key] = cfg
    return _BASE_CACHE[key]


_BASE_CACHE: dict[str, Any] = {}


def run_config(grid: Grid, run: Run, out_dir: Path) -> Any:
    """The resolved fope.train ExperimentConfig of ``run``: preset -> user overrides -> the run's own."""
    from fope.train import apply_overrides

    cfg = base_config(grid.preset)
    overrides = dict(run.overrides)
    if run.init_from is not None:
        overrides["train.init_from"] = str((out_dir / RUNS_DIR / run.init_from).resolve())
    return apply_overrides(cfg, overrides)


def eval_requests(preset: GridPreset, run: Run, corpus: str) -> list[EvalRequest]:
    """Perplexity on the training corpus (``corpus``) and on the other corpus, passkey (generation + likelihood)."""
    p = preset
    ppl = {"mode": "chunks", "lengths": p.ppl_lengths, "max_tokens": p.eval_tokens,
           "batch_tokens": p.eval_batch_tokens, "split": "val"}
    out = [EvalRequest("ppl", {"corpus": corpus, **ppl})]
    if p.other_corpus and p.other_corpus != corpus:
        out.append(EvalRequest(f"ppl_{p.other_corpus}", {"corpus": p.other_corpus, **ppl}))
    if run.passkey_trials > 0:
        out.append(EvalRequest("passkey", {"lengths": p.passkey_lengths, "trials": run.passkey_trials, "seed": 0,
                                           "mode": "both", "depths": "uniform"}))
    return out


# --------------------------------------------------------------------------- files
def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=False, default=_json_default) + "\n")
    os.replace(tmp, path)


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None if it is missing or unreadable (a torn write counts as missing)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def run_dir(out_dir: Path, name: str) -> Path:
    return Path(out_dir) / RUNS_DIR / name


def run_record(out_dir: Path, run: Run) -> dict | None:
    """The finished-run record of ``run`` (None if it has not finished training)."""
    rec = read_json(run_dir(out_dir, run.name) / "run.json")
    return rec if rec is not None and rec.get("key") == run.key else None


def eval_record(out_dir: Path, run: Run, request: EvalRequest) -> dict | None:
    rec = read_json(run_dir(out_dir, run.name) / "eval" / f"{request.kind}.json")
    return rec if rec is not None and rec.get("request") == _jsonable(request.settings) else None


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=_json_default))


@contextlib.contextmanager
def grid_lock(out_dir: Path) -> Iterator[None]:
    """An exclusive lock on ``OUT/.lock`` so that two grids never write the same directory."""
    import fcntl

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ValueError(f"{out_dir} is in use by another `fope reproduce` (lock {out_dir / '.lock'})") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_same_config(cfg: Any, path: Path, name: str) -> None:
    """Raise if ``path/config.yaml`` exists and describes another run than ``cfg`` (init_from paths aside)."""
    file = path / "config.yaml"
    if not file.is_file():
        return
    import yaml

    old = _flat(yaml.safe_load(file.read_text()) or {})
    new = _flat(_jsonable(cfg.to_dict()))
    diff = sorted(k for k in set(old) | set(new) if k != "train.init_from" and old.get(k) != new.get(k))
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
        raise ValueError(f"run {name!r} in {path} was started with another config ({shown}); use a new --out "
                         f"directory or delete {path}")


def _flat(d: dict) -> dict:
    """{"model": {"pe": "rope"}} -> {"model.pe": "rope"} (sections of an ExperimentConfig dict)."""
    return {f"{section}.{k}": v for section, fields in d.items() if isinstance(fields, dict)
            for k, v in fields.items()}


# --------------------------------------------------------------------------- the scheduler
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
        except Exception as e:  # noqa: BLE001 - delivered through the future, as a process pool would
            fut.set_exception(e)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def _init_worker(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _worker(grid: Grid, run: Run, out: Path, backend: Backend) -> None:
    """One run in a worker process (module level so that the spawn start method can import it)."""
    try:
        _do_run(grid, run, out, backend, lambda s: print(s, flush=True))
    except Exception:
        _record_error(out, run)
        raise


def _record_error(out: Path, run: Run) -> None:
    path = run_dir(out, run.name)
    path.mkdir(parents=True, exist_ok=True)
    (path / "error.txt").write_text(traceback.format_exc())


def run_grid(grid: Grid, out_dir: str | Path, *, backend: Backend, jobs: int = 1, threads: int | None = None,
             log: Callable[[str], None] | None = None, on_run_done: Callable[[], None] | None = None) -> dict:
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
    todo = [r for r in runs if not _complete(out, grid, r)]
    pending = list(todo)
    status: dict[str, Any] = {"done": [r.name for r in runs if r not in todo], "failed": {}, "skipped": {}}
    progress = Progress(start=time.perf_counter(), jobs=jobs)
    started: dict[str, float] = {}
    with grid_lock(out):
        say(f"grid {grid.preset.name}: {len(runs)} runs, {len(runs) - len(todo)} already done, output {out}"
            + (f", {jobs} at a time" if jobs > 1 else ""))
        if jobs > 1 and hasattr(backend, "prepare"):  # tokenizer + shards once, before processes race for them
            seen: set[str] = set()
            for run in todo:
                cfg = run_config(grid, run, out)
                key = json.dumps(_jsonable(cfg.to_dict()["data"]), sort_keys=True)
                if key not in seen:
                    seen.add(key)
                    backend.prepare(cfg)
        if jobs == 1:
            _init_worker(threads)
            executor: Any = _InlineExecutor()
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            executor = ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"),
                                           initializer=_init_worker, initargs=(threads,))
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
                    eta = progress.eta(sum(r.cost for r in pending) + run.cost,
                                       [(r.cost, now - started[r.name]) for r in running.values()])
                    say(f"[{index[run.name]}/{len(runs)}] {run.name} ... {len(pending)} left after it, {eta}")
                    started[run.name] = now
                    if jobs == 1:
                        fut = executor.submit(_do_run, grid, run, out, backend, say)
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
                            path = run_dir(out, run.name)
                            path.mkdir(parents=True, exist_ok=True)
                            (path / "error.txt").write_text(
                                "".join(traceback.format_exception(type(err), err, err.__traceback__)))
                        say(f"  FAILED {run.name}: {type(err).__name__}: {err} "
                            f"(traceback in {run_dir(out, run.name) / 'error.txt'})")
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


def config_fingerprint(cfg: Any, run: Run) -> dict:
    """The resolved config of a run as plain JSON, with ``train.init_from`` as the source run's name (not a path)."""
    d = _jsonable(cfg.to_dict())
    if run.init_from is not None:
        d["train"]["init_from"] = run.init_from
    return d


def _complete(out: Path, grid: Grid, run: Run) -> bool:
    record = run_record(out, run)
    if record is None:
        return False
    if record.get("config") != config_fingerprint(run_config(grid, run, out), run):
        raise ValueError(f"run {run.name!r} in {run_dir(out, run.name)} was trained with another config than the "
                         "grid asks for now (the preset or its overrides changed); use a new --out directory or "
                         f"delete {run_dir(out, run.name)}")
    return all(eval_record(out, run, req) is not None for req in eval_requests(grid.preset, run, record["corpus"]))


def _do_run(grid: Grid, run: Run, out: Path, backend: Backend, say: Callable[[str], None]) -> None:
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
            raise GridInterrupted(f"training of {run.name} stopped at step {summary.get('step')} "
                                  f"({summary.get('stopped')})")
        record = {"name": run.name, "key": run.key, "config": config_fingerprint(cfg, run),
                  "overrides": run.overrides, "init_from": run.init_from,
                  "corpus": cfg.data.corpus, "train_len": cfg.model.train_len, "train_wall_s": wall,
                  "summary": {k: v for k, v in summary.items() if k != "losses"},
                  "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
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
        write_json_atomic(path / "eval" / f"{req.kind}.json",
                          {"kind": req.kind, "request": _jsonable(req.settings), "wall_s": wall,
                           **_jsonable(result)})
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


# --------------------------------------------------------------------------- backends
class LocalBackend:
    """Train with fope.train and evaluate with fope.eval in this process."""

    def __init__(self, *, device: str = "auto"):
        self.device = device
        self._tokens: dict[tuple, Any] = {}

    def train(self, cfg: Any, run_dir: Path, *, resume: bool) -> dict:
        from fope.train import train

        return train(cfg, run_dir, resume=resume)

    def prepare(self, cfg: Any) -> None:
        """Train the tokenizer and write the token shards of ``cfg`` (cached; nothing to do when up to date)."""
        import torch

        from fope.train.data import prepare_data
        from fope.train.distributed import DistInfo

        prepare_data(cfg, DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu")))

    def _device(self) -> str:
        if self.device != "auto":
            return self.device
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"

    def evaluate(self, run_dir: Path, request: EvalRequest) -> dict:
        from fope.eval import load_model

        model = load_model(run_dir, device=self._device())
        if model.tokenizer is None:
            raise FileNotFoundError(f"{run_dir} holds no tokenizer.json next to the model; cannot evaluate")
        s = request.settings
        if request.kind == "passkey":
            return self._passkey(model, s)
        return self._perplexity(model, s)

    def _stream(self, corpus: str, tokenizer: Any, max_tokens: int, tok_id: str) -> Any:
        key = (corpus, tok_id, max_tokens)
        if key not in self._tokens:
            from fope.eval import tokens_from_corpus

            self._tokens[key] = tokens_from_corpus(corpus, tokenizer, split="val", max_tokens=max_tokens + 1)
        return self._tokens[key]

    def _perplexity(self, model: Any, s: dict) -> dict:
        from fope.eval.perplexity import perplexity_report, token_budget

        lengths = [int(x) for x in s["lengths"]]
        tok_id = _tokenizer_id(model)
        stream = self._stream(s["corpus"], model.tokenizer, int(s["max_tokens"]), tok_id)
        budget = token_budget(len(stream), lengths, max_tokens=int(s["max_tokens"]))
        stream = stream[:budget]
        by_length, details = {}, {}
        for length in lengths:  # one call per length: the batch follows the length, the tokens do not
            batch = max(1, int(s["batch_tokens"]) // length)
            rep = perplexity_report(model, stream, [length], mode=s["mode"], batch_size=batch, progress=False)
            r = rep[length]
            by_length[str(length)] = r.ppl
            details[str(length)] = r.to_dict()
        return {"by_length": by_length, "details": details, "tokens_scored_per_length": budget}

    def _passkey(self, model: Any, s: dict) -> dict:
        from fope.eval import passkey_eval

        res = passkey_eval(model, model.tokenizer, [int(x) for x in s["lengths"]], trials=int(s["trials"]),
                           seed=int(s["seed"]), depths=s.get("depths"), mode=s["mode"], progress=False)
        lik = res.get("likelihood") or {}
        return {"by_length": res["by_length"], "metric": res["metric"],
                "likelihood_top1": (lik.get("top1") or {}).get("by_length"),
                "likelihood_mrr": (lik.get("mrr") or {}).get("by_length"),
                "likelihood_margin": (lik.get("margin") or {}).get("by_length"),
                "n_candidates": lik.get("n_candidates"), "by_length_depth": res.get("by_length_depth"),
                "n_garbage": res.get("n_garbage"), "trials": res.get("trials")}


def _tokenizer_id(model: Any) -> str:
    """A content id of the model's tokenizer (runs of a grid usually share one)."""
    import hashlib

    tok = model.tokenizer
    for attr in ("to_str",):
        fn = getattr(tok, attr, None)
        if callable(fn):
            return hashlib.sha256(fn().encode()).hexdigest()[:16]
    probe = "The pass key is 12345. Remember it. Thou art the grass and sky."
    return hashlib.sha256(repr((getattr(tok, "vocab_size", None), tok.encode(probe))).encode()).hexdigest()[:16]


class TorchrunBackend(LocalBackend):
    """Each training run as ``torchrun --standalone --nproc_per_node N -m fope.cli train ...`` (GPU presets).

    Evaluation runs in this process (one device). With ``dry_run`` nothing is executed: the commands are only
    printed (``fope reproduce --print-commands``).
    """

    def __init__(self, *, nproc: int, device: str = "auto", dry_run: bool = False,
                 log: Callable[[str], None] | None = None):
        super().__init__(device=device)
        self.nproc = nproc
        self.dry_run = dry_run
        self.log = log or (lambda s: print(s, flush=True))

    def command(self, cfg_path: Path, run_dir: Path, *, resume: bool) -> list[str]:
        head = ["torchrun", "--standalone", f"--nproc_per_node={self.nproc}", "-m", "fope.cli", "train"]
        return head + (["--resume", str(run_dir)] if resume else [str(cfg_path), "--out", str(run_dir)])

    def train(self, cfg: Any, run_dir: Path, *, resume: bool) -> dict:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg_path = run_dir / "grid-config.yaml"
        cfg.to_yaml(cfg_path)
        cmd = self.command(cfg_path, run_dir, resume=resume)
        self.log("  $ " + " ".join(shlex.quote(c) for c in cmd))
        if self.dry_run:
            return {"finished": True, "step": cfg.train.max_steps, "dry_run": True}
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"torchrun exited with status {proc.returncode} for {run_dir}")
        summary = read_json(run_dir / "summary.json")
        if summary is None:
            raise RuntimeError(f"torchrun finished but {run_dir / 'summary.json'} is missing or unreadable")
        return summary


def print_plan(grid: Grid, out_dir: Path, *, nproc: int, log: Callable[[str], None] | None = None) -> None:
    """Print every run with its overrides and its torchrun command, and which cells use it (no execution)."""
    say = log or (lambda s: print(s, flush=True))
    backend = TorchrunBackend(nproc=nproc, dry_run=True, log=say)
    for i, run in enumerate(grid.runs, 1):
        cells = [f"{c.experiment}/{c.group}/{c.arm}" for c in grid.cells if run.name in c.runs]
        say(f"[{i}/{len(grid.runs)}] {run.name}" + (f" (from {run.init_from})" if run.init_from else "")
            + f"  -> {', '.join(cells) or 'reference'}")
        say("  overrides: " + " ".join(f"{k}={json.dumps(v)}" for k, v in run.overrides.items()))
        path = run_dir(out_dir, run.name)
        say("  $ " + " ".join(shlex.quote(c) for c in backend.command(path / "grid-config.yaml", path, resume=False)))


def python_command() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])
