"""Fig. 8: the Monte-Carlo expected score equals μ²·ideal; the ideal curve against a closed form."""

from __future__ import annotations

import torch
from torch.testing import assert_close

from fope.analysis.decay import decay_curves
from fope.pos import functional as PF


def test_ideal_curve_closed_form_and_expectation():
    D = 32
    res = decay_curves(head_dim=D, max_distance=40, samples=400, means=(0.0, 0.5, 1.0), train_len=64)
    d = torch.arange(41, dtype=torch.float64)
    w = PF.rope_inv_freq(D, 10000.0).double()
    # q = k = ones: each pair contributes (1,1)·R(Δ)(1,1) = 2cos(ωΔ)
    assert_close(
        torch.tensor(res["ideal"], dtype=torch.float64),
        2 * torch.cos(w[None] * d[:, None]).sum(-1),
        atol=1e-4,
        rtol=1e-5,
    )
    assert res["ideal"][0] == D
    for mu, e in res["expected"].items():
        assert_close(torch.tensor(e["exact"]), float(mu) ** 2 * torch.tensor(res["ideal"]))
        assert e["max_abs_z"] < 5  # the Monte-Carlo mean is within 5 standard errors everywhere
    zero = torch.tensor(res["expected"]["0"]["mc_mean"])
    one = torch.tensor(res["expected"]["1"]["mc_mean"])
    assert zero.abs().max() < 0.25 * one.abs().max()  # no decay to speak of at mu = 0


def test_fope_expectation_is_mu_squared_ideal_too():
    res = decay_curves(
        pe="fope", head_dim=32, max_distance=20, samples=300, means=(1.0,), train_len=64, pe_options={"sigma": 0.3}
    )
    assert res["expected"]["1"]["max_abs_z"] < 5
