"""fope.data.synthetic: retrieval documents never use the passkey test's filler and fit the training length."""

from __future__ import annotations

import random
import re

import pytest

from fope.data import synthetic as S

from .conftest import SAMPLE_DOCS

TEST_GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."


def test_test_filler_constant_matches_the_passkey_eval():
    from fope.eval import passkey

    assert passkey.GARBAGE == TEST_GARBAGE
    assert " ".join(S.TEST_FILLER_SENTENCES) == TEST_GARBAGE
    assert passkey.NEEDLE == S.NEEDLE and passkey.QUESTION == S.QUESTION and passkey.TASK == S.TASK


def test_document_layout():
    doc = S.retrieval_document(key=31415, prefix=["A b c d."], suffix=["E f g h.", "I j k."])
    assert doc.split("\n") == [
        S.TASK,
        "A b c d.",
        "The pass key is 31415. Remember it. 31415 is the pass key.",
        "E f g h. I j k.",
        "What is the pass key? The pass key is 31415.",
    ]
    with pytest.raises(ValueError, match="key 0"):
        S.retrieval_document(key=0, prefix=[], suffix=[])


def test_split_sentences_filters_numbers_keys_and_test_filler():
    text = (
        "This sentence is long enough to be used as filler. It has 3 digits in 2024 so no. "
        "The grass is green and so is this long sentence here. Remember the pass key for later use please. "
        "short. Another perfectly ordinary sentence that is quite fine!"
    )
    assert S.split_sentences(text) == [
        "This sentence is long enough to be used as filler.",
        "Another perfectly ordinary sentence that is quite fine!",
    ]


def test_reservoir_is_seeded_and_falls_back():
    docs = [f"Sentence about the topic number {'abcdefghij'[i % 10]} that is long enough here. " * 3 for i in range(50)]
    a = S.filler_sentences(docs, size=20, seed=1)
    assert a == S.filler_sentences(docs, size=20, seed=1)
    assert S.filler_sentences(["Too few."]) == list(S.FALLBACK_SENTENCES)
    assert not any(re.search(r"\d", s) for s in S.FALLBACK_SENTENCES)


@pytest.mark.parametrize("max_len", [200, 320, 600])
def test_token_documents_fit_and_never_use_test_filler(tiny_tokenizer, max_len):
    sentences = S.filler_sentences(SAMPLE_DOCS * 30) + list(S.FALLBACK_SENTENCES)
    docs = S.retrieval_token_documents(tiny_tokenizer, sentences, n_tokens=3000, max_len=max_len, seed=3)
    assert sum(len(d) + 1 for d in docs) >= 3000
    for ids in docs:
        assert len(ids) < max_len
        text = tiny_tokenizer.decode(ids)
        for s in S.TEST_FILLER_SENTENCES:
            assert s not in text
        key = re.search(r"The pass key is (\d+)\. Remember it\.", text).group(1)
        assert text.endswith(f"What is the pass key? The pass key is {key}.")
        assert 1 <= int(key) <= 50000
        assert re.findall(r"\d+", text) == [key] * 3  # the key is the only number (needle twice, answer)
    assert docs == S.retrieval_token_documents(tiny_tokenizer, sentences, n_tokens=3000, max_len=max_len, seed=3)
    lengths = [len(d) for d in docs]
    frame = len(tiny_tokenizer.encode(S.retrieval_document(key=50000, prefix=[], suffix=[])))
    span = max_len - frame  # lengths spread over [frame, max_len)
    assert max(lengths) > frame + 0.7 * span and min(lengths) < frame + 0.4 * span


def test_too_short_train_len_is_rejected(tiny_tokenizer):
    with pytest.raises(ValueError, match="train_len 10"):
        S.retrieval_token_documents(tiny_tokenizer, S.FALLBACK_SENTENCES, n_tokens=10, max_len=10)


def test_needle_depth_covers_both_ends():
    rng = random.Random(0)
    cuts = set()
    for _ in range(300):
        text, _ = S.sample_retrieval_document(rng, S.FALLBACK_SENTENCES, 4)
        lines = text.split("\n")
        cuts.add((lines[1] == "", lines[3] == ""))
    assert (True, False) in cuts and (False, True) in cuts and (False, False) in cuts
