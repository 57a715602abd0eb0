"""The files of a grid's output directory: where each run's records live, how they are read and written.

Layout of the output directory ``OUT``:
    OUT/runs/<run name>/            a fope.train run directory (config.yaml, metrics.jsonl, model/, checkpoint/)
    OUT/runs/<run name>/run.json    written atomically once the run finished training (its summary)
    OUT/runs/<run name>/eval/<kind>.json
                                    one evaluation (kind: ``ppl``, ``ppl_<other corpus>``, ``passkey``), written
                                    atomically; it is redone only if its settings change
    OUT/.lock                       held while a grid runs (`grid_lock`)
    OUT/results.json, OUT/report.md, OUT/figures/*.png   (fope.reproduce.report)

A run directory whose ``config.yaml`` differs from what the grid asks now is an error (`check_same_config`).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .experiments import Run
    from .runconfig import EvalRequest

RUNS_DIR = "runs"


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
    return rec if rec is not None and rec.get("request") == jsonable(request.settings) else None


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (what reading back its JSON gives)."""
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
    new = _flat(jsonable(cfg.to_dict()))
    diff = sorted(k for k in set(old) | set(new) if k != "train.init_from" and old.get(k) != new.get(k))
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
        raise ValueError(f"run {name!r} in {path} was started with another config ({shown}); use a new --out "
                         f"directory or delete {path}")


def _flat(d: dict) -> dict:
    """{"model": {"pe": "rope"}} -> {"model.pe": "rope"} (sections of an ExperimentConfig dict)."""
    return {f"{section}.{k}": v for section, fields in d.items() if isinstance(fields, dict)
            for k, v in fields.items()}


def config_fingerprint(cfg: Any, run: Run) -> dict:
    """The resolved config of a run as plain JSON, with ``train.init_from`` as the source run's name (not a path)."""
    d = jsonable(cfg.to_dict())
    if run.init_from is not None:
        d["train"]["init_from"] = run.init_from
    return d
