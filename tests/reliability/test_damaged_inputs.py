"""Every file fope reads back on the native side, damaged: one line (exit 2) naming the file and what to do, or a
repair that is said in one line; never a traceback and never a silently different result."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from fope.cli import main
from fope.train import train

from .helpers import losses, one_line_error, tiny_experiment


@pytest.fixture(scope="module")
def finished(shards, tmp_path_factory):
    root = tmp_path_factory.mktemp("damaged")
    cfg = tiny_experiment(shards, max_steps=4, save_every=2, eval_every=2, warmup_steps=1)
    cfg.to_yaml(root / "run.yaml")
    train(cfg, root / "run")
    return root / "run", cfg


def _config_json(text: str | None = None, **changes) -> callable:
    def damage(path: Path) -> None:
        if text is not None:
            path.write_text(text)
        else:
            data = json.loads(path.read_text())
            data.update(changes)
            path.write_text(json.dumps(data))  # NaN is written as the NaN literal Python's json reads back

    return damage


CONFIG_DAMAGE = {
    "empty": (_config_json(""), "corrupt or unreadable model config"),
    "[1]": (_config_json("[1]"), "expected a JSON object"),
    'format_version "x"': (_config_json(format_version="x"), "format_version must be a positive integer"),
    "huge vocab_size": (_config_json(vocab_size=10**12), "config.json implies (1000000000000, 32)"),
    "NaN norm_eps": (_config_json(norm_eps=math.nan), "norm_eps must be a positive number, got nan"),
    "fewer layers": (_config_json(n_layers=1), "does not describe the weights"),
}


@pytest.mark.parametrize("case", list(CONFIG_DAMAGE))
@pytest.mark.parametrize("command", ["eval", "hf export", "analyze"])
def test_damaged_model_config_json_is_one_line(finished, tmp_path, capsys, case, command):
    """A model directory's config.json emptied, `[1]`, format_version "x", vocab 10^12, NaN norm_eps, fewer layers."""
    run, _ = finished
    model = tmp_path / "model"
    shutil.copytree(run / "model", model)
    damage, what = CONFIG_DAMAGE[case]
    damage(model / "config.json")
    argv = {
        "eval": ["eval", "ppl", "--model", model, "--data", "wiki", "--lengths", "32"],
        "hf export": ["hf", "export", "--model", model, "--out", tmp_path / "hf"],
        "analyze": ["analyze", "activations", "--model", model, "--samples", "2", "--seq-len", "16"],
    }[command]
    line = one_line_error(capsys, argv, model / "config.json", what)
    assert "re-export or re-train" in line or "fope train --resume" in line
    assert not (tmp_path / "hf").exists()


def test_corrupt_tokenizer_json_is_named_not_swallowed(finished, tmp_path, capsys):
    """A model directory's tokenizer.json cut short: the file is named, not "give a tokenizer"."""
    run, _ = finished
    model = tmp_path / "model"
    shutil.copytree(run / "model", model)
    (model / "tokenizer.json").write_text('{"version": "1.0", "trunc')
    for argv in (
        ["eval", "ppl", "--model", model, "--data", "wiki", "--lengths", "32"],
        ["hf", "export", "--model", model, "--out", tmp_path / "hf"],
    ):
        line = one_line_error(capsys, argv, model / "tokenizer.json", "corrupt or unreadable tokenizer")
        assert "give a tokenizer" not in line


@pytest.mark.parametrize(
    "content,what",
    [
        (b"\x00\xff\xfe garbage", "not a YAML text file"),
        (b"train: [1", "not valid YAML"),
        (b"just text", "must be a mapping"),
        (b"model: 3", "needs a mapping"),
    ],
)
def test_garbage_yaml_config_is_one_line(tmp_path, capsys, content, what):
    """A garbage experiment YAML (binary, broken, a scalar, a wrong section) names the file."""
    path = tmp_path / "exp.yaml"
    path.write_bytes(content)
    one_line_error(capsys, ["train", path, "--dry-run"], path, what)


@pytest.mark.parametrize("content", ["{bad", "[]", '{"nope": 1}', ""])
def test_corrupt_grid_json_is_one_line(tmp_path, capsys, content):
    """A grid's grid.json damaged: named, with the command that rewrites it."""
    (tmp_path / "grid.json").write_text(content)
    line = one_line_error(capsys, ["reproduce", "--out", tmp_path], tmp_path / "grid.json", "grid description")
    assert "--preset" in line


def test_corrupt_run_config_yaml(finished, tmp_path, capsys):
    """A run's config.yaml damaged: a resume without a checkpoint names it; a grid's comparison names it; with a
    checkpoint the resume uses the checkpoint's own copy and rewrites it."""
    run, cfg = finished
    out = tmp_path / "run"
    shutil.copytree(run, out)
    (out / "config.yaml").write_bytes(b"\x00\x01 not yaml")
    assert main(["train", "--resume", str(out), "--max-steps", "5"]) == 0  # the checkpoint's copy is the truth
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["max_steps"] == 5
    capsys.readouterr()
    shutil.rmtree(out / "checkpoint")
    (out / "config.yaml").write_text("train: [1")
    one_line_error(capsys, ["train", "--resume", out], out / "config.yaml", "not valid YAML")
    from fope.reproduce.records import check_same_config
    from fope.utils import FileProblem

    with pytest.raises(FileProblem, match=r"unreadable run config .*not valid YAML"):
        check_same_config(cfg, out, "main/rope/seed0")


def test_emptied_metrics_jsonl_is_restored_from_the_checkpoint(finished, tmp_path, capsys):
    """metrics.jsonl emptied before a resume: restored from the checkpoint's copy (said), so first_loss is right."""
    run, cfg = finished
    out = tmp_path / "run"
    train(cfg, out, stop_at=2)
    (out / "metrics.jsonl").write_text("")
    assert main(["train", "--resume", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"{out / 'metrics.jsonl'}: its records up to step 2 differ from the checkpoint's copy" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["first_loss"] == losses(run)[0][1] and summary["losses"] == [list(x) for x in losses(run)]


def test_metrics_jsonl_with_a_corrupt_line_is_restored(finished, tmp_path, capsys):
    """A corrupt line in the history up to the checkpoint: restored from the checkpoint's copy, not an error."""
    run, cfg = finished
    out = tmp_path / "run"
    train(cfg, out, stop_at=2)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    (out / "metrics.jsonl").write_text("\n".join(["{broken", *lines[1:]]) + "\n")
    assert main(["train", "--resume", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["first_loss"] == losses(run)[0][1]


def test_copied_run_summary_names_the_copy(finished, tmp_path, capsys):
    """A run directory copied elsewhere: its summary (returned by a resume, and on disk) names the copy."""
    run, _ = finished
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert json.loads((copy / "summary.json").read_text())["model_dir"] == str(run / "model")
    assert main(["train", "--resume", str(copy)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model_dir"] == str(copy / "model")
    assert json.loads((copy / "summary.json").read_text())["out_dir"] == str(copy)


@pytest.mark.parametrize("content", ["{", "{}", "[1, 2]"])
def test_damaged_grid_sessions_json_is_kept_aside_and_said(tmp_path, capsys, content):
    """A grid's sessions.json damaged: kept as sessions.json.bad, said in one line, a new list started (no
    traceback, nothing dropped silently)."""
    from fope.reproduce.results import read_sessions

    (tmp_path / "sessions.json").write_text(content)
    assert read_sessions(tmp_path) == []
    assert (tmp_path / "sessions.json.bad").read_text() == content
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "sessions.json") in err[0]
