"""A spectrum-damage measure (ours; the paper argues damage only qualitatively; docs/analysis.md).

Definition. A rotary pair i of a head is the complex signal z(n) = x_i(n) + j·x_{i+D/2}(n) over positions n, and
RoPE turns it into z(n)·e^{jω_i n}. Its *positional* part is the mean over many inputs, μ(n) = E[z(n)] (what is
left when the content is averaged out). Ideally the rotated positional signal s(n) = μ(n)·e^{jω_i n} is a pure tone
at the pair's own frequency ω_i. The spectrum damage of the pair is the share of its energy away from ω_i:

    damage = 1 − |Σ_n s(n)·e^{−jω_i n}|² / (N·Σ_n |s(n)|²)          (N positions)

i.e. one minus the energy of the least-squares projection of s on the tone at ω_i. A pure tone at ω_i gives 0 at
any ω_i (also off the DFT grid); s = (1−σ)·e^{jω_i n} + σ·e^{jω_o n} with ω_o − ω_i a multiple of 2π/N gives
σ²/((1−σ)² + σ²) (tested). Since |Σ s e^{−jω_i n}| = |Σ μ(n)|, the damage is the share of the pre-rotation
positional energy that is not constant over positions: any oscillation a layer's input carries into q or k
(leakage from linear layers, distortion from activations, position signals built by earlier attention) becomes a
component at a frequency other than ω_i after the rotation.

Estimation. μ is the sample mean over S random-token sequences; its sampling noise (variance v(n) = Var z(n)/S)
adds white energy, so both energies are corrected by their expected noise: Σ|s|² − Σv and |Σ s e^{−jωn}|²/N −
Σv/N. Per layer the damage is energy-weighted over heads and pairs: 1 − Σ E_at / Σ E_total. ``signal_share`` is
the share of the pairs' total energy E|z|² that is positional at all (Σ|μ|² / Σ E|z|²); ``noise_share`` the share
of the estimated positional energy that is sampling noise (near 1: the layer's value is unreliable, e.g. layer 0,
whose q and k depend on the token only, so its positional part is a constant).
"""

from __future__ import annotations

from typing import Any

import torch

from .activations import _info
from .capture import QKStats


def tone_energy(signal: torch.Tensor, freqs: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
    """(energy at the frequency, total energy) of complex signals.

    Args:
        signal: (..., N) complex.
        freqs: (...,) or a float: the frequency (radians per position) each signal should carry.
    Returns:
        e_at (...,) = |Σ_n s(n)·e^{−jωn}|² / N, e_total (...,) = Σ_n |s(n)|².
    """
    N = signal.shape[-1]
    n = torch.arange(N, dtype=torch.float64, device=signal.device)
    w = torch.as_tensor(freqs, dtype=torch.float64, device=signal.device)
    phase = torch.exp(-1j * w[..., None] * n)
    coef = (signal.to(torch.complex128) * phase).sum(-1)
    return coef.abs() ** 2 / N, (signal.abs().double() ** 2).sum(-1)


def spectrum_damage(
    signal: torch.Tensor, freqs: torch.Tensor | float, noise_var: torch.Tensor | None = None
) -> torch.Tensor:
    """Share of each signal's energy away from its frequency (see the module docstring), in [0, 1].

    Args:
        signal: (..., N) complex.
        freqs: (...,) or float.
        noise_var: optional (..., N) variance of additive zero-mean noise in the signal; its expected energy is
            removed from both energies before the ratio.
    """
    e_at, e_total = tone_energy(signal, freqs)
    if noise_var is not None:
        noise = noise_var.double().sum(-1)
        e_at, e_total = e_at - noise / signal.shape[-1], e_total - noise
    return (1 - e_at / e_total).clamp(0.0, 1.0)


def _pairs(x: torch.Tensor) -> torch.Tensor:
    """(..., T, D) real -> (..., D/2, T) complex: pair i is dims (i, i + D/2) (rotate-half layout)."""
    half = x.shape[-1] // 2
    return torch.complex(x[..., :half], x[..., half:]).transpose(-1, -2)


def model_damage(stats: QKStats, *, skip: int = 1) -> dict[str, Any]:
    """The damage of every layer's q and k pairs from accumulated statistics (positions ``skip``.. only).

    Returns JSON-ready: ``per_layer`` {"q", "k"} lists (energy-weighted over heads and pairs), ``per_pair``
    {"q", "k"} (NL x D/2 lists, energy-weighted over heads), ``signal_share`` {"q", "k"} per layer, ``overall``.
    """
    info = stats.info
    S = stats.samples
    if not 0 <= skip < stats.seq_len - 1:
        raise ValueError(f"skip={skip} leaves fewer than 2 of {stats.seq_len} positions")
    inv = torch.tensor(info.inv_freq, dtype=torch.float64)  # (D/2,)
    n = torch.arange(stats.seq_len - skip, dtype=torch.float64)
    rot = torch.exp(1j * inv[:, None] * n)  # (D/2, N)
    out: dict[str, Any] = {
        "analysis": "damage",
        "settings": {**stats.settings(), "skip": skip},
        "info": _info(info),
        "per_layer": {},
        "per_pair": {},
        "signal_share": {},
        "noise_share": {},
        "overall": {},
    }
    for name in ("q", "k"):
        mean = getattr(stats, f"{name}_sum")[:, :, skip:] / S  # (NL, H, N, D)
        sq = getattr(stats, f"{name}_sq")[:, :, skip:] / S
        var = (sq - mean * mean).clamp_min(0) * S / (S - 1)  # unbiased per-element variance
        mu = _pairs(mean)  # (NL, H, D/2, N)
        v = (var[..., : info.head_dim // 2] + var[..., info.head_dim // 2 :]).transpose(-1, -2) / S  # of the mean
        e_at, e_total = tone_energy(mu * rot, inv)  # (NL, H, D/2)
        noise = v.sum(-1)
        raw_total = e_total
        e_at, e_total = (e_at - noise / mu.shape[-1]).clamp_min(0), (e_total - noise).clamp_min(0)
        out["noise_share"][name] = (noise.sum((1, 2)) / raw_total.sum((1, 2)).clamp_min(1e-30)).tolist()
        total_energy = (sq[..., : info.head_dim // 2] + sq[..., info.head_dim // 2 :]).sum(-2)  # (NL, H, D/2)
        layer = 1 - e_at.sum((1, 2)) / e_total.sum((1, 2)).clamp_min(1e-30)
        pair = 1 - e_at.sum(1) / e_total.sum(1).clamp_min(1e-30)
        out["per_layer"][name] = layer.clamp(0, 1).tolist()
        out["per_pair"][name] = pair.clamp(0, 1).tolist()
        out["signal_share"][name] = (e_total.sum((1, 2)) / total_energy.sum((1, 2))).tolist()
        out["overall"][name] = float((1 - e_at.sum() / e_total.sum()).clamp(0, 1))
    return out
