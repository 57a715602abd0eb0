"""RoPE-A (``whole_cycles=True``): every frequency completes a whole number of cycles within train_len."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

import fope.pos
from fope.pos import functional as PF

D, H = 64, 2


@pytest.mark.parametrize("L,theta", [(512, 10000.0), (128, 10000.0), (2048, 1e5)])
def test_whole_cycles_frequencies_complete_integer_cycles(L, theta):
    pe = fope.pos.build("rope", head_dim=D, n_heads=H, train_len=L, theta=theta, whole_cycles=True)
    base = PF.rope_inv_freq(D, theta).double()
    cycles = pe.inv_freq.double() * L / (2 * math.pi)
    assert_close(cycles, cycles.round(), atol=1e-4, rtol=0)  # whole cycles (fp32 frequencies)
    assert (cycles.round() >= 1).all()
    # the rounding is upward and by less than one cycle (independent per-element reference in Python floats)
    expected = torch.tensor(
        [math.ceil(w * L / (2 * math.pi)) * 2 * math.pi / L for w in base.tolist()], dtype=torch.float64
    )
    assert_close(pe.inv_freq.double(), expected, atol=1e-6, rtol=1e-6)
    assert (pe.inv_freq.double() >= base - 1e-7).all()
    assert (pe.inv_freq.double() < base + 2 * math.pi / L).all()


def test_whole_cycles_rotation_is_periodic_in_train_len():
    L = 128
    pe = fope.pos.build("rope", head_dim=D, n_heads=H, train_len=L, whole_cycles=True)
    q, k = torch.randn(1, H, 3, D), torch.randn(1, H, 3, D)
    q0, k0 = pe.rotate(q, k, torch.tensor([0, 5, 17]))
    q1, k1 = pe.rotate(q, k, torch.tensor([L, L + 5, L + 17]))
    assert_close(q1, q0, atol=2e-4, rtol=0)
    assert_close(k1, k0, atol=2e-4, rtol=0)
    # plain RoPE is not periodic in L (its lowest frequencies do not complete a cycle)
    plain = fope.pos.build("rope", head_dim=D, n_heads=H, train_len=L)
    p0, _ = plain.rotate(q, k, torch.tensor([0, 5, 17]))
    p1, _ = plain.rotate(q, k, torch.tensor([L, L + 5, L + 17]))
    assert (p1 - p0).abs().max() > 0.1


def test_whole_cycles_tables_do_not_collide_with_plain_rope():
    L = 64
    plain = fope.pos.build("rope", head_dim=D, n_heads=H, train_len=L)
    q = torch.randn(1, H, 4, D)
    pos = torch.arange(4) + 20
    before, _ = plain.rotate(q, q, pos)
    whole = fope.pos.build("rope", head_dim=D, n_heads=H, train_len=L, whole_cycles=True)
    rotated, _ = whole.rotate(q, q, pos)
    cos, sin = PF.angle_tables(pos, whole.inv_freq)
    assert_close(rotated, PF.apply_rotary_halves(q, cos, sin))
    assert not torch.allclose(rotated, before)
    after, _ = plain.rotate(q, q, pos)
    assert_close(after, before, atol=0, rtol=0)
    assert "whole_cycles" in repr(whole)


def test_whole_cycles_bad_inputs():
    with pytest.raises(ValueError, match="needs train_len"):
        fope.pos.build("rope", head_dim=D, n_heads=H, whole_cycles=True)
    with pytest.raises(ValueError, match="cannot be combined with scaling"):
        fope.pos.build(
            "rope",
            head_dim=D,
            n_heads=H,
            train_len=64,
            whole_cycles=True,
            scaling={"rope_type": "linear", "factor": 2.0},
        )
    with pytest.raises(ValueError, match="whole_cycles must be true or false"):
        fope.pos.build("rope", head_dim=D, n_heads=H, train_len=64, whole_cycles="yes")
