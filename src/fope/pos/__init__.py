"""Position encodings behind one interface (see fope.pos.base) and frequency scaling (fope.pos.scaling).

    >>> pe = fope.pos.build("fope", head_dim=64, n_heads=8, train_len=512, sigma=0.3)
    >>> q, k = pe.rotate(q, k, positions)          # rotary kinds; identity otherwise
    >>> bias = pe.attn_bias(q_pos, k_pos)          # (H, Tq, Tk) for bias kinds; None otherwise

Kinds and options: docs/position-encodings.md. Frequency scaling: fope.pos.scaling. Pure math: fope.pos.functional.
"""

from __future__ import annotations

import difflib
import importlib

from . import functional, scaling
from .base import PositionEncoding, TableCache

# kind -> "module:Class"; one module per encoding
REGISTRY: dict[str, str] = {
    "nope": "fope.pos.nope:NoPE",
    "rope": "fope.pos.rope:RoPE",
    "fope": "fope.pos.fope:FoPE",
    "alibi": "fope.pos.alibi:ALiBi",
    "kerple": "fope.pos.kerple:KERPLE",
    "fire": "fope.pos.fire:FIRE",
}

KINDS = tuple(REGISTRY)


def get_class(kind: str) -> type[PositionEncoding]:
    if kind not in REGISTRY:
        close = difflib.get_close_matches(str(kind), REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(f"unknown position encoding kind {kind!r}{hint}; choose one of {sorted(REGISTRY)}")
    module, cls = REGISTRY[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def build(kind: str, *, head_dim: int, n_heads: int, train_len: int | None = None, **options) -> PositionEncoding:
    """Build a position-encoding module of the given kind (options are the kind's own; unknown ones raise)."""
    if not isinstance(head_dim, int) or head_dim <= 0:
        raise ValueError(f"head_dim must be a positive int, got {head_dim!r}")
    if not isinstance(n_heads, int) or n_heads <= 0:
        raise ValueError(f"n_heads must be a positive int, got {n_heads!r}")
    if train_len is not None and (not isinstance(train_len, int) or train_len <= 0):
        raise ValueError(f"train_len must be a positive int or None, got {train_len!r}")
    return get_class(kind)(head_dim=head_dim, n_heads=n_heads, train_len=train_len, **options)


__all__ = ["PositionEncoding", "TableCache", "build", "get_class", "KINDS", "REGISTRY", "functional", "scaling"]
