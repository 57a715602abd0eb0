"""Attention paths (flash causal / no-mask decode / blockwise masked) against a plain softmax reference."""

from __future__ import annotations

import pytest
import torch

import fope.pos
from fope.model.attention import Attention, causal_mask

from .helpers import ToyBias, reference_attention


def make_attention(*, n_heads=4, n_kv_heads=4, head_dim=8, bias=True, max_block_elems=2**24):
    pos = ToyBias(n_heads) if bias else fope.pos.build("nope", head_dim=head_dim, n_heads=n_heads)
    return Attention(
        d_model=16, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim, pos=pos, max_block_elems=max_block_elems
    )


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


def record_sdpa(monkeypatch):
    """Patch SDPA in fope.model.attention to record (q shape, k shape, mask shape or None, is_causal)."""
    import fope.model.attention as attention_module

    calls = []
    real = attention_module.F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, is_causal=False, **kw):
        calls.append((tuple(q.shape), tuple(k.shape), None if attn_mask is None else tuple(attn_mask.shape), is_causal))
        return real(q, k, v, attn_mask=attn_mask, is_causal=is_causal, **kw)

    monkeypatch.setattr(attention_module.F, "scaled_dot_product_attention", spy)
    return calls


def test_unbiased_full_forward_uses_is_causal_without_mask(monkeypatch):
    """Rotary/NoPE full forwards never build a T x T mask (the CPU flash path); decoding one token needs none."""
    import fope.model

    from .helpers import tiny_config

    model = fope.model.build(tiny_config(pe="nope")).eval()
    calls = record_sdpa(monkeypatch)
    cache = model.new_cache()
    with torch.no_grad():
        model(torch.randint(0, 97, (1, 9)), cache=cache)
        model(torch.randint(0, 97, (1, 1)), cache=cache)
    assert [c[2:] for c in calls] == [(None, True)] * 2 + [(None, False)] * 2


def test_bias_blocks_respect_budget(monkeypatch):
    """With a bias, each SDPA call sees at most max_block_elems scores and only the keys its rows may see."""
    attn = make_attention(max_block_elems=2 * 4 * 5 * 12)  # B=2, Hq=4 -> 5 rows of 12 keys
    calls = record_sdpa(monkeypatch)
    attn(torch.randn(2, 12, 16), positions=torch.arange(12))
    assert [c[2] for c in calls] == [(4, 5, 5), (4, 5, 10), (4, 2, 12)]
    assert all(q[0] * q[1] * q[2] * k[2] <= attn.max_block_elems for q, k, _, _ in calls)
