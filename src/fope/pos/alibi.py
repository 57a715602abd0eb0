"""ALiBi (Press et al., ICLR 2022): additive bias −m_h·|i − j| with fixed geometric head slopes.

Slopes (closed form, :func:`fope.pos.functional.alibi_slopes`): m_h = 2^(−8h/H), h = 1..H, for a power-of-two H;
otherwise the slopes of the nearest lower power of two H' plus the first H − H' odd-indexed slopes of 2H'.
This is the OLMo ALiBi the FoPE paper compares with (``alibi_bias_max`` = 8). No parameters.
"""

from __future__ import annotations

from typing import Any

import torch

from . import functional as PF
from .base import PositionEncoding, check_heads, parse_options
from .options import ALiBiOptions
from .registry import register


@register("alibi")
class ALiBi(PositionEncoding):
    """Attributes: slopes (Hq,) fp32."""

    Options = ALiBiOptions

    has_score_bias = True

    def __init__(self, *, head_dim: int, n_heads: int, train_len: int | None = None, **options: Any):
        super().__init__()
        opts = parse_options(ALiBiOptions, "alibi", options)
        check_heads("alibi", n_heads, opts.n_kv_heads)
        self.n_heads = n_heads
        self.slopes = PF.alibi_slopes(n_heads)  # plain attribute: never cast by .to(dtype)

    def attn_bias(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        """(Tq,), (Tk,) -> (Hq, Tq, Tk) fp32, −m_h·|i − j|."""
        return PF.alibi_bias(self.slopes.to(q_positions.device), q_positions, k_positions)

    def score_bias(self, head: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """Elementwise −m_h·|i − j| (broadcasting integer tensors; flex_attention's score_mod)."""
        return -self.slopes[head] * (q_pos.to(torch.float32) - k_pos.to(torch.float32)).abs()

    def _apply(self, fn, recurse=True):
        """model.to(device) moves the slopes too (a fused kernel cannot read them from another device); a dtype
        cast does not touch them (they stay the exact fp32 closed form)."""
        out = super()._apply(fn, recurse)
        self.slopes = PF.alibi_slopes(self.n_heads).to(fn(torch.zeros(())).device)
        return out

    def extra_repr(self) -> str:
        return f"n_heads={self.n_heads}"
