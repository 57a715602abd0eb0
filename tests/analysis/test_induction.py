"""The repeated-random-tokens induction probe: exact scores of stand-in models, a real model against a direct
re-computation, the digit variant, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fope.analysis.induction import digit_token_ids, induction_report, probe_batch
from fope.eval import FopeAdapter
from fope.model import CausalLM, ModelConfig

V = 40


class _StandIn(nn.Module):
    vocab_size = V

    def new_cache(self):  # the adapter's contract; the probe never decodes incrementally
        raise AssertionError("not used")


class CopyLM(_StandIn):
    """One-token induction: after token a, predicts the token that followed the first earlier a."""

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(ids.shape[0], ids.shape[1], V)
        for b, row in enumerate(ids.tolist()):
            for t, tok in enumerate(row):
                prev = [i for i in range(t) if row[i] == tok]
                if prev:
                    out[b, t, row[prev[0] + 1]] = 30.0
        return out


class UniformLM(_StandIn):
    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros(ids.shape[0], ids.shape[1], V)


def test_probe_batch_repeats_each_row_after_the_gap():
    ids = probe_batch(range(5, 25), length=7, sequences=3, gap=4, seed=1)
    assert ids.shape == (3, 18)
    assert torch.equal(ids[:, :7], ids[:, 11:])
    assert int(ids.min()) >= 5 and int(ids.max()) < 25
    assert torch.equal(ids, probe_batch(range(5, 25), length=7, sequences=3, gap=4, seed=1))  # seeded
    assert not torch.equal(ids, probe_batch(range(5, 25), length=7, sequences=3, gap=4, seed=2))


def test_uniform_model_has_no_induction():
    rep = induction_report(FopeAdapter(UniformLM(), name="u"), token_ids=range(V), length=10, sequences=3)
    assert rep["nll_first"] == pytest.approx(math.log(V), abs=1e-6)
    assert rep["nll_repeat"] == pytest.approx(math.log(V), abs=1e-6)
    assert rep["induction_score"] == pytest.approx(0.0, abs=1e-6)
    assert rep["chance_nll"] == pytest.approx(math.log(V))


def test_copy_model_predicts_the_repeat_wherever_the_row_is_unambiguous():
    """Exact top-1 on the repeat: every position except those whose token recurs with another successor."""
    rep = induction_report(FopeAdapter(CopyLM(), name="c"), token_ids=range(V), length=12, sequences=4, gap=3, seed=0)
    ids = probe_batch(range(V), length=12, sequences=4, gap=3, seed=0)
    # independent expectation: at repeat position t the copy model predicts the successor of the first earlier
    # occurrence of ids[t]; count how often that is the true next token
    hits = []
    for row in ids.tolist():
        for t in range(15, 15 + 11):
            prev = [i for i in range(t) if row[i] == row[t]]
            hits.append(bool(prev) and row[prev[0] + 1] == row[t + 1])
    assert rep["top1_repeat"] == pytest.approx(np.mean(hits))
    assert rep["top1_repeat"] > 0.8 and rep["top1_first"] < 0.2 and rep["induction_score"] > 0


def test_real_model_matches_a_direct_computation():
    torch.manual_seed(0)
    model = CausalLM(ModelConfig(vocab_size=V, d_model=32, n_layers=2, n_heads=2, train_len=64, pe="rope")).eval()
    rep = induction_report(
        FopeAdapter(model, name="m"), token_ids=range(3, V), length=9, sequences=5, gap=2, seed=4, batch_size=2
    )
    ids = probe_batch(range(3, V), length=9, sequences=5, gap=2, seed=4)
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).double(), -1).numpy()
    x = ids.numpy()
    nll = -np.take_along_axis(logp[:, :-1], x[:, 1:, None], -1)[..., 0]  # (B, T-1)
    assert rep["nll_first"] == pytest.approx(nll[:, 0:8].mean(), abs=1e-5)
    assert rep["nll_repeat"] == pytest.approx(nll[:, 11:19].mean(), abs=1e-5)
    np.testing.assert_allclose(rep["nll_repeat_by_position"], nll[:, 11:19].mean(0), atol=1e-5)
    hits = logp[:, :-1].argmax(-1) == x[:, 1:]
    assert rep["top1_repeat"] == pytest.approx(hits[:, 11:19].mean())


def test_digit_token_ids():
    class Digits:
        def encode(self, text):
            return [ord(c) - 40 for c in text]

    assert digit_token_ids(Digits()) == [8, 9, 10, 11, 12, 13, 14, 15, 16, 17]

    class Split:
        def encode(self, text):
            return [1, 2]

    with pytest.raises(ValueError, match="digit '0' is 2 tokens"):
        digit_token_ids(Split())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"length": 1}, "length must be >= 2, got 1"),
        ({"sequences": 0}, "sequences must be >= 1, got 0"),
        ({"gap": -1}, "gap must be >= 0, got -1"),
        ({"token_ids": [3]}, "at least 2 ids, got 1"),
        ({"token_ids": [3, 99]}, r"token ids \[99\] outside the model's vocabulary of 40"),
    ],
)
def test_bad_input_names_the_value(kwargs, match):
    args = {"token_ids": range(V)} | kwargs
    with pytest.raises(ValueError, match=match):
        induction_report(FopeAdapter(UniformLM(), name="u"), **args)
