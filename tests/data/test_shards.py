"""fope.data.shards: packing with EOS, caching by inputs, atomic rebuilds, retrieval mixing, windows."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from fope.data import shards as SH
from fope.data.corpora import get_corpus
from fope.data.shards import TokenWindows, load_tokens, prepare_shards

from .conftest import SAMPLE_DOCS


@pytest.fixture
def txt_corpus(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    docs = [f"Doc {i}. " + SAMPLE_DOCS[i % len(SAMPLE_DOCS)] * (1 + i % 3) for i in range(30)]
    for i, d in enumerate(docs):
        (root / f"{i:02d}.txt").write_text(d)
    return root, docs


def _split_docs(tokens: np.ndarray, eos: int) -> list[list[int]]:
    ends = np.flatnonzero(tokens == eos)
    assert ends[-1] == len(tokens) - 1, "every document, the last included, ends with EOS"
    starts = np.concatenate([[0], ends[:-1] + 1])
    return [tokens[a:b].tolist() for a, b in zip(starts, ends)]


def test_packing_is_docs_joined_by_eos(txt_corpus, tiny_tokenizer, tmp_path):
    root, _ = txt_corpus
    corpus = get_corpus(root, val_fraction=0.2)
    meta = prepare_shards(corpus, tiny_tokenizer, tmp_path / "sh")
    for split in ("train", "val"):
        tokens = load_tokens(tmp_path / "sh" / f"{split}.bin")
        assert tokens.dtype == np.uint16 and tokens.ndim == 1
        want = [tiny_tokenizer.encode(d) for d in corpus.docs(split)]
        assert _split_docs(np.asarray(tokens), tiny_tokenizer.eos_id) == want
        assert meta["splits"][split]["tokens"] == len(tokens) == sum(len(w) + 1 for w in want)
        assert meta["splits"][split]["documents"] == len(want)
    assert meta["inputs"]["tokenizer_sha256"] == tiny_tokenizer.fingerprint()
    assert meta["inputs"]["corpus_fingerprint"] == corpus.fingerprint()
    assert json.loads((tmp_path / "sh" / "meta.json").read_text()) == meta
    assert (tmp_path / "sh" / "tokenizer.json").is_file()
    files = sorted(p.name for p in (tmp_path / "sh").iterdir())
    assert files == ["meta.json", "tokenizer.json", "train.bin", "val.bin"]
    np.testing.assert_array_equal(load_tokens(tmp_path / "sh", split="val"), load_tokens(tmp_path / "sh" / "val.bin"))


def test_rerun_is_a_no_op_and_changes_rebuild(txt_corpus, tiny_tokenizer, tmp_path, monkeypatch):
    root, _ = txt_corpus
    out = tmp_path / "sh"
    prepare_shards(get_corpus(root), tiny_tokenizer, out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    calls = []
    real = SH._prepare_split
    monkeypatch.setattr(SH, "_prepare_split", lambda *a, **k: calls.append(a[3]) or real(*a, **k))
    prepare_shards(get_corpus(root), tiny_tokenizer, out)
    assert calls == [] and {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == mtimes
    # a changed corpus file rebuilds
    f = root / "00.txt"
    f.write_text("A new first document.")
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    prepare_shards(get_corpus(root), tiny_tokenizer, out)
    assert calls == ["train", "val"]
    # a changed option rebuilds
    prepare_shards(get_corpus(root), tiny_tokenizer, out, splits=("val",))
    assert calls == ["train", "val", "val"]
    assert sorted(SH.read_meta(out)["splits"]) == ["val"]
    # a truncated file is detected and rebuilt
    prepare_shards(get_corpus(root), tiny_tokenizer, out)
    with open(out / "train.bin", "r+b") as fh:
        fh.truncate(10)
    prepare_shards(get_corpus(root), tiny_tokenizer, out)
    assert calls[-1] == "val" and calls[-2] == "train" and len(calls) == 7


def test_changed_tokenizer_rebuilds(txt_corpus, tiny_tokenizer, tmp_path):
    from fope.data.tokenizer import train_tokenizer

    root, docs = txt_corpus
    out = tmp_path / "sh"
    prepare_shards(get_corpus(root), tiny_tokenizer, out)
    other = train_tokenizer(docs, 300)
    meta = prepare_shards(get_corpus(root), other, out)
    assert meta["inputs"]["tokenizer_sha256"] == other.fingerprint()
    assert meta["vocab_size"] == 300


def test_corrupt_and_missing_shards_raise(txt_corpus, tiny_tokenizer, tmp_path):
    root, _ = txt_corpus
    out = tmp_path / "sh"
    prepare_shards(get_corpus(root), tiny_tokenizer, out)
    with pytest.raises(FileNotFoundError, match=r"nothere.bin"):
        load_tokens(out / "nothere.bin")
    with open(out / "val.bin", "ab") as fh:
        fh.write(b"\x00\x00")
    with pytest.raises(ValueError, match=r"corrupt token shard .*val.bin"):
        load_tokens(out / "val.bin")
    with pytest.raises(ValueError, match=r"val.bin"):
        SH.verify_shards(out)
    data = bytearray((out / "train.bin").read_bytes())
    data[0] ^= 1
    (out / "train.bin").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256"):
        SH.verify_shards(out)
    (out / "meta.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"meta\.json: corrupt or unreadable shard metadata"):
        load_tokens(out / "train.bin")


def test_dtype_follows_vocabulary():
    assert SH.shard_dtype(8192) == np.uint16
    assert SH.shard_dtype(65536) == np.uint16
    assert SH.shard_dtype(65537) == np.uint32
    assert SH.shard_dtype(200_000) == np.uint32


def test_token_corpus_is_copied(tmp_path, tiny_tokenizer):
    ids = (np.arange(5000) % 400).astype(np.uint16)
    ids.tofile(tmp_path / "part-0.npy")
    corpus = get_corpus(tmp_path / "part-0.npy", val_fraction=0.0)
    meta = prepare_shards(corpus, tiny_tokenizer, tmp_path / "sh", splits=("train",))
    np.testing.assert_array_equal(load_tokens(tmp_path / "sh" / "train.bin"), ids)
    assert meta["splits"]["train"]["tokens"] == 5000
    (np.arange(5000, dtype=np.uint16)).tofile(tmp_path / "big.npy")
    with pytest.raises(ValueError, match="token id 4999"):
        prepare_shards(
            get_corpus(tmp_path / "big.npy", val_fraction=0.0), tiny_tokenizer, tmp_path / "sh2", splits=("train",)
        )


def test_max_tokens_caps_each_split(txt_corpus, tiny_tokenizer, tmp_path):
    root, _ = txt_corpus
    meta = prepare_shards(get_corpus(root), tiny_tokenizer, tmp_path / "sh", max_tokens=100)
    assert meta["splits"]["train"]["tokens"] == 100 and len(load_tokens(tmp_path / "sh")) == 100


def test_bad_options_are_named(txt_corpus, tiny_tokenizer, tmp_path):
    corpus = get_corpus(txt_corpus[0])
    with pytest.raises(ValueError, match="needs train_len"):
        prepare_shards(corpus, tiny_tokenizer, tmp_path / "a", retrieval_share=0.1)
    with pytest.raises(ValueError, match="retrieval_share"):
        prepare_shards(corpus, tiny_tokenizer, tmp_path / "a", retrieval_share=1.0, train_len=256)
    with pytest.raises(ValueError, match="'test'"):
        prepare_shards(corpus, tiny_tokenizer, tmp_path / "a", splits=("test",))
    with pytest.raises(ValueError, match="needs a tokenizer"):
        prepare_shards(corpus, None, tmp_path / "a")


def test_mix_retrieval_places_docs_at_window_starts(tmp_path):
    corpus = np.arange(1, 1001, dtype=np.uint16)  # no EOS (0) inside
    docs = [[9001, 9002], [9003] * 5, [9004] * 9]
    window = 11
    with open(tmp_path / "m.bin", "wb") as fh:
        SH.mix_retrieval(corpus, docs, window=window, eos_id=0, seed=0, f=fh)
    out = np.fromfile(tmp_path / "m.bin", dtype=np.uint16)
    assert len(out) == 1000 + sum(len(d) + 1 for d in docs)
    wins = TokenWindows(out, window - 1)
    starts = [i for i in range(len(wins)) if wins[i][0] >= 9000]
    assert len(starts) == 3
    for i, doc in zip(starts, docs):
        w = wins[i]
        np.testing.assert_array_equal(w[: len(doc) + 1], [*doc, 0])
    # removing the synthetic docs + EOS gives the corpus stream back, in order
    np.testing.assert_array_equal(out[(out < 9000) & (out != 0)], corpus)
    # the draw is seeded
    with open(tmp_path / "m2.bin", "wb") as fh:
        SH.mix_retrieval(corpus, docs, window=window, eos_id=0, seed=0, f=fh)
    np.testing.assert_array_equal(np.fromfile(tmp_path / "m2.bin", dtype=np.uint16), out)


def test_retrieval_share_in_train_split_only(tmp_path, tiny_tokenizer):
    from fope.data import synthetic as S

    root = tmp_path / "c"
    root.mkdir()
    for i in range(40):
        (root / f"{i}.txt").write_text(" ".join(S.FALLBACK_SENTENCES[(i + j) % 20] for j in range(12)))
    corpus = get_corpus(root, val_fraction=0.2)
    L = 320
    meta = prepare_shards(corpus, tiny_tokenizer, tmp_path / "sh", retrieval_share=0.25, train_len=L, seed=1)
    tr, va = meta["splits"]["train"], meta["splits"]["val"]
    assert va["synthetic_tokens"] == 0 and tr["synthetic_documents"] > 0
    share = tr["synthetic_tokens"] / tr["tokens"]
    assert 0.24 < share < 0.30
    tokens = load_tokens(tmp_path / "sh" / "train.bin")
    wins = TokenWindows(tokens, L)
    task = tiny_tokenizer.encode(S.TASK)
    found = 0
    for i in range(len(wins)):
        w = wins[i]
        if w[: len(task)].tolist() == task:
            found += 1
            end = int(np.flatnonzero(w == tiny_tokenizer.eos_id)[0])
            text = tiny_tokenizer.decode(w[:end])
            assert text.endswith(".") and "What is the pass key? The pass key is" in text
            for s in S.TEST_FILLER_SENTENCES:
                assert s not in text
    assert found == tr["synthetic_documents"]
    val_text = tiny_tokenizer.decode(load_tokens(tmp_path / "sh" / "val.bin"))
    assert "pass key" not in val_text
    again = prepare_shards(corpus, tiny_tokenizer, tmp_path / "sh", retrieval_share=0.25, train_len=L, seed=1)
    assert again == meta


def test_windows_contents():
    tokens = np.arange(100, dtype=np.uint16)
    w = TokenWindows(tokens, 9)
    assert len(w) == 10
    np.testing.assert_array_equal(w[0], np.arange(10))
    np.testing.assert_array_equal(w[3], np.arange(30, 40))
    np.testing.assert_array_equal(w[-1], np.arange(90, 100))
    assert w[0].dtype == np.int64
    x, y = w.batch([1, 4])
    np.testing.assert_array_equal(x, [np.arange(10, 19), np.arange(40, 49)])
    np.testing.assert_array_equal(y, [np.arange(11, 20), np.arange(41, 50)])
    shifted = TokenWindows(tokens, 9, start=5)
    assert len(shifted) == 9
    np.testing.assert_array_equal(shifted[0], np.arange(5, 15))
    assert len(list(w)) == 10
    with pytest.raises(IndexError, match="window 10"):
        w[10]
    with pytest.raises(ValueError, match="seq_len"):
        TokenWindows(tokens, 0)
