"""Metric sinks: ``metrics.jsonl`` always (one JSON object per line), TensorBoard / W&B optionally.

Every line has ``step``; training lines also ``loss, lr, tokens, tokens_per_s, grad_norm``; evaluation lines
``val_loss`` (training corpus) and ``val_loss/NAME`` for each extra evaluation corpus.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class MetricLogger:
    """Writes metric dicts to OUT/metrics.jsonl and the optional backends (rank 0 only)."""

    def __init__(self, out_dir: Path, *, backends: list[str], run_name: str, config: dict, wandb_project: str,
                 resume_step: int) -> None:
        self.path = Path(out_dir) / "metrics.jsonl"
        truncate_after(self.path, resume_step)
        self._file = self.path.open("a")
        self._tb = self._wandb = None
        if "tensorboard" in backends:
            SummaryWriter = _optional("torch.utils.tensorboard", "tensorboard").SummaryWriter
            self._tb = SummaryWriter(str(Path(out_dir) / "tensorboard"))
        if "wandb" in backends:
            wandb = _optional("wandb", "wandb")
            self._wandb = wandb.init(project=wandb_project, name=run_name, config=config, resume="allow")

    def log(self, record: dict[str, Any]) -> None:
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(clean) + "\n")
        self._file.flush()
        step = record["step"]
        for k, v in record.items():
            if k != "step" and isinstance(v, (int, float)) and self._tb is not None:
                self._tb.add_scalar(k, v, step)
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in record.items() if k != "step"}, step=step)

    def close(self) -> None:
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
        raise ValueError(f"train.metrics includes {package!r} but it is not installed ({e}); "
                         f"`pip install {package}` or remove it from train.metrics") from e


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All records of a metrics.jsonl file."""
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.jsonl"
    return [json.loads(line) for line in p.read_text().splitlines() if line.strip()] if p.exists() else []


def truncate_after(path: Path, step: int) -> None:
    """Drop records with ``step > step`` (written after the checkpoint a run resumes from)."""
    if not path.exists():
        return
    keep = [r for r in read_metrics(path) if r.get("step", 0) <= step]
    path.write_text("".join(json.dumps(r) + "\n" for r in keep))
