"""p-RoPE (fope.pos.prope): transformers' ``proportional`` rope_type on the same inputs, a numpy re-derivation, and
exact invariants (p = 1 is RoPE, p = 0 is the identity, the dropped channels never see the position)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import fope.pos
from fope.pos.options import fope_sizes

CASES = [(32, 0.4375, 10000.0), (64, 0.75, 10000.0), (64, 0.3, 500000.0), (16, 1.0, 10000.0), (16, 0.0, 10000.0)]


def hf_proportional(head_dim: int, p: float, theta: float):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    config = LlamaConfig(
        hidden_size=2 * head_dim,
        num_attention_heads=2,
        head_dim=head_dim,
        rope_parameters={"rope_type": "proportional", "rope_theta": theta, "partial_rotary_factor": p},
    )
    return config, ROPE_INIT_FUNCTIONS["proportional"](config, "cpu")


def qkp(head_dim: int, t: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, 2, t, head_dim, generator=g), torch.randn(2, 2, t, head_dim, generator=g)
    return q, k, torch.randint(0, 5000, (2, t), generator=g)


@pytest.mark.parametrize("head_dim,p,theta", CASES)
def test_frequencies_equal_transformers_proportional(head_dim, p, theta):
    _, (inv_freq, factor) = hf_proportional(head_dim, p, theta)
    pe = fope.pos.build("prope", head_dim=head_dim, n_heads=2, p=p, theta=theta)
    assert factor == 1.0 and pe.attention_scaling == 1.0
    assert_close(pe.inv_freq, inv_freq.float(), rtol=1e-6, atol=0)
    assert pe.kept == int((inv_freq > 0).sum())


@pytest.mark.parametrize("head_dim,p,theta", CASES[:3])
def test_rotation_equals_transformers_llama_with_proportional(head_dim, p, theta):
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding, apply_rotary_pos_emb

    config, _ = hf_proportional(head_dim, p, theta)
    q, k, positions = qkp(head_dim)
    cos, sin = LlamaRotaryEmbedding(config)(q, positions)
    q_hf, k_hf = apply_rotary_pos_emb(q, k, cos, sin)
    q_out, k_out = fope.pos.build("prope", head_dim=head_dim, n_heads=2, p=p, theta=theta).rotate(q, k, positions)
    assert_close(q_out, q_hf, rtol=1e-5, atol=1e-5)
    assert_close(k_out, k_hf, rtol=1e-5, atol=1e-5)


def test_rotation_equals_numpy_rederivation():
    head_dim, p, theta = 32, 0.4375, 10000.0
    q, k, positions = qkp(head_dim, seed=1)
    kept = int(p * head_dim // 2)
    i = np.arange(head_dim // 2)
    omega = np.where(i < kept, theta ** (-2.0 * i / head_dim), 0.0)
    ang = positions.numpy()[:, None, :, None].astype(np.float64) * omega  # (B, 1, T, D/2)
    x = q.numpy().astype(np.float64)
    x1, x2 = x[..., : head_dim // 2], x[..., head_dim // 2 :]
    want = np.concatenate([x1 * np.cos(ang) - x2 * np.sin(ang), x2 * np.cos(ang) + x1 * np.sin(ang)], -1)
    q_out, _ = fope.pos.build("prope", head_dim=head_dim, n_heads=2, p=p).rotate(q, k, positions)
    # fp32 angles t·ω at t < 5000 carry ~5e-4 rounding (one ulp of ~5000 rad); the float64 reference has none
    assert_close(q_out.double(), torch.from_numpy(want), rtol=0, atol=2e-3)


def test_p_one_is_rope_and_p_zero_is_identity():
    q, k, positions = qkp(32, seed=2)
    rope = fope.pos.build("rope", head_dim=32, n_heads=2).rotate(q, k, positions)
    full = fope.pos.build("prope", head_dim=32, n_heads=2, p=1.0).rotate(q, k, positions)
    none = fope.pos.build("prope", head_dim=32, n_heads=2, p=0.0).rotate(q, k, positions)
    assert torch.equal(full[0], rope[0]) and torch.equal(full[1], rope[1])
    assert torch.equal(none[0], q) and torch.equal(none[1], k)


def test_dropped_channels_never_see_the_position():
    pe = fope.pos.build("prope", head_dim=32, n_heads=2, p=0.5)
    q, k, positions = qkp(32, seed=3)
    out, _ = pe.rotate(q, k, positions)
    dropped = [*range(8, 16), *range(24, 32)]  # pairs (j, j + 16) for j >= kept = 8
    assert torch.equal(out[..., dropped], q[..., dropped])
    assert not torch.equal(out[..., :8], q[..., :8])


def test_p_of_the_grid_keeps_exactly_fopes_floor_frequencies():
    """The cpu grid (head_dim 32, L = 256): p = 7/16 keeps the 7 frequencies FoPE's clip floor keeps."""
    from fope.reproduce.presets import CLIP_ONLY_PROPE_P

    kept = fope_sizes(
        head_dim=32, theta=10000.0, train_len=256, freq_dim=0, clip_floor=True, floor_ratio=1.0, out_dim="cap"
    ).kept
    pe = fope.pos.build("prope", head_dim=32, n_heads=3, p=CLIP_ONLY_PROPE_P)
    assert pe.kept == int(kept.sum()) == 7
    assert torch.equal(pe.inv_freq > 0, kept)


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "half", True])
def test_bad_p_is_one_line_naming_it(p):
    with pytest.raises(ValueError, match=r"^prope: p must be a number in \[0, 1\], got") as err:
        fope.pos.build("prope", head_dim=32, n_heads=2, p=p)
    assert "\n" not in str(err.value)
