"""RoPE (Su et al. 2021) in the rotate-half (GPT-NeoX / OLMo / HF Llama) layout, with optional frequency scaling.

x' = x·cos(tω) + rotate_half(x)·sin(tω), ω_i = θ^(−2i/D), pair j = (x[j], x[j + D/2]); computed in fp32 with autocast
off and cast back to the input dtype. Equals Hugging Face's ``LlamaRotaryEmbedding`` + ``apply_rotary_pos_emb``
(tested), including ``scaling`` (HF ``rope_parameters`` dict, see fope.pos.scaling) and its attention scaling
(YaRN mscale, multiplied into cos and sin).

Tables: cos/sin of t·ω for t = 0..L−1 are computed once per (frequencies, device) in the model's TableCache (shared
by all layers), grown (doubling) when a position beyond L arrives; every forward is a row lookup. The tables are
computed directly from the positions instead (same values) under torch.compile (no data-dependent Python) and
with dynamic NTK beyond the original length, whose frequencies depend on the current length: there each call
computes the rows of its own positions only, so generating a token costs O(1) table work, not O(L).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from . import functional as PF
from .base import PositionEncoding, check_heads, check_rotary_inputs, gather_rows, parse_options, position_end
from .functional import whole_cycle_inv_freq
from .options import RoPEOptions
from .registry import register
from .scaling import Scaling, parse_scaling


def check_theta(kind: str, theta: Any) -> float:
    if isinstance(theta, bool) or not isinstance(theta, (int, float)) or not math.isfinite(theta) or theta <= 1:
        raise ValueError(f"{kind}: theta must be a number > 1, got {theta!r}")
    return float(theta)


def check_head_dim(kind: str, head_dim: int) -> None:
    if head_dim % 2:
        raise ValueError(f"{kind}: head_dim must be even for rotary encodings, got head_dim={head_dim}")


@register("rope")
class RoPE(PositionEncoding):
    """Rotary position embedding.

    Attributes:
        inv_freq: (D/2,) fp32 frequencies after scaling (for dynamic NTK: those at the original length).
        attention_scaling: float multiplied into cos and sin (YaRN attention temperature; 1.0 otherwise).
        scaling: the parsed frequency transform.
    """

    Options = RoPEOptions

    rotary = True

    def __init__(self, *, head_dim: int, n_heads: int, train_len: int | None = None, **options: Any):
        super().__init__()
        opts = parse_options(RoPEOptions, "rope", options)
        check_head_dim("rope", head_dim)
        self.head_dim, self.n_heads, self.train_len = head_dim, n_heads, train_len
        self.n_kv_heads = check_heads("rope", n_heads, opts.n_kv_heads)
        self.theta = check_theta("rope", opts.theta)
        self.scaling = parse_scaling(opts.scaling, train_len=train_len, theta=self.theta)
        self.base_inv_freq = PF.rope_inv_freq(head_dim, self.theta)  # plain attribute: never cast by .to(dtype)
        self.whole_cycles = _check_whole_cycles(opts.whole_cycles, train_len, self.scaling)
        if self.whole_cycles:
            self.base_inv_freq = whole_cycle_inv_freq(self.base_inv_freq, train_len)
        self._inv_freq, self.attention_scaling = self._frequencies(None)
        #: added to the table key by a subclass that changes ``base_inv_freq`` (see `set_base_frequencies`)
        self.table_tag: tuple = ()

    def set_base_frequencies(self, inv_freq: torch.Tensor, tag: tuple) -> None:
        """For a subclass (p-RoPE, HoPE): rotate with these (D/2,) frequencies, before scaling; ``tag`` (hashable)
        tells their tables apart from plain RoPE's in the model's shared TableCache."""
        self.base_inv_freq = inv_freq
        self._inv_freq, self.attention_scaling = self._frequencies(None)
        self.table_tag = tag

    @property
    def inv_freq(self) -> torch.Tensor:
        return self._inv_freq

    def _frequencies(self, seq_len: int | None) -> tuple[torch.Tensor, float]:
        return self.scaling(self.base_inv_freq, theta=self.theta, dim=self.head_dim, seq_len=seq_len)

    def _dynamic(self, end: int | None) -> bool:
        """True when dynamic NTK applies to a call whose largest position + 1 is ``end``."""
        return bool(self.scaling.dynamic and end is not None and end > self.scaling.original_max_position_embeddings)

    def half_tables(self, positions: torch.Tensor, device: torch.device | None = None, end: int | None = None):
        """cos, sin (fp32, attention scaling included) for these positions.

        Args:
            positions: (T,) or (B, T) integer positions; end: their maximum + 1 when known (saves a device sync).
        Returns:
            cos, sin: (T, D/2) for (T,) positions, (B, 1, T, D/2) for (B, T).
        """
        device = positions.device if device is None else device
        positions = positions.to(device)
        if self.scaling.dynamic:
            end = position_end(positions, end)
        if torch.compiler.is_compiling() or self._dynamic(end):  # direct: traceable, or length-dependent
            inv_freq, scale = self._frequencies(end) if self._dynamic(end) else (self._inv_freq, self.attention_scaling)
            cos, sin = PF.angle_tables(positions, inv_freq.to(device))
            cos, sin = (cos * scale, sin * scale) if scale != 1.0 else (cos, sin)
        else:
            inv_freq, scale = self._inv_freq, self.attention_scaling

            def build(length: int) -> tuple[torch.Tensor, torch.Tensor]:
                cos, sin = PF.angle_tables(torch.arange(length, device=device), inv_freq.to(device))
                return (cos * scale, sin * scale) if scale != 1.0 else (cos, sin)

            key = ("rope", self.head_dim, self.theta, self.scaling, str(device))
            key += (("whole_cycles", self.train_len),) if self.whole_cycles else ()
            key += self.table_tag
            length = max(position_end(positions, end), self.train_len or 0)
            cos, sin = self.tables.get(key, length, build)
            cos, sin = gather_rows(cos, positions), gather_rows(sin, positions)
        return (cos, sin) if positions.dim() == 1 else (cos[:, None], sin[:, None])

    def rotate(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, end: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q (B, Hq, T, D), k (B, Hk, T, D), positions (T,) or (B, T) -> rotated (q, k) in their input dtypes."""
        check_rotary_inputs("rope", q, k, positions, self.head_dim)
        cos, sin = self.half_tables(positions, q.device, end)
        with torch.autocast(device_type=q.device.type, enabled=False):
            q_out = PF.apply_rotary_halves(q.float(), cos, sin).to(q.dtype)
            k_out = PF.apply_rotary_halves(k.float(), cos, sin).to(k.dtype)
        return q_out, k_out

    def extra_repr(self) -> str:
        scaling = "" if self.scaling.rope_type == "default" else f", scaling={self.scaling.to_hf()}"
        whole = f", whole_cycles (L={self.train_len})" if self.whole_cycles else ""
        return f"head_dim={self.head_dim}, theta={self.theta:g}{scaling}{whole}"


def _check_whole_cycles(value: Any, train_len: int | None, scaling: Scaling) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"rope: whole_cycles must be true or false, got {value!r}")
    if value and train_len is None:
        raise ValueError("rope: whole_cycles=True needs train_len (the length L the cycles must complete in)")
    if value and scaling.rope_type != "default":
        raise ValueError(f"rope: whole_cycles=True cannot be combined with scaling {scaling.rope_type!r}")
    return value
