"""The clip-only claims (FoPE against RoPE with FoPE's clip floor and no Fourier series) on synthetic results dicts:
no claim for a grid that does not list the variants, "not measured" until their runs exist, strict verdicts after."""

from __future__ import annotations

import copy

import pytest

from fope.reproduce import check_claims
from fope.reproduce.presets import CLIP_ONLY, CLIP_ONLY_VARIANTS, MAIN_PES, get_preset

L, TOP = 256, 4096


def cell(ratio: float, std: float = 0.01, n: int = 3) -> dict:
    agg = lambda m: {"mean": m, "std": std * m, "n": n}  # noqa: E731
    return {
        "ppl": {str(L): agg(20.0), str(TOP): agg(20.0 * ratio)},
        "ppl_wiki": {str(L): agg(40.0), str(TOP): agg(40.0 * ratio)},
        "ppl_ratio": {str(L): agg(1.0), str(TOP): {"mean": ratio, "std": std, "n": n}},
        "n_runs": n,
    }


def pk(at_l: float, beyond_l: float) -> dict:
    return {"passkey": {str(k): {"mean": at_l if k == L else beyond_l, "n": 1} for k in (L, 2 * L, 4 * L)}}


def results(pes=("rope", "fope", *CLIP_ONLY), **main) -> dict:
    return {
        "config": {"train_len": L, "pes": list(pes), "seeds": 3, "passkey_trials": 40, "other_corpus": "wiki"},
        "main": main,
    }


def verdicts(r: dict) -> dict:
    return {c.id: c for c in check_claims(r) if c.id.startswith("clip-only")}


def test_a_grid_without_the_variants_gets_no_clip_claim():
    assert verdicts(results(pes=MAIN_PES, rope=cell(1.6), fope=cell(1.1))) == {}


def test_not_measured_until_the_runs_exist():
    v = verdicts(results(rope=cell(1.6), fope=cell(1.1)))
    assert v["clip-only-ratio"].verdict == "not measured" and v["clip-only-passkey"].verdict == "not measured"
    assert v["clip-only-ratio"].measured.startswith(f"ppl({TOP})/ppl(L) at L={L}: FoPE 1.1 ± 0.01 (3 seeds); prope n/a")
    assert verdicts(results())["clip-only-ratio"].measured.startswith("ppl(16L)/ppl(L)")  # nothing run yet


def test_ratio_claim_is_strict_over_every_variant():
    r = results(rope=cell(1.6), fope=cell(1.1), prope=cell(1.5), hope=cell(1.5), fope_sigma0=cell(1.4))
    assert verdicts(r)["clip-only-ratio"].verdict == "holds"
    low = copy.deepcopy(r)
    low["main"]["hope"] = cell(1.0)  # one variant flatter than FoPE: the claim does not hold
    assert verdicts(low)["clip-only-ratio"].verdict == "does not hold"
    close = copy.deepcopy(r)
    close["main"]["fope_sigma0"] = cell(1.105)  # within the perplexity band
    assert verdicts(close)["clip-only-ratio"].verdict == "within noise"
    partial = copy.deepcopy(r)
    del partial["main"]["prope"]  # a variant not run yet: not measured, whatever the others say
    assert verdicts(partial)["clip-only-ratio"].verdict == "not measured"


def test_passkey_claim_compares_fope_with_the_best_variant():
    r = results(rope=cell(1.6), fope=cell(1.1), prope=cell(1.5), hope=cell(1.3), fope_sigma0=cell(1.4))
    assert verdicts(r)["clip-only-passkey"].verdict == "not measured"  # no passkey task yet
    r["passkey_variant"] = {"fope": pk(1.0, 0.9), "hope": pk(1.0, 0.2)}  # hope: the lowest ratio, the best
    v = verdicts(r)["clip-only-passkey"]
    assert v.verdict == "holds" and "hope" in v.measured
    r["passkey_variant"]["hope"] = pk(1.0, 0.95)
    assert verdicts(r)["clip-only-passkey"].verdict in ("does not hold", "within noise")
    r["passkey_variant"]["hope"] = pk(0.1, 0.0)  # does not retrieve within L: not tested
    assert verdicts(r)["clip-only-passkey"].verdict == "task not learnt, not tested"
    r["passkey_variant"] = {"fope": pk(1.0, 0.9), "prope": pk(1.0, 0.0)}  # not the best one: not measured
    assert verdicts(r)["clip-only-passkey"].verdict == "not measured"


def test_the_cpu_clip_preset_runs_the_comparison_at_the_cpu_budget():
    clip, cpu = get_preset("cpu-clip"), get_preset("cpu")
    assert clip.pes == ("rope", "fope", *CLIP_ONLY) and clip.seeds == 3 and clip.experiments == ("main",)
    assert clip.pe_variants == CLIP_ONLY_VARIANTS and CLIP_ONLY_VARIANTS["fope_sigma0"] == {"pe": "fope", "sigma": 0.0}
    for field in ("train_len", "steps", "global_batch", "lr", "length_factors", "eval_tokens", "passkey_scratch"):
        assert getattr(clip, field) == getattr(cpu, field), field
    assert clip.train_len * max(clip.length_factors) == 16 * 256


@pytest.mark.parametrize("variants", [{"x": {"pe": "nosuch"}}, {"x": "fope"}])
def test_bad_variants_are_one_line_naming_them(variants):
    from fope.reproduce.presets import GridPreset

    with pytest.raises(ValueError, match=r"pe_variants\['x'\] must be a dict with 'pe' one of"):
        GridPreset(pes=("rope", "fope", "x"), pe_variants=variants)


def test_one_seed_kind_without_committed_spread_borrows_the_stated_proxy_band():
    """A one-seed run of a kind the reference never ran (hope) is judged with the widest committed ratio std, named
    in the noise's source; never a None band (which would leave every threshold about it unjudged)."""
    from fope.reproduce.claims import noise_of
    from fope.reproduce.verdicts import NOISE_SE, REFERENCE

    one = results(rope=cell(1.6), fope=cell(1.1), hope=cell(1.3))
    for c in one["main"].values():
        for metric in ("ppl", "ppl_wiki", "ppl_ratio"):
            for agg in c[metric].values():
                agg["std"], agg["n"] = None, 1
    noise = noise_of(one)
    widest = max(REFERENCE.ratio_std.values())
    assert noise.ratio_band(one["main"]["hope"], "hope", "ppl_ratio", TOP) == NOISE_SE * widest
    assert noise.ratio_band(one["main"]["fope"], "fope", "ppl_ratio", TOP) == NOISE_SE * REFERENCE.ratio_std["fope"]
    assert f"proxy band from the widest committed ratio std (rope's {widest:.3g})" in noise.source
    assert "prope, fope_sigma0" not in noise.source and "hope without a committed seed spread" in noise.source
