"""Validation loss on held-out windows during training (each process scores a slice; sums are all-reduced)."""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from .data import eval_window_ids, get_batch
from .distributed import DistInfo, all_reduce_sum


def token_loss(
    model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, *, loss_chunk: int = 0
) -> torch.Tensor:
    """Mean next-token cross-entropy. inputs, targets: (B, T) long.

    ``loss_chunk`` > 0 and a fope CausalLM (also inside DDP or torch.compile): the model computes the loss itself,
    in chunks of that many tokens (`CausalLM.forward(targets=...)`); other models return logits.
    """
    if loss_chunk > 0 and _computes_loss(model):
        return model(inputs, targets=targets, loss_chunk=loss_chunk)
    logits = model(inputs)  # (B, T, V) fp32
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


def _computes_loss(model: torch.nn.Module) -> bool:
    from fope.model import CausalLM

    inner = getattr(model, "_orig_mod", model)  # torch.compile
    inner = getattr(inner, "module", inner)  # DistributedDataParallel
    inner = getattr(inner, "_orig_mod", inner)
    return isinstance(inner, CausalLM)


@torch.no_grad()
def validation_losses(
    model: torch.nn.Module,
    val: dict,
    *,
    windows: int,
    batch: int,
    vocab_size: int,
    info: DistInfo,
    autocast: contextlib.AbstractContextManager,
    loss_chunk: int = 0,
) -> dict[str, float]:
    """``{"val_loss": ..., "val_loss/NAME": ...}``: mean token loss over ``windows`` evenly spread windows."""
    was_training = model.training
    model.eval()
    out = {}
    for name, tokens in val.items():
        ids = eval_window_ids(tokens, windows)[info.rank :: info.world_size]
        total = torch.zeros(2, dtype=torch.float64, device=info.device)  # (loss sum, windows)
        for i in range(0, len(ids), batch):
            x, y = get_batch(tokens, ids[i : i + batch], info.device, vocab_size)
            with autocast:
                loss = token_loss(model, x, y, loss_chunk=loss_chunk)
            total += torch.stack(
                [loss.double() * len(x), torch.tensor(float(len(x)), device=info.device, dtype=torch.float64)]
            )
        all_reduce_sum(total, info)
        out["val_loss" if name == "" else f"val_loss/{name}"] = float(total[0] / total[1])
    model.train(was_training)
    return out
