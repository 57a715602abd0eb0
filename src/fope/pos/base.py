"""The one small interface every position encoding implements, plus helpers shared by the encodings.

Shapes (used throughout fope.pos):
    B batch, Hq query heads, Hk key/value heads (Hq % Hk == 0), T sequence length, D head dim.

Two hooks, called by attention without ever checking which encoding it has:
    rotate(q, k, positions) -> (q, k)
        q: (B, Hq, T, D), k: (B, Hk, T, D), positions: LongTensor (T,) or (B, T) absolute positions
        of those T tokens (with a KV cache: the positions of the new tokens only).
        Identity for non-rotary encodings.
    attn_bias(q_positions, k_positions) -> Tensor | None
        q_positions: (Tq,), k_positions: (Tk,) LongTensors. Returns an additive float bias of shape
        (Hq, Tq, Tk) (causal masking is attention's job, not the bias's), or None for encodings that
        add no bias. Attention calls it on blocks of query rows, so a bias is never materialised for
        more of the (Tq, Tk) grid than one block of attention needs.
    score_bias(head, q_pos, k_pos) -> Tensor   (bias kinds only; `has_score_bias` is True for them)
        The same bias elementwise: integer tensors that broadcast against each other (0-d inside
        flex_attention's score_mod, grids in tests); returns the fp32 bias of those (head, query, key)
        triples. Fused attention (flex_attention) adds it to the scores without any (Tq, Tk) tensor.

`rotate` also takes `end`, the largest position + 1 (the model knows it without reading the positions back
from the device). Position tables live in one `TableCache` per model (`CausalLM` hands the same cache to every
layer's encoding); an encoding built on its own has a private one.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Hashable, Iterator
from typing import Any, TypeVar

import torch
from torch import nn

from fope.utils import check_positive_int, did_you_mean


class PositionEncoding(nn.Module):
    """Base class: identity rotation, no bias (this *is* NoPE)."""

    #: True for encodings that implement `rotate` (rope, fope); the model passes `n_kv_heads` to these only.
    rotary: bool = False
    #: True for encodings that implement `score_bias` (alibi, kerple, fire): attention may fuse them.
    has_score_bias: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.tables = TableCache()  # replaced by the model's shared cache (fope.model.CausalLM)

    def rotate(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, end: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return q, k

    def attn_bias(self, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor | None:
        return None

    def score_bias(self, head: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} adds no attention bias")

    def extra_repr(self) -> str:  # short, useful print(model)
        return ""


class TableCache:
    """Position tables (RoPE cos/sin, FoPE mixed tables) of one model, computed once and grown on demand.

    An entry is a tuple of tensors whose axis -2 is the position axis, stored under a key (what the table is
    of: kind, frequencies, device, layer) with a version (e.g. the FoPE coefficients' in-place counters: a new
    version rebuilds the entry). Tables are built outside autograd and inference mode, so a table first built
    during an evaluation serves training afterwards, and with autocast off (:func:`no_autocast`), so a table is the
    same fp32 table whatever autocast the first caller was under: the same inputs give the same numbers whatever
    ran before in the process.
    """

    def __init__(self) -> None:
        self._entries: dict[Hashable, tuple[Hashable, tuple[torch.Tensor, ...]]] = {}

    def get(
        self, key: Hashable, length: int, build: Callable[[int], tuple[torch.Tensor, ...]], version: Hashable = None
    ) -> tuple[torch.Tensor, ...]:
        """Tables of at least ``length`` positions: the stored ones, or ``build(n)`` with n >= length (doubling
        the stored length, so growing one position at a time costs amortised O(1) per position)."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] == version and hit[1][0].shape[-2] >= length:
            return hit[1]
        old = 0 if hit is None or hit[0] != version else hit[1][0].shape[-2]
        with torch.inference_mode(False), torch.no_grad(), no_autocast():
            tables = build(max(length, 2 * old))
        self._entries[key] = (version, tables)
        return tables

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"TableCache({len(self._entries)} entries)"


# ---------------------------------------------------------------------------------------------------------
# helpers for the encodings

#: device types whose autocast state `no_autocast` switches off (those this torch build knows).
AUTOCAST_DEVICES = ("cpu", "cuda", "xpu", "mps")


@contextlib.contextmanager
def no_autocast() -> Iterator[None]:
    """Autocast off for every device type on which it is on now (a no-op when it is on nowhere).

    Position tables are built under it: a table built inside a caller's bf16 autocast would otherwise be a bf16
    table (FoPE's Fourier mix is a matmul), and which caller came first would decide every later number.
    """
    with contextlib.ExitStack() as stack:
        for device_type in AUTOCAST_DEVICES:
            try:
                on = torch.is_autocast_enabled(device_type)
            except (RuntimeError, ValueError):  # a device type this build does not know
                continue
            if on:
                stack.enter_context(torch.autocast(device_type=device_type, enabled=False))
        yield


OptionsT = TypeVar("OptionsT")


def parse_options(cls: type[OptionsT], kind: str, options: dict[str, Any]) -> OptionsT:
    """Build the kind's options dataclass; unknown option names raise a ValueError naming them (and a close match)."""
    allowed = [f.name for f in dataclasses.fields(cls)]
    for name in options:
        if name not in allowed:
            raise ValueError(
                f"unknown option {name!r} for position encoding {kind!r}{did_you_mean(name, allowed)}; "
                f"allowed: {allowed}"
            )
    return cls(**options)


def check_heads(kind: str, n_heads: int, n_kv_heads: int | None) -> int:
    """Validate GQA head counts; returns n_kv_heads (n_heads when None)."""
    if n_kv_heads is None:
        return n_heads
    check_positive_int(f"{kind}: n_kv_heads", n_kv_heads)
    if n_heads % n_kv_heads:
        raise ValueError(f"{kind}: n_heads={n_heads} is not a multiple of n_kv_heads={n_kv_heads}")
    return n_kv_heads


def check_rotary_inputs(kind: str, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, head_dim: int) -> None:
    """Shape checks for rotate(): q (B, Hq, T, D), k (B, Hk, T, D), positions (T,) or (B, T) integer."""
    if q.dim() != 4 or k.dim() != 4:
        raise ValueError(f"{kind}: q and k must be (B, H, T, D), got {tuple(q.shape)} and {tuple(k.shape)}")
    if q.shape[-1] != head_dim or k.shape[-1] != head_dim:
        raise ValueError(f"{kind}: head dim of q {tuple(q.shape)} / k {tuple(k.shape)} is not head_dim={head_dim}")
    if q.shape[1] % k.shape[1]:
        raise ValueError(f"{kind}: q heads {q.shape[1]} not a multiple of k heads {k.shape[1]}")
    if positions.dtype.is_floating_point or positions.dtype.is_complex or positions.dtype == torch.bool:
        raise ValueError(f"{kind}: positions must be an integer tensor, got dtype {positions.dtype}")
    t = q.shape[2]
    if k.shape[2] != t or positions.shape[-1] != t or positions.dim() not in (1, 2):
        raise ValueError(
            f"{kind}: positions {tuple(positions.shape)} must be (T,) or (B, T) "
            f"for q {tuple(q.shape)}, k {tuple(k.shape)}"
        )


def tensor_version(t: torch.Tensor) -> int:
    """In-place modification counter of a tensor (-1 for inference tensors, which do not track it)."""
    return -1 if t.is_inference() else t._version


def position_end(positions: torch.Tensor, end: int | None) -> int:
    """Largest position + 1: ``end`` when the caller knows it, else read from the tensor (a device sync)."""
    if end is not None:
        return int(end)
    return int(positions.max()) + 1 if positions.numel() else 0


def gather_rows(table: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Rows of a position table.

    Args:
        table: (..., L, F) with any leading (head) axes; positions: (T,) or (B, T).
    Returns:
        (..., T, F) for (T,) positions; (B, ..., T, F) for (B, T) positions.
    """
    if positions.dim() == 1:
        return table.index_select(-2, positions)
    out = table[..., positions, :]  # (..., B, T, F)
    return out.movedim(-3, 0) if table.dim() > 2 else out
