"""The passkey split by the needle's distance from the question: a needle exactly L tokens away is at a distance
no training sequence of length L contains (query-key distances in training are 0..L-1), so it counts as "L or
farther", never as "closer than L"."""

from __future__ import annotations

from fope.eval.passkey import distance_counts


def test_a_needle_exactly_L_away_is_beyond():
    L = 256
    trials = [
        {"length": 512, "needle_distance": d, "correct": c}
        for d, c in ((L - 1, True), (L, True), (L, False), (L + 1, True), (0, False))
    ]
    trials.append({"length": 512, "needle_distance": None, "correct": True})  # no distance recorded: not counted
    assert distance_counts(trials, L) == {"512": {"within": [1, 2], "beyond": [2, 3]}}


def test_lengths_are_kept_apart():
    trials = [
        {"length": 8, "needle_distance": 3, "correct": True},
        {"length": 16, "needle_distance": 3, "correct": False},
    ]
    assert distance_counts(trials, 4) == {
        "8": {"within": [1, 1], "beyond": [0, 0]},
        "16": {"within": [0, 1], "beyond": [0, 0]},
    }
