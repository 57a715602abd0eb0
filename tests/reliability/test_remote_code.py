"""A model directory's own Python code (auto_map) never runs without --trust-remote-code; lm-eval gets structured
model arguments (a path with ',' or '=' is not spliced into its argument string)."""

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


def test_longbench_model_args_are_structured_and_default_off(tmp_path, monkeypatch):
    """LongBench hands lm-eval its model arguments as a dict, trust_remote_code off unless asked for."""
    import lm_eval

    from fope.eval import lmeval

    seen = {}

    def fake_simple_evaluate(**kwargs):
        seen.update(kwargs)
        return {"results": {}, "samples": {}}

    monkeypatch.setattr(lm_eval, "simple_evaluate", fake_simple_evaluate)
    odd = tmp_path / "a,trust_remote_code=True,b=c"
    odd.mkdir()
    (odd / "config.json").write_text('{"model_type": "llama"}')  # a model directory (the resolver checks this)
    lmeval.run(odd, ["longbench_trec_e"], max_length=128)
    assert seen["model_args"] == {
        "pretrained": str(odd),
        "trust_remote_code": False,
        "dtype": "float32",
        "max_length": 128,
    }
    lmeval.run(odd, ["longbench_trec_e"], trust_remote_code=True)
    assert seen["model_args"]["trust_remote_code"] is True


def test_longbench_cli_flag(monkeypatch):
    """`fope eval longbench` has --trust-remote-code off by default."""
    from fope.cli import build_parser

    args = build_parser("eval").parse_args(["eval", "longbench", "--model", "x"])
    assert args.trust_remote_code is False
    args = build_parser("eval").parse_args(["eval", "longbench", "--model", "x", "--trust-remote-code"])
    assert args.trust_remote_code is True


def test_lm_eval_hf_model_does_not_run_planted_code(tmp_path):
    """lm-eval's own `hf` model, given our arguments, refuses the planted directory without running it."""
    pytest.importorskip("lm_eval")
    from lm_eval.api.registry import get_model

    from fope.eval.lmeval import model_args

    marker = tmp_path / "RAN"
    model = _planted(tmp_path / "m", marker)
    with pytest.raises(Exception, match="trust_remote_code"):
        get_model("hf").create_from_arg_obj(model_args(model), {"batch_size": 1, "device": "cpu"})
    assert not marker.exists()
