"""fope.data.tokenizer: byte-level BPE training, exact round trips (digits), save/load in every layout."""

from __future__ import annotations

import json

import pytest

from fope.data.tokenizer import EOS_TOKEN, PAD_TOKEN, Tokenizer, load_tokenizer, train_tokenizer

TEXTS = [
    "The pass key is 31415. Remember it. 31415 is the pass key.",
    " 12345 00001 9 50000 7",
    "Héllo wörld — “quotes”, tabs\tand\n\nblank lines  with  double spaces",
    "emoji 🙂 and CJK 漢字",
    "",
]


def test_special_tokens_and_sizes(tiny_tokenizer):
    tok = tiny_tokenizer
    assert tok.vocab_size == 400
    assert tok.eos_id == 0 and tok.token_to_id(EOS_TOKEN) == 0
    assert tok.pad_id == 1 and tok.token_to_id(PAD_TOKEN) == 1
    assert len(tok) == 400


@pytest.mark.parametrize("text", TEXTS)
def test_round_trip_is_exact(tiny_tokenizer, text):
    ids = tiny_tokenizer.encode(text)
    assert tiny_tokenizer.decode(ids) == text
    assert all(0 <= i < tiny_tokenizer.vocab_size for i in ids)


def test_digits_are_single_tokens(tiny_tokenizer):
    tok = tiny_tokenizer
    digit_ids = [tok.encode(str(d)) for d in range(10)]
    assert all(len(ids) == 1 for ids in digit_ids)
    for key in (1, 7, 31415, 50000, 12345):
        ids = tok.encode(f"The pass key is {key}.")
        digits = [tok.decode([i]) for i in ids if tok.decode([i]).isdigit()]
        assert "".join(digits) == str(key) and all(len(d) == 1 for d in digits)


def test_encode_batch_equals_encode(tiny_tokenizer):
    assert tiny_tokenizer.encode_batch(TEXTS) == [tiny_tokenizer.encode(t) for t in TEXTS]


def test_training_is_deterministic():
    from .conftest import SAMPLE_DOCS

    a = train_tokenizer(SAMPLE_DOCS * 5, 300)
    b = train_tokenizer(iter(SAMPLE_DOCS * 5), 300)
    assert a.to_str() == b.to_str() and a.fingerprint() == b.fingerprint()


def test_save_and_load_file_and_folder(tiny_tokenizer, tmp_path):
    path = tiny_tokenizer.save(tmp_path / "tok")
    assert path == tmp_path / "tok" / "tokenizer.json"
    for source in (path, tmp_path / "tok", str(path)):
        loaded = load_tokenizer(source)
        assert loaded.fingerprint() == tiny_tokenizer.fingerprint()
        assert loaded.eos_id == tiny_tokenizer.eos_id and loaded.vocab_size == tiny_tokenizer.vocab_size
        assert [loaded.encode(t) for t in TEXTS] == [tiny_tokenizer.encode(t) for t in TEXTS]
    assert tiny_tokenizer.save(tmp_path / "x.json") == tmp_path / "x.json"


def test_vocab_merges_folder_through_transformers(tiny_tokenizer, tmp_path):
    pytest.importorskip("transformers")
    tiny_tokenizer.backend.model.save(str(tmp_path))  # vocab.json + merges.txt
    (tmp_path / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "GPT2Tokenizer", "eos_token": EOS_TOKEN, "model_max_length": 1024})
    )
    loaded = load_tokenizer(tmp_path)
    assert loaded.eos_id == 0
    text = "Remember it. The harbour and the lantern."
    assert loaded.encode(text) == tiny_tokenizer.encode(text)
    assert loaded.decode(loaded.encode(text)) == text


def test_eos_detection_and_override(tiny_tokenizer):
    from tokenizers import Tokenizer as Backend
    from tokenizers import models

    backend = Backend(models.WordLevel({"a": 0, "b": 1, "</s>": 2}, unk_token="a"))
    assert Tokenizer(backend).eos_id == 2
    assert Tokenizer(backend, eos_id=1).eos_id == 1
    no_eos = Backend(models.WordLevel({"a": 0, "b": 1}, unk_token="a"))
    with pytest.raises(ValueError, match="EOS"):
        Tokenizer(no_eos)
    with pytest.raises(ValueError, match="eos_id 5"):
        Tokenizer(backend, eos_id=5)


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match="vocab_size 100"):
        train_tokenizer(["abc"], 100)
    with pytest.raises(FileNotFoundError, match=r"missing.json"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no tokenizer.json"):
        load_tokenizer(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="hub lookup failed"):
        load_tokenizer("some-org/some-tokenizer")  # offline in tests
