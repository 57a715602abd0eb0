"""FIRE's bias by distance (queries within the threshold) equals the bias computed on every (query, key) pair,
in value and in gradient; queries beyond the threshold still take the per-pair path."""

from __future__ import annotations

import pytest
import torch

import fope.pos


def _fire(seed: int = 0, threshold_scale: float = 1.0):
    torch.manual_seed(seed)
    pe = fope.pos.build("fire", head_dim=16, n_heads=4, train_len=64)
    with torch.no_grad():
        for p in pe.parameters():  # away from the default init, so every term matters
            p.add_(0.3 * torch.randn_like(p))
        pe.threshold_scale.fill_(threshold_scale)
    return pe


def _assert_matches_by_pair(pe, q: torch.Tensor, k: torch.Tensor) -> None:
    """attn_bias equals the per-pair reference in value and in the gradient of every parameter."""
    g = torch.randn(pe.n_heads, q.numel(), k.numel())
    out = pe.attn_bias(q, k)
    grads = torch.autograd.grad((out * g).sum(), list(pe.parameters()))
    ref = pe._bias_by_pair(q, k)
    grads_ref = torch.autograd.grad((ref * g).sum(), list(pe.parameters()))
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)  # sums over the pairs, in another order


@pytest.mark.parametrize("q0,tq,tk", [(0, 64, 64), (40, 24, 64), (63, 1, 64), (0, 10, 10)])
def test_by_distance_equals_by_pair_with_gradients(q0, tq, tk):
    _assert_matches_by_pair(_fire(), torch.arange(q0, q0 + tq), torch.arange(tk))


def test_queries_beyond_the_threshold_use_every_pair():
    pe = _fire(threshold_scale=0.5)  # L = 32: queries 32.. have their own normaliser
    q, k = torch.arange(20, 64), torch.arange(64)
    with torch.no_grad():
        out = pe.attn_bias(q, k)
        x = pe._normalized(q[:, None], k[None, :])
        hidden = torch.relu(x[..., None] * pe.mlp_in.weight[:, 0] + pe.mlp_in.bias)
        ref = torch.einsum("qkw,hw->hqk", hidden, pe.mlp_out.weight) + pe.mlp_out.bias[:, None, None]
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    # distance 32 from query 63 (beyond L) differs from distance 32 from query 32 (at L): a larger normaliser
    assert not torch.allclose(out[:, 63 - 20, 31], out[:, 32 - 20, 0])


def test_by_distance_without_gradients_matches_the_cached_path():
    pe = _fire(1)
    q, k = torch.arange(0, 64), torch.arange(64)
    with torch.no_grad():
        torch.testing.assert_close(pe.attn_bias(q, k), pe._bias_by_pair(q, k), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("perm", [False, True])
def test_rows_on_both_sides_of_the_threshold(perm):
    """A learned L inside the batch (as after training): near rows by distance, far rows by pair, in any order."""
    pe = _fire(2, threshold_scale=0.6)  # L = 38.4
    q, k = torch.arange(64), torch.arange(64)
    if perm:
        q = q[torch.randperm(64, generator=torch.Generator().manual_seed(0))]
    _assert_matches_by_pair(pe, q, k)
