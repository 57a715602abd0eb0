"""p-RoPE (Barbero et al., "Round and Round We Go! What makes Rotary Positional Encodings useful?", ICLR 2025,
arXiv 2410.06205, §6): RoPE that keeps only the highest fraction ``p`` of its frequencies and sets the rest to zero,
so those channels carry no position at all (cos = 1, sin = 0: semantic channels that never rotate).

Frequencies: ω_i = θ^(−2i/D) for i < k and ω_i = 0 for k ≤ i < D/2, with k = int(p·D // 2), the rule of
transformers' ``proportional`` rope_type (``modeling_rope_utils._compute_proportional_rope_parameters``): equal to it
on the same inputs (tests/pos/test_prope.py). p = 1 is RoPE, p = 0 is NoPE. Everything else (rotate-half layout,
fp32 tables in the model's TableCache, GQA) is RoPE's (fope.pos.rope).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .base import parse_options
from .registry import register
from .rope import RoPE


@dataclass(frozen=True)
class PRoPEOptions:
    #: fraction p in [0, 1] of the D/2 frequencies kept, the highest ones (k = int(p·D // 2) of them, transformers'
    #: rounding); the paper's Gemma experiments use 0.75
    p: float = 0.75
    #: base θ of the frequencies ω_i = θ^(−2i/D)
    theta: float = 10000.0
    #: key/value heads (GQA); the rotation is the same for every head, only validated
    n_kv_heads: int | None = None


def prope_kept(head_dim: int, p: float) -> int:
    """How many of the D/2 frequencies p-RoPE keeps: int(p·D // 2), as transformers' ``proportional`` rope_type."""
    return int(p * head_dim // 2)


@register("prope")
class PRoPE(RoPE):
    """p-RoPE: RoPE with its lowest (1 − p) fraction of frequencies set to zero.

    Attributes:
        p: the kept fraction; kept: how many frequencies rotate (the first ``kept`` of RoPE's D/2).
    """

    Options = PRoPEOptions

    def __init__(self, *, head_dim: int, n_heads: int, train_len: int | None = None, **options: Any):
        opts = parse_options(PRoPEOptions, "prope", options)
        p = opts.p
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0 <= p <= 1:
            raise ValueError(f"prope: p must be a number in [0, 1], got {p!r}")
        super().__init__(
            head_dim=head_dim, n_heads=n_heads, train_len=train_len, theta=opts.theta, n_kv_heads=opts.n_kv_heads
        )
        self.p, self.kept = float(p), prope_kept(head_dim, p)
        mask = torch.arange(head_dim // 2) < self.kept
        self.set_base_frequencies(torch.where(mask, self.base_inv_freq, 0.0), ("prope", self.kept))

    def extra_repr(self) -> str:
        return f"head_dim={self.head_dim}, theta={self.theta:g}, p={self.p:g} ({self.kept} of {self.head_dim // 2})"
