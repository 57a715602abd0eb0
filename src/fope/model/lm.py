"""OLMo-style decoder-only causal LM (docs/paper.md §4.1); its KV cache is cache.py's.

Shapes:
    B batch, T new tokens, L tokens already in the cache, V vocabulary, C model width (d_model),
    Hk key/value heads, D head dim.

Block ("sequential" OLMo block, pre-norm):
    x = x + attn_out(SDPA(pos(q), pos(k), v))  with q, k, v = att_proj(RMSNorm(x))
    x = x + ff_out(silu(gate) * up)            with (up, gate) = ff_proj(RMSNorm(x)).chunk(2)
RMSNorm has eps 1e-6 and an affine weight; there are no biases, embeddings are untied, and every linear and
embedding weight starts from a normal(0, 0.02) truncated at ±3σ. Each block owns its own position-encoding
module, so FoPE coefficients are per layer (and per head), as in the official code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

import fope.pos

from .attention import Attention
from .cache import KVCache
from .config import ModelConfig


class SwiGLU(nn.Module):
    """OLMo SwiGLU MLP: ff_proj C -> 2H, (up, gate) = chunk(2), ff_out(silu(gate) * up) H -> C."""

    def __init__(self, *, d_model: int, hidden: int):
        super().__init__()
        self.ff_proj = nn.Linear(d_model, 2 * hidden, bias=False)
        self.ff_out = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C)"""
        up, gate = self.ff_proj(x).chunk(2, dim=-1)  # (B, T, H) each
        return self.ff_out(F.silu(gate) * up)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, cfg: ModelConfig, *, layer_idx: int):
        super().__init__()
        sizes = cfg.resolved()
        self.attn_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.attn = Attention(
            d_model=cfg.d_model,
            n_heads=cfg.n_heads,
            n_kv_heads=sizes.n_kv_heads,
            head_dim=sizes.head_dim,
            pos=build_pos(cfg),
            layer_idx=layer_idx,
            qk_norm=cfg.qk_norm,
            norm_eps=cfg.norm_eps,
        )
        self.ff_norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.mlp = SwiGLU(d_model=cfg.d_model, hidden=sizes.mlp_hidden)

    def forward(
        self, x: torch.Tensor, *, positions: torch.Tensor, cache: KVCache | None = None, end: int | None = None
    ) -> torch.Tensor:
        """x (B, T, C) -> (B, T, C); `end` = largest position + 1 (see Attention.forward)"""
        x = x + self.attn(self.attn_norm(x), positions=positions, cache=cache, end=end)
        return x + self.mlp(self.ff_norm(x))


def build_pos(cfg: ModelConfig) -> fope.pos.PositionEncoding:
    """The position encoding of one layer.

    `n_kv_heads` is passed only to rotary kinds and only with grouped-query attention (n_kv_heads < n_heads):
    FoPE then keeps one coefficient set per key/value head. Bias kinds produce per-query-head biases and
    never need it.
    """
    sizes, extra = cfg.resolved(), {}
    if sizes.n_kv_heads != cfg.n_heads and fope.pos.get_class(cfg.pe).rotary:
        extra["n_kv_heads"] = sizes.n_kv_heads
    return fope.pos.build(
        cfg.pe, head_dim=sizes.head_dim, n_heads=cfg.n_heads, train_len=cfg.train_len, **extra, **cfg.pe_options
    )


class CausalLM(nn.Module):
    """Decoder-only LM: `embed` -> `blocks` -> `norm` -> `lm_head`.

    forward(input_ids (B, T), cache=None) -> fp32 logits (B, T, V). Build one with `fope.model.build`.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.config = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg, layer_idx=i) for i in range(cfg.n_layers))
        self.norm = nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.tables = fope.pos.TableCache()  # one cache of position tables, shared by every layer's encoding
        for block in self.blocks:
            block.attn.pos.tables = self.tables
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Truncated-normal init (std init_std, cut at ±init_cutoff·std) of every linear/embedding weight,
        norm weights to 1. Position-encoding parameters keep their own initialisation."""
        std, cut = self.config.init_std, self.config.init_cutoff * self.config.init_std
        for weight in self.init_weights():
            nn.init.trunc_normal_(weight, mean=0.0, std=std, a=-cut, b=cut)
        for module in self.modules():
            if isinstance(module, nn.RMSNorm):
                nn.init.ones_(module.weight)

    def init_weights(self) -> list[nn.Parameter]:
        """The weights covered by the truncated-normal init (embeddings and all linear layers of the model)."""
        weights = [self.embed.weight, self.lm_head.weight]
        for block in self.blocks:
            weights += [
                block.attn.att_proj.weight,
                block.attn.attn_out.weight,
                block.mlp.ff_proj.weight,
                block.mlp.ff_out.weight,
            ]
        return weights

    def new_cache(self, capacity: int = 0) -> KVCache:
        """An empty KV cache for this model (optionally preallocating `capacity` token slots)."""
        return KVCache(self.config.n_layers, capacity=capacity)

    def hidden_states(self, input_ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """input_ids (B, T) long -> final normed hidden states (B, T, C), before the LM head.

        Useful to compute a loss on long sequences chunk by chunk without materialising (B, T, V) logits.
        """
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (B, T), got {tuple(input_ids.shape)}")
        start = 0 if cache is None else cache.length
        end = start + input_ids.shape[1]  # positions are computed once per forward, here, and passed down
        positions = torch.arange(start, end, device=input_ids.device)  # (T,)
        x = self.embed(input_ids)  # (B, T, C)
        for block in self.blocks:
            x = block(x, positions=positions, cache=cache, end=end)
        if cache is not None:
            cache.advance(input_ids.shape[1])
        return self.norm(x)

    def forward(
        self,
        input_ids: torch.Tensor,
        cache: KVCache | None = None,
        *,
        targets: torch.Tensor | None = None,
        loss_chunk: int = 0,
    ) -> torch.Tensor:
        """input_ids (B, T) long -> logits (B, T, V) in fp32; with ``targets`` (B, T) long, the mean next-token
        cross-entropy (a scalar, fp32) instead.

        With a cache, the new tokens get positions cache.length .. cache.length+T-1 and their keys/values
        are appended to it. ``loss_chunk`` > 0 (with targets): the output layer and the cross-entropy run on chunks
        of that many tokens, each recomputed in the backward pass, so the (B·T, V) logits and their gradient never
        exist whole; the same loss up to the order of the summation (docs/performance.md: faster on CPU, where
        the whole logits do not fit in cache).
        """
        h = self.hidden_states(input_ids, cache)
        if targets is None:
            return self.lm_head(h).float()
        h, t = h.reshape(-1, h.shape[-1]), targets.reshape(-1)
        if loss_chunk <= 0 or t.numel() <= loss_chunk:
            return F.cross_entropy(self.lm_head(h).float(), t)
        total = h.new_zeros((), dtype=torch.float32)
        for hc, tc in zip(h.split(loss_chunk), t.split(loss_chunk)):
            if torch.is_grad_enabled():
                total = total + torch.utils.checkpoint.checkpoint(self._chunk_loss, hc, tc, use_reentrant=False)
            else:
                total = total + self._chunk_loss(hc, tc)
        return total / t.numel()

    def _chunk_loss(self, h: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Summed cross-entropy of one chunk of tokens: h (n, C), t (n,)."""
        return F.cross_entropy(self.lm_head(h).float(), t, reduction="sum")

    def num_params(self, *, trainable: bool = True) -> int:
        """Number of parameters (trainable only by default; FoPE's fixed coefficients are not trainable)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable)
