"""The real embedded corpora (`fope data fetch`); skipped with a reason when the cache is missing."""

from __future__ import annotations

import pytest

from fope.data.corpora import get_corpus

pytestmark = pytest.mark.data


def test_cache_matches_manifest(fetched_cache):
    from fope.data.fetch import verify_cache

    verify_cache()


def test_books_documents(fetched_cache):
    corpus = get_corpus("books")
    docs = dict(corpus.named_docs())
    parts = {}
    for key in docs:
        parts[key.split("/")[0]] = parts.get(key.split("/")[0], 0) + 1
    assert parts == {"shakespeare": 42, "milton": 7, "kjv": 66, "sotu": 249}
    genesis = "Genesis\n\nChapter 1\nIn the beginning God created the heaven and the earth."
    assert docs["kjv/Genesis"].startswith(genesis)
    assert docs["shakespeare/hamlet"].startswith("HAMLET, PRINCE OF DENMARK")
    val = [k for k, _ in corpus.named_docs("val")]
    train = [k for k, _ in corpus.named_docs("train")]
    assert len(val) + len(train) == 364 and not set(val) & set(train)
    assert sum(len(docs[k]) for k in val) > 1_000_000  # > 200k tokens held out: dozens of 8k chunks
    assert all("\r" not in t for t in docs.values())


def test_wiki_documents(fetched_cache):
    corpus = get_corpus("wiki")
    n_train = sum(1 for _ in corpus.docs("train"))
    n_val = sum(1 for _ in corpus.docs("val"))
    assert n_train + n_val == 10033
    assert 0.17 < n_val / 10033 < 0.23
