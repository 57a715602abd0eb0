"""A model directory's own Python code (auto_map) never runs without --trust-remote-code; lm-eval gets the model
loaded by fope's loader (no argument string: a path with ',' or '=' is one path)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")


def _planted(directory: Path, marker: Path) -> Path:
    """A HF-looking model directory whose custom code would create ``marker`` when imported."""
    directory.mkdir(parents=True)
    (directory / "config.json").write_text(
        json.dumps(
            {
                "model_type": "planted",
                "architectures": ["PlantedForCausalLM"],
                "auto_map": {
                    "AutoConfig": "planted.PlantedConfig",
                    "AutoModelForCausalLM": "planted.PlantedForCausalLM",
                },
            }
        )
    )
    (directory / "planted.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        "from transformers import PretrainedConfig\n"
        "class PlantedConfig(PretrainedConfig):\n    model_type = 'planted'\n"
    )
    return directory


def test_eval_does_not_run_planted_code(tmp_path, capsys):
    """A model directory whose own code would run is refused by fope eval without --trust-remote-code; the code never runs."""
    from fope.cli import main

    marker = tmp_path / "RAN"
    model = _planted(tmp_path / "m", marker)
    assert main(["eval", "ppl", "--model", str(model), "--data", str(tmp_path), "--lengths", "16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--trust-remote-code" in err[0]
    assert not marker.exists()


def test_longbench_loads_the_model_itself_with_remote_code_off(tmp_path, monkeypatch, tiny_llama, char_tokenizer):
    """lm-eval gets the model loaded by fope's loader (no k=v argument string: a path with ',' or '=' is one path),
    and a directory's own code runs only with trust_remote_code."""
    from fope.eval import lmeval

    seen = {}

    def fake_evaluate(lm, tasks, task_dirs, **kwargs):
        seen.update(lm=lm, tasks=list(tasks))
        return {"results": {}, "samples": {}}

    monkeypatch.setattr(lmeval, "evaluate", fake_evaluate)
    odd = tmp_path / "a,trust_remote_code=True,b=c"
    tiny_llama.save_pretrained(odd)
    char_tokenizer.save_pretrained(odd)
    results = lmeval.run(odd, ["longbench_trec_e"], max_length=128)
    assert type(seen["lm"].model).__name__ == "LlamaForCausalLM" and seen["tasks"] == ["fope_longbench_trec_e"]
    assert results["config"]["model_args"]["pretrained"] == str(odd)
    assert results["config"]["model_args"]["trust_remote_code"] is False
    marker = tmp_path / "RAN"
    planted = _planted(tmp_path / "m", marker)
    with pytest.raises(ValueError, match="--trust-remote-code"):
        lmeval.run(planted, ["longbench_trec_e"])
    assert not marker.exists()


def test_longbench_cli_flag(monkeypatch):
    """`fope eval longbench` has --trust-remote-code off by default."""
    from fope.cli import build_parser

    args = build_parser("eval").parse_args(["eval", "longbench", "--model", "x"])
    assert args.trust_remote_code is False
    args = build_parser("eval").parse_args(["eval", "longbench", "--model", "x", "--trust-remote-code"])
    assert args.trust_remote_code is True


def test_downstream_does_not_run_planted_code(tmp_path):
    """`fope eval downstream` loads through the same loader: the planted directory is refused, its code never runs."""
    pytest.importorskip("lm_eval")
    from fope.eval import downstream

    marker = tmp_path / "RAN"
    model = _planted(tmp_path / "m", marker)
    with pytest.raises(ValueError, match="--trust-remote-code"):
        downstream.run(model, tables=(5,), tasks=["arc_easy"])
    assert not marker.exists()
