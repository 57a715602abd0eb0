"""Position encodings behind one interface (see fope.pos.base) and frequency scaling (fope.pos.scaling).

    >>> pe = fope.pos.build("fope", head_dim=64, n_heads=8, train_len=512, sigma=0.3)
    >>> q, k = pe.rotate(q, k, positions)          # rotary kinds; identity otherwise
    >>> bias = pe.attn_bias(q_pos, k_pos)          # (H, Tq, Tk) for bias kinds; None otherwise

Kinds: one module each, registered with `register` (fope.pos.registry; entry points for other packages); their
options: each class's ``Options`` dataclass (fope.pos.options for the built-in kinds), docs/position-encodings.md. Frequency scaling:
fope.pos.scaling. Pure math: fope.pos.functional.
"""

from __future__ import annotations

import importlib
import pkgutil

from fope.utils import check_positive_int

from . import functional, options, registry, scaling
from .base import PositionEncoding, TableCache
from .registry import ENTRY_POINT_GROUP, KINDS, get_class, kinds, options_of, register, unregister

# Every module of this package is imported, so a kind's module registers itself (`register`): the kinds of the HF
# remote code first, in the order of the paper's main comparison (options.KINDS), then any other module here.
for _kind in options.KINDS:
    importlib.import_module(f"{__name__}.{_kind}")
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

#: kind -> "module:Class" of fope's own kinds (`kinds()` / `KINDS` are the live list, entry points included)
REGISTRY: dict[str, str] = {kind: f"{cls.__module__}:{cls.__qualname__}" for kind, cls in registry._REGISTERED.items()}


def build(kind: str, *, head_dim: int, n_heads: int, train_len: int | None = None, **options) -> PositionEncoding:
    """Build a position-encoding module of the given kind (options are the kind's own; unknown ones raise)."""
    check_positive_int("head_dim", head_dim)
    check_positive_int("n_heads", n_heads)
    check_positive_int("train_len", train_len, or_none=True)
    return get_class(kind)(head_dim=head_dim, n_heads=n_heads, train_len=train_len, **options)


__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "REGISTRY",
    "PositionEncoding",
    "TableCache",
    "build",
    "functional",
    "get_class",
    "kinds",
    "options",
    "options_of",
    "register",
    "scaling",
    "unregister",
]
