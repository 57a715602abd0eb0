"""Position encodings behind one interface (see fope.pos.base) and frequency scaling (fope.pos.scaling).

    >>> pe = fope.pos.build("fope", head_dim=64, n_heads=8, train_len=512, sigma=0.3)
    >>> q, k = pe.rotate(q, k, positions)          # rotary kinds; identity otherwise
    >>> bias = pe.attn_bias(q_pos, k_pos)          # (H, Tq, Tk) for bias kinds; None otherwise

Kinds and options: fope.pos.options (every field documented), docs/position-encodings.md. Frequency scaling:
fope.pos.scaling. Pure math: fope.pos.functional.
"""

from __future__ import annotations

import importlib

from fope.utils import check_positive_int, did_you_mean

from . import functional, options, scaling
from .base import PositionEncoding, TableCache

#: the kinds (options.OPTIONS, the one list) -> "module:Class": one module per kind, whose class is named like
#: its options dataclass (fope.pos.fope:FoPE for FoPEOptions)
REGISTRY: dict[str, str] = {
    kind: f"fope.pos.{kind}:{cls.__name__.removesuffix('Options')}" for kind, cls in options.OPTIONS.items()
}
KINDS = options.KINDS


def get_class(kind: str) -> type[PositionEncoding]:
    if kind not in REGISTRY:
        raise ValueError(
            f"unknown position encoding kind {kind!r}{did_you_mean(kind, REGISTRY)}; choose one of {sorted(REGISTRY)}"
        )
    module, cls = REGISTRY[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def build(kind: str, *, head_dim: int, n_heads: int, train_len: int | None = None, **options) -> PositionEncoding:
    """Build a position-encoding module of the given kind (options are the kind's own; unknown ones raise)."""
    check_positive_int("head_dim", head_dim)
    check_positive_int("n_heads", n_heads)
    check_positive_int("train_len", train_len, or_none=True)
    return get_class(kind)(head_dim=head_dim, n_heads=n_heads, train_len=train_len, **options)


__all__ = [
    "KINDS",
    "REGISTRY",
    "PositionEncoding",
    "TableCache",
    "build",
    "functional",
    "get_class",
    "options",
    "scaling",
]
