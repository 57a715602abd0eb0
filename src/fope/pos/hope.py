"""HoPE, High-frequency rotary Position Encoding (Chen et al., "HoPE: A Novel Positional Encoding Without Long-Term
Decay for Enhanced Context Awareness and Extrapolation", ACL 2025, arXiv 2410.21216, §4 "HoPE", built on the
analysis of §3): RoPE's components that do not complete one full period within the training length are replaced by
position-independent ones (frequency 0: cos = 1, sin = 0, the channels still carry content), and only the
high-frequency components rotate.

Frequencies: ω_i = θ^(−2i/D) when ω_i·L ≥ 2π·cycles (at least ``cycles`` whole periods within L = train_len), else 0.
With cycles = 1 the kept set is exactly FoPE's clip floor (fope.pos.functional.clip_floor_keep with floor_ratio 1,
the same strict comparison): HoPE is FoPE's floor without the Fourier series, and at θ = 10000 the same frequencies
as p-RoPE (fope.pos.prope) with p = kept/(D/2) (tests/pos/test_hope.py).

Ambiguity, an option: ``cycles``, how many periods within L a component must complete to count as high-frequency
(the paper's rule is one full period; FoPE's ``floor_ratio`` is the same knob). The boundary case ω·L = 2π exactly
is kept (rotated), as FoPE's floor keeps it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from .base import parse_options
from .functional import clip_floor_keep
from .registry import register
from .rope import RoPE


@dataclass(frozen=True)
class HoPEOptions:
    #: base θ of the frequencies ω_i = θ^(−2i/D)
    theta: float = 10000.0
    #: a component rotates when it completes at least this many full periods within train_len (ω·L ≥ 2π·cycles);
    #: the others become position-independent. 1.0 = the paper's rule (§4)
    cycles: float = 1.0
    #: key/value heads (GQA); the rotation is the same for every head, only validated
    n_kv_heads: int | None = None


@register("hope")
class HoPE(RoPE):
    """HoPE: RoPE with every frequency completing fewer than ``cycles`` periods within train_len set to zero.

    Attributes:
        kept: (D/2,) bool, the components that rotate; cycles: the option.
    """

    Options = HoPEOptions

    def __init__(self, *, head_dim: int, n_heads: int, train_len: int | None = None, **options: Any):
        opts = parse_options(HoPEOptions, "hope", options)
        cycles = opts.cycles
        if isinstance(cycles, bool) or not isinstance(cycles, (int, float)) or not math.isfinite(cycles) or cycles <= 0:
            raise ValueError(f"hope: cycles must be a finite number > 0, got {cycles!r}")
        if not train_len:
            raise ValueError("hope: needs train_len (the components that complete a period within it rotate)")
        super().__init__(
            head_dim=head_dim, n_heads=n_heads, train_len=train_len, theta=opts.theta, n_kv_heads=opts.n_kv_heads
        )
        self.cycles = float(cycles)
        self.kept = clip_floor_keep(self.base_inv_freq, train_len, self.cycles)
        self.set_base_frequencies(torch.where(self.kept, self.base_inv_freq, 0.0), ("hope", train_len, self.cycles))

    def extra_repr(self) -> str:
        n = int(self.kept.sum())
        return (
            f"head_dim={self.head_dim}, theta={self.theta:g}, L={self.train_len}, cycles={self.cycles:g} ({n} rotate)"
        )
