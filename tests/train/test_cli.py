"""`fope train`: presets, YAML + overrides, --dry-run, --stop-at / --resume, clear errors."""

from __future__ import annotations

import json

import yaml

from fope.cli import main
from fope.train import ExperimentConfig, list_presets, load_preset
from fope.train.config import apply_overrides

from .helpers import losses, tiny_experiment, write_shards


def test_list_presets(capsys):
    assert main(["train", "--list-presets"]) == 0
    assert capsys.readouterr().out.split() == list_presets()


def test_dry_run_prints_resolved_yaml(capsys):
    assert (
        main(
            [
                "train",
                "--preset",
                "cpu-tiny",
                "--pe",
                "alibi",
                "--max-steps",
                "50",
                "--seed",
                "3",
                "train.warmup_steps=5",
                "model.n_layers=3",
                "--dry-run",
            ]
        )
        == 0
    )
    printed = ExperimentConfig.from_dict(yaml.safe_load(capsys.readouterr().out))
    ref = apply_overrides(
        load_preset("cpu-tiny"),
        [
            "model.pe=alibi",
            "model.pe_options={}",
            "train.max_steps=50",
            "train.seed=3",
            "train.warmup_steps=5",
            "model.n_layers=3",
        ],
    )
    assert printed == ref


def test_pe_switch_keeps_paper_sigma(capsys):
    assert main(["train", "--preset", "c4-512-180M-rope", "--pe", "fope", "--dry-run"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]["pe_options"] == {"sigma": 0.4}


def test_user_errors_are_one_line(capsys, tmp_path):
    assert main(["train", "--preset", "cpu-tiny", "train.lrr=1", "--dry-run"]) == 2
    assert "unknown config key 'train.lrr' (did you mean 'train.lr'?)" in capsys.readouterr().err
    assert main(["train", "--preset", "cpu-tny"]) == 2
    assert "did you mean 'cpu-tiny'" in capsys.readouterr().err
    assert main(["train", "--preset", "cpu-tiny", "model.d_model=100", "--dry-run"]) == 2
    assert "d_model=100 is not divisible by n_heads=3" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "nothing to train" in capsys.readouterr().err
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_yaml_stop_at_and_resume(tmp_path, capsys):
    shards = write_shards(tmp_path / "shards")
    path = tmp_path / "tiny.yaml"
    tiny_experiment(shards, max_steps=6, save_every=3).to_yaml(path)
    out = tmp_path / "run"
    assert main(["train", str(path), "--out", str(out), "--stop-at", "2"]) == 0
    assert "stopped after step 2" in capsys.readouterr().out
    assert main(["train", "--resume", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] and summary["step"] == 6
    assert [s for s, _ in losses(out)] == list(range(1, 7))
    assert main(["train", "--resume", str(out), "--max-steps", "8"]) == 0  # extend the schedule
    assert json.loads(capsys.readouterr().out)["step"] == 8
