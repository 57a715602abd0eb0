"""`fope eval` end to end on a tiny saved model: JSON schema, plots, user errors."""

from __future__ import annotations

import json
import math

import pytest

from fope.cli import main
from fope.eval import results as R
from fope.eval.cli import parse_lengths

from .conftest import LINES


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tok):
    import fope.model as fope_model

    model = fope_model.build("cpu-tiny", pe="rope", vocab_size=tok.vocab_size, n_layers=1, train_len=64)
    out = tmp_path_factory.mktemp("m") / "model"
    fope_model.save(model, out, tokenizer=tok)
    return out


@pytest.fixture(scope="module")
def text_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("d") / "val.txt"
    path.write_text("\n".join(LINES * 8))
    return path


def test_parse_lengths():
    assert parse_lengths("256, 512,1k,2K") == [256, 512, 1024, 2048]
    with pytest.raises(ValueError, match="'x12' is not an integer length"):
        parse_lengths("256,x12")


def test_ppl_cli_writes_valid_json(model_dir, text_file, tmp_path, capsys):
    out = tmp_path / "ppl.json"
    rc = main(
        [
            "eval",
            "ppl",
            "--model",
            str(model_dir),
            "--data",
            str(text_file),
            "--lengths",
            "16,32,64",
            "--max-chunks",
            "3",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    res = R.load_result(out)
    assert res["kind"] == "ppl" and list(res["by_length"]) == ["16", "32", "64"]
    s = res["settings"]
    assert s["lengths"] == [16, 32, 64] and s["mode"] == "chunks" and s["train_len"] == 64
    assert s["model_config"]["pe"] == "rope" and s["fope_version"] and "git_commit" in s
    for L, d in res["details"].items():
        assert d["n_windows"] * int(L) == 3 * 64 and d["ppl"] == pytest.approx(math.exp(d["mean_ce"]))
        assert res["by_length"][L] == d["ppl"]
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split() == ["length", "ppl", "mean", "CE", "tokens", "windows"]


def test_ppl_cli_sliding(model_dir, text_file, tmp_path):
    out = tmp_path / "ppl.json"
    assert (
        main(
            [
                "eval",
                "ppl",
                "--model",
                str(model_dir),
                "--data",
                str(text_file),
                "--lengths",
                "32",
                "--mode",
                "sliding",
                "--stride",
                "8",
                "--max-tokens",
                "96",
                "--json",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    d = R.load_result(out)["details"]["32"]
    assert d["n_windows"] == (96 - 32) // 8 + 1 and d["n_tokens"] == 31 + 8 * 8


def test_passkey_cli_and_plots(model_dir, tmp_path):
    out = tmp_path / "pk.json"
    rc = main(
        [
            "eval",
            "passkey",
            "--model",
            str(model_dir),
            "--lengths",
            "96,128",
            "--trials",
            "1",
            "--depths",
            "0,1",
            "--likelihood",
            "--distractors",
            "3",
            "--max-new-tokens",
            "4",
            "--json",
            str(out),
            "--no-progress",
        ]
    )
    assert rc == 0
    res = R.load_result(out)
    assert res["kind"] == "passkey" and set(res["by_length"]) == {"96", "128"}
    assert all(0.0 <= v <= 1.0 for v in res["by_length"].values())
    assert list(res["by_length_depth"]["128"]) == ["0.0", "1.0"]
    assert set(res["likelihood"]) == {"n_candidates", "top1", "mrr", "mean_rank", "margin"}
    # generation split by the needle's distance from the question against the model's own train_len
    split = res["needle_distance_split"]
    assert split["train_len"] == 64
    for n in ("96", "128"):  # depth 0 (farthest) and depth 1 (right before the question): one trial each
        cells = split["by_length"][n]
        assert cells["within"][1] + cells["beyond"][1] == 2 and cells["within"][1] >= 1
    assert len(res["trials"]) == 4 and res["settings"]["seed"] == 0 and res["settings"]["mode"] == "both"
    assert res["likelihood"]["n_candidates"] == {"96": 4.0, "128": 4.0} or min(t["key"] for t in res["trials"]) < 10
    assert set(res["trials"][0]) >= {"length", "depth", "key", "prompt_tokens", "generated", "correct", "rank"}
    # plots: curves for both kinds on one figure, and a heatmap
    ppl = {"kind": "ppl", "settings": {"model": "x/rope", "train_len": 128}, "by_length": {"128": 30.0, "256": 900.0}}
    ppl_path = R.save_result(ppl, tmp_path / "ppl.json")
    fig = tmp_path / "fig.png"
    assert main(["eval", "plot", str(out), str(ppl_path), "--out", str(fig)]) == 0
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    heat = tmp_path / "heat.png"
    assert main(["eval", "plot", str(out), "--out", str(heat), "--heatmap"]) == 0
    assert heat.stat().st_size > 1000


def test_make_result_stringifies_keys_and_non_finite_values():
    res = R.make_result("ppl", {"model": "m"}, {512: 3.0, 1024: math.inf}, details={512: {"x": 1}})
    assert res["by_length"] == {"512": 3.0, "1024": "inf"} and res["details"] == {"512": {"x": 1}}
    assert json.loads(json.dumps(res)) == res
    assert R.series(R.validate(res)) == ([512, 1024], [3.0, math.inf])


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"settings": {}, "by_length": {"1": 1.0}}, "missing top-level key 'kind'"),
        ({"kind": "bleu", "settings": {}, "by_length": {"1": 1.0}}, "unknown kind 'bleu'"),
        ({"kind": "ppl", "settings": {}, "by_length": {"long": 1.0}}, "key 'long' is not a length"),
        ({"kind": "passkey", "settings": {}, "by_length": {"512": 1.5}, "by_length_depth": {}}, "outside"),
        ({"kind": "passkey", "settings": {}, "by_length": {"512": 0.5}}, "without 'by_length_depth'"),
    ],
)
def test_validate_rejects_bad_results(bad, match):
    with pytest.raises(ValueError, match=match):
        R.validate(bad)


def test_user_errors_exit_2(tmp_path, capsys):
    assert main(["eval", "ppl", "--model", str(tmp_path / "nope"), "--data", "x", "--lengths", "8"]) == 2
    assert "no such directory: " in capsys.readouterr().err
    assert main(["eval", "plot", str(tmp_path / "missing.json"), "--out", str(tmp_path / "f.png")]) == 2


def test_cli_on_a_hugging_face_model_dir(tok, text_file, tmp_path):
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=256,
    )
    transformers.LlamaForCausalLM(cfg).save_pretrained(tmp_path / "hf")
    hf_tok = transformers.PreTrainedTokenizerFast(tokenizer_object=tok.tk, eos_token="<eos>")
    hf_tok.save_pretrained(tmp_path / "hf")
    out = tmp_path / "ppl.json"
    assert (
        main(
            [
                "eval",
                "ppl",
                "--model",
                str(tmp_path / "hf"),
                "--data",
                str(text_file),
                "--lengths",
                "32,64",
                "--json",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    res = R.load_result(out)
    assert res["settings"]["model_kind"] == "hf" and res["settings"]["train_len"] == 256
    from fope.eval import load_model

    ad = load_model(tmp_path / "hf")
    assert ad.tokenizer.encode(LINES[1]) == tok.encode(LINES[1]) and ad.tokenizer.eos_id == tok.eos_id


def test_passkey_cli_rejects_a_bad_train_len(model_dir, capsys):
    rc = main(
        [
            "eval",
            "passkey",
            "--model",
            str(model_dir),
            "--lengths",
            "96",
            "--trials",
            "1",
            "--train-len",
            "0",
            "--no-progress",
        ]
    )
    assert rc != 0 and "--train-len must be a positive number of tokens, got 0" in capsys.readouterr().err
