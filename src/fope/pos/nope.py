"""NoPE: no position encoding at all (causal masking alone carries order; Kazemnejad et al. 2023)."""

from __future__ import annotations

from typing import Any

from .base import PositionEncoding, check_heads, parse_options
from .options import NoPEOptions
from .registry import register


@register("nope")
class NoPE(PositionEncoding):
    """Identity rotation and no bias."""

    Options = NoPEOptions

    def __init__(self, *, head_dim: int, n_heads: int, train_len: int | None = None, **options: Any):
        super().__init__()
        opts = parse_options(NoPEOptions, "nope", options)  # unknown options raise a ValueError naming them
        check_heads("nope", n_heads, opts.n_kv_heads)
