"""The files of a grid's output directory: where each run's records live, how they are read and written.

Layout of the output directory ``OUT``:
    OUT/runs/<run name>/            a fope.train run directory (config.yaml, metrics.jsonl, model/, checkpoint/)
    OUT/runs/<run name>/run.json    written atomically once the run finished training (its summary)
    OUT/runs/<run name>/eval/<kind>.json
                                    one evaluation (kind: ``ppl``, ``ppl_<other corpus>``, ``passkey``), written
                                    atomically; it is redone only if its settings change
    OUT/.lock                       held while a grid runs (`grid_lock`); temp files a kill left are removed then
    OUT/results.json, OUT/report.md, OUT/figures/*.png   (fope.reproduce.report)

A run directory whose ``config.yaml`` differs from what the grid asks now is an error (`check_same_config`).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fope import utils
from fope.utils import atomic_json, directory_lock, json_default, remove_stale_temps

if TYPE_CHECKING:
    from .experiments import EvalRequest, Run

RUNS_DIR = "runs"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write a record of the grid: JSON with indent 1, atomically (`fope.utils.atomic_json`: temp file, fsync,
    rename)."""
    atomic_json(path, obj, indent=1)


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None if it is missing or unreadable (a torn write counts as missing)."""
    try:
        return utils.read_json(path, missing=None)
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
    return rec if rec is not None and rec.get("request") == jsonable(request.settings) else None


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (what reading back its JSON gives)."""
    return json.loads(json.dumps(obj, default=json_default))


def grid_lock(out_dir: Path) -> contextlib.AbstractContextManager:
    """The grid's hold on ``OUT`` (``OUT/.lock``, `fope.utils.directory_lock`: the same lock as a training run's),
    so that two grids never write the same directory; the second fails at once naming the first (pid, host,
    start time, command)."""
    return directory_lock(out_dir, what="grid output directory", reentrant=False)


def remove_grid_temps(out_dir: Path) -> None:
    """Delete the temporary files a killed write left in the grid's folders (call with `grid_lock` held; each run's
    own folders are tidied by fope.train when it runs)."""
    out = Path(out_dir)
    for folder in (out, out / "figures", *(p for p in (out / RUNS_DIR).glob("**/") if p.is_dir())):
        remove_stale_temps(folder)


def check_same_config(cfg: Any, path: Path, name: str) -> None:
    """Raise if ``path/config.yaml`` exists and describes another run than ``cfg`` (init_from paths aside); the
    comparison is fope.train's resume guard's (`fope.train.config.config_diff`)."""
    file = path / "config.yaml"
    if not file.is_file():
        return
    from fope.train.config import config_diff, read_yaml
    from fope.utils import FileProblem

    try:
        saved = read_yaml(file) or {}
        if not isinstance(saved, dict):
            raise ValueError(f"{file}: not a YAML mapping")
    except ValueError as e:
        raise FileProblem(
            file,
            f"unreadable run config ({str(e).removeprefix(f'{file}: ')})",
            f"restore it from {path / 'checkpoint' / 'config.yaml'} if that exists, or move {path} aside to train the "
            "run again",
        ) from e
    diff = config_diff(saved, jsonable(cfg.to_dict()), ignore=["train.init_from"])
    if diff:
        shown = ", ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(diff.items())[:4])
        raise ValueError(
            f"run {name!r} in {path} was started with another config ({shown}); use a new --out "
            f"directory, or move {path} aside to train it again"
        )


def config_fingerprint(cfg: Any, run: Run) -> dict:
    """The resolved config of a run as plain JSON, with ``train.init_from`` as the source run's name (not a path)."""
    d = jsonable(cfg.to_dict())
    if run.init_from is not None:
        d["train"]["init_from"] = run.init_from
    return d
