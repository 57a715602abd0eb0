"""The far-attention decomposition (fope.analysis.far): exact invariants of each variant on tiny models."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import fope.model
from fope.analysis.far import VARIANTS, attention_variant, cycle_pairs, far_attention_report


def _model(pe: str, *, train_len: int = 16, n_kv_heads: int | None = None, layers: int = 2, **opts):
    torch.manual_seed(0)
    cfg = fope.model.ModelConfig(
        vocab_size=40,
        d_model=32,
        n_layers=layers,
        n_heads=4,
        n_kv_heads=n_kv_heads,
        head_dim=16,
        train_len=train_len,
        pe=pe,
        pe_options=opts,
    )
    return fope.model.build(cfg).eval()


def _ids(n: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 40, (2, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("pe,kv", [("rope", None), ("fope", 2), ("alibi", None), ("kerple", None), ("nope", None)])
@torch.no_grad()
def test_full_variant_is_the_model(pe, kv):
    model = _model(pe, n_kv_heads=kv)
    x = _ids(40)
    ref = model(x)
    with attention_variant(model, "full", train_len=16):
        got = model(x)
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)
    assert all("_attend" not in b.attn.__dict__ for b in model.blocks)  # restored
    torch.testing.assert_close(model(x), ref, rtol=0, atol=0)


@pytest.mark.parametrize("pe", ["rope", "fope"])
@torch.no_grad()
def test_every_variant_equals_the_model_within_the_training_length(pe):
    model = _model(pe, train_len=16)
    x = _ids(16)  # distances 0..15 < L: nothing is far
    ref = model(x)
    for v in VARIANTS:
        with attention_variant(model, v, train_len=16):
            torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pe", ["rope", "fope", "alibi"])
@torch.no_grad()
def test_window_of_one_sees_only_the_token_itself(pe):
    """With L = 1 every layer attends to its own position only (weight 1 on its value), so the logits at position
    p equal the model run on token p alone, whatever the position encoding."""
    model = _model(pe)
    x = _ids(12)
    with attention_variant(model, "window", train_len=1):
        got = model(x)
    alone = torch.cat([model(x[:, p : p + 1]) for p in range(x.shape[1])], dim=1)
    torch.testing.assert_close(got, alone, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_far_variants_with_every_pair_or_no_pair_completing_a_cycle():
    x = _ids(40)
    # theta 1.5, L = 16: every RoPE frequency 1.5^(-2i/16) >= 2π/16, so all pairs are cycle pairs
    model = _model("rope", theta=1.5)
    for b in model.blocks:  # scores large enough that zeroing the far ones shows
        b.attn.att_proj.weight.mul_(20)
    assert cycle_pairs(model.blocks[0].attn.pos, 16) == 8
    ref = model(x)
    with attention_variant(model, "far_cycles_only", train_len=16):
        torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)
    with attention_variant(model, "far_without_cycles", train_len=16):
        assert not torch.allclose(model(x), ref, atol=1e-3)  # far scores are 0 now
    # L = 4: 2π/4 > 1 >= every frequency, so no pair completes a cycle
    model = _model("rope", train_len=4)
    assert cycle_pairs(model.blocks[0].attn.pos, 4) == 0
    ref = model(x)
    with attention_variant(model, "far_without_cycles", train_len=4):
        torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("head_dim,L", [(32, 256), (64, 512), (128, 512), (16, 64)])
def test_cycle_pairs_against_numpy(head_dim, L):
    inv = 10000.0 ** (-np.arange(0, head_dim, 2) / head_dim)
    expected = int((inv >= 2 * math.pi / L).sum())
    rope = fope.pos.build("rope", head_dim=head_dim, n_heads=2, train_len=L)
    assert cycle_pairs(rope, L) == expected
    fp = fope.pos.build("fope", head_dim=head_dim, n_heads=2, train_len=L)
    assert cycle_pairs(fp, L) == min(expected, head_dim // 4) == fp.d_out


def test_report_structure_and_buckets():
    model = _model("fope", train_len=8)
    ids = _ids(64)[0]
    rep = far_attention_report(model, ids, train_len=8, length=32)
    assert (
        rep["chunks"] == 2 and rep["edges"] == [0, 8, 16, 32] and rep["cycle_pairs"] == model.blocks[0].attn.pos.d_out
    )
    assert set(rep["variants"]) == set(VARIANTS)
    first = {v: r["buckets"][0] for v, r in rep["variants"].items()}
    assert len(set(first.values())) == 1  # positions < L never see a far key
    # the full variant's perplexity is the model's own mean token loss over the two chunks
    with torch.no_grad():
        logits = model(ids.view(2, 32)[:, :-1])
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), ids.view(2, 32)[:, 1:].flatten())
    assert rep["variants"]["full"]["ppl"] == pytest.approx(math.exp(nll.item()), rel=1e-4)


def test_bad_input_names_the_value():
    model = _model("alibi")
    with pytest.raises(ValueError, match="'windw'"), attention_variant(model, "windw", train_len=8):
        pass
    with (
        pytest.raises(ValueError, match=r"ALiBi|no rotary pairs"),
        attention_variant(model, "far_cycles_only", train_len=8),
    ):
        pass
    rep = far_attention_report(model, _ids(32)[0], train_len=8, length=16, variants=["full", "window"])
    assert rep["cycle_pairs"] is None
    with pytest.raises(ValueError, match="make no chunk"):
        far_attention_report(model, _ids(8)[0], train_len=8, length=16)


def test_fope_without_the_clip_floor_has_no_pair_split():
    model = _model("fope", train_len=8, clip_floor=False)
    with pytest.raises(ValueError, match="clip floor"):
        cycle_pairs(model.blocks[0].attn.pos, 8)
    rep = far_attention_report(model, _ids(32)[0], train_len=8, length=16)  # default: the variants that apply
    assert set(rep["variants"]) == {"full", "window"} and rep["cycle_pairs"] is None
    with pytest.raises(ValueError, match="not at the analysis' L = 16"):
        cycle_pairs(_model("fope", train_len=8).blocks[0].attn.pos, 16)


@torch.no_grad()
def test_far_mass_of_uniform_attention_is_the_share_of_far_keys():
    """Zero query weights make every score 0 (NoPE): each query spreads its attention evenly over its q + 1 keys,
    so the weight on keys at distance >= L is exactly max(0, q - L + 1) / (q + 1)."""
    model = _model("nope", train_len=8)
    for b in model.blocks:
        b.attn.att_proj.weight[: 4 * 16] = 0  # the query rows of the fused projection (4 heads x head_dim 16)
    rep = far_attention_report(model, _ids(64)[0], train_len=8, length=32)
    q = np.arange(31)  # query q predicts position q + 1
    share = np.maximum(0, q - 8 + 1) / (q + 1)
    expected = [share[max(a, 1) - 1 : b - 1].mean() for a, b in zip(rep["edges"], rep["edges"][1:])]
    assert expected[0] == 0 and expected[-1] > 0.5
    for layer in rep["variants"]["full"]["far_mass"]:
        assert len(layer) == 4
        for head in layer:
            np.testing.assert_allclose(head, expected, atol=1e-5)
    for layer in rep["variants"]["window"]["far_mass"]:
        assert layer == [[0.0] * 3] * 4  # far keys masked: no weight on them


@torch.no_grad()
def test_far_mass_per_query_head_under_gqa():
    model = _model("fope", train_len=8, n_kv_heads=2)
    rep = far_attention_report(model, _ids(64)[0], train_len=8, length=32)
    for v, r in rep["variants"].items():
        mass = np.array(r["far_mass"])
        assert mass.shape == (2, 4, 3), v  # layers, query heads, buckets
        assert (mass[..., 0] == 0).all() and (mass >= 0).all() and (mass <= 1).all()
    assert (np.array(rep["variants"]["window"]["far_mass"]) == 0).all()
    assert (np.array(rep["variants"]["full"]["far_mass"])[..., 1:] > 0).all()
