"""Passkey retrieval: prompt format and length targeting, depths, scoring, seeding, failures."""

from __future__ import annotations

import random

import pytest

from fope.eval import FopeAdapter, garbage_for_target, passkey_eval, passkey_prompt
from fope.eval import passkey as pk

from .conftest import FailingLM, KeyCopyLM, ReversedKeyLM, UniformLM


def test_prompt_is_the_five_spec_lines():
    prompt = passkey_prompt(300, 4242, 100)
    lines = prompt.split("\n")
    assert lines[0] == (
        "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
        "I will quiz you about the important information there."
    )
    assert lines[2] == "The pass key is 4242. Remember it. 4242 is the pass key."
    assert lines[4] == "What is the pass key? The pass key is"
    assert len(lines) == 5 and len(lines[1]) == 100 and len(lines[3]) == 200
    sentence = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
    infinite = " ".join([sentence] * 10)
    assert lines[1] == infinite[:100] and lines[3] == infinite[:200]  # both halves start at the sentence start
    with pytest.raises(ValueError, match="prefix_chars=301 outside"):
        passkey_prompt(300, 1, 301)


@pytest.mark.parametrize("target", [128, 256, 512, 1000])
def test_prompt_lands_just_under_each_target(tok, target):
    n = garbage_for_target(tok, target)
    assert n % 128 == 0

    def count(chars):
        return len(tok.encode(passkey_prompt(chars, pk.CALIBRATION_KEY, chars // 2)))

    assert count(n) < target <= count(n + 128)
    # independent linear scan over 128-character steps gives the same n
    scan = 0
    while count(scan + 128) < target:
        scan += 128
    assert scan == n


def test_too_short_target_raises(tok):
    with pytest.raises(ValueError, match="target length 20 tokens is too short"):
        garbage_for_target(tok, 20)


def test_key_copy_model_scores_perfectly(tok):
    model = FopeAdapter(KeyCopyLM(tok))
    res = passkey_eval(model, tok, [128, 256], trials=4, seed=3, mode="both", progress=False)
    assert res["by_length"] == {128: 1.0, 256: 1.0}
    assert res["metric"] == "generate"
    lik = res["likelihood"]
    assert lik["top1"]["by_length"] == {128: 1.0, 256: 1.0}
    assert lik["mrr"]["by_length"] == {128: 1.0, 256: 1.0}
    assert all(m > 5 for m in lik["margin"]["by_length"].values())
    for t in res["trials"]:
        assert t["generated"] == f" {t['key']}." and t["predicted"] == t["key"] and t["correct"] is True
        assert t["rank"] == 1 and t["n_candidates"] == (10 if t["key"] >= 10 else 9)
        assert t["prompt_tokens"] < t["length"] + 3  # calibrated on another key/split: a few tokens of slack


def test_uniform_model_scores_zero_and_ties_count_against_the_key(tok):
    model = FopeAdapter(UniformLM(tok.vocab_size))
    res = passkey_eval(model, tok, [128], trials=3, seed=0, mode="both", progress=False)
    assert res["by_length"] == {128: 0.0}
    assert res["likelihood"]["top1"]["by_length"] == {128: 0.0}
    assert all(t["predicted"] is None or t["predicted"] != t["key"] for t in res["trials"])


def test_depth_grid_places_the_needle(tok):
    model = FopeAdapter(KeyCopyLM(tok))
    res = passkey_eval(model, tok, [256], trials=2, seed=1, depths="grid", progress=False)
    n = res["n_garbage"][256]
    trials = res["trials"]
    assert [t["depth"] for t in trials] == [0.0, 0.0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0, 1.0]
    for t in trials:
        assert t["prefix_chars"] == round(t["depth"] * n)
        prompt = passkey_prompt(n, t["key"], t["prefix_chars"])
        needle_at = prompt.index(f"The pass key is {t['key']}.")
        assert needle_at == len(pk.TASK) + 1 + t["prefix_chars"] + 1
    assert res["by_length_depth"] == {256: {0.0: 1.0, 0.25: 1.0, 0.5: 1.0, 0.75: 1.0, 1.0: 1.0}}
    assert res["counts"] == {256: {d: 2 for d in pk.DEPTH_GRID}}


def test_custom_depths_and_uniform_bins(tok):
    model = FopeAdapter(UniformLM(tok.vocab_size))
    res = passkey_eval(model, tok, [128], trials=1, depths=[0.1, 0.9], progress=False)
    assert list(res["by_length_depth"][128]) == [0.1, 0.9]
    res = passkey_eval(model, tok, [128], trials=12, seed=5, depth_bins=4, progress=False)
    counts = res["counts"][128]
    assert sum(counts.values()) == 12 and set(counts) <= {0.125, 0.375, 0.625, 0.875}
    for t in res["trials"]:
        assert 0 <= t["prefix_chars"] <= t["n_garbage"] and t["depth"] == t["prefix_chars"] / t["n_garbage"]


def test_seeded_keys_follow_the_reference_rng_and_do_not_depend_on_other_lengths(tok):
    model = FopeAdapter(UniformLM(tok.vocab_size))
    both = passkey_eval(model, tok, [128, 256], trials=3, seed=11, progress=False)
    alone = passkey_eval(model, tok, [256], trials=3, seed=11, progress=False)
    assert [t for t in both["trials"] if t["length"] == 256] == alone["trials"]
    rng = random.Random(11)  # the order of the official script: prefix, then key
    n = alone["n_garbage"][256]
    expected = [(rng.randint(0, n), rng.randint(1, 50000)) for _ in range(3)]
    assert [(t["prefix_chars"], t["key"]) for t in alone["trials"]] == expected


def test_likelihood_only_mode_reports_top1_as_main_metric(tok):
    model = FopeAdapter(KeyCopyLM(tok))
    res = passkey_eval(model, tok, [128], trials=2, mode="likelihood", progress=False)
    assert res["metric"] == "likelihood_top1" and res["generate"] is None
    assert res["by_length"] == {128: 1.0}
    assert all(t["generated"] is None for t in res["trials"])


def test_distractor_keys():
    rng = random.Random(0)
    d = pk.distractor_keys(31415, 9, rng)
    assert len(d) == 9 and len(set(d)) == 9 and 31415 not in d and all(10000 <= k <= 99999 for k in d)
    assert sorted(pk.distractor_keys(7, 9, rng)) == [1, 2, 3, 4, 5, 6, 8, 9]  # only 8 one-digit keys remain


def test_digit_scores():
    assert pk.digit_scores(31415, 31415) == (1.0, 1.0)
    assert pk.digit_scores(31415, 51413) == (0.6, 1.0)  # 1, 4, 1 in place; the same five digits
    assert pk.digit_scores(31235, 13135) == (0.4, 0.8)  # only the last 3 and 5 in place; the 2 missing
    assert pk.digit_scores(4082, 408) == (0.75, 0.75)  # a digit short
    assert pk.digit_scores(7, None) == (0.0, 0.0)
    assert pk.digit_scores(12, 123456) == (1.0, 1.0)  # extra digits are not penalised by either score


def test_digit_scores_of_a_model_that_reverses_the_key(tok):
    """Exact per-length means against a re-derivation from the keys alone."""
    res = passkey_eval(FopeAdapter(ReversedKeyLM(tok)), tok, [128, 256], trials=6, seed=5, progress=False)
    gen = res["generate"]
    for L in (128, 256):
        keys = [str(t["key"]) for t in res["trials"] if t["length"] == L]
        got = [int(k[::-1]) for k in keys]  # what the model emits, leading zeros dropped by int()
        assert [t["predicted"] for t in res["trials"] if t["length"] == L] == got
        in_place = [sum(a == b for a, b in zip(k, str(g))) / len(k) for k, g in zip(keys, got)]
        present = [sum(min(k.count(d), str(g).count(d)) for d in "0123456789") / len(k) for k, g in zip(keys, got)]
        assert gen["digits_in_place"]["by_length"][L] == pytest.approx(sum(in_place) / len(keys), abs=1e-12)
        assert gen["digits_present"]["by_length"][L] == pytest.approx(sum(present) / len(keys), abs=1e-12)
        assert res["by_length"][L] == sum(k == k[::-1] for k in keys) / len(keys)  # palindromes only
    assert max(gen["digits_present"]["by_length"].values()) > max(gen["digits_in_place"]["by_length"].values())


def test_first_integer():
    assert pk.first_integer(" 123. 456") == 123
    assert pk.first_integer(" the key 0042") == 42
    assert pk.first_integer("none") is None


def test_failing_model_raises_instead_of_scoring_wrong(tok):
    with pytest.raises(RuntimeError, match="boom"):
        passkey_eval(FopeAdapter(FailingLM(tok.vocab_size)), tok, [128], trials=2, progress=False)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"mode": "beam"}, "unknown mode 'beam'"),
        ({"trials": 0}, "trials must be >= 1"),
        ({"depths": "middle"}, "depths must be 'uniform', 'grid'"),
        ({"depths": [0.5, 1.5]}, r"in \[0, 1\], got \[0.5, 1.5\]"),
    ],
)
def test_bad_arguments_raise(tok, kwargs, match):
    args = {"trials": 1, "progress": False} | kwargs
    with pytest.raises(ValueError, match=match):
        passkey_eval(FopeAdapter(UniformLM(tok.vocab_size)), tok, [128], **args)


def test_needle_distance(tok):
    """Tokens from the needle's last token to the prompt's last: falls as the needle moves towards the question,
    and with no filler after the needle it is the question line's length; every trial records it."""
    from fope.eval.passkey import QUESTION, distance_counts, needle_distance

    n_garbage, key = 600, 31415
    dists = []
    for prefix in (0, 150, 300, 450, 600):
        ids = tok.encode(passkey_prompt(n_garbage, key, prefix))
        dists.append(needle_distance(tok, ids, n_garbage, key, prefix))
    assert dists == sorted(dists, reverse=True) and dists[0] > dists[-1]
    assert abs(dists[-1] - len(tok.encode("\n\n" + QUESTION))) <= 1
    assert dists[0] < len(tok.encode(passkey_prompt(n_garbage, key, 0)))
    res = passkey_eval(FopeAdapter(KeyCopyLM(tok)), tok, [128, 256], trials=6, seed=2, progress=False)
    assert all(
        t["needle_distance"] is not None and 0 < t["needle_distance"] < t["prompt_tokens"] for t in res["trials"]
    )
    counts = distance_counts(res["trials"], 100)
    for n in ("128", "256"):
        assert counts[n]["within"][1] + counts[n]["beyond"][1] == 6
        assert counts[n]["within"][0] == counts[n]["within"][1]  # the key-copying model finds every key
    far = [t for t in res["trials"] if t["needle_distance"] >= 100]
    assert counts["256"]["beyond"][1] == sum(t["length"] == 256 for t in far)
