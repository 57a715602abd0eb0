"""The spectrum-damage measure on synthetic signals with known answers, and on models."""

from __future__ import annotations

import math

import pytest
import torch

import fope.model
from fope.analysis.capture import model_info, qk_statistics
from fope.analysis.damage import model_damage, spectrum_damage

N = 256


def _tone(w, n=N, amp=1.0, phase=0.0):
    t = torch.arange(n, dtype=torch.float64)
    return amp * torch.exp(1j * (w * t + phase))


@pytest.mark.parametrize("w", [0.0, 0.3, 1.0, 2 * math.pi * 5 / N, 0.0123])
def test_pure_tone_has_zero_damage(w):
    assert spectrum_damage(_tone(w, amp=2.5, phase=0.7), w).item() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("sigma", [0.05, 0.2, 0.5])
def test_mixture_with_weight_sigma(sigma):
    """(1−σ)e^{jω_m n} + σe^{jω_o n}, ω_o − ω_m = 2πk/N: damage = σ² / ((1−σ)² + σ²)."""
    w, wo = 0.4, 0.4 + 2 * math.pi * 7 / N
    s = (1 - sigma) * _tone(w) + sigma * _tone(wo)
    expected = sigma**2 / ((1 - sigma) ** 2 + sigma**2)
    assert spectrum_damage(s, w).item() == pytest.approx(expected, rel=1e-9)
    # off the orthogonal grid the window adds O(1/N) cross terms only
    s_long = (1 - sigma) * _tone(w, 8192) + sigma * _tone(0.9, 8192)
    assert spectrum_damage(s_long, w).item() == pytest.approx(expected, abs=2e-3)


def test_batched_frequencies_and_noise_correction():
    gen = torch.Generator().manual_seed(0)
    ws = torch.tensor([0.1, 0.7])
    clean = torch.stack([_tone(0.1), _tone(0.7)])
    assert torch.allclose(spectrum_damage(clean, ws), torch.zeros(2, dtype=torch.float64), atol=1e-12)
    var = 0.5  # complex noise with E|e|² = var
    noise = math.sqrt(var / 2) * torch.complex(
        torch.randn(2, 4 * N, generator=gen, dtype=torch.float64),
        torch.randn(2, 4 * N, generator=gen, dtype=torch.float64),
    )
    noisy = torch.stack([_tone(0.1, 4 * N), _tone(0.7, 4 * N)]) + noise
    raw = spectrum_damage(noisy, ws)
    fixed = spectrum_damage(noisy, ws, noise_var=torch.full((2, 4 * N), var, dtype=torch.float64))
    assert (raw > 0.25).all()  # noise energy var / (1 + var) ≈ 1/3 read as damage
    assert (fixed.abs() < 0.05).all()


def test_model_damage_layer0_is_noise_and_constant_mean_gives_zero():
    """Layer 0 of any model sees tokens only: its q/k mean is constant over positions, so damage ≈ 0."""
    torch.manual_seed(0)
    cfg = fope.model.ModelConfig(vocab_size=50, d_model=32, n_layers=2, n_heads=2, train_len=32, pe="rope")
    model = fope.model.build(cfg)
    info = model_info(model, "tiny")
    stats = qk_statistics(model, info, samples=64, seq_len=32, batch_size=16)
    res = model_damage(stats)
    assert len(res["per_layer"]["q"]) == 2 and len(res["per_pair"]["k"][0]) == 8
    assert res["per_layer"]["q"][0] < 0.2 and res["per_layer"]["k"][0] < 0.2
    for key in ("q", "k"):
        assert all(0 <= v <= 1 for v in res["per_layer"][key])
        assert 0 < res["noise_share"][key][0] < 1
    # a synthetic "model" whose stats hold a constant mean plus an oscillation of known share
    S, T, D = 10, 64, 4
    stats.samples, stats.seq_len = S, T
    t = torch.arange(T, dtype=torch.float64)
    mean = torch.zeros(1, 1, T, D, dtype=torch.float64)
    mean[..., 0], mean[..., 2] = 1.0, 0.0  # pair 0: constant 1 (pure tone after rotation)
    mean[..., 1], mean[..., 3] = 0.6 + 0.8 * torch.cos(2 * math.pi * 4 * t / T), 0.0  # pair 1: DC 0.36 of 0.68
    stats.info = type(info)(
        name="syn",
        kind="fope",
        n_layers=1,
        n_heads=1,
        n_kv_heads=1,
        head_dim=D,
        vocab_size=2,
        train_len=T,
        pe="rope",
        inv_freq=[0.3, 0.05],
    )
    stats.q_sum = stats.k_sum = mean * S
    stats.q_sq = stats.k_sq = mean * mean * S  # zero variance: no noise correction
    res = model_damage(stats, skip=0)
    per_pair = res["per_pair"]["q"][0]
    assert per_pair[0] == pytest.approx(0.0, abs=1e-12)
    assert per_pair[1] == pytest.approx(0.32 / 0.68, rel=1e-9)  # cos energy 0.8²/2 over 0.6² + 0.8²/2
    with pytest.raises(ValueError, match="skip=70"):
        model_damage(stats, skip=70)
