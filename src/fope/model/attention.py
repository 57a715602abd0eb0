"""Grouped-query causal self-attention around one `fope.pos.PositionEncoding`.

Shapes:
    B batch, T new tokens, L cached tokens before them, Tk = L + T keys, Hq query heads, Hk key/value heads,
    D head dim, C model width.

The attention never asks which encoding it has: it calls `pos.rotate` on the new queries/keys and
`pos.attn_bias` on blocks of query rows. Three ways to run PyTorch's SDPA, chosen by what is needed:
    1. no bias, no cache offset:        one call with is_causal=True (flash path, no T x T mask anywhere);
    2. no bias, cache offset, T == 1:   one call without mask (the new token sees every key);
    3. otherwise (bias, or T > 1 after a cache): blocks of query rows, each with an explicit additive mask
       (bias + causal -inf) restricted to the keys that block may see, so memory stays bounded by
       `max_block_elems` scores however long the sequence.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from fope.pos import PositionEncoding

if TYPE_CHECKING:
    from .lm import KVCache

#: Upper bound on B * Hq * rows * Tk for one block of explicitly-masked attention (about 64 MiB in fp32).
MAX_BLOCK_ELEMS = 2**24


class Attention(nn.Module):
    """Causal self-attention: fused q/k/v projection, position encoding, SDPA, output projection.

    Parameter names follow OLMo (`att_proj`, `attn_out`); `att_proj.weight` stacks the q, k and v rows
    ((Hq + 2*Hk) * D, C), in that order. No biases.
    """

    def __init__(self, *, d_model: int, n_heads: int, n_kv_heads: int, head_dim: int, pos: PositionEncoding,
                 layer_idx: int = 0, max_block_elems: int = MAX_BLOCK_ELEMS, qk_norm: bool = False,
                 norm_eps: float = 1e-6):
        super().__init__()
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads={n_heads} is not divisible by n_kv_heads={n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.layer_idx, self.max_block_elems = layer_idx, max_block_elems
        self.qk_norm, self.norm_eps = qk_norm, norm_eps  # QK norm: zero mean, unit variance per head vector
        self.att_proj = nn.Linear(d_model, (n_heads + 2 * n_kv_heads) * head_dim, bias=False)
        self.attn_out = nn.Linear(n_heads * head_dim, d_model, bias=False)
        self.pos = pos

    def forward(self, x: torch.Tensor, *, positions: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Attend the T new tokens to the cached keys and to each other.

        Args:
            x: (B, T, C) normed hidden states of the new tokens.
            positions: (T,) long, absolute positions of the new tokens (L .. L+T-1).
            cache: optional KV cache; the new post-rotation keys/values (B, Hk, T, D) are appended to this
                layer's entry and attention runs over all of them (B, Hk, Tk, D).
        Returns:
            (B, T, C)
        """
        B, T, _ = x.shape
        Hq, Hk, D = self.n_heads, self.n_kv_heads, self.head_dim
        qkv = self.att_proj(x)  # (B, T, (Hq+2Hk)*D)
        q, k, v = qkv.split((Hq * D, Hk * D, Hk * D), dim=-1)
        q = q.view(B, T, Hq, D).transpose(1, 2)  # (B, Hq, T, D)
        k = k.view(B, T, Hk, D).transpose(1, 2)  # (B, Hk, T, D)
        v = v.view(B, T, Hk, D).transpose(1, 2)  # (B, Hk, T, D)
        if self.qk_norm:  # before the rotation (paper Table 2), in fp32, no affine weights
            q = F.layer_norm(q.float(), (D,), eps=self.norm_eps).to(v.dtype)
            k = F.layer_norm(k.float(), (D,), eps=self.norm_eps).to(v.dtype)
        q, k = self.pos.rotate(q, k, positions)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, Hk, Tk, D)
        out = self._attend(q, k, v, positions)  # (B, Hq, T, D)
        out = out.transpose(1, 2).reshape(B, T, Hq * D)  # (B, T, Hq*D)
        return self.attn_out(out)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_pos: torch.Tensor) -> torch.Tensor:
        """q (B, Hq, T, D), k/v (B, Hk, Tk, D), q_pos (T,) -> (B, Hq, T, D); keys sit at positions 0..Tk-1."""
        B, T, Tk = q.shape[0], q.shape[2], k.shape[2]
        gqa = self.n_heads != self.n_kv_heads
        k_pos = torch.arange(Tk, device=q.device)
        rows = self.block_rows(B, Tk)
        first = min(T, rows)
        bias = self.pos.attn_bias(q_pos[:first], k_pos[: Tk - T + first])
        if bias is None and Tk == T:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        if bias is None and T == 1:
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
        return self._attend_blocks(q, k, v, q_pos, rows, first_bias=bias)

    def block_rows(self, batch: int, n_keys: int) -> int:
        """Query rows per block so that batch * Hq * rows * n_keys <= max_block_elems (at least 1)."""
        return max(1, self.max_block_elems // (batch * self.n_heads * n_keys))

    def _attend_blocks(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_pos: torch.Tensor, rows: int,
                       first_bias: torch.Tensor | None) -> torch.Tensor:
        """Blockwise masked attention; block i covers query rows [r0, r1) and keys [0, L + r1)."""
        T, Tk = q.shape[2], k.shape[2]
        L = Tk - T
        gqa = self.n_heads != self.n_kv_heads
        outs = []
        for r0 in range(0, T, rows):
            r1 = min(T, r0 + rows)
            n_keys = L + r1  # keys beyond the block's last query are masked anyway: skip them
            k_pos = torch.arange(n_keys, device=q.device)
            bias = first_bias if r0 == 0 else self.pos.attn_bias(q_pos[r0:r1], k_pos)  # (Hq, r, n_keys) | None
            mask = causal_mask(q_pos[r0:r1], k_pos, dtype=q.dtype)  # (r, n_keys)
            if bias is not None:
                mask = bias.to(q.dtype) + mask  # (Hq, r, n_keys)
            out = F.scaled_dot_product_attention(q[:, :, r0:r1], k[:, :, :n_keys], v[:, :, :n_keys],
                                                 attn_mask=mask, enable_gqa=gqa)
            outs.append(out)  # (B, Hq, r, D)
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)


def causal_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, *, dtype: torch.dtype) -> torch.Tensor:
    """Additive causal mask (Tq, Tk): 0 where key position <= query position, -inf elsewhere."""
    allowed = k_pos[None, :] <= q_pos[:, None]
    zero = torch.zeros((), dtype=dtype, device=q_pos.device)
    return torch.where(allowed, zero, torch.tensor(float("-inf"), dtype=dtype, device=q_pos.device))
