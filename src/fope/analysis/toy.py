"""The spectrum-damage toy of Fig. 3 (docs/analysis.md): what RoPE and FoPE make of a damaged hidden state.

Setup (every choice the paper leaves open is a field of `ToyConfig`, documented in docs/analysis.md):

* Two hidden dimensions d = 1, 2 start as pure tones x_d(n) = a_d·cos(ω_d n): the state RoPE assumes, where
  dimension d carries only its own frequency ω_d. Frequencies are whole multiples of 2π/P (P = `period`), so
  every signal below is P-periodic and its DFT over one period is exact (no window leakage).
* One MLP layer damages them: y = g(W x + b). The linear layer W mixes the two tones (spectrum *leakage*: each
  dimension becomes a sum of two frequency components); the activation g adds harmonics and intermodulation
  products (spectrum *distortion*).
* Q and K are the identity, so q_d(n) = k_d(n) = y_d(n).

Scores against token distance Δ (0..`max_distance`), per dimension ("component") and summed:

* ground truth (frequency-matched): every frequency component of q meets the same component of k,
  S_d(Δ) = Σ_ν p_d(ν)·cos(νΔ) with p_d the one-sided power spectrum of y_d. This equals the circular
  autocorrelation (1/P)·Σ_n y_d(n+Δ)·y_d(n) (Wiener-Khinchin; tested both ways).
* RoPE: dimension d is rotated at ω_d only, so all its power is read at ω_d: R_d(Δ) = (Σ_ν p_d(ν))·cos(ω_d Δ).
* FoPE: every dimension is a Fourier series over the frequencies FoPE carries, {0 (the clip floor's zero
  frequency)} ∪ {ω_1, ω_2}; each component is read at the nearest of them:
  F_d(Δ) = Σ_f (Σ_{ν→f} p_d(ν))·cos(fΔ). The coefficients equal the signal's own weights (FoPE's best case; the
  released FoPE uses fixed random coefficients that the surrounding weights learn to use).

All three agree at Δ = 0 (the total power). The error of RoPE and FoPE is the RMS difference to the ground
truth over Δ, absolute and relative to the ground truth's RMS.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

ACTIVATIONS = {
    "identity": lambda x: x,
    "gelu": F.gelu,
    "silu": F.silu,
    "relu": F.relu,
    "tanh": torch.tanh,
    "square": lambda x: x * x,
}


@dataclass(frozen=True)
class ToyConfig:
    """The toy's free choices (the paper gives none of them)."""

    #: samples per period P; frequencies are 2π·cycles/P
    period: int = 1024
    #: whole cycles per period of the two input tones: ω_1 = 2π·40/1024 ≈ 0.245, ω_2 = 2π·9/1024 ≈ 0.055
    cycles: tuple[int, int] = (40, 9)
    #: input amplitudes a_d (power a²/2: 0.25 and 1.0, the scales of the paper's two upper panels)
    amplitudes: tuple[float, float] = (math.sqrt(0.5), math.sqrt(2.0))
    #: the linear layer W (rows: output dims); off-diagonal entries leak one tone into the other dimension
    mixing: tuple[tuple[float, float], tuple[float, float]] = ((1.0, 0.3), (0.3, 1.0))
    #: the linear layer's bias b
    bias: tuple[float, float] = (0.0, 0.0)
    #: the activation g (one of ACTIVATIONS)
    activation: str = "gelu"
    #: token distances 0..max_distance (the paper plots 0-250)
    max_distance: int = 250
    #: frequencies FoPE carries besides ω_1, ω_2 (0 = the clip floor's zero frequency)
    fope_extra: tuple[float, ...] = field(default=(0.0,))

    def validate(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose one of {sorted(ACTIVATIONS)}")
        if self.period < 4 or self.max_distance < 0:
            raise ValueError(f"period must be >= 4 and max_distance >= 0, got {self.period}, {self.max_distance}")
        for c in self.cycles:
            if not 0 < c < self.period / 2:
                raise ValueError(f"cycles must be in (0, period/2), got {self.cycles} for period {self.period}")

    @property
    def omegas(self) -> list[float]:
        return [2 * math.pi * c / self.period for c in self.cycles]


def hidden_states(cfg: ToyConfig) -> torch.Tensor:
    """y (2, P) float64: the damaged hidden state g(W x + b) over one period."""
    cfg.validate()
    n = torch.arange(cfg.period, dtype=torch.float64)
    x = torch.stack([a * torch.cos(w * n) for a, w in zip(cfg.amplitudes, cfg.omegas)])  # (2, P)
    W = torch.tensor(cfg.mixing, dtype=torch.float64)
    b = torch.tensor(cfg.bias, dtype=torch.float64)[:, None]
    return ACTIVATIONS[cfg.activation](W @ x + b)


def power_spectrum(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One-sided power spectrum of real P-periodic signals.

    Args:
        y: (C, P) real.
    Returns:
        freqs (P//2+1,) in radians per token, power (C, P//2+1) with Σ power = mean(y²) per row.
    """
    P = y.shape[-1]
    Y = torch.fft.rfft(y, dim=-1)
    power = Y.abs() ** 2 / P**2
    power[..., 1:] *= 2
    if P % 2 == 0:
        power[..., -1] /= 2  # the Nyquist bin has no mirror
    freqs = 2 * math.pi * torch.arange(power.shape[-1], dtype=torch.float64) / P
    return freqs, power


def _score(weights: torch.Tensor, freqs: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Σ_f weights[..., f]·cos(freqs[f]·Δ) -> (..., len(deltas))."""
    return weights @ torch.cos(freqs[:, None] * deltas[None, :])


def spectrum_toy(cfg: ToyConfig | None = None) -> dict:
    """The three panels of Fig. 3 (per dimension, and summed) with the errors of RoPE and FoPE.

    Returns a JSON-ready dict: ``config``, ``distance`` (list), ``omegas``, per panel ``panels[name]`` =
    {"truth", "rope", "fope"} (lists over Δ), ``errors[name]`` = {"rope_rmse", "fope_rmse", "rope_rel", "fope_rel"},
    and ``spectrum`` (the components of each dimension with power > 1e-6 of the total).
    """
    cfg = cfg or ToyConfig()
    y = hidden_states(cfg)
    freqs, power = power_spectrum(y)  # (F,), (2, F)
    deltas = torch.arange(cfg.max_distance + 1, dtype=torch.float64)
    omegas = torch.tensor(cfg.omegas, dtype=torch.float64)
    truth = _score(power, freqs, deltas)  # (2, Δ)
    rope = power.sum(-1, keepdim=True) * torch.cos(omegas[:, None] * deltas[None, :])  # (2, Δ)
    basis = torch.cat([torch.tensor(cfg.fope_extra, dtype=torch.float64), omegas])
    nearest = (freqs[:, None] - basis[None, :]).abs().argmin(-1)  # (F,): which FoPE frequency reads each bin
    assign = F.one_hot(nearest, len(basis)).to(torch.float64)  # (F, |basis|)
    fope = _score(power @ assign, basis, deltas)
    panels = {"component 1": 0, "component 2": 1, "sum": None}
    out_panels, errors = {}, {}
    for name, d in panels.items():
        t, r, f = (s.sum(0) if d is None else s[d] for s in (truth, rope, fope))
        out_panels[name] = {"truth": t.tolist(), "rope": r.tolist(), "fope": f.tolist()}
        rms = t.pow(2).mean().sqrt().item()
        e_r, e_f = (r - t).pow(2).mean().sqrt().item(), (f - t).pow(2).mean().sqrt().item()
        errors[name] = {
            "rope_rmse": e_r,
            "fope_rmse": e_f,
            "rope_rel": e_r / rms,
            "fope_rel": e_f / rms,
            "truth_rms": rms,
        }
    total = power.sum(-1)
    spectrum = {}
    for d in range(2):
        keep = power[d] > 1e-6 * total[d]
        spectrum[f"component {d + 1}"] = [
            {"freq": float(w), "cycles_per_period": int(i), "power": float(p), "share": float(p / total[d])}
            for i, (w, p, k) in enumerate(zip(freqs, power[d], keep))
            if k
        ]
    return {
        "analysis": "toy",
        "config": asdict(cfg),
        "omegas": cfg.omegas,
        "fope_frequencies": basis.tolist(),
        "distance": deltas.tolist(),
        "panels": out_panels,
        "errors": errors,
        "spectrum": spectrum,
    }


def circular_autocorrelation(y: torch.Tensor, max_distance: int) -> torch.Tensor:
    """(1/P)·Σ_n y(n+Δ)·y(n) for Δ = 0..max_distance, directly in the time domain: y (C, P) -> (C, Δ)."""
    return torch.stack([(torch.roll(y, -d, dims=-1) * y).mean(-1) for d in range(max_distance + 1)], dim=-1)
