"""Building evaluation token streams from fope.data corpora, shards, token files and text files."""

from __future__ import annotations

import numpy as np
import pytest

from fope.eval.perplexity import load_eval_tokens, tokens_from_corpus

from .conftest import LINES


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    for split, lines in (("train", LINES[:4]), ("val", LINES[4:])):
        (root / split).mkdir()
        for i, line in enumerate(lines):
            (root / split / f"doc{i}.txt").write_text(line)
    return root


@pytest.fixture(scope="module")
def data_tok():
    import fope.data

    return fope.data.train_tokenizer(LINES * 5, 300)


def test_corpus_val_split_joined_with_eos(corpus_dir, data_tok):
    toks = tokens_from_corpus(str(corpus_dir), data_tok)
    expected = []
    for line in LINES[4:]:
        expected += [*data_tok.encode(line), data_tok.eos_id]
    assert toks.tolist() == expected
    assert load_eval_tokens(corpus_dir, data_tok).tolist() == expected  # a corpus folder, not a shard folder
    assert load_eval_tokens(corpus_dir, data_tok, max_tokens=5).tolist() == expected[:5]


def test_text_file_is_one_document(tmp_path, data_tok):
    path = tmp_path / "book.txt"
    path.write_text("\n\n".join(LINES))
    assert load_eval_tokens(path, data_tok).tolist() == [*data_tok.encode("\n\n".join(LINES)), data_tok.eos_id]
    with pytest.raises(ValueError, match="give a tokenizer"):
        load_eval_tokens(path, None)


def test_shard_folder_and_token_files(tmp_path, corpus_dir, data_tok):
    import fope.data

    out = tmp_path / "shards"
    fope.data.prepare_shards(fope.data.get_corpus(str(corpus_dir)), data_tok, out)
    assert np.array_equal(load_eval_tokens(out), fope.data.load_tokens(out, split="val"))
    assert np.array_equal(load_eval_tokens(out, split="train"), fope.data.load_tokens(out, split="train"))
    raw = tmp_path / "raw.bin"
    np.arange(10, dtype=np.uint16).tofile(raw)
    assert load_eval_tokens(raw).tolist() == list(range(10))
    assert load_eval_tokens(raw, max_tokens=4).tolist() == [0, 1, 2, 3]


def test_unknown_data_raises(data_tok):
    with pytest.raises(FileNotFoundError, match="unknown corpus 'no-such-corpus'"):
        load_eval_tokens("no-such-corpus", data_tok)
