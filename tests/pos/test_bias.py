"""Additive-bias encodings (ALiBi, KERPLE, FIRE), NoPE, and the interface shared by every kind."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import fope.pos
from fope.pos.functional import alibi_slopes

# ---------------------------------------------------------------------------------------------------------
# the common interface


@pytest.mark.parametrize("kind", fope.pos.KINDS)
def test_every_kind_gqa_shapes_and_bias_contract(kind):
    h, hk, t, d = 4, 2, 6, 16
    pe = fope.pos.build(kind, head_dim=d, n_heads=h, train_len=64, n_kv_heads=hk)
    q, k = torch.randn(2, h, t, d), torch.randn(2, hk, t, d)
    out_q, out_k = pe.rotate(q, k, torch.arange(t))
    assert out_q.shape == q.shape and out_k.shape == k.shape
    bias = pe.attn_bias(torch.arange(t), torch.arange(t))
    if pe.rotary or kind == "nope":
        assert bias is None
        if kind == "nope":
            assert out_q is q and out_k is k
    else:
        assert torch.equal(out_q, q) and torch.equal(out_k, k)
        assert bias.shape == (h, t, t) and bias.dtype == torch.float32
        # blockwise (query-row blocks, as attention calls it) == full
        k_pos = torch.arange(t)
        blocks = [pe.attn_bias(torch.arange(a, min(a + 4, t)), k_pos) for a in range(0, t, 4)]
        assert_close(torch.cat(blocks, dim=1), bias)
        # one decoding step with a cache: query row t-1 against all keys
        assert_close(pe.attn_bias(torch.tensor([t - 1]), k_pos), bias[:, -1:])


@pytest.mark.parametrize("kind", fope.pos.KINDS)
def test_every_kind_rejects_unknown_options_and_bad_gqa(kind):
    with pytest.raises(ValueError, match="unknown option 'colour'"):
        fope.pos.build(kind, head_dim=16, n_heads=4, train_len=64, colour=1)
    with pytest.raises(ValueError, match="n_heads=4 is not a multiple of n_kv_heads=3"):
        fope.pos.build(kind, head_dim=16, n_heads=4, train_len=64, n_kv_heads=3)


def test_unknown_kind_names_it():
    with pytest.raises(ValueError, match=r"unknown position encoding kind 'ropee'.*did you mean 'rope'"):
        fope.pos.build("ropee", head_dim=16, n_heads=4)


# ---------------------------------------------------------------------------------------------------------
# ALiBi


EXPECTED_SLOPES = {  # Press et al. closed form, written out by hand
    8: [2.0**-e for e in (1, 2, 3, 4, 5, 6, 7, 8)],
    16: [2.0 ** -(e / 2) for e in range(1, 17)],
    12: [2.0**-e for e in (1, 2, 3, 4, 5, 6, 7, 8)] + [2.0**-e for e in (0.5, 1.5, 2.5, 3.5)],
    5: [2.0**-e for e in (2, 4, 6, 8)] + [2.0**-1],
}


@pytest.mark.parametrize("heads", sorted(EXPECTED_SLOPES))
def test_alibi_slopes_closed_form(heads):
    assert_close(alibi_slopes(heads), torch.tensor(EXPECTED_SLOPES[heads]), rtol=1e-7, atol=0)


def test_alibi_bias_values():
    pe = fope.pos.build("alibi", head_dim=16, n_heads=5)
    qp, kp = torch.tensor([3, 7]), torch.arange(8)
    want = -np.array(EXPECTED_SLOPES[5])[:, None, None] * np.abs(qp.numpy()[:, None] - kp.numpy()[None, :])
    assert_close(pe.attn_bias(qp, kp), torch.from_numpy(want).float())
    assert list(pe.state_dict()) == []


# ---------------------------------------------------------------------------------------------------------
# KERPLE


def test_kerple_log_bias_values_positive_params_and_grads():
    pe = fope.pos.build("kerple", head_dim=16, n_heads=3)
    r1, r2 = pe.r1.detach().numpy(), pe.r2.detach().numpy()
    assert (r1 > 0).all() and (r2 > 0).all() and r1.max() <= 2 + 1e-6 and r2.max() <= 1 + 1e-6
    qp, kp = torch.arange(4, 9), torch.arange(9)
    dist = np.abs(qp.numpy()[:, None] - kp.numpy()[None, :])
    want = -r1[:, None, None] * np.log(1 + r2[:, None, None] * dist)
    bias = pe.attn_bias(qp, kp)
    assert_close(bias, torch.from_numpy(want).float())
    bias.sum().backward()
    assert pe.raw_r1.grad.abs().sum() > 0 and pe.raw_r2.grad.abs().sum() > 0
    with torch.no_grad():  # stays positive whatever the raw values become
        pe.raw_r1.fill_(-50.0)
    assert (pe.r1 > 0).all()
    ones = fope.pos.build("kerple", head_dim=16, n_heads=2, init="ones")
    assert_close(ones.r1, torch.ones(2)) and assert_close(ones.r2, torch.ones(2))
    with pytest.raises(ValueError, match="init must be 'uniform' or 'ones', got 'zeros'"):
        fope.pos.build("kerple", head_dim=16, n_heads=2, init="zeros")


# ---------------------------------------------------------------------------------------------------------
# FIRE


def test_fire_matches_formula_and_learns():
    pe = fope.pos.build("fire", head_dim=16, n_heads=3, train_len=8)
    qp, kp = torch.arange(2, 12), torch.arange(12)
    c, L = pe.c.item(), pe.threshold_init.item() * pe.threshold_scale.item()
    assert (c, L) == (pytest.approx(0.1), 8.0)
    i, j = qp.double()[:, None], kp.double()[None, :]
    x = torch.log(torch.abs(c * (i - j)) + 1) / (torch.log(torch.abs(c * torch.clamp(i, min=L)) + 1) + 1e-6)
    w1, b1 = pe.mlp_in.weight.double(), pe.mlp_in.bias.double()
    w2, b2 = pe.mlp_out.weight.double(), pe.mlp_out.bias.double()
    want = torch.relu(x[..., None] @ w1.T + b1) @ w2.T + b2  # (Tq, Tk, H)
    bias = pe.attn_bias(qp, kp)
    assert_close(bias.double(), want.permute(2, 0, 1).detach(), rtol=1e-5, atol=1e-6)
    bias.square().sum().backward()
    for p in (pe.c, pe.threshold_scale, pe.mlp_in.weight, pe.mlp_out.weight):
        assert p.grad is not None and p.grad.abs().sum() > 0
    assert "threshold_init" in pe.state_dict()


def test_fire_bias_is_fp32_under_autocast_and_needs_a_threshold():
    pe = fope.pos.build("fire", head_dim=16, n_heads=2, threshold=100)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert pe.attn_bias(torch.arange(3), torch.arange(3)).dtype == torch.float32
    with pytest.raises(ValueError, match=r"fire: needs a positive threshold.*None"):
        fope.pos.build("fire", head_dim=16, n_heads=2)
    with pytest.raises(ValueError, match="mlp_width must be a positive int, got 0"):
        fope.pos.build("fire", head_dim=16, n_heads=2, train_len=8, mlp_width=0)


def test_single_row_block_at_long_positions_is_finite():
    """A decoding step far beyond train_len: a (H, 1, Tk) bias, all finite."""
    for kind in ("alibi", "kerple", "fire"):
        pe = fope.pos.build(kind, head_dim=16, n_heads=4, train_len=64)
        bias = pe.attn_bias(torch.tensor([100_000]), torch.arange(0, 100_001, 7))
        assert bias.shape == (4, 1, 14286) and bias.isfinite().all()


def test_fire_hidden_layer_is_chunked_with_identical_values(monkeypatch):
    """Chunking the (rows, Tk, width) hidden layer over query rows changes nothing (values and gradients)."""
    from fope.pos import fire as fire_module

    pe = fope.pos.build("fire", head_dim=16, n_heads=3, train_len=8)
    qp, kp = torch.arange(0, 40), torch.arange(40)
    whole = pe.attn_bias(qp, kp)
    g_whole = torch.autograd.grad(whole.square().sum(), pe.mlp_in.weight)[0]
    monkeypatch.setattr(fire_module, "HIDDEN_ELEMS", 7 * 40 * 32)  # 7 rows per chunk
    chunked = pe.attn_bias(qp, kp)
    g_chunked = torch.autograd.grad(chunked.square().sum(), pe.mlp_in.weight)[0]
    assert torch.equal(chunked, whole)
    assert_close(g_chunked, g_whole)
