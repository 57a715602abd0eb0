"""Every position encoding's options, each field documented where it is defined, and the rules FoPE's options and
sizes obey.

One frozen dataclass per kind holds the keyword options of ``fope.pos.build(kind, ...)`` and their defaults;
``OPTIONS`` (kind -> dataclass) is the one list of kinds. `check_fope_options` and `fope_sizes` are FoPE's rules
(valid values, the clip floor, D_in and D_out), read by the native module (fope.pos.fope) and by the Hugging Face
remote model alike.

Depends on ``math``, ``dataclasses``, ``torch`` and its siblings ``functional`` and ``scaling`` only: the Hugging
Face remote model ships this file beside them (fope/hf/remote/options.py in a saved directory), so an exported
model reads the same options, defaults and rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import torch

from .functional import FOPE_INITS, clip_floor_keep, rope_inv_freq
from .scaling import Scaling


@dataclass(frozen=True)
class NoPEOptions:
    #: accepted (and validated) so every kind takes the model's GQA shape; unused
    n_kv_heads: int | None = None


@dataclass(frozen=True)
class RoPEOptions:
    #: base θ of the frequencies ω_i = θ^(−2i/D)
    theta: float = 10000.0
    #: HF rope_parameters dict (or a parsed fope.pos.scaling.Scaling); None = no scaling
    scaling: Mapping[str, Any] | Scaling | None = None
    #: key/value heads (GQA); RoPE is the same for every head, only validated
    n_kv_heads: int | None = None
    #: "RoPE-A" (paper Table 2): round every frequency up to whole cycles within train_len,
    #: ω ← (2π/L)·⌈ωL/2π⌉ (needs train_len; not combinable with scaling)
    whole_cycles: bool = False


@dataclass(frozen=True)
class FoPEOptions:
    """FoPE's options (docs/position-encodings.md: the paper-vs-release ambiguity each one covers); the defaults are
    the authors' release (docs/paper.md §3.3)."""

    #: gain σ of the coefficient noise (Xavier gain for the xavier inits, the std for eye_norm); the release used
    #: 0.3 / 0.4 / 0.6 for the 60M / 180M / 1.2B models
    sigma: float = 0.3
    #: RoPE base θ of the frequency grid ω_i = θ^(−2i/dim)
    theta: float = 10000.0
    #: size "D" of the frequency grid; used only when > head_dim (release semantics, docs/paper.md §7.4)
    freq_dim: int = 0
    #: zero and drop every frequency ω < 2π/train_len · floor_ratio (the clip floor; needs train_len)
    clip_floor: bool = True
    #: the floor is 2π/train_len · floor_ratio (the release's ``rope_floor_freq_ratio``): 2 clips every frequency
    #: completing fewer than two cycles within train_len
    floor_ratio: float = 1.0
    #: mixed pairs D_out: "cap" = min(D_in, head_dim // 4) (release) | "full" = min(D_in, head_dim // 2)
    out_dim: str = "cap"
    #: the head_dim/2 − D_out pairs left over: "one" (release: sin = cos = 1) | "zero" (true zero frequency:
    #: cos = 1, sin = 0)
    pad: str = "one"
    #: coefficient init, one of functional.FOPE_INITS: "eye_xavier_norm" (release) | "eye_xavier_uniform" | "eye" |
    #: "eye_norm" (N(0, σ) + step-eye) | "xavier_norm" | "xavier_uniform"
    init: str = "eye_xavier_norm"
    #: divide each coefficient column by its sum over the input axis (the paper's pseudo-code; not the release)
    normalize: bool = False
    #: train the coefficients (the release keeps them fixed)
    learnable: bool = False
    #: one (D_in, D_out) pair of matrices for all heads instead of one per kv head
    share_heads: bool = False
    #: GQA: coefficients per kv head; query head h uses kv head h // (n_heads // n_kv_heads) (HF repeat_kv)
    n_kv_heads: int | None = None
    #: HF rope_parameters dict (or a parsed Scaling), applied AFTER the clip to the kept frequencies (the authors'
    #: x+yarn config); None = no scaling
    scaling: Mapping[str, Any] | Scaling | None = None
    #: keep only the first n frequencies of the grid (the serving engines' ``num_inv_freq``: vLLM, SGLang, lmdeploy,
    #: xtuner); with clip_floor on as well, a frequency is kept when both keep it; None = no such limit
    num_inv_freq: int | None = None


@dataclass(frozen=True)
class ALiBiOptions:
    #: accepted for a uniform model interface; the bias is per query head
    n_kv_heads: int | None = None


@dataclass(frozen=True)
class KERPLEOptions:
    #: init of the raw r1, r2: "uniform" (the authors': r1 ~ U(0, 2), r2 ~ U(0, 1)) or "ones"
    init: str = "uniform"
    #: accepted for a uniform model interface; the bias is per query head
    n_kv_heads: int | None = None


@dataclass(frozen=True)
class FIREOptions:
    #: hidden width of the MLP from the normalised distance to one bias per head
    mlp_width: int = 32
    #: initial c of ψ(x) = log(|c·x| + 1)
    c_init: float = 0.1
    #: initial threshold L_0 of the normaliser ψ(max(L, i)) (None: train_len)
    threshold: float | None = None
    #: added to the normaliser (no division by zero at position 0)
    eps: float = 1e-6
    #: accepted for a uniform model interface; the bias is per query head
    n_kv_heads: int | None = None


#: kind -> its options: the kinds the Hugging Face remote code carries (the HF config's ``pe``), in the order of the
#: paper's main comparison; every kind, these and any other registered one: fope.pos.KINDS (fope.pos.registry)
OPTIONS: dict[str, type] = {
    "rope": RoPEOptions,
    "fope": FoPEOptions,
    "alibi": ALiBiOptions,
    "nope": NoPEOptions,
    "kerple": KERPLEOptions,
    "fire": FIREOptions,
}
KINDS = tuple(OPTIONS)

#: options an HF ``FopeConfig`` carries outside ``pe_options``: theta and scaling in ``rope_parameters``,
#: n_kv_heads as ``num_key_value_heads``; learnable FoPE coefficients are saved as their values
HF_ELSEWHERE = ("theta", "scaling", "n_kv_heads", "learnable")


def hf_option_defaults(kind: str) -> dict[str, Any]:
    """The ``pe_options`` keys of an HF ``FopeConfig`` for ``kind`` with their defaults (the native defaults)."""
    return {f.name: f.default for f in fields(OPTIONS[kind]) if f.name not in HF_ELSEWHERE}


# ---------------------------------------------------------------------------------------------------------
# FoPE's rules


def _finite(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def check_fope_options(options: Mapping[str, Any], *, train_len: int | None) -> None:
    """ValueError ``fope: NAME must be ..., got VALUE`` for the first FoPE option (a FoPEOptions' fields, or an HF
    config's ``pe_options`` over their defaults) that is out of range; clip_floor needs ``train_len``."""
    sigma = options["sigma"]
    if not _finite(sigma) or sigma < 0:
        raise ValueError(f"fope: sigma must be a finite number >= 0, got {sigma!r}")
    fd = options["freq_dim"]
    if isinstance(fd, bool) or not isinstance(fd, int) or fd < 0 or fd % 2:
        raise ValueError(f"fope: freq_dim must be an even int >= 0, got {fd!r}")
    if options["out_dim"] not in ("cap", "full"):
        raise ValueError(f"fope: out_dim must be 'cap' or 'full', got {options['out_dim']!r}")
    if options["pad"] not in ("one", "zero"):
        raise ValueError(f"fope: pad must be 'one' or 'zero', got {options['pad']!r}")
    if options["init"] not in FOPE_INITS:
        raise ValueError(f"fope: unknown init {options['init']!r}; choose one of {list(FOPE_INITS)}")
    ratio = options["floor_ratio"]
    if not _finite(ratio) or ratio <= 0:
        raise ValueError(f"fope: floor_ratio must be a finite number > 0, got {ratio!r}")
    n_freq = options.get("num_inv_freq")
    if n_freq is not None and (isinstance(n_freq, bool) or not isinstance(n_freq, int) or n_freq < 1):
        raise ValueError(f"fope: num_inv_freq must be an int >= 1 or None, got {n_freq!r}")
    for name in ("clip_floor", "normalize", "learnable", "share_heads"):
        if name in options and not isinstance(options[name], bool):
            raise ValueError(f"fope: {name} must be a bool, got {options[name]!r}")
    if options["clip_floor"] and not train_len:
        raise ValueError(
            "fope: clip_floor=True needs train_len (the floor is 2π/train_len); pass train_len=... "
            "(pe_train_len in a Hugging Face config)"
        )


class FoPESizes(NamedTuple):
    """FoPE's sizes: ``dim`` the frequency grid (dim/2 frequencies), ``kept`` (dim/2,) the frequencies the clip
    floor keeps, ``d_in`` how many, ``d_out`` the mixed pairs."""

    dim: int
    kept: torch.Tensor
    d_in: int
    d_out: int


def fope_sizes(
    *,
    head_dim: int,
    theta: float,
    train_len: int | None,
    freq_dim: int,
    clip_floor: bool,
    floor_ratio: float,
    out_dim: str,
    num_inv_freq: int | None = None,
) -> FoPESizes:
    """The grid (freq_dim when > head_dim, else head_dim), the clip floor's mask (and the first ``num_inv_freq``
    only, when set), D_in kept frequencies and D_out = min(D_in, head_dim // 4 ("cap") or head_dim // 2 ("full"));
    ValueError when nothing is left to mix."""
    dim = freq_dim if freq_dim > head_dim else head_dim
    grid = rope_inv_freq(dim, theta, device="cpu")  # CPU: the HF model is built under a meta-device context
    kept = clip_floor_keep(grid, train_len, float(floor_ratio)) if clip_floor else torch.ones_like(grid).bool()
    if num_inv_freq is not None:
        kept = kept & (torch.arange(kept.numel(), device=kept.device) < num_inv_freq)
    d_in = int(kept.sum())
    d_out = min(d_in, head_dim // 4 if out_dim == "cap" else head_dim // 2)
    if d_in == 0 or d_out == 0:
        raise ValueError(
            f"fope: no mixed frequency left (D_in={d_in}, D_out={d_out}) for head_dim={head_dim}, "
            f"train_len={train_len}, out_dim={out_dim!r}"
        )
    return FoPESizes(dim, kept, d_in, d_out)


__all__ = [
    "HF_ELSEWHERE",
    "KINDS",
    "OPTIONS",
    "ALiBiOptions",
    "FIREOptions",
    "FoPEOptions",
    "FoPESizes",
    "KERPLEOptions",
    "NoPEOptions",
    "RoPEOptions",
    "check_fope_options",
    "fope_sizes",
    "hf_option_defaults",
]
