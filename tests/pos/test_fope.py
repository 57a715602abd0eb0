"""FoPE vs an independent numpy re-derivation of docs/paper.md §3.3, the derived-numbers table of docs/paper.md
§3.4, the exact reduction to RoPE, GQA mapping, caching, coefficient resizing, and argument errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.testing import assert_close

import fope.pos
from fope.pos.fope import FoPE, resize_coefficients, resize_state_dict

# ---------------------------------------------------------------------------------------------------------
# independent numpy re-derivation (np arrays only; coefficients copied from the module)


def np_rotate_half(x: np.ndarray) -> np.ndarray:
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def np_step_eye(d_in: int, d_out: int) -> np.ndarray:
    """docs/paper.md §3.3: s = ceil(D_in/D_out); entry (i·s, i) = 1 for every column i with i·s < D_in."""
    s = -(-d_in // d_out)
    eye = np.zeros((d_in, d_out))
    for i in range(d_out):
        if i * s < d_in:
            eye[i * s, i] = 1.0
    return eye


def np_yarn(omega: np.ndarray, *, dim: int, theta: float, factor: float, orig: int, beta_fast=32.0, beta_slow=1.0):
    def r(beta):
        return dim * math.log(orig / (2 * math.pi * beta)) / (2 * math.log(theta))

    low, high = max(math.floor(r(beta_fast)), 0), min(math.ceil(r(beta_slow)), dim - 1)
    rho = np.clip((np.arange(dim // 2) - low) / (high - low), 0.0, 1.0)
    return omega * (1 - rho) + omega / factor * rho


def np_fope(
    q,
    k,
    positions,
    *,
    head_dim,
    train_len,
    sin_coef,
    cos_coef,
    theta=10000.0,
    freq_dim=0,
    clip=True,
    out_dim="cap",
    pad="one",
    normalize=False,
    yarn=None,
):
    """x' = x⊙C + rotate_half(x)⊙S with the clip, drop, mixing, padding, duplication and GQA mapping
    of docs/paper.md §3.3."""
    dim = freq_dim if freq_dim > head_dim else head_dim
    omega = 1.0 / theta ** (np.arange(0, dim, 2) / dim)  # dim/2 candidates
    clipped = np.where(omega < 2 * np.pi / train_len, 0.0, omega) if clip else omega
    keep = clipped != 0.0  # drop the zeros
    if yarn is not None:
        omega = np_yarn(omega, dim=dim, theta=theta, **yarn)  # after the clip decision
    kept = omega[keep]
    d_in = len(kept)
    d_out = min(d_in, head_dim // 4 if out_dim == "cap" else head_dim // 2)
    assert sin_coef.shape[-2:] == (d_in, d_out), (sin_coef.shape, d_in, d_out)
    if sin_coef.ndim == 2:
        sin_coef, cos_coef = sin_coef[None], cos_coef[None]
    if normalize:
        sin_coef = sin_coef / sin_coef.sum(axis=1, keepdims=True)
        cos_coef = cos_coef / cos_coef.sum(axis=1, keepdims=True)
    ang = positions[:, None] * kept[None, :]  # (T, D_in)
    s_mix = np.einsum("tk,hkj->htj", np.sin(ang), sin_coef)  # (H, T, D_out)
    c_mix = np.einsum("tk,hkj->htj", np.cos(ang), cos_coef)
    n_pad = head_dim // 2 - d_out
    pad_shape = (*s_mix.shape[:2], n_pad)
    s_full = np.concatenate([s_mix, np.full(pad_shape, 1.0 if pad == "one" else 0.0)], axis=-1)
    c_full = np.concatenate([c_mix, np.ones(pad_shape)], axis=-1)
    s_full, c_full = np.concatenate([s_full, s_full], -1), np.concatenate([c_full, c_full], -1)  # (H, T, D)

    def apply(x):
        hc = s_full.shape[0]
        group = x.shape[1] // hc if hc > 1 else x.shape[1]
        out = np.empty_like(x)
        for h in range(x.shape[1]):
            c = h // group if hc > 1 else 0
            out[:, h] = x[:, h] * c_full[c] + np_rotate_half(x[:, h]) * s_full[c]
        return out

    return apply(q), apply(k)


CONFIGS = {
    "release-gqa-stepeye": dict(head_dim=16, n_heads=4, n_kv_heads=2, train_len=1024),  # D_in 5 > D_out 4
    "release-mha": dict(head_dim=16, n_heads=2, train_len=512),
    "pad-zero-full": dict(head_dim=16, n_heads=2, train_len=512, pad="zero", out_dim="full"),
    "normalize-shared": dict(head_dim=16, n_heads=4, train_len=512, normalize=True, share_heads=True),
    "freq-dim-32": dict(head_dim=16, n_heads=2, train_len=256, freq_dim=32, out_dim="full"),
    "no-clip-yarn": dict(
        head_dim=16,
        n_heads=2,
        train_len=64,
        clip_floor=False,
        out_dim="full",
        scaling={"rope_type": "yarn", "factor": 4.0, "attention_factor": 1.0},
    ),
    "clip-then-yarn": dict(
        head_dim=32, n_heads=2, train_len=512, scaling={"rope_type": "yarn", "factor": 16.0, "attention_factor": 1.0}
    ),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_fope_matches_numpy_rederivation(name):
    cfg = dict(CONFIGS[name])
    pe = fope.pos.build("fope", sigma=0.3, **cfg)
    head_dim, n_heads = cfg["head_dim"], cfg["n_heads"]
    n_kv = cfg.get("n_kv_heads", n_heads)
    q, k = torch.randn(2, n_heads, 6, head_dim), torch.randn(2, n_kv, 6, head_dim)
    positions = torch.tensor([0, 1, 7, 300, 601, 45])
    got_q, got_k = pe.rotate(q, k, positions)
    yarn = None
    if "scaling" in cfg:
        sc = cfg["scaling"]
        yarn = dict(factor=sc["factor"], orig=cfg["train_len"])
    want_q, want_k = np_fope(
        q.double().numpy(),
        k.double().numpy(),
        positions.double().numpy(),
        head_dim=head_dim,
        train_len=cfg["train_len"],
        sin_coef=pe.sin_coef.double().numpy(),
        cos_coef=pe.cos_coef.double().numpy(),
        freq_dim=cfg.get("freq_dim", 0),
        clip=cfg.get("clip_floor", True),
        out_dim=cfg.get("out_dim", "cap"),
        pad=cfg.get("pad", "one"),
        normalize=cfg.get("normalize", False),
        yarn=yarn,
    )
    assert_close(got_q.double(), torch.from_numpy(want_q), rtol=1e-4, atol=2e-4)
    assert_close(got_k.double(), torch.from_numpy(want_k), rtol=1e-4, atol=2e-4)
    # step-eye layout (docs/paper.md §3.3): the noise is small, so rounding the coefficients gives back the step-eye
    eye = np_step_eye(pe.d_in, pe.d_out)
    for coef in (pe.sin_coef, pe.cos_coef):
        assert np.array_equal(np.rint(coef.numpy()), np.broadcast_to(eye, coef.shape))


def test_eye_init_is_exactly_the_step_eye():
    pe = fope.pos.build("fope", head_dim=64, n_heads=8, train_len=1024, init="eye")
    eye = torch.from_numpy(np_step_eye(18, 16)).float()
    assert_close(pe.sin_coef, eye.expand(8, -1, -1), rtol=0, atol=0)
    assert_close(pe.cos_coef, eye.expand(8, -1, -1), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------
# docs/paper.md §3.4 derived-numbers table (θ = 10000)

SIZES_TABLE = [
    # name, d_h, heads, train_len, sigma, D_in, zeroed, D_out, columns with a 1, pairs padded, noise std
    ("60M/512", 64, 8, 512, 0.3, 16, 16, 16, 16, 16, 0.0217),
    ("180M/512", 128, 8, 512, 0.4, 31, 33, 31, 31, 33, 0.0163),
    ("1.2B/512", 128, 16, 512, 0.6, 31, 33, 31, 31, 33, 0.0222),
    ("60M/1024", 64, 8, 1024, 0.3, 18, 14, 16, 9, 16, 0.0208),
    ("180M/1024", 128, 8, 1024, 0.4, 36, 28, 32, 18, 32, 0.0151),
    ("1.2B/1024", 128, 16, 1024, 0.6, 36, 28, 32, 18, 32, 0.0208),
]


@pytest.mark.parametrize("row", SIZES_TABLE, ids=[r[0] for r in SIZES_TABLE])
def test_derived_sizes_table(row):
    _, d_h, heads, train_len, sigma, d_in, zeroed, d_out, eye_cols, padded, std = row
    pe = fope.pos.build("fope", head_dim=d_h, n_heads=heads, train_len=train_len, sigma=sigma)
    assert (pe.d_in, d_h // 2 - pe.d_in, pe.d_out) == (d_in, zeroed, d_out)
    assert pe.inv_freq.shape == (d_in,) and pe.sin_coef.shape == (heads, d_in, d_out)
    eye = torch.from_numpy(np_step_eye(d_in, d_out)).float()
    assert int(eye.sum()) == eye_cols  # identity when D_in == D_out; "dead" columns otherwise
    assert d_h // 2 - pe.d_out == padded
    noise = torch.cat([(pe.sin_coef - eye).flatten(), (pe.cos_coef - eye).flatten()])
    assert noise.std().item() == pytest.approx(std, rel=0.08)
    assert noise.std().item() == pytest.approx(sigma * math.sqrt(2 / (d_out * (d_in + heads))), rel=0.08)
    # padded pairs: sin = cos = 1 (position independent)
    cos_t, sin_t = pe.half_tables(torch.arange(5))  # (cos, sin), like RoPE
    assert torch.equal(sin_t[..., d_out:], torch.ones_like(sin_t[..., d_out:]))
    assert torch.equal(cos_t[..., d_out:], torch.ones_like(cos_t[..., d_out:]))


def test_clip_is_strict_and_keeps_a_frequency_equal_to_the_floor():
    # with θ chosen so that ω_1 = θ^(-2/4) = 2π/L exactly representable relations are fragile; test the mask helper
    from fope.pos.functional import clip_floor_keep

    floor = 2 * math.pi / 100
    omega = torch.tensor([1.0, floor, floor * 0.999, 0.0])
    assert clip_floor_keep(omega, 100).tolist() == [True, True, False, False]


@pytest.mark.parametrize("ratio", [0.5, 1.0, 2.0, 3.0])
def test_floor_ratio_clips_frequencies_with_fewer_than_ratio_cycles(ratio):
    # the release's rope_floor_freq_ratio: keep ω iff ω·L/(2π) >= ratio (the number of cycles within L)
    head_dim, L = 32, 256
    pe = fope.pos.build("fope", head_dim=head_dim, n_heads=2, train_len=L, floor_ratio=ratio)
    omega = 10000.0 ** (-np.arange(0, head_dim, 2) / head_dim)
    keep = omega * L / (2 * np.pi) >= ratio
    assert pe.kept.tolist() == keep.tolist()
    assert pe.d_in == int(keep.sum())
    assert torch.allclose(pe.inv_freq.double(), torch.from_numpy(omega[keep]), rtol=1e-6)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), True, "2"])
def test_floor_ratio_must_be_a_positive_number(bad):
    with pytest.raises(ValueError, match=f"floor_ratio must be a finite number > 0, got {bad!r}"):
        fope.pos.build("fope", head_dim=32, n_heads=2, train_len=256, floor_ratio=bad)


# ---------------------------------------------------------------------------------------------------------
# exact reduction to RoPE


@pytest.mark.parametrize(
    "scaling",
    [
        None,
        {"rope_type": "linear", "factor": 2.0},
        {"rope_type": "yarn", "factor": 4.0},
        {"rope_type": "dynamic", "factor": 2.0},
        {"rope_type": "ntk", "factor": 3.0},
    ],
    ids=["none", "linear", "yarn", "dynamic", "ntk"],
)
def test_reduction_setting_equals_rope_exactly(scaling):
    kw = dict(head_dim=32, n_heads=4, n_kv_heads=2, train_len=64, scaling=scaling)
    rope = fope.pos.build("rope", **kw)
    fo = fope.pos.build("fope", sigma=0.0, clip_floor=False, out_dim="full", **kw)
    q, k = torch.randn(2, 4, 9, 32), torch.randn(2, 2, 9, 32)
    for positions in (torch.arange(9), torch.arange(9) + 200, torch.randint(0, 500, (2, 9))):
        want_q, want_k = rope.rotate(q, k, positions)
        got_q, got_k = fo.rotate(q, k, positions)
        assert_close(got_q, want_q, rtol=0, atol=0)
        assert_close(got_k, want_k, rtol=0, atol=0)
    assert_close(fo.inv_freq, rope.inv_freq, rtol=0, atol=0)
    assert fo.attention_scaling == rope.attention_scaling


def test_pad_zero_full_sigma0_is_rope_with_clipped_frequencies_zeroed():
    from fope.pos import functional as PF

    fo = fope.pos.build("fope", head_dim=32, n_heads=2, train_len=128, sigma=0.0, out_dim="full", pad="zero")
    grid = PF.rope_inv_freq(32, 10000.0)
    clipped = torch.where(grid < 2 * math.pi / 128, torch.zeros_like(grid), grid)
    q = torch.randn(1, 2, 5, 32)
    positions = torch.tensor([0, 3, 50, 127, 999])
    cos, sin = PF.rope_tables(positions, clipped)
    assert_close(fo.rotate(q, q, positions)[0], PF.apply_rotary(q, cos, sin), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# GQA, learnable, caching


def test_gqa_query_head_uses_kv_head_h_div_group():
    gqa = fope.pos.build("fope", head_dim=16, n_heads=6, n_kv_heads=2, train_len=512, sigma=0.5)
    mha = fope.pos.build("fope", head_dim=16, n_heads=6, train_len=512, sigma=0.5)
    mha.load_state_dict(
        {  # HF repeat_kv grouping: kv head j serves query heads j·g .. (j+1)·g − 1
            "sin_coef": gqa.sin_coef.repeat_interleave(3, dim=0),
            "cos_coef": gqa.cos_coef.repeat_interleave(3, dim=0),
        }
    )
    q, k = torch.randn(2, 6, 5, 16), torch.randn(2, 2, 5, 16)
    pos = torch.arange(5)
    got_q, got_k = gqa.rotate(q, k, pos)
    assert got_q.shape == q.shape and got_k.shape == k.shape
    assert_close(got_q, mha.rotate(q, q, pos)[0], rtol=0, atol=0)
    assert_close(got_k, mha.rotate(k.repeat_interleave(3, dim=1), k.repeat_interleave(3, dim=1), pos)[1][:, ::3])
    with pytest.raises(ValueError, match="k has 6 heads but the coefficients are for n_kv_heads=2"):
        gqa.rotate(q, q, pos)


def test_coefficients_fixed_saved_and_not_parameters():
    pe = fope.pos.build("fope", head_dim=16, n_heads=2, train_len=512)
    assert sorted(pe.state_dict()) == ["cos_coef", "sin_coef"]
    assert list(pe.parameters()) == [] and not pe.sin_coef.requires_grad
    learn = fope.pos.build("fope", head_dim=16, n_heads=2, train_len=512, learnable=True)
    assert {n for n, p in learn.named_parameters() if p.requires_grad} == {"sin_coef", "cos_coef"}
    q = torch.randn(1, 2, 4, 16, requires_grad=True)
    out_q, out_k = learn.rotate(q, q, torch.arange(4))
    (out_q.square().sum() + out_k.sum()).backward()
    assert learn.sin_coef.grad is not None and learn.sin_coef.grad.abs().sum() > 0
    assert learn.cos_coef.grad.abs().sum() > 0


def test_tables_are_cached_and_invalidated_by_load_state_dict():
    pe = fope.pos.build("fope", head_dim=16, n_heads=2, train_len=32, sigma=0.3)
    q = torch.randn(1, 2, 4, 16)
    pos = torch.arange(4)
    first = pe.rotate(q, q, pos)[0]
    ((key, (_, (cos_t, _))),) = pe.tables._entries.items()
    pe.rotate(q, q, pos)
    assert pe.tables._entries[key][1][0] is cos_t  # no re-mixing on the second forward
    other = fope.pos.build("fope", head_dim=16, n_heads=2, train_len=32, sigma=0.3)
    pe.load_state_dict(other.state_dict())
    assert_close(pe.rotate(q, q, pos)[0], other.rotate(q, q, pos)[0], rtol=0, atol=0)
    assert not torch.equal(first, pe.rotate(q, q, pos)[0])
    # positions beyond the table grow it and equal the direct computation
    far = torch.tensor([3, 5000])
    cos_direct, sin_direct = pe.mixed_tables(far, pe.inv_freq, 1.0)
    cos_tab, sin_tab = pe.half_tables(far)
    assert_close(sin_tab, sin_direct)
    assert_close(cos_tab, cos_direct)


def test_bf16_autocast_returns_input_dtype_with_fp32_math():
    pe = fope.pos.build("fope", head_dim=16, n_heads=4, n_kv_heads=2, train_len=512)
    q, k = torch.randn(2, 4, 5, 16).bfloat16(), torch.randn(2, 2, 5, 16).bfloat16()
    pos = torch.arange(400, 405)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got_q, got_k = pe.rotate(q, k, pos)
    assert got_q.dtype == got_k.dtype == torch.bfloat16
    want_q, want_k = pe.rotate(q.float(), k.float(), pos)
    assert_close(got_q, want_q.bfloat16(), rtol=0, atol=0)
    assert_close(got_k, want_k.bfloat16(), rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------------------
# continual training: coefficient expansion


def test_resize_coefficients_expand_zero_and_truncate():
    old_mod = fope.pos.build("fope", head_dim=64, n_heads=8, train_len=512, sigma=0.3)  # (8, 16, 16)
    new_mod = fope.pos.build("fope", head_dim=64, n_heads=8, train_len=1024, sigma=0.0)  # (8, 18, 16)
    old = old_mod.sin_coef
    expanded = resize_coefficients(old, new_mod, mode="expand")
    assert expanded.shape == (8, 18, 16)
    assert_close(expanded[:, :16, :16], old, rtol=0, atol=0)
    eye = torch.from_numpy(np_step_eye(18, 16)).float()
    assert_close(expanded[:, 16:], eye[16:].expand(8, -1, -1), rtol=0, atol=0)  # fresh init (σ = 0: step-eye)
    zero = resize_coefficients(old, new_mod, mode="zero")
    assert_close(zero[:, :16], old, rtol=0, atol=0)
    assert torch.count_nonzero(zero[:, 16:]) == 0
    truncated = resize_coefficients(expanded, old_mod, mode="zero")
    assert_close(truncated, expanded[:, :16, :16], rtol=0, atol=0)
    with pytest.raises(ValueError, match="mode must be 'expand' or 'zero', got 'grow'"):
        resize_coefficients(old, new_mod, mode="grow")
    with pytest.raises(ValueError, match=r"cannot resize coefficients of shape \(4, 16, 16\)"):
        resize_coefficients(old[:4], new_mod)


def test_resize_state_dict_loads_into_a_longer_model():
    def model(train_len):
        return nn.ModuleDict(
            {
                "layer0": fope.pos.build("fope", head_dim=64, n_heads=8, train_len=train_len),
                "layer1": fope.pos.build("fope", head_dim=64, n_heads=8, train_len=train_len),
            }
        )

    short, long = model(512), model(1024)
    sd = resize_state_dict(short.state_dict(), long, mode="expand")
    long.load_state_dict(sd)
    assert_close(long["layer1"].cos_coef[:, :16], short["layer1"].cos_coef, rtol=0, atol=0)
    assert resize_state_dict({}, long) == {}  # RoPE checkpoint: nothing to resize, fresh init stays


# ---------------------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigma": -0.1}, "sigma must be a finite number >= 0, got -0.1"),
        ({"sigma": "0.3"}, "sigma must be a finite number >= 0, got '0.3'"),
        ({"sigma": float("nan")}, "sigma must be a finite number >= 0, got nan"),
        ({"pad": "two"}, "pad must be 'one' or 'zero', got 'two'"),
        ({"out_dim": "half"}, "out_dim must be 'cap' or 'full', got 'half'"),
        ({"init": "orthogonal"}, "unknown init 'orthogonal'"),
        ({"freq_dim": 33}, "freq_dim must be an even int >= 0, got 33"),
        ({"learnable": "yes"}, "learnable must be a bool, got 'yes'"),
        ({"sigmaa": 0.3}, "unknown option 'sigmaa'.*did you mean 'sigma'"),
        ({"n_kv_heads": 3}, "n_heads=4 is not a multiple of n_kv_heads=3"),
        ({"head_dim": 15}, "head_dim must be even.*15"),
        ({"train_len": None}, "clip_floor=True needs train_len"),
        ({"train_len": 2}, r"no mixed frequency left \(D_in=0"),
        ({"scaling": {"rope_type": "linear"}}, r"missing required key\(s\) \['factor'\]"),
    ],
)
def test_bad_arguments_raise_naming_the_value(kwargs, match):
    args = {"head_dim": 16, "n_heads": 4, "train_len": 512, **kwargs}
    with pytest.raises(ValueError, match=match):
        fope.pos.build("fope", **args)


def test_module_class_is_registered():
    assert fope.pos.get_class("fope") is FoPE
