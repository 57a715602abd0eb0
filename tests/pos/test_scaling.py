"""Frequency scaling transforms vs transformers' own ROPE_INIT_FUNCTIONS (same parameters -> same numbers)."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

import fope.pos
from fope.pos import scaling as S
from fope.pos.functional import angle_tables, apply_rotary_halves, rope_inv_freq

HEAD_DIM, N_HEADS, THETA = 64, 4, 10000.0


def hf_init(rope_parameters: dict, *, max_position_embeddings: int, seq_len: int | None = None):
    """(inv_freq, attention_factor) from transformers' own init function for a Llama config."""
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    params = {"rope_theta": THETA, **rope_parameters}
    config = LlamaConfig(
        hidden_size=HEAD_DIM * N_HEADS,
        num_attention_heads=N_HEADS,
        head_dim=HEAD_DIM,
        max_position_embeddings=max_position_embeddings,
        rope_parameters=params,
    )
    rope_type = params.get("rope_type", "default")
    if rope_type == "default":
        return LlamaRotaryEmbedding.compute_default_rope_parameters(config)
    return ROPE_INIT_FUNCTIONS[rope_type](config, "cpu", seq_len=seq_len)


CASES = [
    {"rope_type": "default"},
    {"rope_type": "linear", "factor": 4.0},
    {"rope_type": "linear", "factor": 3.0},
    {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512},
    {
        "rope_type": "yarn",
        "factor": 16.0,
        "original_max_position_embeddings": 512,
        "beta_fast": 32,
        "beta_slow": 1,
        "attention_factor": 1.0,
    },
    {
        "rope_type": "yarn",
        "factor": 8.0,
        "original_max_position_embeddings": 1024,
        "beta_fast": 16,
        "beta_slow": 2,
        "mscale": 1.0,
        "mscale_all_dim": 0.5,
        "truncate": False,
    },
]


@pytest.mark.parametrize("params", CASES, ids=lambda p: "-".join(str(v) for v in p.values()))
def test_static_scalings_equal_transformers(params):
    pe = fope.pos.build("rope", head_dim=HEAD_DIM, n_heads=N_HEADS, train_len=512, scaling=params)
    want, want_scale = hf_init(params, max_position_embeddings=512 * int(params.get("factor", 1)))
    assert_close(pe.inv_freq, want)
    assert pe.attention_scaling == pytest.approx(want_scale, rel=1e-12)
    # FoPE without clip uses the same frequencies and attention scaling
    fo = fope.pos.build("fope", head_dim=HEAD_DIM, n_heads=N_HEADS, train_len=512, scaling=params, clip_floor=False)
    assert_close(fo.inv_freq, want)
    assert fo.attention_scaling == pytest.approx(want_scale, rel=1e-12)


@pytest.mark.parametrize("seq_len", [100, 512, 700, 2048, 5000])
def test_dynamic_ntk_equals_transformers(seq_len):
    params = {"rope_type": "dynamic", "factor": 2.0}
    want, want_scale = hf_init(params, max_position_embeddings=512, seq_len=seq_len)
    sc = S.parse_scaling(params, train_len=512)
    got, scale = sc(rope_inv_freq(HEAD_DIM, THETA), theta=THETA, dim=HEAD_DIM, seq_len=seq_len)
    assert_close(got, want, rtol=0, atol=0)
    assert scale == want_scale == 1.0


def test_dynamic_ntk_module_uses_current_length():
    pe = fope.pos.build(
        "rope", head_dim=HEAD_DIM, n_heads=N_HEADS, train_len=64, scaling={"rope_type": "dynamic", "factor": 2.0}
    )
    q = torch.randn(1, N_HEADS, 1, HEAD_DIM)
    # a single token at position 199 is rotated with the frequencies of length 200
    got, _ = pe.rotate(q, q, torch.tensor([199]))
    want_freq, _ = hf_init({"rope_type": "dynamic", "factor": 2.0}, max_position_embeddings=64, seq_len=200)
    cos, sin = angle_tables(torch.tensor([199]), want_freq)
    want = apply_rotary_halves(q, cos, sin)
    assert_close(got, want)
    # within the original length the frequencies are RoPE's
    plain = fope.pos.build("rope", head_dim=HEAD_DIM, n_heads=N_HEADS)
    assert_close(pe.rotate(q, q, torch.tensor([10]))[0], plain.rotate(q, q, torch.tensor([10]))[0])


def test_static_ntk_equals_hf_default_with_larger_theta():
    factor = 4.0
    sc = S.parse_scaling({"rope_type": "ntk", "factor": factor})
    got, scale = sc(rope_inv_freq(HEAD_DIM, THETA), theta=THETA, dim=HEAD_DIM)
    new_theta = THETA * factor ** (HEAD_DIM / (HEAD_DIM - 2))
    assert sc.hf_equivalent(theta=THETA, dim=HEAD_DIM) == {"rope_type": "default", "rope_theta": new_theta}
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    cfg = LlamaConfig(
        hidden_size=HEAD_DIM * N_HEADS,
        num_attention_heads=N_HEADS,
        head_dim=HEAD_DIM,
        rope_parameters={"rope_type": "default", "rope_theta": new_theta},
    )
    want, _ = LlamaRotaryEmbedding.compute_default_rope_parameters(cfg)
    assert_close(got, want)
    assert scale == 1.0


def test_authors_yarn_ramp_indices():
    """docs/paper.md §4.6: low/high = 3/16 for d_h = 64 and 6/31 for d_h = 128; no mscale."""
    for dim, expect in ((64, (3, 16)), (128, (6, 31))):
        assert S.yarn_correction_range(dim=dim, theta=THETA, original_len=512, beta_fast=32, beta_slow=1) == expect
    sc = S.parse_scaling(S.authors_yarn(512))
    base = rope_inv_freq(64, THETA)
    got, scale = sc(base, theta=THETA, dim=64)
    assert scale == 1.0
    assert_close(got[:4], base[:4], rtol=0, atol=0)  # i <= low: unchanged
    assert_close(got[16:], base[16:] / 16, rtol=0, atol=0)  # i >= high: divided by s = 16
    rho = (torch.arange(32.0) - 3) / 13
    assert_close(got[4:16], base[4:16] * (1 - rho[4:16]) + base[4:16] / 16 * rho[4:16])


def test_to_hf_is_identity_of_the_dict():
    for params in CASES + [{"rope_type": "dynamic", "factor": 2.0}, {"rope_type": "ntk", "factor": 2.0}]:
        assert S.parse_scaling(params, train_len=512).to_hf() == params
    assert S.parse_scaling({"rope_type": "pi", "factor": 2.0}).to_hf() == {"rope_type": "linear", "factor": 2.0}
    assert S.parse_scaling({"type": "linear", "factor": 2.0}).to_hf() == {"rope_type": "linear", "factor": 2.0}


def test_yarn_default_attention_factor_is_hf_mscale():
    sc = S.parse_scaling({"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 512})
    _, scale = sc(rope_inv_freq(HEAD_DIM, THETA), theta=THETA, dim=HEAD_DIM)
    assert scale == pytest.approx(0.1 * math.log(4.0) + 1.0)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"rope_type": "yarnn", "factor": 2.0}, "unknown rope_type 'yarnn'"),
        ({"rope_type": "linear"}, r"missing required key\(s\) \['factor'\]"),
        ({"rope_type": "linear", "factor": 2.0, "beta_fast": 3}, r"unknown key\(s\) \['beta_fast'\]"),
        ({"rope_type": "yarn", "factor": 2.0}, "original_max_position_embeddings"),
        ({"rope_type": "linear", "factor": -1.0}, "'factor' must be > 0, got -1.0"),
        ({"rope_type": "linear", "factor": "2"}, "'factor' must be a number, got '2'"),
        (
            {
                "rope_type": "yarn",
                "factor": 2.0,
                "original_max_position_embeddings": 512,
                "beta_fast": 1,
                "beta_slow": 4,
            },
            "beta_fast=1",
        ),
        ({"rope_type": "default", "rope_theta": 500.0}, "rope_theta=500.0 differs"),
        ("yarn", "must be a dict"),
    ],
)
def test_bad_scaling_raises_naming_the_value(params, match):
    with pytest.raises(ValueError, match=match):
        S.parse_scaling(params, train_len=None, theta=THETA)


def test_yarn_gets_original_length_from_train_len():
    sc = S.parse_scaling({"rope_type": "yarn", "factor": 2.0}, train_len=256)
    assert sc.original_max_position_embeddings == 256
    assert sc.to_hf() == {"rope_type": "yarn", "factor": 2.0}
