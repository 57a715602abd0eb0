"""KERPLE, logarithmic variant (Chi et al., NeurIPS 2022): bias −r1_h·log(1 + r2_h·|i − j|), r1, r2 > 0 learned.

Positive parametrisation: r = eps + softplus(raw) with eps = 0.01 (the authors clamp r at 0.01).
Init (option ``init``): "uniform" = the authors' code, r1 ~ U(0, 2) and r2 ~ U(0, 1) per head (floored at eps);
"ones" = r1 = r2 = 1 for every head. Parameters are per layer (one module per attention layer).
Math and init: fope.pos.functional (kerple_positive, kerple_init_raw, kerple_log_bias).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from . import functional as PF
from .base import PositionEncoding, check_heads, parse_options, tensor_version
from .options import KERPLEOptions
from .registry import register


@register("kerple")
class KERPLE(PositionEncoding):
    """Attributes: r1, r2 (properties, (Hq,) positive); raw_r1, raw_r2 the Parameters."""

    Options = KERPLEOptions

    has_score_bias = True

    def __init__(self, *, head_dim: int, n_heads: int, train_len: int | None = None, **options: Any):
        super().__init__()
        opts = parse_options(KERPLEOptions, "kerple", options)
        check_heads("kerple", n_heads, opts.n_kv_heads)
        raw_r1, raw_r2 = PF.kerple_init_raw(n_heads, opts.init)
        self.raw_r1, self.raw_r2 = nn.Parameter(raw_r1), nn.Parameter(raw_r2)
        self.n_heads = n_heads

    @property
    def r1(self) -> torch.Tensor:
        return PF.kerple_positive(self.raw_r1)

    @property
    def r2(self) -> torch.Tensor:
        return PF.kerple_positive(self.raw_r2)

    def attn_bias(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        """(Tq,), (Tk,) -> (Hq, Tq, Tk) fp32, −r1·log(1 + r2·|i − j|).

        Without gradients (evaluation, decoding) the bias is a lookup in a cached (H, L) table of the bias per
        distance (same values: the same float ops on the same distances), so a generated token does no log1p work.
        """
        with torch.autocast(device_type=q_positions.device.type, enabled=False):
            if torch.is_grad_enabled() or torch.compiler.is_compiling():
                return PF.kerple_log_bias(self.r1, self.r2, q_positions, k_positions)
            dist = (q_positions[:, None] - k_positions[None, :]).abs()  # (Tq, Tk) long
            end = int(max(q_positions.max(), k_positions.max()) - min(q_positions.min(), k_positions.min())) + 1
            (table,) = self.tables.get(
                ("kerple", id(self), str(q_positions.device)),
                end,
                self._distance_table,
                (tensor_version(self.raw_r1), tensor_version(self.raw_r2), self.raw_r1.data_ptr()),
            )
            return table.T[:, dist]

    def _distance_table(self, n: int) -> tuple[torch.Tensor]:
        """(n, H) bias at distances 0 .. n-1 (positions on axis -2, as TableCache grows them)."""
        d = torch.arange(n, device=self.raw_r1.device)
        return (PF.kerple_log_bias(self.r1, self.r2, d, torch.zeros(1, dtype=d.dtype, device=d.device))[:, :, 0].T,)

    def score_bias(self, head: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """Elementwise −r1_h·log(1 + r2_h·|i − j|) (broadcasting integer tensors; flex_attention's score_mod)."""
        dist = (q_pos.to(torch.float32) - k_pos.to(torch.float32)).abs()
        return -self.r1[head] * torch.log1p(self.r2[head] * dist)

    def extra_repr(self) -> str:
        return f"n_heads={self.n_heads}, variant=log"
