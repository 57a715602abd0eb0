"""fope.data.corpora: split rule, local text/jsonl/parquet (through `datasets`, like the hub path), token files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fope.data import corpora as C
from fope.data.corpora import get_corpus, split_of

from .conftest import SAMPLE_DOCS


def test_split_of_is_deterministic_and_close_to_fraction():
    keys = [f"doc-{i}" for i in range(20000)]
    first = [split_of(k, 0.05) for k in keys]
    assert first == [split_of(k, 0.05) for k in keys]
    share = first.count("val") / len(keys)
    assert 0.04 < share < 0.06
    assert all(split_of(k, 0.0) == "train" for k in keys[:100])
    # a larger fraction only moves documents from train to val (the rule is a threshold)
    assert all(split_of(k, 0.2) == "val" for k, s in zip(keys, first) if s == "val")


def _write_txt_folder(root: Path, docs) -> None:
    root.mkdir(parents=True)
    for i, d in enumerate(docs):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(exist_ok=True)
        (sub / f"doc{i}.txt").write_text(d + "\n")


def test_txt_folder_one_file_per_document(tmp_path):
    docs = [f"Document number {i}. " + SAMPLE_DOCS[i % len(SAMPLE_DOCS)] for i in range(40)]
    _write_txt_folder(tmp_path / "txt", docs)
    corpus = get_corpus(tmp_path / "txt", val_fraction=0.25)
    train, val = list(corpus.docs("train")), list(corpus.docs("val"))
    assert sorted(train + val) == sorted(docs)
    assert val and train
    want_val = {d for i, d in enumerate(docs) if split_of(f"{'a' if i % 2 else 'b'}/doc{i}.txt", 0.25) == "val"}
    assert set(val) == want_val
    assert list(corpus.documents("val")) == val
    named = list(corpus.named_docs("val"))  # every corpus names its documents (fope.hf.finetune.make_chat_data)
    assert [text for _, text in named] == val
    assert [key for key, _ in named] == [f"{corpus.name}#{i}" for i in range(len(val))]


def test_single_txt_file_is_one_document(tmp_path):
    p = tmp_path / "one.txt"
    p.write_text("Line one.\n\nLine two.\r\n")
    corpus = get_corpus(p, val_fraction=0.0)
    assert list(corpus.docs("train")) == ["Line one.\n\nLine two."]
    assert list(corpus.docs("val")) == []


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_table_files_through_datasets(tmp_path, fmt):
    pytest.importorskip("datasets")
    docs = [f"Record {i}: " + SAMPLE_DOCS[i % len(SAMPLE_DOCS)] for i in range(60)]
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(docs)))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"text": docs, "id": list(range(len(docs)))}), path)
    corpus = get_corpus(path, val_fraction=0.2)
    assert isinstance(corpus, C.DatasetsCorpus)
    train, val = list(corpus.docs("train")), list(corpus.docs("val"))
    assert train == [d for d in docs if split_of(d, 0.2) == "train"]
    assert val == [d for d in docs if split_of(d, 0.2) == "val"]
    assert len(list(get_corpus(path, val_fraction=0.2, max_docs=5).docs("train"))) == 5


def test_explicit_train_val_folders(tmp_path):
    pytest.importorskip("datasets")
    root = tmp_path / "d"
    (root / "train").mkdir(parents=True)
    (root / "validation").mkdir()
    (root / "train" / "x.jsonl").write_text(json.dumps({"text": "train doc"}) + "\n")
    (root / "train" / "y.txt").write_text("train text file")
    (root / "validation" / "z.jsonl").write_text(json.dumps({"text": "held out"}) + "\n")
    corpus = get_corpus(root)
    assert sorted(corpus.docs("train")) == ["train doc", "train text file"]
    assert list(corpus.docs("val")) == ["held out"]


def test_missing_text_field_is_named(tmp_path):
    pytest.importorskip("datasets")
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"content": "x"}) + "\n")
    with pytest.raises(KeyError, match="'text'"):
        list(get_corpus(p).docs("train"))


def test_hub_corpus_shares_the_local_code_path(tmp_path, monkeypatch):
    """c4 through the real hub code, with datasets.load_dataset redirected to local json files."""
    datasets = pytest.importorskip("datasets")

    files = {}
    for hub_split, docs in {"train": ["c4 train a", "c4 train b"], "validation": ["c4 val"]}.items():
        files[hub_split] = tmp_path / f"{hub_split}.jsonl"
        files[hub_split].write_text("".join(json.dumps({"text": d, "url": "u"}) + "\n" for d in docs))
    calls = []
    real = datasets.load_dataset

    def fake_load_dataset(path, name=None, *, split, streaming, revision=None, **kw):
        calls.append((path, name, split, streaming))
        return real("json", data_files=str(files[split]), split="train", streaming=True)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    corpus = get_corpus("c4")
    assert list(corpus.docs("train")) == ["c4 train a", "c4 train b"]
    assert list(corpus.docs("val")) == ["c4 val"]
    assert calls == [("allenai/c4", "en", "train", True), ("allenai/c4", "en", "validation", True)]
    get_corpus("pg19")  # resolves without loading anything
    assert C.HUB_CORPORA["pg19"]["path"] == "emozilla/pg19"


def test_hub_load_fails_fast_offline():
    pytest.importorskip("datasets")
    with pytest.raises(Exception):  # noqa: B017 - offline (HF_DATASETS_OFFLINE=1) the hub client raises any of many types
        next(iter(get_corpus("c4", max_docs=1).docs("val")))


def test_npy_token_files_raw_and_with_header(tmp_path):
    raw = np.arange(1000, dtype=np.uint16)
    raw.tofile(tmp_path / "part-0.npy")  # OLMo style: no header
    np.save(tmp_path / "withheader.npy", np.arange(50, dtype=np.uint32))
    corpus = get_corpus(tmp_path / "part-0.npy", val_fraction=0.0)
    assert corpus.tokenized
    np.testing.assert_array_equal(np.concatenate(list(corpus.tokens("train"))), raw)
    np.testing.assert_array_equal(C.open_token_file(tmp_path / "withheader.npy"), np.arange(50))
    with pytest.raises(TypeError, match="pre-tokenised"):
        next(iter(corpus.docs("train")))
    # block split: every token lands in exactly one split, blocks stay contiguous
    big = np.arange(10 * 256, dtype=np.uint16)
    big.tofile(tmp_path / "big.bin")
    tc = C.TokenCorpus([tmp_path / "big.bin"], name="big", block_tokens=256, val_fraction=0.3)
    tr, va = list(tc.tokens("train")), list(tc.tokens("val"))
    assert len(tr) + len(va) == 10 and va
    np.testing.assert_array_equal(np.sort(np.concatenate(tr + va)), big)


def test_odd_sized_raw_token_file_is_rejected(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"\x00\x01\x02")
    with pytest.raises(ValueError, match="not a multiple"):
        C.open_token_file(tmp_path / "x.bin")


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nosuch"):
        get_corpus("nosuch")
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(ValueError, match=r"x.csv"):
        get_corpus(tmp_path / "x.csv")
    with pytest.raises(ValueError, match="split"):
        next(get_corpus(tmp_path / "x.csv" if False else _one_txt(tmp_path)).docs("test"))
    with pytest.raises(ValueError, match="val_fraction"):
        get_corpus(_one_txt(tmp_path), val_fraction=1.5)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"no .txt"):
        get_corpus(empty)


def _one_txt(tmp_path: Path) -> Path:
    p = tmp_path / "one.txt"
    p.write_text("hello")
    return p


def test_embedded_corpus_without_cache_says_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match="fope data fetch"):
        get_corpus("books", cache=tmp_path)


def test_fingerprint_changes_with_content(tmp_path):
    p = _one_txt(tmp_path)
    a = get_corpus(p).fingerprint()
    import os
    import time

    p.write_text("hello world")
    os.utime(p, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert get_corpus(p).fingerprint() != a
