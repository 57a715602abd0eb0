"""`KVCache`: the post-rotation keys and values of a `CausalLM`'s layers, for incremental decoding.

Shapes: B batch, Hk key/value heads, T new tokens, D head dim.
"""

from __future__ import annotations

import torch


class KVCache:
    """Post-rotation keys and values of every layer, for incremental decoding.

    `length` is the number of tokens already processed; a forward with a cache gives its T new tokens the
    positions `length .. length+T-1`, appends their keys/values and then advances `length` by T.
    Storage grows geometrically, so token-by-token decoding costs amortised O(1) copies per token.
    """

    def __init__(self, n_layers: int, *, capacity: int = 0):
        self.n_layers = n_layers
        self.capacity = capacity  # initial number of token slots, allocated on first use
        self.length = 0
        self._k: list[torch.Tensor | None] = [None] * n_layers  # (B, Hk, cap, D)
        self._v: list[torch.Tensor | None] = [None] * n_layers

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, Hk, T, D) at slots [length, length+T) of `layer`; return all (B, Hk, length+T, D)."""
        end = self.length + k.shape[2]
        buf_k, buf_v = self._k[layer], self._v[layer]
        if buf_k is None or buf_k.shape[2] < end or buf_k.shape[:2] != k.shape[:2]:
            if buf_k is not None and buf_k.shape[:2] != k.shape[:2]:
                raise ValueError(f"KV cache holds batch/heads {tuple(buf_k.shape[:2])}, got {tuple(k.shape[:2])}")
            buf_k, buf_v = self._grow(buf_k, k, end), self._grow(buf_v, v, end)
            self._k[layer], self._v[layer] = buf_k, buf_v
        buf_k[:, :, self.length : end] = k
        buf_v[:, :, self.length : end] = v
        return buf_k[:, :, :end], buf_v[:, :, :end]

    def _grow(self, old: torch.Tensor | None, new: torch.Tensor, needed: int) -> torch.Tensor:
        cap = max(needed, self.capacity, 2 * (0 if old is None else old.shape[2]))
        B, H, _, D = new.shape
        buf = new.new_empty(B, H, cap, D)
        if old is not None:
            buf[:, :, : self.length] = old[:, :, : self.length]
        return buf

    def advance(self, n: int) -> None:
        """Mark n more tokens as processed (called by the model after all layers stored them)."""
        self.length += n

    def crop(self, length: int) -> None:
        """Forget every token after the first `length` (e.g. to score several continuations of one prefix)."""
        if not 0 <= length <= self.length:
            raise ValueError(f"cannot crop a cache of length {self.length} to {length}")
        self.length = length

    def reset(self) -> None:
        """Empty the cache (keeps the allocated storage)."""
        self.length = 0

    def __repr__(self) -> str:
        return f"KVCache(n_layers={self.n_layers}, length={self.length})"


__all__ = ["KVCache"]
