"""The pad experiment's claims (fope.reproduce.padstudy) on synthetic results: each verdict can go either way."""

from __future__ import annotations

from fope.reproduce.padstudy import pad_claims, pad_section
from fope.reproduce.verdicts import FAILS, HOLDS, NOISE

LENGTHS = [128, 256, 512, 1024, 2048, 4096]


def results(one_one, one_zero, zero_zero, zero_one, seeds=(0,)):
    runs = []
    for seed in seeds:
        for trained, own, other in (("one", one_one, one_zero), ("zero", zero_zero, zero_one)):
            served = {trained: own, ("zero" if trained == "one" else "one"): other}
            runs.append(
                {
                    "trained_pad": trained,
                    "seed": seed,
                    "ppl": {p: {str(n): v for n, v in zip(LENGTHS, served[p])} for p in served},
                }
            )
    return {
        "preset": "cpu-quick",
        "train_len": 256,
        "lengths": LENGTHS,
        "eval_tokens": 32768,
        "sigma": 0.3,
        "command": "python scripts/pad_experiment.py --out runs/pad --seeds 0",
        "runs": runs,
    }


def by_id(r):
    return {c.id: c.verdict for c in pad_claims(r)}


def test_served_with_the_other_pad():
    flat = [20.0, 18.0, 18.5, 19.0, 19.5, 20.0]
    worse = [v * 10 for v in flat]
    v = by_id(results(flat, worse, flat, worse))
    assert v["pad-one-served-zero"] == HOLDS and v["pad-zero-served-one"] == HOLDS
    v = by_id(results(flat, flat, flat, worse))
    assert v["pad-one-served-zero"] == NOISE and v["pad-zero-served-one"] == HOLDS
    better = [x * 0.5 for x in flat]
    assert by_id(results(flat, better, flat, worse))["pad-one-served-zero"] == FAILS


def test_which_pad_is_better():
    one = [20.0, 18.0, 19.0, 22.0, 26.0, 30.0]
    zero = [20.0, 18.0, 18.5, 19.0, 19.5, 20.0]
    v = by_id(results(one, one, zero, zero))
    assert v["pad-zero-below-one-16L"] == HOLDS and v["pad-one-below-zero-16L"] == FAILS
    assert v["pad-zero-below-one-1L"] == NOISE and v["pad-zero-flatter"] == HOLDS
    text = "\n".join(pad_section(results(one, one, zero, zero)))
    assert "| pad zero | pad zero | 18 | 18.5 | 19 | 19.5 | 20 |" not in text  # 0.5L column first
    assert "| pad zero | pad zero | 20 | 18 | 18.5 | 19 | 19.5 | 20 |" in text


def test_summary_numbers_come_from_the_results():
    from fope.reproduce.padstudy import pad_summary

    flat = [20.0, 18.0, 18.5, 19.0, 19.5, 20.0]
    text = pad_summary(results(flat, [v * 10 for v in flat], flat, [v * 3 for v in flat]))
    assert "18 -> 180 (x10) at L" in text and "20 -> 60 (x3) at 16L" in text
    assert text.count("holds") >= 2 and "\n" not in text


def test_committed_pad_claims_are_what_the_rules_compute():
    """docs/results/fope-pad/pad.json stores its claims; they are what pad_claims computes from its numbers now."""
    import json
    from pathlib import Path

    from fope.reproduce.padstudy import RESULTS_DIR, RESULTS_FILE

    path = Path(__file__).resolve().parents[2] / "docs" / "results" / RESULTS_DIR / RESULTS_FILE
    stored = json.loads(path.read_text())
    assert stored["claims"] == [c.to_dict() for c in pad_claims(stored)]
