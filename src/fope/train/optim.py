"""AdamW and the learning-rate schedule of the paper (docs/paper.md §4.3; OLMo ``cosine_with_warmup``).

Schedule, with n = 1, 2, ..., max_steps the number of the optimizer update being made:
    1. warm-up:  lr(n) = lr * n / warmup_steps                        for n <= warmup_steps (linear from 0)
    2. cosine:   lr(n) = lr_min + (lr - lr_min) * (1 + cos(pi * p)) / 2, p = (n - warmup) / (max_steps - warmup)
with lr_min = final_lr_ratio * lr, so the last update uses exactly lr_min.
"""

from __future__ import annotations

import math

import torch

from .config import TrainConfig


def lr_at(n: int, t: TrainConfig) -> float:
    """Learning rate of optimizer update number ``n`` (1-based)."""
    if n <= t.warmup_steps:
        return t.lr * n / t.warmup_steps
    lr_min = t.final_lr_ratio * t.lr
    progress = min(1.0, (n - t.warmup_steps) / max(1, t.max_steps - t.warmup_steps))
    return lr_min + (t.lr - lr_min) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_optimizer(model: torch.nn.Module, t: TrainConfig) -> torch.optim.AdamW:
    """AdamW over every trainable parameter, one group: weight decay applies to norms and embeddings too
    (the paper's ``decay_norm_and_bias`` and ``decay_embeddings``). Fixed parameters (FoPE coefficients,
    ``requires_grad=False``) are left out."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    # fused (one kernel for all parameters) on CUDA; the per-parameter loop on CPU, where the update is a negligible
    # share of a step and the loop keeps earlier CPU runs' numerics
    on_cuda = params[0].is_cuda
    return torch.optim.AdamW(
        params, lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps, weight_decay=t.weight_decay, foreach=False, fused=on_cuda
    )


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
