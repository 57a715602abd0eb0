"""ModelConfig validation, round-trips, presets and build() overrides."""

from __future__ import annotations

import json

import pytest

import fope.model
from fope.model import MODEL_PRESETS, ModelConfig

from .helpers import tiny_config

# (preset, lower, upper) bounds on the trainable parameter count promised in docs/model.md
CPU_RANGES = [("cpu-tiny", 0.8e6, 1.3e6), ("cpu-small", 4e6, 6.5e6), ("cpu-base", 15e6, 25e6)]


def test_round_trip_through_json():
    cfg = tiny_config(n_kv_heads=1, pe="rope", pe_options={"theta": 500000.0}, mlp_hidden=40)
    again = ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    resolved = cfg.resolved()
    assert (resolved.n_kv_heads, resolved.head_dim, resolved.mlp_hidden) == (1, 32, 40)
    assert ModelConfig.from_dict(resolved.to_dict()) == resolved


def test_to_dict_is_a_copy():
    cfg = tiny_config(pe_options={"theta": 10.0})
    cfg.to_dict()["pe_options"]["theta"] = 1.0
    assert cfg.pe_options == {"theta": 10.0}


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(d_model=100, n_heads=3), "d_model=100 is not divisible by n_heads=3"),
        (dict(n_heads=4, n_kv_heads=3), "n_heads=4 is not divisible by n_kv_heads=3"),
        (dict(pe="rop"), "unknown pe 'rop' \\(did you mean 'rope'\\?\\)"),
        (dict(vocab_size=0), "vocab_size must be a positive int, got 0"),
        (dict(n_layers=2.0), "n_layers must be a positive int, got 2.0"),
        (dict(norm_eps=-1.0), "norm_eps must be a positive number, got -1.0"),
        (dict(head_dim=7, d_model=14, n_heads=2), "head_dim=7 must be even"),
        (dict(pe_options={"head_dim": 8}), "pe_options must not contain 'head_dim'"),
    ],
)
def test_bad_config_names_the_value(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**overrides)


def test_unknown_key_suggests_closest():
    data = tiny_config().to_dict()
    data["n_kv_head"] = 1
    with pytest.raises(ValueError, match="unknown ModelConfig field 'n_kv_head' \\(did you mean 'n_kv_heads'\\?\\)"):
        ModelConfig.from_dict(data)
    with pytest.raises(ValueError, match="did you mean 'd_model'"):
        fope.model.build("cpu-tiny", d_modle=64)


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown model preset 'cpu-smal' \\(did you mean 'cpu-small'\\?\\)"):
        fope.model.build("cpu-smal")


def test_build_overrides_and_presets_untouched():
    model = fope.model.build("cpu-tiny", pe="nope", n_layers=1, pe_options={})
    assert model.config.n_layers == 1 and model.config.pe == "nope"
    assert MODEL_PRESETS["cpu-tiny"].n_layers == 2 and MODEL_PRESETS["cpu-tiny"].pe == "rope"
    from_dict = fope.model.resolve_config(MODEL_PRESETS["cpu-tiny"].to_dict(), pe="nope")
    assert from_dict == MODEL_PRESETS["cpu-tiny"].replace(pe="nope")


def test_paper_sigma_defaults():
    assert fope.model.resolve_config("60M", pe="fope").pe_options == {"sigma": 0.3}
    assert fope.model.resolve_config("1.2B", pe="fope").pe_options == {"sigma": 0.6}
    assert fope.model.resolve_config("180M", pe="fope", pe_options={"sigma": 0.1}).pe_options == {"sigma": 0.1}
    assert fope.model.resolve_config("60M", pe="rope").pe_options == {}


def test_paper_preset_shapes_and_sizes():
    """The paper's sizes (docs/paper.md §4.1): non-embedding params + one 50304 x d embedding."""
    expected = {
        "60M": (512, 8, 8, 64, "59.3M"),
        "180M": (1024, 8, 8, 128, "185.7M"),
        "1.2B": (2048, 16, 16, 128, "1176.8M"),
    }  # docs/paper.md §4.1 prints 1.18B
    for name, (d, h, n_layers, hd, params) in expected.items():
        cfg = MODEL_PRESETS[name].resolved()
        assert (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.head_dim, cfg.vocab_size, cfg.train_len) == (
            d,
            h,
            n_layers,
            hd,
            50304,
            512,
        )
        assert cfg.mlp_hidden == 4 * d
        assert f"{cfg.num_params(embeddings=1) / 1e6:.1f}M" == params


@pytest.mark.parametrize("name, low, high", CPU_RANGES)
def test_cpu_preset_param_counts(name, low, high):
    """Analytic counts (checked against built models in test_analytic_count_*) are in the documented ranges."""
    assert low <= MODEL_PRESETS[name].num_params() <= high
    assert MODEL_PRESETS[name].resolved().head_dim >= 32


def test_analytic_count_with_gqa_and_hidden():
    cfg = tiny_config(n_heads=4, n_kv_heads=2, mlp_hidden=40)
    assert fope.model.build(cfg).num_params() == cfg.num_params()
    assert fope.model.build("cpu-tiny", pe="nope").num_params() == MODEL_PRESETS["cpu-tiny"].num_params()


def test_one_name_per_size_and_none_means_derived():
    """head_dim, n_kv_heads and mlp_hidden are the only names of those sizes; None (what run configs on disk hold)
    means derived, and resolved() fills it in."""
    cfg = ModelConfig(vocab_size=64, d_model=96, n_layers=1, n_heads=3)
    for alias in ("dim_head", "kv_heads", "hidden"):
        assert not hasattr(cfg, alias)
    assert (cfg.head_dim, cfg.n_kv_heads, cfg.mlp_hidden) == (None, None, None)
    sizes = cfg.resolved()
    assert (sizes.head_dim, sizes.n_kv_heads, sizes.mlp_hidden) == (32, 3, 4 * 96)
    assert sizes.resolved() == sizes and ModelConfig.from_dict(sizes.to_dict()) == sizes
    assert cfg.replace(d_model=192).resolved().head_dim == 64, "a derived size follows the width it derives from"
    block = fope.model.build(cfg).blocks[0]
    assert (block.attn.head_dim, block.mlp.ff_out.in_features) == (32, 4 * 96)
