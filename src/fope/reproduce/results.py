"""Collect the per-run result files of a grid into one ``results.json`` (mean ± std over seeds).

Schema (every length key is a string, every aggregate is ``{"mean": x, "std": s | None, "n": k}``; std is the
sample standard deviation over seeds, None for a single run):

    {"schema_version": 1, "commit": str | None, "dirty": bool | None, "preset": str, "command": str,
     "config": {grid preset fields..., "base_config": resolved fope.train config of the first run},
     "machine": {...}, "wall_time_s": elapsed seconds of all sessions, "compute_s": training + evaluation seconds
     summed over runs, "sessions": [{"started", "wall_s", "command"}],
     "runs": {name: {"train_wall_s", "eval_wall_s", "final_loss", "tokens", "precision", "overrides", "init_from"}},
     "metrics": {"ppl": "...", ...}              what each metric means,
     "main": {pe: CELL}, "extension": {arm: CELL}, "ablations": {group: {arm: CELL}},
     "passkey_variant": {pe: CELL}, "missing": [run names without complete results]}

    CELL = {"train_len": L, "runs": [names], "n_runs": k, "ppl": {len: AGG}, "ppl_<other>": {len: AGG},
            "passkey": {len: AGG}, "passkey_likelihood": {len: AGG}, "passkey_mrr": {len: AGG},
            "passkey_digits": {len: AGG}       (runs evaluated since it was added),
            "passkey_depth": {len: {depth-bin centre: [correct, trials]}}  generation by needle depth, pooled
                                               over the cell's runs (uniform-depth evaluations),
            "passkey_far": {len: {"within"|"beyond": [correct, trials]}}  generation by whether the needle is
                                               closer to the question than L tokens (runs evaluated since),
            "ppl_ratio": {len: AGG}            ppl(len) / ppl(L), per run then averaged,
            "ppl_ratio_<other>": {len: AGG}    the same on the other corpus,
            "ppl_other_over_train": {len: AGG} ppl_<other>(len) / ppl(len): the paper's Fig. 6 "PPL ratio",
            "info": {...}}
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
from pathlib import Path
from typing import Any

from fope.eval.passkey import depth_counts, distance_counts
from fope.utils import git_info

from .experiments import Cell, Grid
from .mechanism import mechanism_results
from .records import read_json, run_dir, run_record
from .runconfig import eval_requests

SCHEMA_VERSION = 1

METRICS = {
    "ppl": "perplexity on the validation split of the training corpus (non-overlapping chunks of each length)",
    "ppl_other": "perplexity on the different-distribution corpus",
    "passkey": "zero-shot passkey accuracy, greedy generation (first integer generated == key)",
    "passkey_likelihood": "passkey top-1 accuracy of log p(key | prompt) among the key and 9 distractors (chance 0.1)",
    "passkey_mrr": "mean reciprocal rank of the key among the 10 candidates (chance ~0.29)",
    "passkey_digits": "share of the key's digits that greedy generation puts at their own position (a graded "
    "score: a model that finds the needle but cannot copy it in order scores low)",
    "passkey_depth": "greedy-generation [correct, trials] per needle-depth bin (0: the needle at the start of the "
    "filler, farthest from the question; 1: right before it), pooled over seeds",
    "passkey_far": "greedy-generation [correct, trials] of needles closer to the question than L tokens "
    "('within') and at L or farther ('beyond': distances never seen in training), pooled over seeds",
    "ppl_ratio": "ppl(length) / ppl(L): growth of perplexity beyond the training length",
    "ppl_other_over_train": "ppl_other(length) / ppl(length): the paper's Fig. 6 'PPL ratio' (PPL_c4 / PPL_books)",
}


def aggregate(values: list[float]) -> dict[str, Any]:
    """``{"mean", "std" (sample, None for one value), "n"}`` of finite values (NaN/inf are kept visible)."""
    n = len(values)
    if n == 0:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def _per_length(series: list[dict[str, float]]) -> dict[str, dict[str, Any]]:
    """Aggregate a list of ``{length: value}`` dicts (one per run) length by length (lengths sorted)."""
    keys = sorted({k for s in series for k in s}, key=lambda k: float(k))
    return {k: aggregate([float(s[k]) for s in series if k in s and s[k] is not None]) for k in keys}


def _ratio(num: dict[str, float], den: dict[str, float] | float) -> dict[str, float]:
    out = {}
    for k, v in num.items():
        d = den if isinstance(den, (int, float)) else den.get(k)
        if v is not None and d:
            out[k] = float(v) / float(d)
    return out


def run_metrics(out_dir: Path, grid: Grid, name: str) -> dict[str, dict[str, float]]:
    """The raw ``{metric: {length: value}}`` of one run (metrics whose evaluation is missing are absent)."""
    run = grid.run(name)
    record = run_record(out_dir, run)
    if record is None:
        return {}
    path = run_dir(out_dir, name) / "eval"
    other = grid.preset.other_corpus
    out: dict[str, dict[str, float]] = {}
    for req in eval_requests(grid.preset, run, record["corpus"]):
        res = read_json(path / f"{req.kind}.json")
        if res is None or res.get("request") is None:
            continue
        if req.kind == "passkey":
            out.update({metric: v for metric, v in passkey_series(res).items() if v})
            if res.get("trials") and (res.get("request") or {}).get("depths", "uniform") == "uniform":
                out["passkey_depth"] = depth_counts(res["trials"])
            if any(t.get("needle_distance") is not None for t in res.get("trials") or []):
                out["passkey_far"] = distance_counts(res["trials"], int(grid.preset.train_len))
        else:
            out[req.kind] = res.get("by_length") or {}
    ref = str(grid.preset.train_len)  # ratios relative to the grid's L (also for 2L extension runs)
    for kind in ("ppl", f"ppl_{other}"):
        if kind in out and ref in out[kind]:
            out["ppl_ratio" if kind == "ppl" else f"ppl_ratio_{other}"] = _ratio(out[kind], out[kind][ref])
    if "ppl" in out and f"ppl_{other}" in out:
        out["ppl_other_over_train"] = _ratio(out[f"ppl_{other}"], out["ppl"])
    return out


def passkey_series(res: dict) -> dict[str, dict[str, float] | None]:
    """``{metric: {length: value}}`` of a passkey evaluation record in fope.eval's result schema (``likelihood`` and
    ``generate`` hold their own ``by_length``). Records that grids wrote before the schema was shared hold the
    likelihood and digit scores flat (``likelihood_top1``, ``likelihood_mrr``, ``digits_in_place``): read too."""
    lik, gen = res.get("likelihood") or {}, res.get("generate") or {}
    return {
        "passkey": res.get("by_length") or {},
        "passkey_likelihood": (lik.get("top1") or {}).get("by_length") or res.get("likelihood_top1"),
        "passkey_mrr": (lik.get("mrr") or {}).get("by_length") or res.get("likelihood_mrr"),
        "passkey_digits": (gen.get("digits_in_place") or {}).get("by_length") or res.get("digits_in_place"),
    }


#: metrics kept as [correct, trials] counts per length and bin (pooled over runs), not as mean ± std
COUNT_METRICS = ("passkey_depth", "passkey_far")


def _sum_counts(series: list[dict[str, dict[str, list[int]]]]) -> dict[str, dict[str, list[int]]]:
    """Pool depth counts over runs (seeds): correct and trials add up."""
    out: dict[str, dict[str, list[int]]] = {}
    for s in series:
        for n, by_depth in s.items():
            for d, (c, k) in by_depth.items():
                cell = out.setdefault(n, {}).setdefault(d, [0, 0])
                cell[0] += c
                cell[1] += k
    return out


def cell_result(out_dir: Path, grid: Grid, cell: Cell) -> dict[str, Any]:
    """Aggregate the runs of one cell, metric by metric and length by length."""
    per_run = {name: run_metrics(out_dir, grid, name) for name in cell.runs}
    done = [n for n, m in per_run.items() if m]
    metrics = sorted({k for m in per_run.values() for k in m})
    records = [run_record(out_dir, grid.run(n)) for n in done]
    train_len = next((r["train_len"] for r in records if r and "train_len" in r), None)
    out: dict[str, Any] = {"train_len": train_len, "runs": list(cell.runs), "n_runs": len(done)}
    for metric in metrics:
        series = [per_run[n][metric] for n in done if metric in per_run[n]]
        out[metric] = _sum_counts(series) if metric in COUNT_METRICS else _per_length(series)
    out["info"] = dict(cell.info)
    return out


SESSIONS_FILE = "sessions.json"


def read_sessions(out_dir: str | Path) -> list[dict]:
    """``OUT/sessions.json`` (the `fope reproduce` sessions that worked on the grid); a damaged one is kept beside it
    as ``sessions.json.bad`` and a new list started, said in one line (never silently dropped)."""
    import sys

    path = Path(out_dir) / SESSIONS_FILE
    if not path.exists():
        return []
    sessions = read_json(path)
    if isinstance(sessions, list) and all(isinstance(x, dict) for x in sessions):
        return sessions
    bad = path.with_name(SESSIONS_FILE + ".bad")
    path.replace(bad)
    print(
        f"fope: {path}: unreadable session list (kept as {bad}); the grid's wall time restarts from this session",
        file=sys.stderr,
        flush=True,
    )
    return []


def collect(grid: Grid, out_dir: str | Path, *, command: str = "", session_wall_s: float | None = None) -> dict:
    """Build the results dict of ``grid`` from the files under ``out_dir`` (missing runs are listed).

    ``wall_time_s`` is the elapsed time of every `fope reproduce` session that worked on ``out_dir`` (from
    ``OUT/sessions.json``; a grid finished in one go: that session's time); ``compute_s`` sums the training and
    evaluation time of every run (larger than the wall time when runs go in parallel).
    """
    out = Path(out_dir)
    p = grid.preset
    sessions = read_sessions(out)
    res: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        **git_info(),
        "preset": p.name,
        "command": command,
        "config": {**p.to_dict(), "base_config": _base_config(out, grid)},
        "machine": machine_info(),
        "wall_time_s": sum(float(x.get("wall_s") or 0) for x in sessions) or None,
        "sessions": sessions,
        "compute_s": 0.0,
        "session_wall_s": session_wall_s,
        "metrics": {k.replace("other", p.other_corpus): v for k, v in METRICS.items()},
        "runs": {},
        "main": {},
        "extension": {},
        "ablations": {},
        "passkey_variant": {},
        "missing": [],
    }
    for run in grid.runs:
        res["runs"][run.name] = info = _run_info(out, grid, run.name)
        res["compute_s"] += (info.get("train_wall_s") or 0.0) + (info.get("eval_wall_s") or 0.0)
        if not info.get("complete"):
            res["missing"].append(run.name)
    # main_passkey_trials = 0: the main runs are not passkey-tested; a seed-0 run that an ablation arm shares may
    # still carry that arm's few passkey trials, which must not pass for the main comparison's
    skip_main_passkey = grid.preset.main_passkey_trials == 0
    for cell in grid.cells:
        value = cell_result(out, grid, cell)
        if cell.experiment == "main":
            if skip_main_passkey:
                value = {k: v for k, v in value.items() if not k.startswith("passkey")}
            res["main"][cell.arm] = value
        elif cell.experiment == "extension":
            res["extension"][cell.arm] = value
        elif cell.experiment == "ablations":
            res["ablations"].setdefault(cell.group, {})[cell.arm] = value
        elif cell.experiment == "passkey":
            zero = [] if skip_main_passkey else cell.info.get("zero_shot") or []
            value["zero_shot"] = {
                k: v
                for k, v in cell_result(out, grid, Cell("main", "pe", cell.arm, tuple(zero))).items()
                if k.startswith("passkey")
            }
            res["passkey_variant"][cell.arm] = value
        elif cell.experiment == "table2":
            res.setdefault("table2", {})[cell.arm] = value
    res["mechanism"] = mechanism_results(grid, out)
    return res


def _run_info(out: Path, grid: Grid, name: str) -> dict[str, Any]:
    run = grid.run(name)
    record = run_record(out, run)
    info: dict[str, Any] = {"overrides": run.overrides, "init_from": run.init_from, "complete": False}
    if record is None:
        return info
    summary = record.get("summary") or {}
    eval_wall, n_evals = 0.0, 0
    reqs = eval_requests(grid.preset, run, record["corpus"])
    for req in reqs:
        res = read_json(run_dir(out, name) / "eval" / f"{req.kind}.json")
        if res is not None:
            eval_wall += float(res.get("wall_s") or 0.0)
            n_evals += 1
    info.update(
        train_wall_s=record.get("train_wall_s"),
        eval_wall_s=eval_wall,
        final_loss=summary.get("final_loss"),
        first_loss=summary.get("first_loss"),
        tokens=summary.get("tokens"),
        tokens_per_s=summary.get("tokens_per_s"),
        precision=summary.get("precision"),
        complete=n_evals == len(reqs),
    )
    return info


def _base_config(out: Path, grid: Grid) -> dict | None:
    """The resolved fope.train config of the first run (what every run shares, before its own overrides)."""
    import yaml

    for run in grid.runs:
        path = run_dir(out, run.name) / "config.yaml"
        if path.is_file():
            return {"run": run.name, **(yaml.safe_load(path.read_text()) or {})}
    return None


def machine_info() -> dict[str, Any]:
    """nproc, CPU model, memory, torch / python versions, GPU name (what the report prints)."""
    import torch

    cpu = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    with contextlib.suppress(ValueError, OSError, AttributeError):
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "nproc": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu": cpu,
        "memory_gib": round(mem, 1) if mem else None,
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
