"""Shared helpers of the fope.model tests: tiny configs and independent references."""

from __future__ import annotations

import math

import torch
from torch import nn

import fope.pos
from fope.model import ModelConfig

ALL_KINDS = tuple(fope.pos.KINDS)  # every registered kind: a new module is tested here with no edit


def tiny_config(**overrides) -> ModelConfig:
    """A 2-layer model small enough for many forwards per test (head_dim 32 so FoPE clips something)."""
    base = dict(vocab_size=97, d_model=64, n_layers=2, n_heads=2, train_len=16, pe="nope")
    base.update(overrides)
    return ModelConfig(**base)


class ToyBias(fope.pos.PositionEncoding):
    """A learnable ALiBi-like bias written here, so the blockwise attention is tested independently of fope.pos:
    bias[h, i, j] = -slope_h * (q_i - k_j) + 0.1 * sin(q_i + 2 k_j) (depends on absolute q and k positions)."""

    def __init__(self, n_heads: int):
        super().__init__()
        self.slopes = nn.Parameter(torch.linspace(0.1, 0.8, n_heads))

    def attn_bias(self, q_positions, k_positions):
        q = q_positions.float()[:, None]
        k = k_positions.float()[None, :]
        return -self.slopes[:, None, None] * (q - k) + 0.1 * torch.sin(q + 2 * k)  # (H, Tq, Tk)


def reference_attention(q, k, v, q_pos, k_pos, bias=None):
    """Plain softmax attention: q (B, Hq, T, D), k/v (B, Hk, Tk, D), causal on absolute positions; GQA by
    repeat_interleave over heads (query head h uses kv head h // (Hq // Hk), like HF repeat_kv)."""
    rep = q.shape[1] // k.shape[1]
    k = k.repeat_interleave(rep, dim=1)
    v = v.repeat_interleave(rep, dim=1)
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, Hq, T, Tk)
    if bias is not None:
        scores = scores + bias
    allowed = k_pos[None, :] <= q_pos[:, None]
    scores = scores.masked_fill(~allowed, float("-inf"))
    return scores.softmax(-1) @ v
