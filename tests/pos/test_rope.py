"""RoPE vs Hugging Face's rotary embedding + apply_rotary_pos_emb, relative-position invariance, tables, dtypes."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import fope.pos
from fope.pos import functional as PF

B, H, HK, T, D = 2, 4, 2, 12, 16


def hf_cos_sin(rope_parameters: dict, positions: torch.Tensor, *, max_position_embeddings: int = 64):
    """cos, sin (B, T, D) from transformers' LlamaRotaryEmbedding."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    config = LlamaConfig(
        hidden_size=H * D,
        num_attention_heads=H,
        head_dim=D,
        max_position_embeddings=max_position_embeddings,
        rope_parameters={"rope_theta": 10000.0, **rope_parameters},
    )
    emb = LlamaRotaryEmbedding(config)
    return emb(torch.zeros(1, dtype=torch.float32), positions)


@pytest.mark.parametrize(
    "params",
    [
        {"rope_type": "default"},
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
        {"rope_type": "linear", "factor": 2.0},
    ],
    ids=["default", "yarn", "linear"],
)
def test_rope_equals_hf_apply_rotary_pos_emb(params):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    pe = fope.pos.build("rope", head_dim=D, n_heads=H, train_len=16, n_kv_heads=HK, scaling=params)
    q, k = torch.randn(B, H, T, D), torch.randn(B, HK, T, D)
    positions = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], [40, 3, 17, 99, 5, 6, 250, 8, 0, 2, 1, 30]])
    cos, sin = hf_cos_sin(params, positions)
    want_q, want_k = apply_rotary_pos_emb(q, k, cos, sin)
    got_q, got_k = pe.rotate(q, k, positions)
    assert_close(got_q, want_q)
    assert_close(got_k, want_k)
    # 1-D positions give the same as a batch of identical rows
    got_q1, got_k1 = pe.rotate(q, k, positions[1])
    batched_q, batched_k = pe.rotate(q, k, positions[1].expand(B, T))
    assert_close(got_q1, batched_q, rtol=0, atol=0)
    assert_close(got_k1, batched_k, rtol=0, atol=0)


def test_functional_apply_forms_agree_and_match_hf_rotate_half():
    from transformers.models.llama.modeling_llama import rotate_half

    x = torch.randn(3, 5, D)
    assert_close(PF.rotate_half(x), rotate_half(x), rtol=0, atol=0)
    cos, sin = PF.rope_tables(torch.arange(5), PF.rope_inv_freq(D, 10000.0))
    half_cos, half_sin = PF.angle_tables(torch.arange(5), PF.rope_inv_freq(D, 10000.0))
    assert_close(PF.apply_rotary(x, cos, sin), PF.apply_rotary_halves(x, half_cos, half_sin), rtol=0, atol=0)


def test_scores_depend_only_on_relative_position():
    pe = fope.pos.build("rope", head_dim=D, n_heads=H)
    q, k = torch.randn(1, H, T, D), torch.randn(1, H, T, D)
    pos = torch.arange(T)
    ref_q, ref_k = pe.rotate(q, k, pos)
    for shift in (1, 37, 300):
        sq, sk = pe.rotate(q, k, pos + shift)
        assert_close(sq @ sk.transpose(-1, -2), ref_q @ ref_k.transpose(-1, -2), rtol=1e-4, atol=1e-4)


def test_table_grows_on_demand_and_is_shared():
    """Encodings sharing one TableCache (as the layers of a model do) share one table, grown on demand."""
    pe1 = fope.pos.build("rope", head_dim=D, n_heads=H, train_len=8)
    pe2 = fope.pos.build("rope", head_dim=D, n_heads=H, train_len=8)
    pe2.tables = pe1.tables
    q = torch.randn(1, H, 3, D)
    pe1.rotate(q, q, torch.arange(3))
    ((key, (_, (cos, _))),) = pe1.tables._entries.items()
    assert cos.shape == (8, D // 2)
    pe2.rotate(q, q, torch.arange(3))
    assert pe1.tables._entries[key][1][0] is cos  # shared, not recomputed
    far = torch.tensor([5, 100, 2000])
    got, _ = pe1.rotate(q, q, far)
    assert pe1.tables._entries[key][1][0].shape[0] >= 2001
    c, s = PF.angle_tables(far, pe1.inv_freq)
    assert_close(got, PF.apply_rotary_halves(q, c, s))


def test_bf16_autocast_returns_input_dtype_with_fp32_math():
    pe = fope.pos.build("rope", head_dim=D, n_heads=H)
    q = torch.randn(B, H, T, D).to(torch.bfloat16)
    k = torch.randn(B, HK, T, D).to(torch.bfloat16)
    pos = torch.arange(1000, 1000 + T)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got_q, got_k = pe.rotate(q, k, pos)
    assert got_q.dtype == got_k.dtype == torch.bfloat16
    want_q, want_k = pe.rotate(q.float(), k.float(), pos)
    assert_close(got_q, want_q.to(torch.bfloat16), rtol=0, atol=0)
    assert_close(got_k, want_k.to(torch.bfloat16), rtol=0, atol=0)


def test_gqa_shapes_and_no_parameters():
    pe = fope.pos.build("rope", head_dim=D, n_heads=H, n_kv_heads=HK)
    q, k = pe.rotate(torch.randn(B, H, T, D), torch.randn(B, HK, T, D), torch.arange(T))
    assert q.shape == (B, H, T, D) and k.shape == (B, HK, T, D)
    assert pe.attn_bias(torch.arange(T), torch.arange(T)) is None
    assert list(pe.state_dict()) == [] and list(pe.parameters()) == []


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"head_dim": 15}, "head_dim must be even.*15"),
        ({"thetaa": 5.0}, "unknown option 'thetaa'.*did you mean 'theta'"),
        ({"theta": -3}, "theta must be a number > 1, got -3"),
        ({"n_kv_heads": 3}, "n_heads=4 is not a multiple of n_kv_heads=3"),
        ({"scaling": {"rope_type": "nope"}}, "unknown rope_type 'nope'"),
    ],
)
def test_bad_arguments_raise_naming_the_value(kwargs, match):
    args = {"head_dim": D, "n_heads": H, **kwargs}
    with pytest.raises(ValueError, match=match):
        fope.pos.build("rope", **args)


def test_bad_rotate_inputs_raise():
    pe = fope.pos.build("rope", head_dim=D, n_heads=H)
    q = torch.randn(1, H, T, D)
    with pytest.raises(ValueError, match="positions"):
        pe.rotate(q, q, torch.arange(T + 1))
    with pytest.raises(ValueError, match="integer"):
        pe.rotate(q, q, torch.arange(T, dtype=torch.float32))
    with pytest.raises(ValueError, match="not a multiple of k heads 3"):
        pe.rotate(q, torch.randn(1, 3, T, D), torch.arange(T))


@pytest.mark.parametrize("kind", ["rope", "fope"])
def test_tables_grown_in_inference_mode_still_train(kind):
    """An evaluation under torch.inference_mode that grows the tables must not break the next training step."""
    pe = fope.pos.build(kind, head_dim=D, n_heads=H, train_len=8)
    with torch.inference_mode():
        x = torch.randn(1, H, 40, D)
        pe.rotate(x, x, torch.arange(40))
    q = torch.randn(1, H, 40, D, requires_grad=True)
    out_q, out_k = pe.rotate(q, q, torch.arange(40))
    (out_q.sum() + out_k.sum()).backward()
    assert q.grad is not None and q.grad.isfinite().all()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rope", "fope"])
def test_torch_compile_fullgraph_matches_eager(kind):
    """Under torch.compile the tables are computed directly from the positions (no data-dependent Python)."""
    pe = fope.pos.build(
        kind, head_dim=D, n_heads=H, n_kv_heads=HK, train_len=64, scaling={"rope_type": "yarn", "factor": 4.0}
    )
    q, k = torch.randn(B, H, 5, D), torch.randn(B, HK, 5, D)
    pos = torch.arange(5) + 3
    compiled = torch.compile(pe.rotate, backend="eager", fullgraph=True)
    for got, want in zip(compiled(q, k, pos), pe.rotate(q, k, pos)):
        assert_close(got, want)
