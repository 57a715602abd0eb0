"""Frequency scaling (PI, NTK, dynamic NTK, YaRN) as composable transforms of the rotary frequencies.

Both RoPE and FoPE take ``scaling=`` in the dict form Hugging Face uses for ``config.rope_parameters``:

    >>> build("rope", head_dim=64, n_heads=8, scaling={"rope_type": "yarn", "factor": 4.0,
    ...                                                 "original_max_position_embeddings": 512})

Every transform is a pure function ``(inv_freq, params, *, theta, dim, seq_len) -> (inv_freq, attention_scaling)``:
``inv_freq`` is the unscaled frequency grid (dim/2,) ω_i = θ^(−2i/dim) and ``attention_scaling`` is multiplied
into the cos/sin tables (HF semantics: the logits get its square). The numbers equal transformers' own
``ROPE_INIT_FUNCTIONS`` for the same parameters (tested).

rope_type   keys (required; optional)                                      what it does
default     (; rope_theta)                                                 nothing
linear/pi   factor                                                         ω / factor (position interpolation)
dynamic     factor; original_max_position_embeddings                       dynamic NTK: θ' = θ·(f·S/L − (f−1))^(d/(d−2))
                                                                           with S = max(current length, L); HF semantics
ntk         factor                                                         static NTK-aware: θ' = θ·f^(d/(d−2))
yarn        factor, original_max_position_embeddings; beta_fast=32,        NTK-by-parts ramp between ω and ω/f, plus the
            beta_slow=1, attention_factor, mscale, mscale_all_dim,         attention temperature (HF default 0.1·ln f + 1
            truncate=True                                                  when attention_factor is absent)

``original_max_position_embeddings`` defaults to the encoding's ``train_len`` when omitted. (HF's dynamic NTK reads the
original length from ``config.max_position_embeddings`` instead of this key.) ``rope_theta`` may appear in the dict
but must then equal the encoding's ``theta``.

The FoPE authors' YaRN baseline (continual pre-training 512→1024, docs/paper.md §4.6) is :func:`authors_yarn`:
factor 16 (not 1024/512), β_fast 32, β_slow 1 and *no* attention temperature (``attention_factor=1.0``).
For FoPE the transform is applied AFTER the clip floor, to the kept frequencies (as the authors' x+yarn config does).

Dynamic NTK differs from HF in one deliberate way: HF caches the largest length seen and keeps its frequencies until
a sequence shorter than the original length arrives; here the frequencies are a pure function of the current call's
max position + 1 (no hidden state). With a KV cache the cached keys keep the frequencies they were rotated with
(as in HF).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

import torch

from .functional import rope_inv_freq

# ---------------------------------------------------------------------------------------------------------
# pure transforms


def linear_inv_freq(inv_freq: torch.Tensor, *, factor: float) -> torch.Tensor:
    """Position interpolation (Chen et al. 2023): ω / factor."""
    return inv_freq / factor


def ntk_theta(theta: float, dim: int, factor: float) -> float:
    """Static NTK-aware base θ·factor^(dim/(dim−2))."""
    return theta * factor ** (dim / (dim - 2))


def dynamic_ntk_theta(theta: float, dim: int, factor: float, original_len: int, seq_len: int | None) -> float:
    """Dynamic NTK base for the current length S = max(seq_len, L): θ·(f·S/L − (f−1))^(dim/(dim−2))."""
    seq_len = original_len if seq_len is None else max(int(seq_len), original_len)
    return theta * ((factor * seq_len / original_len) - (factor - 1)) ** (dim / (dim - 2))


def yarn_attention_factor(
    factor: float,
    attention_factor: float | None = None,
    mscale: float | None = None,
    mscale_all_dim: float | None = None,
) -> float:
    """YaRN attention temperature: ``attention_factor`` if given, else 0.1·mscale·ln f + 1 (ratio form with
    mscale_all_dim), 1.0 for f ≤ 1 (HF / DeepSeek semantics)."""
    if attention_factor is not None:
        return float(attention_factor)

    def get_mscale(scale: float, m: float = 1.0) -> float:
        return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0

    if mscale and mscale_all_dim:
        return float(get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim))
    return get_mscale(factor)


def yarn_correction_range(
    *, dim: int, theta: float, original_len: int, beta_fast: float, beta_slow: float, truncate: bool = True
) -> tuple[float, float]:
    """Dimension-index range [low, high] of the YaRN ramp: r(β) = dim·ln(L/(2πβ)) / (2 ln θ), low from β_fast,
    high from β_slow, floored/ceiled when ``truncate``, clamped to [0, dim−1]."""

    def r(beta: float) -> float:
        return (dim * math.log(original_len / (beta * 2 * math.pi))) / (2 * math.log(theta))

    low, high = r(beta_fast), r(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    return max(low, 0), min(high, dim - 1)


def yarn_inv_freq(
    inv_freq: torch.Tensor,
    *,
    dim: int,
    theta: float,
    factor: float,
    original_len: int,
    beta_fast: float = 32.0,
    beta_slow: float = 1.0,
    truncate: bool = True,
) -> torch.Tensor:
    """YaRN frequencies: ω_i·(1−ρ_i) + (ω_i/f)·ρ_i with the linear ramp ρ_i = clamp((i−low)/(high−low), 0, 1)
    over pair index i (high frequencies unchanged, low ones divided by f)."""
    low, high = yarn_correction_range(
        dim=dim, theta=theta, original_len=original_len, beta_fast=beta_fast, beta_slow=beta_slow, truncate=truncate
    )
    if low == high:
        high += 0.001  # avoid a zero-width ramp (as HF)
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1).to(inv_freq.device)
    extrapolation = 1 - ramp  # weight of the unscaled frequency
    return (inv_freq / factor) * (1 - extrapolation) + inv_freq * extrapolation


# ---------------------------------------------------------------------------------------------------------
# typed transforms parsed from the HF dict


@dataclass(frozen=True)
class Scaling:
    """Base: no scaling (rope_type "default")."""

    rope_type: ClassVar[str] = "default"
    required: ClassVar[tuple[str, ...]] = ()
    #: True when the frequencies depend on the current sequence length (tables cannot be shared across lengths).
    dynamic: ClassVar[bool] = False
    #: keys the user wrote (so to_hf() gives back the same dict)
    given: tuple[str, ...] = field(default=(), compare=False, repr=False)

    def __call__(
        self, inv_freq: torch.Tensor, *, theta: float, dim: int, seq_len: int | None = None
    ) -> tuple[torch.Tensor, float]:
        """(dim/2,) unscaled grid -> (scaled (dim/2,), attention_scaling)."""
        return inv_freq, 1.0

    def to_hf(self) -> dict[str, Any]:
        """The Hugging Face ``rope_parameters`` dict (the keys given, with the canonical rope_type)."""
        out: dict[str, Any] = {"rope_type": self.rope_type}
        for f in fields(self):
            if f.name != "given" and f.name in self.given:
                out[f.name] = getattr(self, f.name)
        return out


@dataclass(frozen=True)
class LinearScaling(Scaling):
    factor: float = 1.0
    rope_type: ClassVar[str] = "linear"
    required: ClassVar[tuple[str, ...]] = ("factor",)

    def __call__(self, inv_freq, *, theta, dim, seq_len=None):
        return linear_inv_freq(inv_freq, factor=self.factor), 1.0


@dataclass(frozen=True)
class NTKScaling(Scaling):
    """Static NTK-aware scaling; HF has no such rope_type: export it as {"rope_type": "default",
    "rope_theta": ntk_theta(θ, dim, factor)} (see :meth:`hf_equivalent`)."""

    factor: float = 1.0
    rope_type: ClassVar[str] = "ntk"
    required: ClassVar[tuple[str, ...]] = ("factor",)

    def __call__(self, inv_freq, *, theta, dim, seq_len=None):
        return rope_inv_freq(dim, ntk_theta(theta, dim, self.factor), device=inv_freq.device), 1.0

    def hf_equivalent(self, *, theta: float, dim: int) -> dict[str, Any]:
        return {"rope_type": "default", "rope_theta": ntk_theta(theta, dim, self.factor)}


@dataclass(frozen=True)
class DynamicNTKScaling(Scaling):
    factor: float = 1.0
    original_max_position_embeddings: int = 0
    rope_type: ClassVar[str] = "dynamic"
    required: ClassVar[tuple[str, ...]] = ("factor", "original_max_position_embeddings")
    dynamic: ClassVar[bool] = True

    def __call__(self, inv_freq, *, theta, dim, seq_len=None):
        base = dynamic_ntk_theta(theta, dim, self.factor, self.original_max_position_embeddings, seq_len)
        return rope_inv_freq(dim, base, device=inv_freq.device), 1.0


@dataclass(frozen=True)
class YarnScaling(Scaling):
    factor: float = 1.0
    original_max_position_embeddings: int = 0
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    attention_factor: float | None = None
    mscale: float | None = None
    mscale_all_dim: float | None = None
    truncate: bool = True
    rope_type: ClassVar[str] = "yarn"
    required: ClassVar[tuple[str, ...]] = ("factor", "original_max_position_embeddings")

    def __call__(self, inv_freq, *, theta, dim, seq_len=None):
        scaled = yarn_inv_freq(
            inv_freq,
            dim=dim,
            theta=theta,
            factor=self.factor,
            original_len=self.original_max_position_embeddings,
            beta_fast=self.beta_fast,
            beta_slow=self.beta_slow,
            truncate=self.truncate,
        )
        return scaled, yarn_attention_factor(self.factor, self.attention_factor, self.mscale, self.mscale_all_dim)


SCALINGS: dict[str, type[Scaling]] = {
    "default": Scaling,
    "linear": LinearScaling,
    "dynamic": DynamicNTKScaling,
    "yarn": YarnScaling,
    "ntk": NTKScaling,
}
ALIASES = {"pi": "linear"}


def authors_yarn(original_len: int = 512, factor: float = 16.0) -> dict[str, Any]:
    """The FoPE authors' YaRN baseline (docs/paper.md §4.6, §7.9): β 32/1, no attention temperature, ``factor`` 16
    as released (the grid's extension arms take ``yarn_factor``)."""
    return {
        "rope_type": "yarn",
        "beta_fast": 32,
        "beta_slow": 1,
        "attention_factor": 1.0,
        "factor": float(factor),
        "original_max_position_embeddings": int(original_len),
    }


def _check_number(name: str, value: Any, *, positive: bool = True, integer: bool = False) -> None:
    ok_type = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type) or not math.isfinite(value):
        kind = "an int" if integer else "a number"
        raise ValueError(f"scaling {name!r} must be {kind}, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"scaling {name!r} must be > 0, got {value!r}")


def parse_scaling(
    spec: Mapping[str, Any] | Scaling | None, *, train_len: int | None = None, theta: float | None = None
) -> Scaling:
    """Validate an HF-style ``rope_parameters`` dict into a typed transform.

    Raises ValueError naming unknown keys, a missing required key, an unknown rope_type, or a bad value.
    """
    if spec is None:
        return Scaling()
    if isinstance(spec, Scaling):
        return spec
    if not isinstance(spec, Mapping):
        raise ValueError(f"scaling must be a dict like HF rope_parameters, got {spec!r}")
    params = dict(spec)
    if "type" in params:  # HF backward-compatible key
        params.setdefault("rope_type", params.pop("type"))
    rope_type = params.pop("rope_type", "default")
    rope_type = ALIASES.get(rope_type, rope_type)
    if rope_type not in SCALINGS:
        raise ValueError(f"unknown rope_type {rope_type!r}; choose one of {sorted(SCALINGS) + sorted(ALIASES)}")
    cls = SCALINGS[rope_type]

    if "rope_theta" in params:
        given_theta = params.pop("rope_theta")
        if theta is not None and float(given_theta) != float(theta):
            raise ValueError(f"scaling rope_theta={given_theta!r} differs from theta={theta!r}; set only theta")
    allowed = [f.name for f in fields(cls) if f.name != "given"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} in scaling for rope_type {rope_type!r}; allowed: {allowed}")
    given = tuple(params)
    if "original_max_position_embeddings" in allowed and "original_max_position_embeddings" not in params:
        if train_len is None:
            raise ValueError(
                f"scaling rope_type {rope_type!r} needs 'original_max_position_embeddings' "
                "(or the encoding's train_len)"
            )
        params["original_max_position_embeddings"] = train_len
    missing = [k for k in cls.required if k not in params]
    if missing:
        raise ValueError(f"scaling rope_type {rope_type!r} is missing required key(s) {missing}")

    for key, value in params.items():
        if key == "truncate":
            if not isinstance(value, bool):
                raise ValueError(f"scaling 'truncate' must be a bool, got {value!r}")
        elif key == "original_max_position_embeddings":
            _check_number(key, value, integer=True)
        elif key in ("attention_factor", "mscale", "mscale_all_dim") and value is None:
            continue
        elif key in ("beta_fast", "beta_slow", "attention_factor", "mscale", "mscale_all_dim", "factor"):
            _check_number(key, value)
    if rope_type == "yarn" and params.get("beta_fast", 32) < params.get("beta_slow", 1):
        raise ValueError(
            f"scaling beta_fast={params.get('beta_fast', 32)!r} must be >= beta_slow={params.get('beta_slow', 1)!r}"
        )
    return cls(given=given, **params)


__all__ = [
    "SCALINGS",
    "DynamicNTKScaling",
    "LinearScaling",
    "NTKScaling",
    "Scaling",
    "YarnScaling",
    "authors_yarn",
    "dynamic_ntk_theta",
    "linear_inv_freq",
    "ntk_theta",
    "parse_scaling",
    "yarn_attention_factor",
    "yarn_correction_range",
    "yarn_inv_freq",
]
