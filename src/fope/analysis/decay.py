"""Long-term decay (Fig. 8, docs/analysis.md): the RoPE score decays with distance only when q and k have a mean.

score(Δ) = ⟨pe(q, position Δ), pe(k, position 0)⟩ for one head, rotations done by `fope.pos` itself.

* ideal: q = k = ones (the RoPE paper's long-term-decay curve);
* expected: the mean over `samples` draws of q, k ~ N(μ, I) (the paper: 1000 samples, μ ∈ {0, 0.1, 1.0}).

Because every rotation is linear, E[score(Δ)] = μ²·ideal(Δ) exactly: the decay is the mean's, and vanishes at
μ = 0. The result holds this closed form next to the Monte-Carlo mean and its standard error (tested).
"""

from __future__ import annotations

import math

import torch

import fope.pos


def _scores(pe, q: torch.Tensor, k: torch.Tensor, distances: torch.Tensor) -> torch.Tensor:
    """q, k (S, D) -> (S, len(distances)) scores of q at position Δ against k at position 0."""
    S, D = q.shape
    T = len(distances)
    qq = q[:, None, None, :].expand(S, 1, T, D)  # (S, 1, T, D)
    kk = k[:, None, None, :]  # (S, 1, 1, D)
    q_rot, _ = pe.rotate(qq, kk.expand(S, 1, T, D), distances)
    _, k_rot = pe.rotate(kk, kk, torch.zeros(1, dtype=torch.long))  # (S, 1, 1, D)
    return (q_rot * k_rot).sum(-1)[:, 0]  # (S, T)


def decay_curves(
    *,
    head_dim: int = 128,
    theta: float = 10000.0,
    max_distance: int = 127,
    means: tuple[float, ...] = (0.0, 0.1, 1.0),
    samples: int = 1000,
    seed: int = 0,
    pe: str = "rope",
    train_len: int = 4096,
    pe_options: dict | None = None,
) -> dict:
    """Ideal and expected RoPE (or FoPE, ...) scores against distance 0..max_distance (Llama-2 shape by default).

    Returns a JSON-ready dict: ``distance``, ``ideal``, and per μ ``expected[μ]`` = {"mc_mean", "mc_stderr",
    "exact"} (lists over distance) plus ``max_abs_z`` (largest |MC − exact| / stderr over distances).
    """
    if samples < 2:
        raise ValueError(f"samples must be >= 2, got {samples}")
    options = dict(pe_options or {})
    if pe == "rope":
        options.setdefault("theta", theta)
    module = fope.pos.build(pe, head_dim=head_dim, n_heads=1, train_len=train_len, **options)
    distances = torch.arange(max_distance + 1)
    with torch.no_grad():
        ones = torch.ones(1, head_dim)
        ideal = _scores(module, ones, ones, distances)[0].double()
        gen = torch.Generator().manual_seed(seed)
        expected = {}
        for mu in means:
            q = torch.randn(samples, head_dim, generator=gen) + mu
            k = torch.randn(samples, head_dim, generator=gen) + mu
            s = _scores(module, q, k, distances).double()  # (S, T)
            mean, err = s.mean(0), s.std(0) / math.sqrt(samples)
            exact = mu * mu * ideal
            expected[f"{mu:g}"] = {
                "mu": mu,
                "mc_mean": mean.tolist(),
                "mc_stderr": err.tolist(),
                "exact": exact.tolist(),
                "max_abs_z": float(((mean - exact).abs() / err).max()),
            }
    return {
        "analysis": "decay",
        "pe": pe,
        "head_dim": head_dim,
        "theta": theta,
        "train_len": train_len,
        "samples": samples,
        "seed": seed,
        "distance": distances.tolist(),
        "ideal": ideal.tolist(),
        "expected": expected,
    }
