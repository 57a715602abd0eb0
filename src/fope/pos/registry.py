"""The one registry of position-encoding kinds: a decorator inside fope, entry points for other packages.

    >>> @fope.pos.register("mykind")
    ... class MyKind(fope.pos.PositionEncoding):
    ...     Options = MyKindOptions          # a dataclass: the kind's keyword options, each field documented
    ...     def __init__(self, *, head_dim, n_heads, train_len=None, **options): ...

Another package registers a kind without importing fope first through the entry-point group
``fope.position_encodings`` (name = the kind, value = ``module:Class``); it is listed by `kinds` at once and
imported the first time it is built (`get_class`). Everything that takes a kind (the model config, training,
evaluation, the grid, CLI help and validation) reads `kinds` / `KINDS`, so a registered kind needs no other edit.
docs/ARCHITECTURE.md "Adding a position encoding" walks through an example.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from typing import Any, TypeVar

from fope.utils import did_you_mean

from .base import PositionEncoding

#: the entry-point group other packages register kinds under (name = kind, value = ``module:Class``)
ENTRY_POINT_GROUP = "fope.position_encodings"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_REGISTERED: dict[str, type[PositionEncoding]] = {}
_ENTRY_POINTS: dict[tuple[str, ...], dict[str, metadata.EntryPoint]] = {}

ClassT = TypeVar("ClassT", bound=type)


def _check(kind: str, cls: Any) -> None:
    if not isinstance(kind, str) or not _NAME.match(kind):
        raise ValueError(f"position encoding kind must be lower-case letters, digits and '_', got {kind!r}")
    if not (isinstance(cls, type) and issubclass(cls, PositionEncoding)):
        raise TypeError(f"position encoding {kind!r}: {cls!r} is not a fope.pos.PositionEncoding subclass")
    if not dataclasses.is_dataclass(getattr(cls, "Options", None)):
        raise TypeError(f"position encoding {kind!r}: {cls.__qualname__}.Options must be the dataclass of its options")


def register(kind: str, *, replace: bool = False) -> Callable[[ClassT], ClassT]:
    """Class decorator: register a `PositionEncoding` subclass (with an ``Options`` dataclass) as ``kind``.

    A kind already registered by another class raises a ValueError unless ``replace=True``."""

    def decorate(cls: ClassT) -> ClassT:
        _check(kind, cls)
        old = _REGISTERED.get(kind)
        if old is not None and old is not cls and not replace:
            raise ValueError(
                f"position encoding {kind!r} is already registered by {old.__module__}.{old.__qualname__}; "
                "pass replace=True to replace it"
            )
        cls.kind = kind
        _REGISTERED[kind] = cls
        return cls

    return decorate


def unregister(kind: str) -> None:
    """Remove a registered kind (tests; a no-op for an unknown one)."""
    _REGISTERED.pop(kind, None)


def entry_points() -> dict[str, metadata.EntryPoint]:
    """The installed ``fope.position_encodings`` entry points by kind (read once per ``sys.path``)."""
    key = tuple(sys.path)
    if key not in _ENTRY_POINTS:
        _ENTRY_POINTS.clear()
        _ENTRY_POINTS[key] = {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}
    return _ENTRY_POINTS[key]


def kinds() -> tuple[str, ...]:
    """Every kind: the registered ones in registration order, then installed entry points not loaded yet."""
    return tuple(_REGISTERED) + tuple(sorted(set(entry_points()) - set(_REGISTERED)))


def get_class(kind: str) -> type[PositionEncoding]:
    """The class of ``kind`` (an entry point is imported here, the first time); ValueError for an unknown kind or a
    broken entry point, in one line naming it."""
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    ep = entry_points().get(kind)
    if ep is None:
        raise ValueError(
            f"unknown position encoding kind {kind!r}{did_you_mean(kind, kinds())}; choose one of {list(kinds())}"
        )
    try:
        cls = ep.load()
        _check(kind, cls)
    except Exception as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise ValueError(
            f"broken position encoding entry point {kind} = {ep.value} (group {ENTRY_POINT_GROUP}): {detail}"
        ) from exc
    return register(kind, replace=True)(cls) if _REGISTERED.get(kind) is not cls else cls


def options_of(kind: str) -> type:
    """The options dataclass of ``kind`` (its class's ``Options``)."""
    return get_class(kind).Options


class KindsView(Sequence[str]):
    """A live, read-only tuple of the kinds (`kinds`): ``fope.pos.KINDS``; a kind registered later is in it."""

    def __getitem__(self, index):  # type: ignore[override]
        return kinds()[index]

    def __len__(self) -> int:
        return len(kinds())

    def __iter__(self) -> Iterator[str]:
        return iter(kinds())

    def __contains__(self, kind: object) -> bool:
        return kind in _REGISTERED or (isinstance(kind, str) and kind in entry_points())

    def __eq__(self, other: object) -> bool:
        return tuple(self) == (tuple(other) if isinstance(other, (tuple, list, KindsView)) else other)

    def __hash__(self) -> int:
        return hash(kinds())

    def __repr__(self) -> str:
        return repr(kinds())


KINDS = KindsView()

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "KindsView",
    "entry_points",
    "get_class",
    "kinds",
    "options_of",
    "register",
    "unregister",
]
