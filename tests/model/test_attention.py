"""Attention paths (flash causal / no-mask decode / blockwise masked) against a plain softmax reference."""

from __future__ import annotations

import pytest
import torch

import fope.pos
from fope.model.attention import Attention, causal_mask

from .helpers import ToyBias, reference_attention


def make_attention(*, n_heads=4, n_kv_heads=4, head_dim=8, bias=True, max_block_elems=2**24):
    pos = ToyBias(n_heads) if bias else fope.pos.build("nope", head_dim=head_dim, n_heads=n_heads)
    return Attention(d_model=16, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim, pos=pos,
                     max_block_elems=max_block_elems)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
@pytest.mark.parametrize("offset", [0, 5])
def test_attend_matches_reference(bias, n_kv_heads, offset):
    """Every path of _attend (forced into small blocks) equals the reference, with and without a cache offset."""
    attn = make_attention(n_kv_heads=n_kv_heads, bias=bias, max_block_elems=2 * 4 * 3 * 16)
    B, T, D = 2, 11, 8
    Tk = offset + T
    q = torch.randn(B, 4, T, D)
    k, v = torch.randn(B, n_kv_heads, Tk, D), torch.randn(B, n_kv_heads, Tk, D)
    q_pos, k_pos = torch.arange(offset, Tk), torch.arange(Tk)
    ref = reference_attention(q, k, v, q_pos, k_pos, attn.pos.attn_bias(q_pos, k_pos))
    torch.testing.assert_close(attn._attend(q, k, v, q_pos), ref)


def test_block_rows_bound():
    attn = make_attention(max_block_elems=2**24)
    assert attn.block_rows(1, 32768) == 2**24 // (4 * 32768)
    assert 2 * 4 * attn.block_rows(2, 32768) * 32768 <= 2**24
    assert attn.block_rows(64, 2**22) == 1  # never zero rows


def test_blockwise_equals_unblocked_with_gradients():
    """Forcing one-row blocks gives the same outputs and the same gradients (bias parameters included)."""
    torch.manual_seed(1)
    small = make_attention(max_block_elems=1)
    large = make_attention()
    large.load_state_dict(small.state_dict())
    x = torch.randn(2, 9, 16)
    positions = torch.arange(9)
    out_small, out_large = small(x, positions=positions), large(x, positions=positions)
    torch.testing.assert_close(out_small, out_large)
    out_small.square().sum().backward()
    out_large.square().sum().backward()
    for (name, p_small), p_large in zip(small.named_parameters(), large.parameters()):
        torch.testing.assert_close(p_small.grad, p_large.grad, msg=name)


def test_causal_mask_values():
    m = causal_mask(torch.arange(2, 4), torch.arange(5), dtype=torch.float32)
    expected = torch.tensor([[0, 0, 0, float("-inf"), float("-inf")], [0, 0, 0, 0, float("-inf")]])
    torch.testing.assert_close(m, expected)
