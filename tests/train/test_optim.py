"""The learning-rate schedule and the AdamW set-up (docs/paper.md §4.3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import fope.model
from fope.train.config import TrainConfig
from fope.train.optim import build_optimizer, lr_at


def reference_lr(n: np.ndarray, lr: float, warmup: int, total: int, final_ratio: float) -> np.ndarray:
    """OLMo cosine_with_warmup re-derived: linear from 0, then cosine from lr to final_ratio*lr at `total`."""
    lr_min = final_ratio * lr
    warm = lr * n / warmup
    cos = lr_min + (lr - lr_min) * (1 + np.cos(np.pi * (n - warmup) / (total - warmup))) / 2
    return np.where(n <= warmup, warm, cos)


@pytest.mark.parametrize("warmup, total", [(10_000, 19_073), (10, 100), (1, 5), (10_000, 10_025)])
def test_schedule_matches_reference(warmup, total):
    t = TrainConfig(lr=6e-4, warmup_steps=warmup, max_steps=total, final_lr_ratio=0.1)
    n = np.arange(1, total + 1)
    ours = np.array([lr_at(int(i), t) for i in n])
    np.testing.assert_allclose(ours, reference_lr(n, 6e-4, warmup, total, 0.1), rtol=1e-12, atol=0)
    assert ours[0] == 6e-4 / warmup  # warm-up starts from 0: first update uses lr / warmup
    assert ours[warmup - 1] == 6e-4  # peak at the end of warm-up
    assert math.isclose(ours[-1], 6e-5, rel_tol=1e-12)  # cosine to 0.1 x lr at the last step
    assert np.all(np.diff(ours[warmup - 1 :]) <= 0)


def test_no_warmup():
    t = TrainConfig(lr=1.0, warmup_steps=0, max_steps=4, final_lr_ratio=0.0)
    assert [lr_at(n, t) for n in range(1, 5)] == pytest.approx(
        [(1 + math.cos(math.pi * n / 4)) / 2 for n in range(1, 5)]
    )


def test_adamw_decays_every_trainable_parameter():
    model = fope.model.build(fope.model.ModelConfig(vocab_size=16, d_model=8, n_layers=1, n_heads=2, train_len=8))
    opt = build_optimizer(model, TrainConfig())
    assert len(opt.param_groups) == 1
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"], group["weight_decay"]) == (6e-4, (0.9, 0.95), 1e-8, 0.1)
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert {id(p) for p in group["params"]} == trainable  # norms and embeddings included
    # decoupled decay: with a zero gradient, one step scales every weight by (1 - lr * wd)
    before = [p.detach().clone() for p in group["params"]]
    for p in group["params"]:
        p.grad = torch.zeros_like(p)
    opt.step()
    for b, p in zip(before, group["params"]):
        torch.testing.assert_close(p.detach(), b * (1 - 6e-4 * 0.1), rtol=0, atol=1e-9)
