"""CausalLM: shapes, causality, KV-cache parity for every encoding, init, structure."""

from __future__ import annotations

import pytest
import torch

import fope.model
from fope.model import CausalLM

from .helpers import ALL_KINDS, ToyBias, tiny_config


def incremental_logits(model: CausalLM, ids: torch.Tensor, chunks: list[int]) -> torch.Tensor:
    """Feed ids through one KV cache in chunks of the given sizes (then token by token); concat logits."""
    cache = model.new_cache()
    outs, start = [], 0
    for size in chunks:
        outs.append(model(ids[:, start : start + size], cache=cache))
        start += size
    while start < ids.shape[1]:
        outs.append(model(ids[:, start : start + 1], cache=cache))
        start += 1
    assert cache.length == ids.shape[1]
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("n_kv_heads", [None, 1])
def test_kv_cache_equals_full_forward(kind, n_kv_heads):
    """Prefill + token-by-token and chunked prefill reproduce the full forward's logits, for every kind and GQA."""
    model = fope.model.build(tiny_config(pe=kind, n_heads=4, n_kv_heads=n_kv_heads, d_model=128)).eval()
    ids = torch.randint(0, 97, (2, 21))
    with torch.no_grad():
        full = model(ids)
        torch.testing.assert_close(incremental_logits(model, ids, [7]), full)
        torch.testing.assert_close(incremental_logits(model, ids, [5, 6, 4, 6]), full)


def test_kv_cache_blockwise_chunks():
    """Chunked prefill through the blockwise path (one-row blocks) with a bias encoding equals the full forward."""
    model = fope.model.build(tiny_config()).eval()
    for block in model.blocks:
        block.attn.pos = ToyBias(2)
        block.attn.max_block_elems = 1
    ids = torch.randint(0, 97, (1, 13))
    with torch.no_grad():
        torch.testing.assert_close(incremental_logits(model, ids, [4, 5]), model(ids))


def test_cache_crop_and_reuse():
    model = fope.model.build(tiny_config(pe="nope")).eval()
    ids = torch.randint(0, 97, (1, 10))
    cache = model.new_cache(capacity=4)
    with torch.no_grad():
        full = model(ids)
        model(ids[:, :6], cache=cache)
        model(torch.randint(0, 97, (1, 3)), cache=cache)  # a different continuation...
        cache.crop(6)  # ...forgotten
        torch.testing.assert_close(model(ids[:, 6:], cache=cache), full[:, 6:])
    with pytest.raises(ValueError, match="crop a cache of length 10 to 11"):
        cache.crop(11)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_causal(kind):
    """Changing a future token leaves every earlier logit unchanged."""
    model = fope.model.build(tiny_config(pe=kind)).eval()
    ids = torch.randint(0, 97, (2, 12))
    changed = ids.clone()
    changed[:, 8] = (ids[:, 8] + 1) % 97
    with torch.no_grad():
        a, b = model(ids), model(changed)
    torch.testing.assert_close(a[:, :8], b[:, :8], rtol=0, atol=0)
    assert not torch.allclose(a[:, 8:], b[:, 8:])


@pytest.mark.parametrize("preset", sorted(fope.model.MODEL_PRESETS))
def test_forward_shapes_preset_like(preset):
    """Each preset's shape family (heads, head dim, GQA-free) shrunk to 1 layer and a small vocab runs."""
    cfg = fope.model.MODEL_PRESETS[preset].replace(n_layers=1, vocab_size=50, pe="nope")
    cfg = cfg.replace(d_model=cfg.resolved().head_dim * 2, n_heads=2)  # keep the preset's head dim, shrink the width
    model = fope.model.build(cfg)
    logits = model(torch.randint(0, 50, (3, 5)))
    assert logits.shape == (3, 5, 50) and logits.dtype == torch.float32


def test_logits_fp32_under_bf16_autocast():
    model = fope.model.build(tiny_config())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(torch.randint(0, 97, (1, 4))).dtype == torch.float32


def test_truncated_init_bounds():
    cfg = tiny_config(init_std=0.05, init_cutoff=2.0)
    model = fope.model.build(cfg)
    weights = torch.cat([w.detach().flatten() for w in model.init_weights()])
    assert weights.abs().max() <= 0.1 + 1e-7
    assert 0.8 * 0.05 < weights.std() < 0.05  # a ±2σ-truncated normal has std ≈ 0.88σ
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            assert torch.equal(p, torch.ones_like(p)), name


def test_structure_no_bias_untied_sizes():
    cfg = tiny_config(n_heads=4, n_kv_heads=2, mlp_hidden=48)
    model = fope.model.build(cfg)
    assert all(not name.endswith("bias") for name, _ in model.named_parameters())
    assert model.embed.weight.data_ptr() != model.lm_head.weight.data_ptr()
    block = model.blocks[0]
    assert block.attn.att_proj.weight.shape == ((4 + 2 * 2) * 16, 64)
    assert block.mlp.ff_proj.weight.shape == (2 * 48, 64) and block.mlp.ff_out.weight.shape == (64, 48)
    assert fope.model.build(tiny_config()).blocks[0].mlp.ff_out.weight.shape == (64, 4 * 64)  # OLMo: 8d split
    assert block.attn_norm.eps == 1e-6


def test_swiglu_and_block_against_manual():
    """One block recomputed by hand from its weights (pre-norm, SwiGLU with (up, gate) halves, NoPE)."""
    model = fope.model.build(tiny_config(n_layers=1)).eval()
    ids = torch.randint(0, 97, (1, 6))
    blk = model.blocks[0]

    def rms(x, w):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * w

    x = model.embed.weight[ids]  # (1, 6, 64)
    q, k, v = (rms(x, blk.attn_norm.weight) @ blk.attn.att_proj.weight.T).split(64, dim=-1)
    q, k, v = (t.view(1, 6, 2, 32).transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2) / 32**0.5).masked_fill(~torch.ones(6, 6, dtype=torch.bool).tril(), -torch.inf)
    att = (scores.softmax(-1) @ v).transpose(1, 2).reshape(1, 6, 64)
    x = x + att @ blk.attn.attn_out.weight.T
    up, gate = (rms(x, blk.ff_norm.weight) @ blk.mlp.ff_proj.weight.T).chunk(2, dim=-1)
    x = x + (torch.nn.functional.silu(gate) * up) @ blk.mlp.ff_out.weight.T
    expected = rms(x, model.norm.weight) @ model.lm_head.weight.T
    with torch.no_grad():
        torch.testing.assert_close(model(ids), expected.detach())


def test_bad_input_shape():
    model = fope.model.build(tiny_config())
    with pytest.raises(ValueError, match=r"\(B, T\), got \(5,\)"):
        model(torch.zeros(5, dtype=torch.long))


def test_cache_rejects_other_batch():
    model = fope.model.build(tiny_config(pe="nope")).eval()
    cache = model.new_cache()
    with torch.no_grad():
        model(torch.randint(0, 97, (2, 3)), cache=cache)
        with pytest.raises(ValueError, match=r"KV cache holds batch/heads \(2, 2\), got \(3, 2\)"):
            model(torch.randint(0, 97, (3, 1)), cache=cache)
