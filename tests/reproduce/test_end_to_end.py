"""The whole grid for real (fope.train + fope.eval) at a micro scale: every experiment, a report, results.json."""

from __future__ import annotations

import json

import pytest

from fope.cli import main as fope_main


@pytest.mark.slow
@pytest.mark.data
def test_micro_grid_end_to_end(tmp_path, capsys):
    out = tmp_path / "repro"
    args = [
        "reproduce",
        "--preset",
        "cpu",
        "--out",
        str(out),
        "--no-figures",
        "--jobs",
        "1",
        "steps=3",
        "warmup_steps=1",
        "global_batch=2",
        "micro_batch=2",
        "train_len=128",
        "length_factors=0.5,1,2",
        "passkey_factors=1,2",
        "passkey_trials=1",
        "ablation_passkey_trials=1",
        "eval_tokens=512",
        "extension_steps=2",
        "extension_warmup=1",
        "main_passkey_trials=1",
        "pes=rope,fope,alibi",
        "sigmas=0,0.3",
        "freq_dims=32,64",
        "retrieval_pes=fope",
    ]
    assert fope_main(args) == 0
    console = capsys.readouterr().out
    assert "[1/" in console and "left after it" in console and "report:" in console
    res = json.loads((out / "results.json").read_text())
    assert res["missing"] == []
    assert set(res["main"]) == {"rope", "fope", "alibi"}
    for cell in res["main"].values():
        assert cell["train_len"] == 128 and set(cell["ppl"]) == {"64", "128", "256"}
        assert set(cell["passkey"]) == {"128", "256"} and set(cell["passkey_likelihood"]) == {"128", "256"}
        assert all(v["mean"] > 1 for v in cell["ppl"].values())
    assert set(res["extension"]) == {"rope", "fope", "rope+yarn", "rope+fope", "fope+yarn", "fope+fope"}
    assert res["extension"]["fope+fope"]["train_len"] == 256
    assert res["passkey_variant"]["fope"]["n_runs"] == 1
    far = res["mechanism"]["far"]  # the far-attention decomposition of every RoPE / FoPE main run
    assert set(far["summary"]) == {"rope", "fope"} and far["length"] == 256
    for pe in ("rope", "fope"):  # its unchanged variant is the perplexity evaluation itself (same tokens)
        full = far["summary"][pe]["full"]["mean"]
        assert full == pytest.approx(res["main"][pe]["ppl_ratio"]["256"]["mean"], rel=1e-4)
        assert set(far["summary"][pe]) == {"full", "window", "far_without_cycles", "far_cycles_only"}
        assert far["far_mass"][pe]["window"]["mean"] == 0 and 0 < far["far_mass"][pe]["full"]["mean"] < 1
    assert "Where the loss beyond L comes from" in (out / "report.md").read_text()
    assert (out / "report.md").read_text().count("| holds |") + (out / "report.md").read_text().count(
        "does not hold"
    ) > 0
    from fope.eval.results import validate  # every evaluation record has fope.eval's result schema

    for record in out.glob("runs/*/*/eval/*.json"):
        rec = validate(json.loads(record.read_text()), source=str(record))
        assert rec["kind"] == record.stem.split("_")[0] and rec["request"] and rec["settings"]["model_kind"] == "fope"
    # resumable: a second call has nothing left to do
    assert fope_main(args) == 0
    assert "already done" in capsys.readouterr().out
    runs = [p.parent.name for p in out.glob("runs/*/*/run.json")]
    assert runs
