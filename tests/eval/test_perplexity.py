"""Perplexity against length: exact values, token accounting, and independent re-derivations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fope.eval import FopeAdapter, perplexity_by_length, perplexity_report, tokens_from_texts
from fope.eval.perplexity import token_budget, windows

from .conftest import CumMeanLM, FailingLM, NaNLM, UniformLM

V = 37


def stream(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, size=n)


def ref_nll(model: CumMeanLM, context: np.ndarray, target: int) -> float:
    """-log p(target | context) from one uncached forward over the context, log-sum-exp in float64."""
    logits = model(torch.as_tensor(context)[None])[0, -1].double().detach().numpy()
    m = logits.max()
    return float(m + np.log(np.exp(logits - m).sum()) - logits[target])


def ref_chunks(model, toks, length):
    """The paper's protocol written out token by token: chunk c, target j in 1..L-1, context chunk[:j]."""
    nll, n = 0.0, 0
    for c in range(len(toks) // length):
        chunk = toks[c * length : (c + 1) * length]
        for j in range(1, length):
            nll += ref_nll(model, chunk[:j], chunk[j])
            n += 1
    return nll / n, n


def ref_sliding(model, toks, length, stride):
    """HF 'perplexity of fixed-length models' loop: score the tokens not yet scored in each full window."""
    nll, n, prev_end = 0.0, 0, 0
    for begin in range(0, len(toks) - length + 1, stride):
        end = begin + length
        for j in range(max(prev_end, begin + 1), end):
            nll += ref_nll(model, toks[begin:j], toks[j])
            n += 1
        prev_end = end
    return nll / n, n


@pytest.mark.parametrize("mode", ["chunks", "sliding"])
def test_uniform_logits_give_vocab_size(mode):
    model = FopeAdapter(UniformLM(V))
    ppl = perplexity_by_length(model, stream(256), [8, 16, 32], mode=mode, progress=False)
    assert list(ppl) == [8, 16, 32]
    for value in ppl.values():
        assert value == pytest.approx(V, rel=1e-6)


@pytest.mark.parametrize("length", [8, 16])
def test_chunks_equal_token_by_token_reference(length):
    lm = CumMeanLM(V)
    toks = stream(64, seed=1)
    rep = perplexity_report(FopeAdapter(lm), toks, [length], progress=False)[length]
    ce, n = ref_chunks(lm, toks, length)
    assert rep.n_tokens == n == (64 // length) * (length - 1)
    assert rep.n_windows == 64 // length
    assert rep.mean_ce == pytest.approx(ce, rel=1e-6)
    assert rep.ppl == pytest.approx(math.exp(ce), rel=1e-6)


@pytest.mark.parametrize("length,stride", [(16, 4), (16, 8), (16, 15), (8, 3)])
def test_sliding_equals_hf_loop_reference(length, stride):
    lm = CumMeanLM(V)
    toks = stream(64, seed=2)
    rep = perplexity_report(
        FopeAdapter(lm), toks, [length], mode="sliding", stride=stride, batch_size=3, progress=False
    )[length]
    ce, n = ref_sliding(lm, toks, length, stride)
    assert rep.n_tokens == n
    assert rep.mean_ce == pytest.approx(ce, rel=1e-6)


def test_sliding_scores_every_token_once():
    n, length, stride = 100, 16, 5
    scored = []
    for start, first in windows(n, length, stride):
        scored += [start + j for j in range(first, length)]
    last_end = max(s for s, _ in windows(n, length, stride)) + length
    assert sorted(scored) == list(range(1, last_end))  # each target exactly once, token 0 never


def test_sliding_with_stride_equal_to_length_is_chunks():
    lm = FopeAdapter(CumMeanLM(V))
    toks = stream(96, seed=3)
    chunks = perplexity_report(lm, toks, [8, 16, 32], progress=False)
    for length, rep in chunks.items():
        sliding = perplexity_report(lm, toks, [length], mode="sliding", stride=length, progress=False)[length]
        assert sliding == rep


def test_batching_does_not_change_the_result():
    lm = FopeAdapter(CumMeanLM(V))
    toks = stream(128, seed=4)
    one = perplexity_report(lm, toks, [8, 16], batch_size=1, progress=False)
    many = perplexity_report(lm, toks, [8, 16], batch_size=5, progress=False)
    for length in one:
        assert many[length].n_tokens == one[length].n_tokens
        assert many[length].mean_ce == pytest.approx(one[length].mean_ce, rel=1e-6)


def test_every_length_reads_the_same_token_budget():
    lm = FopeAdapter(UniformLM(V))
    rep = perplexity_report(lm, stream(200), [8, 16, 64], progress=False)
    # 200 tokens -> 192 (3 chunks of the largest length), read by every length
    assert {L: r.n_windows * L for L, r in rep.items()} == {8: 192, 16: 192, 64: 192}
    assert {L: r.n_tokens for L, r in rep.items()} == {8: 24 * 7, 16: 12 * 15, 64: 3 * 63}
    rep = perplexity_report(lm, stream(1000), [8, 64], max_chunks=2, progress=False)
    assert {L: r.n_windows for L, r in rep.items()} == {8: 16, 64: 2}
    assert token_budget(1000, [8, 64], max_tokens=300) == 256


def test_tensor_and_memmap_inputs(tmp_path):
    toks = stream(64)
    path = tmp_path / "val.bin"
    toks.astype(np.uint16).tofile(path)
    mm = np.memmap(path, dtype=np.uint16, mode="r")
    lm = FopeAdapter(CumMeanLM(V))
    a = perplexity_by_length(lm, mm, [16], progress=False)
    b = perplexity_by_length(lm, torch.as_tensor(toks), [16], progress=False)
    assert a == b


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"mode": "strided"}, "unknown mode 'strided'"),
        ({"stride": 4}, "stride=4 applies to mode='sliding'"),
        ({"mode": "sliding", "stride": 40}, "stride must be in"),
        ({"max_chunks": 1, "max_tokens": 64}, "not both"),
        ({"max_tokens": 10}, "max_tokens=10 is smaller"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        perplexity_report(FopeAdapter(UniformLM(V)), stream(64), [16, 32], progress=False, **kwargs)


def test_bad_streams_raise():
    lm = FopeAdapter(UniformLM(V))
    with pytest.raises(ValueError, match="fewer than the largest length 64"):
        perplexity_by_length(lm, stream(50), [64], progress=False)
    with pytest.raises(ValueError, match="outside the model's vocabulary of 37"):
        perplexity_by_length(lm, np.array([0, 5, 37, 1] * 8), [8], progress=False)
    with pytest.raises(ValueError, match="1-D"):
        perplexity_by_length(lm, np.zeros((2, 32), dtype=np.int64), [8], progress=False)
    with pytest.raises(ValueError, match=r"lengths must be >= 2, got \[1\]"):
        perplexity_by_length(lm, stream(64), [1, 8], progress=False)


def test_failing_and_nan_models_raise():
    with pytest.raises(RuntimeError, match="boom"):
        perplexity_by_length(FopeAdapter(FailingLM(V)), stream(64), [16], progress=False)
    with pytest.raises(FloatingPointError, match="NaN logits at length 16"):
        perplexity_by_length(FopeAdapter(NaNLM(V)), stream(64), [16], progress=False)


def test_wrong_logits_shape_raises():
    class Short(UniformLM):
        def forward(self, ids, cache=None):
            return torch.zeros(ids.shape[0], ids.shape[1], self.vocab_size - 1)

    with pytest.raises(ValueError, match=r"logits of shape \(1, 15, 36\), expected \(1, 15, 37\)"):
        perplexity_by_length(FopeAdapter(Short(V)), stream(64), [16], progress=False)


def test_tokens_from_texts_joins_documents_with_eos(tok):
    docs = ["The sky is blue.", "Here we go."]
    toks = tokens_from_texts(docs, tok)
    expected = [*tok.encode(docs[0]), tok.eos_id, *tok.encode(docs[1]), tok.eos_id]
    assert toks.tolist() == expected
    assert tokens_from_texts(docs, tok, max_tokens=3).tolist() == expected[:3]
