"""Training: typed experiment configs and presets, the loop (AdamW, warm-up + cosine, accumulation, DDP,
bf16), atomic checkpoints with exact resume, continual pre-training.

    >>> cfg = fope.train.load_preset("cpu-tiny")
    >>> cfg = fope.train.apply_overrides(cfg, ["train.max_steps=200", "model.pe=fope"])
    >>> summary = fope.train.train(cfg, "runs/tiny")          # resume=True / stop_at=M
"""

from __future__ import annotations

from .config import DataConfig, ExperimentConfig, TrainConfig, apply_overrides
from .loop import NonFiniteLossError, train
from .presets import list_presets, load_config, load_preset

__all__ = [
    "DataConfig",
    "ExperimentConfig",
    "NonFiniteLossError",
    "TrainConfig",
    "apply_overrides",
    "list_presets",
    "load_config",
    "load_preset",
    "train",
]
