"""Shared helpers of the fope.train tests: a tiny experiment on synthetic token shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fope.model import ModelConfig
from fope.train import DataConfig, ExperimentConfig, TrainConfig

VOCAB = 64


def markov_tokens(n: int, seed: int) -> np.ndarray:
    """A learnable stream: next = (3 * prev + 1) % VOCAB, replaced by a random token 10% of the time."""
    rng = np.random.default_rng(seed)
    out = np.empty(n, dtype=np.uint16)
    out[0] = 0
    noise = rng.random(n) < 0.1
    rand = rng.integers(0, VOCAB, n)
    for i in range(1, n):
        out[i] = rand[i] if noise[i] else (3 * int(out[i - 1]) + 1) % VOCAB
    return out


def write_shards(directory: Path, *, n_train: int = 20_000, n_val: int = 2_000) -> Path:
    """Raw uint16 train.bin / val.bin (no meta.json: fope.data.load_tokens then reads them as uint16)."""
    directory.mkdir(parents=True, exist_ok=True)
    markov_tokens(n_train, 1).tofile(directory / "train.bin")
    markov_tokens(n_val, 2).tofile(directory / "val.bin")
    return directory


def tiny_experiment(
    shard_dir: Path, *, pe: str = "rope", pe_options: dict | None = None, train_len: int = 32, **train
) -> ExperimentConfig:
    model = ModelConfig(
        vocab_size=VOCAB, d_model=32, n_layers=2, n_heads=2, train_len=train_len, pe=pe, pe_options=pe_options or {}
    )
    base = dict(
        seed=0,
        lr=3e-3,
        warmup_steps=2,
        max_steps=12,
        global_batch=8,
        micro_batch=4,
        log_every=1,
        eval_every=4,
        eval_windows=4,
        save_every=4,
        device="cpu",
    )
    base.update(train)
    cfg = ExperimentConfig(
        model=model,
        data=DataConfig(corpus="synthetic", tokenizer="train:64", shard_dir=str(shard_dir)),
        train=TrainConfig(**base),
    )
    cfg.validate()
    return cfg


def losses(run_dir: Path) -> list[tuple[int, float]]:
    from fope.train.metrics import read_metrics

    return [(r["step"], r["loss"]) for r in read_metrics(run_dir) if "loss" in r]
