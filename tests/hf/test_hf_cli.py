"""`fope hf ...` commands on tiny local models."""

import json

import torch

import fope.hf
import fope.model
from fope.cli import main


def test_convert_options_have_the_one_override_spelling(tiny_llama, tmp_path, capsys):
    """key=value pe options read as everywhere in fope (fope.utils): '-' as '_', on/off booleans, JSON numbers."""
    tiny_llama.save_pretrained(tmp_path / "src")
    src = ["hf", "convert", "--model", str(tmp_path / "src"), "--train-len", "32"]
    assert main([*src, "--out", str(tmp_path / "out"), "out-dim=full", "pad=zero", "clip_floor=off", "sigma=1e-1"]) == 0
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert cfg["pe_options"] == {"out_dim": "full", "pad": "zero", "clip_floor": False, "sigma": 0.1}
    assert main([*src, "--out", str(tmp_path / "bad"), "sigma"]) == 2
    assert "override 'sigma' is not of the form KEY=VALUE" in capsys.readouterr().err


def test_convert_command(tiny_llama, tmp_path, capsys):
    tiny_llama.save_pretrained(tmp_path / "src")
    rc = main(
        [
            "hf",
            "convert",
            "--model",
            str(tmp_path / "src"),
            "--out",
            str(tmp_path / "out"),
            "--sigma",
            "0.1",
            "--train-len",
            "32",
            "out_dim=full",
            "pad=zero",
        ]
    )
    assert rc == 0
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())
    assert (cfg["pe"], cfg["pe_train_len"]) == ("fope", 32)
    assert cfg["pe_options"] == {"sigma": 0.1, "out_dim": "full", "pad": "zero"}
    assert main(["hf", "convert", "--model", str(tmp_path / "src"), "--out", str(tmp_path / "x"), "bogus=1"]) == 2
    assert "unknown option(s) ['bogus']" in capsys.readouterr().err


def test_convert_preserving_flag(tiny_llama, tmp_path, capsys):
    tiny_llama.save_pretrained(tmp_path / "src")
    src = ["hf", "convert", "--model", str(tmp_path / "src"), "--preserving"]
    assert main([*src, "--out", str(tmp_path / "a")]) == 0
    assert json.loads((tmp_path / "a" / "config.json").read_text())["pe_options"] == fope.hf.CONVERT_PRESERVING
    assert main([*src, "--out", str(tmp_path / "b"), "--sigma", "0.1", "pad=one"]) == 0  # key=value overrides
    assert json.loads((tmp_path / "b" / "config.json").read_text())["pe_options"] == {
        "out_dim": "full",
        "pad": "one",
        "sigma": 0.1,
    }
    assert main([*src, "--out", str(tmp_path / "c"), "--pe", "rope"]) == 2
    assert "--preset preserving applies to --pe fope only" in capsys.readouterr().err


def test_export_command(tmp_path):
    cfg = fope.model.ModelConfig(vocab_size=40, d_model=32, n_layers=1, n_heads=2, train_len=16, pe="fope")
    model = fope.model.build(cfg).eval()
    fope.model.save(model, tmp_path / "native")
    assert main(["hf", "export", "--model", str(tmp_path / "native"), "--out", str(tmp_path / "hf")]) == 0
    ids = torch.randint(0, 40, (1, 12))
    with torch.no_grad():
        torch.testing.assert_close(fope.hf.load(tmp_path / "hf")(input_ids=ids).logits, model(ids))


def test_finetune_command(tiny_llama, char_tokenizer, tmp_path):
    from fope.hf.convert import convert
    from fope.hf.io import save

    save(convert(tiny_llama, pe="fope"), tmp_path / "model", tokenizer=char_tokenizer)
    chat = [{"role": "user", "content": "say hi"}, {"role": "assistant", "content": "hi there"}]
    (tmp_path / "chat.jsonl").write_text((json.dumps({"messages": chat}) + "\n") * 20)
    args = [
        "hf",
        "finetune",
        "--model",
        str(tmp_path / "model"),
        "--data",
        str(tmp_path / "chat.jsonl"),
        "--out",
        str(tmp_path / "ft"),
        "--seq-len",
        "32",
        "--max-steps",
        "2",
        "--no-progress",
    ]
    assert main(args) == 0
    assert len((tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()) == 2
    assert fope.hf.io.is_fope_dir(tmp_path / "ft" / "model")  # a training run directory: OUT/model is the model
    assert main(args + ["--resume"]) == 0  # finished: resuming it trains nothing
    assert len((tmp_path / "ft" / "metrics.jsonl").read_text().splitlines()) == 2
    assert main(args) == 2  # OUT holds a run: --resume it or choose another OUT
    too_long = ["--out", str(tmp_path / "ft2"), "--seq-len", "100000", "--no-progress"]
    assert main(args[:-7] + too_long) == 2  # too few tokens: clear error
