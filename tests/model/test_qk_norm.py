"""ModelConfig.qk_norm: q and k normalised to zero mean, unit variance per head vector, before the rotation."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

import fope.model
from fope.model import ModelConfig

from .helpers import tiny_config
from .test_lm import incremental_logits


def _captured_rotate_inputs(model, ids):
    """q, k as each layer's position encoding receives them (wrapping the instances' rotate)."""
    seen = []
    for block in model.blocks:
        pos = block.attn.pos
        orig = pos.rotate

        def wrapped(q, k, positions, end=None, *, orig=orig):
            seen.append((q.detach().clone(), k.detach().clone()))
            return orig(q, k, positions, end)

        pos.rotate = wrapped
    with torch.no_grad():
        model(ids)
    for block in model.blocks:
        del block.attn.pos.rotate
    return seen


@pytest.mark.parametrize("pe", ["rope", "fope", "nope"])
def test_qk_norm_gives_zero_mean_unit_variance_before_rotation(pe):
    torch.manual_seed(0)
    cfg = tiny_config(pe=pe, qk_norm=True, n_heads=4, n_kv_heads=2, d_model=128)
    model = fope.model.build(cfg).eval()
    ids = torch.randint(0, 97, (2, 13))
    seen = _captured_rotate_inputs(model, ids)
    assert len(seen) == cfg.n_layers
    for q, k in seen:
        for x in (q, k):
            assert_close(x.mean(-1), torch.zeros_like(x.mean(-1)), atol=1e-5, rtol=0)
            assert_close(x.var(-1, unbiased=False), torch.ones_like(x.mean(-1)), atol=1e-3, rtol=0)
    # independent reference for layer 0: the raw projections of the embedded, normed input, standardised by hand
    block = model.blocks[0]
    with torch.no_grad():
        x = block.attn_norm(model.embed(ids))
        q_raw, k_raw, _ = block.attn.att_proj(x).split((4 * 32, 2 * 32, 2 * 32), dim=-1)
    for raw, got, heads in ((q_raw, seen[0][0], 4), (k_raw, seen[0][1], 2)):
        raw = raw.view(2, 13, heads, 32).transpose(1, 2)
        ref = (raw - raw.mean(-1, keepdim=True)) / torch.sqrt(raw.var(-1, unbiased=False, keepdim=True) + cfg.norm_eps)
        assert_close(got, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "pe,options", [("rope", {}), ("rope", {"whole_cycles": True}), ("fope", {}), ("nope", {}), ("alibi", {})]
)
def test_qk_norm_incremental_decoding_equals_full_forward(pe, options):
    model = fope.model.build(
        tiny_config(pe=pe, pe_options=options, qk_norm=True, n_heads=4, n_kv_heads=2, d_model=128)
    ).eval()
    ids = torch.randint(0, 97, (2, 21))
    with torch.no_grad():
        full = model(ids)
        assert_close(incremental_logits(model, ids, [7]), full)
        assert_close(incremental_logits(model, ids, [5, 6, 4, 6]), full)


def test_qk_norm_changes_the_model_and_adds_no_parameters():
    torch.manual_seed(0)
    plain = fope.model.build(tiny_config(pe="rope"))
    normed = fope.model.build(tiny_config(pe="rope", qk_norm=True))
    normed.load_state_dict(plain.state_dict())
    assert plain.num_params() == normed.num_params()
    ids = torch.randint(0, 97, (1, 9))
    with torch.no_grad():
        assert not torch.allclose(plain(ids), normed(ids))


def test_qk_norm_config_roundtrip_and_validation():
    cfg = tiny_config(qk_norm=True)
    assert ModelConfig.from_dict(cfg.to_dict()).qk_norm is True
    old = cfg.to_dict()
    del old["qk_norm"]  # configs saved before the option existed load with it off
    assert ModelConfig.from_dict(old).qk_norm is False
    with pytest.raises(ValueError, match="qk_norm must be true or false, got 'yes'"):
        tiny_config(qk_norm="yes")


def test_qk_norm_refuses_hf_export_and_rope_a_carries_over():
    from fope.hf.export import hf_config_from_native

    with pytest.raises(ValueError, match="qk_norm"):
        hf_config_from_native(tiny_config(pe="rope", qk_norm=True))
    # RoPE-A exports (its logits: tests/hf/test_hf_export.py::test_every_native_option_exports_loads_and_matches)
    assert hf_config_from_native(tiny_config(pe="rope", pe_options={"whole_cycles": True})).pe_options == {
        "whole_cycles": True
    }
