"""Grouped-query causal self-attention around one `fope.pos.PositionEncoding`.

Shapes:
    B batch, T new tokens, L cached tokens before them, Tk = L + T keys, Hq query heads, Hk key/value heads,
    D head dim, C model width.

The attention never asks which encoding it has: it calls `pos.rotate` on the new queries/keys and
`pos.attn_bias` on blocks of query rows (or, fused, `pos.score_bias` inside flex_attention). Four ways to run:
    1. no bias, no cache offset:        one SDPA call with is_causal=True (flash path, no T x T mask anywhere);
    2. no bias, cache offset, T == 1:   one SDPA call without mask (the new token sees every key);
    3. a bias with `score_bias`, flex usable (see `use_flex`): `torch.nn.attention.flex_attention` with the bias
       as `score_mod` and a causal block mask, compiled into one fused kernel: no (Tq, Tk) tensor at all;
    4. otherwise (bias, or T > 1 after a cache): blocks of query rows, each with an explicit additive mask
       (bias + causal -inf) restricted to the keys that block may see, so memory stays bounded by
       `max_block_elems` scores however long the sequence. This is the fallback and the tests' reference.
flex_attention is used where it runs fused: on CUDA (compiled here when the model is not already compiled), and
on CPU inside a torch.compile'd model without gradients (PyTorch has no flex_attention backward on CPU, and its
eager CPU form materialises the scores). `Attention.backend` ("auto" | "flex" | "sdpa") overrides the choice.
"""

from __future__ import annotations

import functools
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from fope.pos import PositionEncoding

from .cache import KVCache

#: Upper bound on B * Hq * rows * Tk for one block of explicitly-masked attention (about 64 MiB in fp32).
MAX_BLOCK_ELEMS = 2**24
#: "auto": flex_attention where it runs fused (see the module docstring); "flex": always; "sdpa": never.
BACKENDS = ("auto", "flex", "sdpa")
#: Fewer new query rows than this (decoding) use the blockwise path under "auto": one bias row is cheap.
FLEX_MIN_ROWS = 16
#: flex_attention's block size (its default); the causal block mask is built for it.
FLEX_BLOCK = 128


class Attention(nn.Module):
    """Causal self-attention: fused q/k/v projection, position encoding, SDPA, output projection.

    Parameter names follow OLMo (`att_proj`, `attn_out`); `att_proj.weight` stacks the q, k and v rows
    ((Hq + 2*Hk) * D, C), in that order. No biases.
    """

    def __init__(
        self,
        *,
        d_model: int,
        n_heads: int,
        n_kv_heads: int,
        head_dim: int,
        pos: PositionEncoding,
        layer_idx: int = 0,
        max_block_elems: int = MAX_BLOCK_ELEMS,
        qk_norm: bool = False,
        norm_eps: float = 1e-6,
    ):
        super().__init__()
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads={n_heads} is not divisible by n_kv_heads={n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, head_dim
        self.layer_idx, self.max_block_elems = layer_idx, max_block_elems
        self.backend = "auto"
        self.qk_norm, self.norm_eps = qk_norm, norm_eps  # QK norm: zero mean, unit variance per head vector
        self.att_proj = nn.Linear(d_model, (n_heads + 2 * n_kv_heads) * head_dim, bias=False)
        self.attn_out = nn.Linear(n_heads * head_dim, d_model, bias=False)
        self.pos = pos

    def forward(
        self, x: torch.Tensor, *, positions: torch.Tensor, cache: KVCache | None = None, end: int | None = None
    ) -> torch.Tensor:
        """Attend the T new tokens to the cached keys and to each other.

        Args:
            x: (B, T, C) normed hidden states of the new tokens.
            positions: (T,) long, absolute positions of the new tokens (L .. L+T-1).
            cache: optional KV cache; the new post-rotation keys/values (B, Hk, T, D) are appended to this
                layer's entry and attention runs over all of them (B, Hk, Tk, D).
            end: L + T when the caller knows it (the model does), so no layer reads positions back from the device.
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
        q, k = self.pos.rotate(q, k, positions, end)
        if cache is not None:
            k, v = cache.update(self.layer_idx, k, v)  # (B, Hk, Tk, D)
        out = self._attend(q, k, v, positions)  # (B, Hq, T, D)
        out = out.transpose(1, 2).reshape(B, T, Hq * D)  # (B, T, Hq*D)
        return self.attn_out(out)

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_pos: torch.Tensor) -> torch.Tensor:
        """q (B, Hq, T, D), k/v (B, Hk, Tk, D), q_pos (T,) -> (B, Hq, T, D); keys sit at positions 0..Tk-1."""
        B, T, Tk = q.shape[0], q.shape[2], k.shape[2]
        gqa = self.n_heads != self.n_kv_heads
        if self.use_flex(q):
            if torch.compiler.is_compiling() or self.backend == "flex":
                return self._attend_flex(q, k, v)
            try:
                return self._attend_flex(q, k, v)
            except Exception as e:
                _flex_failed(e)
        k_pos = torch.arange(Tk, device=q.device)
        rows = self.block_rows(B, Tk)
        first = min(T, rows)
        bias = self.pos.attn_bias(q_pos[:first], k_pos[: Tk - T + first])
        if bias is None and Tk == T:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=gqa)
        if bias is None and T == 1:
            return F.scaled_dot_product_attention(q, k, v, enable_gqa=gqa)
        return self._attend_blocks(q, k, v, q_pos, rows, first_bias=bias)

    def use_flex(self, q: torch.Tensor) -> bool:
        """Whether this call runs the bias through flex_attention (see the module docstring)."""
        if self.backend not in BACKENDS:
            raise ValueError(f"Attention.backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "sdpa" or not self.pos.has_score_bias:
            return False
        if self.backend == "flex":
            return True
        if q.shape[2] < FLEX_MIN_ROWS or _FLEX_DISABLED:
            return False
        if q.device.type == "cuda":
            return True
        needs_grad = torch.is_grad_enabled() and (
            q.requires_grad or any(p.requires_grad for p in self.pos.parameters())
        )
        return q.device.type == "cpu" and torch.compiler.is_compiling() and not needs_grad

    def _attend_flex(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """flex_attention with score_mod = score + pos.score_bias and a causal block mask; the T queries sit at
        positions Tk - T .. Tk - 1, the keys at 0 .. Tk - 1."""
        from torch.nn.attention.flex_attention import flex_attention

        T, Tk = q.shape[2], k.shape[2]
        offset = Tk - T
        score_bias = self.pos.score_bias

        def score_mod(score, b, h, q_idx, kv_idx):
            return score + score_bias(h, q_idx + offset, kv_idx).to(score.dtype)

        block_mask = causal_block_mask(T, Tk, q.device)
        fn = flex_attention if torch.compiler.is_compiling() else _compiled_flex(q.device.type)
        return fn(q, k, v, score_mod=score_mod, block_mask=block_mask, enable_gqa=self.n_heads != self.n_kv_heads)

    def block_rows(self, batch: int, n_keys: int) -> int:
        """Query rows per block so that batch * Hq * rows * n_keys <= max_block_elems (at least 1)."""
        return max(1, self.max_block_elems // (batch * self.n_heads * n_keys))

    def _attend_blocks(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        q_pos: torch.Tensor,
        rows: int,
        first_bias: torch.Tensor | None,
    ) -> torch.Tensor:
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
            if bias is None:
                mask = causal_mask(q_pos[r0:r1], k_pos, dtype=q.dtype)  # (r, n_keys)
            else:  # one pass over the bias: masked_fill instead of adding a separate -inf mask
                mask = bias.to(q.dtype).masked_fill(k_pos[None, :] > q_pos[r0:r1, None], float("-inf"))
                if not torch.is_grad_enabled():  # (1, Hq, r, n): CPU SDPA takes its flash kernel only for 4-D masks
                    mask = mask[None]  # (3x faster decoding measured; with gradients the 3-D form measured faster)
            out = F.scaled_dot_product_attention(
                q[:, :, r0:r1], k[:, :, :n_keys], v[:, :, :n_keys], attn_mask=mask, enable_gqa=gqa
            )
            outs.append(out)  # (B, Hq, r, D)
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=2)


def causal_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, *, dtype: torch.dtype) -> torch.Tensor:
    """Additive causal mask (Tq, Tk): 0 where key position <= query position, -inf elsewhere."""
    allowed = k_pos[None, :] <= q_pos[:, None]
    zero = torch.zeros((), dtype=dtype, device=q_pos.device)
    return torch.where(allowed, zero, torch.tensor(float("-inf"), dtype=dtype, device=q_pos.device))


_FLEX_DISABLED = False


def _flex_failed(error: Exception) -> None:
    """Turn the automatic flex path off for this process after a failure, saying why (once)."""
    global _FLEX_DISABLED
    _FLEX_DISABLED = True
    warnings.warn(
        f"flex_attention failed ({type(error).__name__}: {str(error).splitlines()[0][:200]}); "
        "bias attention falls back to blockwise SDPA for the rest of this process",
        stacklevel=3,
    )


@functools.cache
def _compiled_flex(device_type: str):
    """flex_attention compiled once per process and device type (eager flex_attention is an unfused reference)."""
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention)  # static first, dynamic shapes after a second shape: few recompiles


def causal_block_mask(T: int, Tk: int, device: torch.device, block: int = FLEX_BLOCK):
    """flex_attention BlockMask of causal attention for T queries at positions Tk - T .. Tk - 1 over Tk keys.

    Built from block indices (O((T/block)·(Tk/block)) work, no (T, Tk) grid): key block j is skipped for query
    block i when it lies wholly after the block's last query, "full" (no mask_mod call) when wholly at or before
    its first query, partial otherwise.
    """
    from torch.nn.attention.flex_attention import BlockMask

    offset = Tk - T
    n_q, n_k = -(-T // block), -(-Tk // block)
    q_first = torch.arange(n_q, device=device) * block + offset  # (n_q,)
    q_last = torch.clamp(q_first + block - 1, max=Tk - 1)
    k_first = torch.arange(n_k, device=device) * block  # (n_k,)
    k_last = torch.clamp(k_first + block - 1, max=Tk - 1)
    any_ok = k_first[None, :] <= q_last[:, None]  # (n_q, n_k)
    full = (k_last[None, :] <= q_first[:, None]) & ((k_first + block) <= Tk)[None, :]
    partial = any_ok & ~full

    def indices(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        order = torch.argsort(m.to(torch.int32), dim=-1, descending=True, stable=True)
        return m.sum(-1).to(torch.int32)[None, None], order.to(torch.int32)[None, None]

    def mask_mod(b, h, q_idx, kv_idx):
        return q_idx + offset >= kv_idx

    kv_num, kv_idx = indices(partial)
    full_num, full_idx = indices(full)
    return BlockMask.from_kv_blocks(
        kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=block, mask_mod=mask_mod, seq_lengths=(T, Tk)
    )
