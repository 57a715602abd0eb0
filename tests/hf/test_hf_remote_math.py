"""The remote model's position encodings (fope/hf/remote/modeling_fope.py: fope.pos.functional's math read from an HF
config) equal fope.pos on full tensors (same coefficients -> same output), scaling, GQA and inits included."""

import pytest
import torch
from torch.testing import assert_close

import fope.pos
from fope.hf.remote import modeling_fope as remote
from fope.hf.remote.configuration_fope import FopeConfig

D, HQ, HK = 16, 4, 2


def config(pe, *, train_len=32, rope=None, **options):
    return FopeConfig(
        vocab_size=11,
        hidden_size=HQ * D,
        intermediate_size=8,
        num_hidden_layers=1,
        num_attention_heads=HQ,
        num_key_value_heads=HK,
        head_dim=D,
        max_position_embeddings=train_len,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, **(rope or {})},
        pe=pe,
        pe_options=options,
        pe_train_len=train_len,
    )


def qk(T=40, B=2):
    g = torch.Generator().manual_seed(3)
    return torch.randn(B, HQ, T, D, generator=g), torch.randn(B, HK, T, D, generator=g)


def compare_rotate(ours, lib, T=40):
    q, k = qk(T)
    positions = torch.arange(T)
    q_lib, k_lib = lib.rotate(q, k, positions)
    q_rem, k_rem = ours.rotate(q, k, positions[None].expand(2, T))
    assert_close(q_rem, q_lib)
    assert_close(k_rem, k_lib)


SCALINGS = [
    None,
    {"rope_type": "linear", "factor": 2.0},
    {"rope_type": "ntk", "factor": 2.0},
    {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 32},
    {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32},
]


@pytest.mark.parametrize("scaling", SCALINGS)
def test_rope_matches_fope_pos(scaling):
    lib = fope.pos.build("rope", head_dim=D, n_heads=HQ, train_len=32, n_kv_heads=HK, scaling=scaling)
    compare_rotate(remote.RotaryPosition(config("rope", rope=scaling)), lib, T=80)  # 80 > 32: dynamic kicks in


FOPE_CASES = [
    {},
    {"sigma": 0.0, "clip_floor": False, "out_dim": "full"},
    {"out_dim": "full", "pad": "zero"},
    {"floor_ratio": 2.0},
    {"share_heads": True},
    {"normalize": True, "sigma": 0.1},
    {"freq_dim": 32},
    {"init": "eye_norm", "sigma": 0.05},
    {"scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32}},
    {"scaling": {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": 32}},
]


@pytest.mark.parametrize("options", FOPE_CASES)
def test_fope_matches_fope_pos_with_same_coefficients(options):
    options = dict(options)
    scaling = options.pop("scaling", None)
    lib = fope.pos.build("fope", head_dim=D, n_heads=HQ, train_len=32, n_kv_heads=HK, scaling=scaling, **options)
    ours = remote.FourierPosition(config("fope", rope=scaling, **options))
    assert ours.cos_coef.shape[-2:] == lib.cos_coef.shape[-2:]
    with torch.no_grad():
        ours.sin_coef.copy_(lib.sin_coef.reshape(ours.sin_coef.shape))
        ours.cos_coef.copy_(lib.cos_coef.reshape(ours.cos_coef.shape))
    compare_rotate(ours, lib, T=80)


@pytest.mark.parametrize("share_heads", [False, True])
def test_fope_init_draws_the_same_coefficients_as_fope_pos(share_heads):
    torch.manual_seed(5)
    lib = fope.pos.build(
        "fope", head_dim=D, n_heads=HQ, train_len=32, n_kv_heads=HK, sigma=0.3, share_heads=share_heads
    )
    ours = remote.FourierPosition(config("fope", sigma=0.3, share_heads=share_heads))
    torch.manual_seed(5)
    ours.reset_coefficients()
    assert_close(ours.sin_coef, lib.sin_coef.reshape(ours.sin_coef.shape), rtol=0, atol=0)
    assert_close(ours.cos_coef, lib.cos_coef.reshape(ours.cos_coef.shape), rtol=0, atol=0)


def test_alibi_matches_fope_pos_on_every_entry():
    lib = fope.pos.build("alibi", head_dim=D, n_heads=HQ)
    ours = remote.AlibiPosition(config("alibi"))
    qpos, kpos = torch.arange(5, 12), torch.arange(12)
    assert_close(ours.bias(qpos, kpos, qpos[None]), lib.attn_bias(qpos, kpos))  # |i - j| also above the diagonal


@pytest.mark.parametrize("pe", ["kerple", "fire"])
def test_learned_bias_kinds_match_fope_pos_with_same_parameters(pe):
    lib = fope.pos.build(pe, head_dim=D, n_heads=HQ, train_len=32)
    ours = {"kerple": remote.KerplePosition, "fire": remote.FirePosition}[pe](config(pe))
    with torch.no_grad():
        for p in lib.parameters():
            p.add_(0.1 * torch.randn_like(p))
    ours.load_state_dict(lib.state_dict())
    qpos, kpos = torch.arange(30, 70), torch.arange(70)
    got = ours.bias(qpos, kpos, qpos[None].expand(2, -1))  # FIRE: (B, H, Tq, Tk), normalised by the position ids
    assert_close(got, lib.attn_bias(qpos, kpos).expand_as(got))


def test_fire_normalises_by_the_position_id_not_the_cache_index():
    """A row left-padded by 5 has cache indices 5.. but position ids 0..: its bias is the unpadded row's."""
    lib = fope.pos.build("fire", head_dim=D, n_heads=HQ, train_len=8)
    ours = remote.FirePosition(config("fire", train_len=8))
    ours.load_state_dict(lib.state_dict())
    idx, ids = torch.arange(5, 30), torch.arange(25)
    assert_close(ours.bias(idx, idx, ids[None])[0], lib.attn_bias(ids, ids))


def test_unknown_remote_options_are_rejected():
    with pytest.raises(ValueError, match=r"unknown fope option\(s\) \['sigmaa'\]"):
        remote.FourierPosition(config("fope", sigmaa=1.0))
    with pytest.raises(ValueError, match="out_dim must be"):
        remote.FourierPosition(config("fope", out_dim="quarter"))
    with pytest.raises(ValueError, match="unknown position encoding"):
        config("fop")


@pytest.mark.parametrize(
    "options, match",
    [
        ({"sigma": -0.1}, "fope: sigma must be a finite number >= 0, got -0.1"),
        ({"freq_dim": 33}, "fope: freq_dim must be an even int >= 0, got 33"),
        ({"floor_ratio": 0}, "fope: floor_ratio must be a finite number > 0, got 0"),
        ({"pad": "two"}, "fope: pad must be 'one' or 'zero', got 'two'"),
        ({"init": "orthogonal"}, "fope: unknown init 'orthogonal'"),
        ({"share_heads": "yes"}, "fope: share_heads must be a bool, got 'yes'"),
        ({"out_dim": "full", "floor_ratio": 64.0}, r"fope: no mixed frequency left \(D_in=0"),
    ],
)
def test_remote_and_native_fope_obey_one_set_of_rules(options, match):
    """fope.pos.options' checks and sizes serve both models: the same bad option fails both, with one message."""
    with pytest.raises(ValueError, match=match):
        fope.pos.build("fope", head_dim=D, n_heads=HQ, n_kv_heads=HK, train_len=32, **options)
    with pytest.raises(ValueError, match=match):
        remote.FourierPosition(config("fope", train_len=32, **options))


@pytest.mark.parametrize("options", [c for c in FOPE_CASES if "scaling" not in c])
def test_remote_and_native_fope_have_the_same_sizes(options):
    lib = fope.pos.build("fope", head_dim=D, n_heads=HQ, n_kv_heads=HK, train_len=32, **options)
    ours = remote.FourierPosition(config("fope", train_len=32, **options))
    assert (ours.dim, tuple(ours.kept.tolist())) == (lib.dim, tuple(lib.kept.tolist()))
    assert tuple(ours.cos_coef.shape[-2:]) == (lib.d_in, lib.d_out)
