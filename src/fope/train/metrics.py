"""Metric sinks: ``metrics.jsonl`` always (one JSON object per line), TensorBoard / W&B optionally.

Every line has ``step``; training lines also ``loss, lr, tokens, tokens_per_s, grad_norm``; evaluation lines
``val_loss`` (training corpus) and ``val_loss/NAME`` for each extra evaluation corpus.

Crash safety: lines are appended (a ``kill -9`` can at worst cut the last line short); on resume the file is
cut back to the checkpoint's step by writing a new file and renaming it over the old one, so the history up to
the checkpoint is never lost, and a cut-short last line (always after the checkpoint) is dropped. Each checkpoint
holds a copy of the file up to its step: a resume that finds the history emptied, cut or edited restores it from
that copy (saying so), so the summary's first loss and curve stay right. A write that fails (full disk) is one
line naming the file.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

from fope.utils import FileProblem, atomic_write, fs_event, os_error_problem, read_jsonl


class MetricLogger:
    """Writes metric dicts to OUT/metrics.jsonl and the optional backends (rank 0 only)."""

    def __init__(
        self,
        out_dir: Path,
        *,
        backends: list[str],
        run_name: str,
        config: dict,
        wandb_project: str,
        resume_step: int,
        history: Path | None = None,
    ) -> None:
        self.path = Path(out_dir) / "metrics.jsonl"
        truncate_after(self.path, resume_step, history=history)
        try:
            self._file = self.path.open("a")
        except OSError as e:
            raise os_error_problem(e, self.path, "opening it for appending") from e
        self._tb = self._wandb = None
        if "tensorboard" in backends:
            SummaryWriter = _optional("torch.utils.tensorboard", "tensorboard").SummaryWriter
            self._tb = SummaryWriter(str(Path(out_dir) / "tensorboard"))
        if "wandb" in backends:
            wandb = _optional("wandb", "wandb")
            self._wandb = wandb.init(project=wandb_project, name=run_name, config=config, resume="allow")

    def log(self, record: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        try:
            fs_event("append", self.path)
            self._file.write(json.dumps(clean) + "\n")
            self._file.flush()
        except OSError as e:  # a write has no file name: name it here
            raise os_error_problem(e, self.path, "appending a line to it") from e
        step = record["step"]
        for k, v in record.items():
            if k != "step" and isinstance(v, (int, float)) and self._tb is not None:
                self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if k != "step"}, step=step)

    def sync(self) -> None:
        """fsync the lines written so far (called before each checkpoint, which they must not lag behind)."""
        try:
            fs_event("fsync", self.path)
            os.fsync(self._file.fileno())
        except OSError as e:
            raise os_error_problem(e, self.path, "syncing it to disk") from e

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a flush that failed already raised, naming the file
            self._file.close()
        if self._tb is not None:
            self._tb.close()
        if self._wandb is not None:
            self._wandb.finish()


def _optional(module: str, package: str):
    """Import an optional backend lazily, with an actionable error."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ValueError(
            f"train.metrics includes {package!r} but it is not installed ({e}); "
            f"`pip install {package}` or remove it from train.metrics"
        ) from e


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file (a cut-short last line, as a crash leaves it, is skipped).

    Raises FileProblem naming the file and line for any other line that is not a JSON object with a step.
    """
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"

    def check(record: Any) -> None:
        if not isinstance(record, dict) or not isinstance(record.get("step"), int):
            raise ValueError("not a JSON object with an integer 'step'")

    # a last line without its newline that does not parse: a write cut short by a crash, skipped
    return read_jsonl(
        p, "metrics file", missing=[], torn_tail=True, check=check, fix="fix or delete that line (one JSON record each)"
    )


def _before(record: dict[str, Any], step: int) -> bool:
    return record["step"] < step or (record["step"] == step and "event" not in record)


def truncate_after(path: Path, step: int, *, history: Path | None = None) -> None:
    """Drop records with ``step > step`` (written after the checkpoint a run resumes from), atomically.

    ``history``: the checkpoint's copy of the file (records up to ``step``). When the records kept here differ from
    it (the file was emptied, cut, edited, or has a corrupt line), the copy replaces them, said in one line.
    """
    import sys

    saved = read_metrics(history) if history is not None and history.is_file() else None
    try:  # an event at the checkpoint's step was logged by an earlier resume from it, after the checkpoint
        keep = [r for r in read_metrics(path) if _before(r, step)] if path.exists() else []
    except FileProblem:
        if saved is None:
            raise
        keep = None
    if saved is not None and keep != saved:
        print(
            f"fope: {path}: its records up to step {step} differ from the checkpoint's copy (emptied or edited?); "
            f"restored them from {history}",
            file=sys.stderr,
            flush=True,
        )
        atomic_write(path, "".join(json.dumps(r) + "\n" for r in saved))
        return
    if saved is None and step > 0 and not any("loss" in r for r in keep):
        print(
            f"fope: {path}: no training record up to step {step} (emptied?) and the checkpoint holds no copy; the "
            f"summary's first_loss and curve will start after step {step}",
            file=sys.stderr,
            flush=True,
        )
    if not path.exists():
        return
    new = "".join(json.dumps(r) + "\n" for r in keep)
    if new != path.read_text():
        atomic_write(path, new)
