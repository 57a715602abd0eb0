"""FIRE (Li et al., ICLR 2024, "Functional Interpolation for Relative Positions Improves Long Context Transformers").

b_h(i, j) = f_θ(ψ(i − j) / ψ(max(L, i)))_h with ψ(x) = log(|c·x| + 1) and f_θ an MLP 1 → width → H (ReLU).
Learned per layer: c (init ``c_init`` = 0.1), the threshold L = |L_scale|·L_0 with L_0 = ``threshold`` (default:
train_len) and L_scale init 1 (the multiplier form of the paper's code, so L moves at a useful rate under Adam), and
the MLP (PyTorch default Linear init). |i − j| is used, so future keys (masked by attention) get finite values.

Memory: one call builds (Tq, Tk) distances and the (H, Tq, Tk) output; the (rows, Tk, width) hidden layer is built
for chunks of query rows of at most HIDDEN_ELEMS elements.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from fope.utils import check_positive_int

from . import functional as PF
from .base import PositionEncoding, check_heads, parse_options, tensor_version
from .options import FIREOptions
from .registry import register

#: largest (rows, Tk, width) hidden tensor one attn_bias call builds (64 MiB in fp32)
HIDDEN_ELEMS = 2**24


@register("fire")
class FIRE(PositionEncoding):
    Options = FIREOptions
    has_score_bias = True

    def __init__(self, *, head_dim: int, n_heads: int, train_len: int | None = None, **options: Any):
        super().__init__()
        opts = parse_options(FIREOptions, "fire", options)
        check_heads("fire", n_heads, opts.n_kv_heads)
        threshold = opts.threshold if opts.threshold is not None else train_len
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold <= 0:
            raise ValueError(f"fire: needs a positive threshold (option threshold or train_len), got {threshold!r}")
        check_positive_int("fire: mlp_width", opts.mlp_width)
        if isinstance(opts.c_init, bool) or not isinstance(opts.c_init, (int, float)) or opts.c_init <= 0:
            raise ValueError(f"fire: c_init must be a number > 0, got {opts.c_init!r}")
        self.n_heads, self.eps = n_heads, float(opts.eps)
        self.c = nn.Parameter(torch.tensor(float(opts.c_init)))
        self.threshold_scale = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("threshold_init", torch.tensor(float(threshold)))
        self.mlp_in = nn.Linear(1, opts.mlp_width)
        self.mlp_out = nn.Linear(opts.mlp_width, n_heads)

    def normalized_distance(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        """(Tq,), (Tk,) -> (Tq, Tk): ψ(|i − j|) / ψ(max(L, i)).

        Without gradients ψ(|i − j|) is looked up in a cached per-distance table (the same float ops on the same
        distances, so the same values): a generated token computes no logarithm per key.
        """
        if torch.is_grad_enabled() or torch.compiler.is_compiling():
            return self._normalized(q_positions[:, None], k_positions[None, :])
        q = q_positions.to(torch.float32)[:, None]
        dist = (q_positions[:, None] - k_positions[None, :]).abs()  # (Tq, Tk) long
        end = int(max(q_positions.max(), k_positions.max()) - min(q_positions.min(), k_positions.min())) + 1
        (psi,) = self.tables.get(
            ("fire-psi", id(self), str(q_positions.device)),
            end,
            self._psi_table,
            (tensor_version(self.c), self.c.data_ptr()),
        )
        return psi[dist, 0] / (PF.fire_psi(self.c, torch.maximum(q, self.threshold)) + self.eps)

    @property
    def threshold(self) -> torch.Tensor:
        """The learned threshold L = |L_scale|·L_0, fp32 0-d."""
        return (self.threshold_scale.float() * self.threshold_init.float()).abs()

    def _psi_table(self, n: int) -> tuple[torch.Tensor]:
        """(n, 1): ψ(d) = log(|c·d| + 1) for distances d = 0 .. n-1 (positions on axis -2, as TableCache grows)."""
        return (PF.fire_psi(self.c, torch.arange(n, device=self.c.device))[:, None],)

    def _normalized(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """ψ(|i − j|) / ψ(max(L, i)) for broadcasting integer tensors of query and key positions."""
        q = q_pos.to(torch.float32)
        return PF.fire_normalized(self.c, self.threshold, self.eps, q - k_pos.to(torch.float32), q)

    def attn_bias(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        """(Tq,), (Tk,) -> (Hq, Tq, Tk) fp32.

        Rows of queries within the threshold L (i <= L) share the normaliser ψ(L), so their bias depends on |i − j|
        only: for them the MLP runs once per distance and the result is gathered (`_bias_by_distance`); rows beyond
        L run it on every (query, key) pair (`_bias_by_pair`). Same values either way
        (tests/pos/test_fire_distance.py). The learned L usually shrinks below the training length, so a training
        batch has both kinds of rows.
        """
        if torch.compiler.is_compiling():
            return self._bias_by_pair(q_positions, k_positions)
        near = q_positions.to(torch.float32) <= self.threshold.detach()
        n_near = int(near.sum())
        if n_near == q_positions.numel():
            return self._bias_by_distance(q_positions, k_positions)
        if n_near == 0:
            return self._bias_by_pair(q_positions, k_positions)
        rows_near, rows_far = near.nonzero().squeeze(1), (~near).nonzero().squeeze(1)
        out = torch.cat(
            [
                self._bias_by_distance(q_positions[rows_near], k_positions),
                self._bias_by_pair(q_positions[rows_far], k_positions),
            ],
            dim=1,
        )
        order = torch.cat([rows_near, rows_far])
        if bool((order[1:] > order[:-1]).all()):  # near rows first (ascending positions): already in place
            return out
        return out.index_select(1, torch.argsort(order))

    def _bias_by_pair(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        """The MLP on every (query, key) pair. The (rows, Tk, width) hidden layer is built for chunks of at most
        HIDDEN_ELEMS elements, so it never outgrows attention's own block of scores."""
        rows = max(1, HIDDEN_ELEMS // max(1, k_positions.numel() * self.mlp_in.out_features))
        if q_positions.numel() > rows:
            return torch.cat(
                [
                    self._bias_by_pair(q_positions[i : i + rows], k_positions)
                    for i in range(0, q_positions.numel(), rows)
                ],
                dim=1,
            )
        with torch.autocast(device_type=q_positions.device.type, enabled=False):
            x = self.normalized_distance(q_positions, k_positions)
            return PF.fire_mlp(x, self.mlp_in.weight[:, 0], self.mlp_in.bias, self.mlp_out.weight, self.mlp_out.bias)

    def _bias_by_distance(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
        """attn_bias for queries at positions <= L: f(ψ(d) / ψ(L)) for each distance d, gathered to (H, Tq, Tk)."""
        dist = (q_positions[:, None] - k_positions[None, :]).abs()  # (Tq, Tk) long
        d = torch.arange(int(dist.max()) + 1, device=q_positions.device)
        with torch.autocast(device_type=q_positions.device.type, enabled=False):
            # query position 0: max(0, L) = L, the normaliser of every row here
            x = PF.fire_normalized(self.c, self.threshold, self.eps, d, torch.zeros((), device=d.device))
            table = PF.fire_mlp(
                x[None, :], self.mlp_in.weight[:, 0], self.mlp_in.bias, self.mlp_out.weight, self.mlp_out.bias
            )[:, 0]  # (H, n distances)
        return table[:, dist]

    def score_bias(self, head: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        """The same bias elementwise (broadcasting integer tensors; flex_attention's score_mod): the MLP
        1 -> width -> H is unrolled over its hidden units, so no (…, width) intermediate exists."""
        x = self._normalized(q_pos, k_pos)
        w_in, b_in = self.mlp_in.weight[:, 0].float(), self.mlp_in.bias.float()
        w_out, b_out = self.mlp_out.weight.float(), self.mlp_out.bias.float()
        out = b_out[head]
        for u in range(w_in.shape[0]):
            out = out + w_out[head, u] * torch.relu(x * w_in[u] + b_in[u])
        return out

    def extra_repr(self) -> str:
        return f"n_heads={self.n_heads}, mlp_width={self.mlp_in.out_features}"
