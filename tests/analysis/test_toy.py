"""Fig. 3 toy: ground truth against hand-computed cases, RoPE/FoPE scores, errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from fope.analysis.toy import ToyConfig, circular_autocorrelation, hidden_states, spectrum_toy

IDENTITY = ((1.0, 0.0), (0.0, 1.0))


def _panel(res, name, key):
    return torch.tensor(res["panels"][name][key], dtype=torch.float64)


def test_square_activation_matches_hand_computation():
    """y = cos²(ωn) = 1/2 + cos(2ωn)/2: truth 1/4 + cos(2ωΔ)/8, RoPE (3/8)cos(ωΔ), FoPE 1/4 + cos(ωΔ)/8."""
    cfg = ToyConfig(amplitudes=(1.0, 1.0), mixing=IDENTITY, activation="square", max_distance=60)
    res = spectrum_toy(cfg)
    d = torch.arange(61, dtype=torch.float64)
    for i, w in enumerate(cfg.omegas):
        name = f"component {i + 1}"
        assert_close(_panel(res, name, "truth"), 0.25 + torch.cos(2 * w * d) / 8)
        assert_close(_panel(res, name, "rope"), 0.375 * torch.cos(w * d))
        # 2ω_1 (80 cycles) is nearest to ω_1 (40); 2ω_2 (18) is nearest to ω_2 (9): both read at their own ω
        assert_close(_panel(res, name, "fope"), 0.25 + torch.cos(w * d) / 8)
    # the RMS error by hand for component 1: rms of 1/4 + cos(2ωΔ)/8 − 3/8·cos(ωΔ) over Δ
    w = cfg.omegas[0]
    err = (0.25 + torch.cos(2 * w * d) / 8 - 0.375 * torch.cos(w * d)).pow(2).mean().sqrt().item()
    assert res["errors"]["component 1"]["rope_rmse"] == pytest.approx(err, rel=1e-9)


def test_pure_tones_all_scores_equal_truth():
    res = spectrum_toy(ToyConfig(mixing=IDENTITY, activation="identity"))
    for name, e in res["errors"].items():
        assert e["rope_rmse"] < 1e-12 and e["fope_rmse"] < 1e-12, name
    a, w = ToyConfig().amplitudes[1], ToyConfig().omegas[1]
    d = torch.arange(251, dtype=torch.float64)
    assert_close(_panel(res, "component 2", "truth"), a * a / 2 * torch.cos(w * d))


def test_linear_leakage_fope_exact_rope_wrong_by_the_leaked_power():
    eps = 0.3
    cfg = ToyConfig(amplitudes=(1.0, 1.0), mixing=((1.0, eps), (eps, 1.0)), activation="identity")
    res = spectrum_toy(cfg)
    w1, w2 = cfg.omegas
    d = torch.arange(251, dtype=torch.float64)
    truth = 0.5 * torch.cos(w1 * d) + eps**2 / 2 * torch.cos(w2 * d)
    assert_close(_panel(res, "component 1", "truth"), truth)
    assert_close(_panel(res, "component 1", "rope"), (1 + eps**2) / 2 * torch.cos(w1 * d))
    assert_close(_panel(res, "component 1", "fope"), truth)
    assert res["errors"]["component 1"]["fope_rmse"] < 1e-12 < res["errors"]["component 1"]["rope_rmse"]
    # with equal amplitudes the leaks are symmetric: RoPE's errors of the two components cancel in the sum
    assert res["errors"]["sum"]["rope_rmse"] < 1e-12


@pytest.mark.parametrize("activation", ["gelu", "silu", "relu", "tanh"])
def test_truth_equals_time_domain_autocorrelation_and_all_agree_at_zero(activation):
    cfg = ToyConfig(activation=activation, bias=(0.1, -0.2))
    res = spectrum_toy(cfg)
    direct = circular_autocorrelation(hidden_states(cfg), cfg.max_distance)
    for i in range(2):
        name = f"component {i + 1}"
        assert_close(_panel(res, name, "truth"), direct[i], atol=1e-12, rtol=1e-9)
        t0 = res["panels"][name]["truth"][0]
        assert res["panels"][name]["rope"][0] == pytest.approx(t0) and res["panels"][name]["fope"][0] == pytest.approx(
            t0
        )
        shares = sum(c["share"] for c in res["spectrum"][name])
        assert shares == pytest.approx(1.0, abs=1e-3)  # components under 1e-6 of the power are not listed
    e = res["errors"]["sum"]
    assert e["fope_rmse"] < e["rope_rmse"]  # the default damaged toy: FoPE closer to the truth


def test_bad_config():
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        spectrum_toy(ToyConfig(activation="swish"))
    with pytest.raises(ValueError, match="cycles must be in"):
        spectrum_toy(ToyConfig(cycles=(600, 9)))
    assert math.isclose(ToyConfig().omegas[0], 2 * math.pi * 40 / 1024)
