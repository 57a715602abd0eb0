"""Every stop message's advice works when followed verbatim: the command in its backticks is run as printed.

A NaN stop names the likeliest cause in the run's config (an lr far above the preset's, an absurd init_std or
weight decay, clipping off) and a command that works: a resume with the documented recovery overrides (lr, warm-up,
grad clip, recorded in config.yaml and metrics.jsonl), a fresh start in the same directory when nothing was saved,
or a new directory when the cause is something a resume may not change.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from fope.cli import main
from fope.train import loop as loop_module

from .helpers import tiny_experiment


def _cfg(shards, **kw):
    return tiny_experiment(shards, **{"max_steps": 8, "save_every": 2, "eval_every": 4, **kw})


def command_in(message: str) -> list[str]:
    """The last `fope ...` command in backticks of a message, as argv for fope.cli.main."""
    found = re.findall(r"`(fope [^`]+)`", message)
    assert found, f"no command in: {message}"
    return shlex.split(found[-1])[1:]


def run(capsys, argv: list[str]) -> tuple[int, list[str]]:
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    return rc, [ln for ln in err.splitlines() if ln.strip() and "%|" not in ln]


def stop_line(lines: list[str]) -> str:
    errors = [ln for ln in lines if ln.startswith("fope train: error:")]
    assert len(errors) == 1, lines
    return errors[0]


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize(
    "override,cause",
    [
        ("train.lr=1e9", r"train.lr=1e\+09 is [\d.e+]+x the default 0.0006"),
        ("model.init_std=1e30", r"model.init_std=1e\+30 is far above the presets' 0.02"),
    ],
)
def test_nan_before_any_checkpoint_advice_is_followed(shards, tmp_path, capsys, override, cause):
    """NaN at the first steps (lr 1e9, init_std 1e30): the cause is named and the fresh start it gives finishes."""
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    out = tmp_path / "run"
    rc, lines = run(capsys, ["train", tmp_path / "a.yaml", override, "--out", out])
    line = stop_line(lines)
    assert rc == 3 and "No checkpoint was written yet" in line and re.search(cause, line), line
    assert command_in(line)[:2] == ["train", str(out / "config.yaml")]
    rc, lines = run(capsys, command_in(line))  # verbatim
    assert rc == 0, lines
    assert summary(out)["finished"]


def test_nan_after_a_resume_with_a_huge_lr_is_recovered_with_the_recovery_override(shards, tmp_path, capsys):
    """`--resume OUT train.lr=1e9` is accepted and recorded; its NaN names the lr and the resume it gives works."""
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    out = tmp_path / "run"
    assert run(capsys, ["train", tmp_path / "a.yaml", "--out", out, "--stop-at", "4"])[0] == 0
    rc, lines = run(capsys, ["train", "--resume", out, "train.lr=1e9"])
    line = stop_line(lines)
    assert rc == 3 and "The last good checkpoint (step 4)" in line and "train.lr=1e+09" in line, line
    assert any("resuming" in ln and "train.lr 0.003 -> 1000000000.0" in ln for ln in lines), lines
    assert command_in(line) == ["train", "--resume", str(out), "train.lr=0.0006"]
    rc, lines = run(capsys, command_in(line))  # verbatim
    assert rc == 0, lines
    assert summary(out)["finished"] and summary(out)["step"] == 8
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["lr"] == 0.0006  # recorded: the run's config
    assert yaml.safe_load((out / "checkpoint" / "config.yaml").read_text())["train"]["lr"] == 0.0006
    events = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if '"event"' in ln]
    assert events == [{"step": 4, "event": "resume", "changed": {"train.lr": [0.003, 0.0006]}}]  # and metrics


@pytest.mark.parametrize(
    "settings,cause,fix",
    [
        ([], r"nothing in the config stands out", "train.lr=0.0003"),
        (["train.grad_clip=0"], r"gradient clipping is off", "train.grad_clip=1"),
        (["train.warmup_steps=0"], r"nothing in the config stands out", "train.lr=0.0003"),
    ],
)
def test_nan_from_elsewhere_gives_a_resume_that_works(shards, tmp_path, capsys, monkeypatch, settings, cause, fix):
    """A NaN the config does not explain (here injected at step 5): the resume it gives (lower lr, clip on) works."""
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    out = tmp_path / "run"
    real, calls = loop_module.compute_loss, {"n": 0}

    def nan_at_step_5(model, x, y, **kw):
        calls["n"] += 1
        loss = real(model, x, y, **kw)
        return loss * float("nan") if calls["n"] == 9 else loss  # 2 micro-batches a step: step 5's first

    monkeypatch.setattr(loop_module, "compute_loss", nan_at_step_5)
    rc, lines = run(capsys, ["train", tmp_path / "a.yaml", *settings, "--out", out])
    line = stop_line(lines)
    assert rc == 3 and re.search(cause, line) and "(step 4)" in line, line
    assert command_in(line) == ["train", "--resume", str(out), fix]
    monkeypatch.setattr(loop_module, "compute_loss", real)
    rc, lines = run(capsys, command_in(line))  # verbatim
    assert rc == 0, lines
    key, value = fix.split("=")
    assert yaml.safe_load((out / "config.yaml").read_text())["train"][key.split(".")[1]] == float(value)


def test_absurd_weight_decay_advice_trains_into_a_new_directory(shards, tmp_path, capsys):
    """train.weight_decay=1e9 blows the weights up after a checkpoint: a resume cannot change it, so the advice is
    a new directory (the old run kept), and that command finishes."""
    _cfg(shards, save_every=1).to_yaml(tmp_path / "a.yaml")
    out = tmp_path / "run"
    rc, lines = run(capsys, ["train", tmp_path / "a.yaml", "train.weight_decay=1e9", "--out", out])
    line = stop_line(lines)
    assert rc == 3 and "train.weight_decay=1e+09 is far above the presets' 0.1" in line, line
    assert "a resume cannot change train.weight_decay" in line or "cannot continue the run" in line, line
    argv = command_in(line)
    assert argv == ["train", str(out / "config.yaml"), "train.weight_decay=0.1", "--out", f"{out}-2"]
    rc, lines = run(capsys, argv)  # verbatim
    assert rc == 0, lines
    assert summary(Path(f"{out}-2"))["finished"] and (out / "checkpoint").is_dir()  # the old run is kept


def test_already_holds_a_run_advice_is_followed(shards, tmp_path, capsys):
    """A second `fope train` into a finished-or-stopped run's directory names `--resume`; that command continues."""
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    out = tmp_path / "run"
    assert run(capsys, ["train", tmp_path / "a.yaml", "--out", out, "--stop-at", "2"])[0] == 0
    rc, lines = run(capsys, ["train", tmp_path / "a.yaml", "--out", out])
    line = stop_line(lines)
    assert rc == 2 and "already holds a training run" in line
    rc, lines = run(capsys, command_in(line))
    assert rc == 0 and summary(out)["finished"], lines


def test_unusable_checkpoint_advice_is_non_destructive_and_works(shards, tmp_path, capsys):
    """A checkpoint that cannot be used (no checkpoint.prev to fall back on): the advice keeps the run directory and
    its command trains the run again elsewhere."""
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    out = tmp_path / "run"
    assert run(capsys, ["train", tmp_path / "a.yaml", "--out", out, "--stop-at", "2"])[0] == 0
    optimizer = out / "checkpoint" / "optimizer.pt"
    optimizer.write_bytes(optimizer.read_bytes()[:100])
    rc, lines = run(capsys, ["train", "--resume", out])
    line = stop_line(lines)
    assert rc == 2 and str(optimizer) in line and "delete" not in line and "is left as it is" in line, line
    rc, lines = run(capsys, command_in(line))
    assert rc == 0, lines
    assert summary(Path(f"{out}-again"))["finished"] and optimizer.exists()


def test_a_ruined_checkpoint_is_not_advised_a_fresh_start_is(shards, tmp_path, capsys):
    """lr 1e3 with a checkpoint every step: the step-1 checkpoint is finite but ruined (loss far above the first);
    the advice is a fresh start in a new directory, said as such, and that command finishes."""
    _cfg(shards, save_every=1).to_yaml(tmp_path / "a.yaml")
    out = tmp_path / "run"
    rc, lines = run(capsys, ["train", tmp_path / "a.yaml", "train.lr=1e3", "--out", out])
    line = stop_line(lines)
    assert rc == 3 and "cannot continue the run" in line and "start afresh in a new directory" in line, line
    assert "far above the run's first loss" in line or "no better than a uniform guess" in line, line
    argv = command_in(line)
    assert argv[:2] == ["train", str(out / "config.yaml")] and argv[-2:] == ["--out", f"{out}-2"], argv
    rc, lines = run(capsys, argv)  # verbatim
    assert rc == 0, lines
    assert summary(Path(f"{out}-2"))["finished"] and (out / "checkpoint").is_dir()  # the old run is kept


def test_a_run_no_better_than_uniform_warns(shards, tmp_path, capsys, monkeypatch):
    """A run that ends with a loss at or above ln V (a uniform guess; here: every update undone) finishes with a
    one-line warning saying the model learned nothing."""
    monkeypatch.setattr(loop_module, "compute_loss", lambda model, x, y, **kw: (model.lm_head.weight * 0).sum() + 9.0)
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    rc, lines = run(capsys, ["train", tmp_path / "a.yaml", "--out", tmp_path / "run"])
    warnings = [ln for ln in lines if "no better than a uniform guess" in ln]
    assert rc == 0 and len(warnings) == 1 and "ln V = 4.159" in warnings[0], lines
    monkeypatch.undo()
    rc, lines = run(capsys, ["train", tmp_path / "a.yaml", "--out", tmp_path / "ok"])  # a run that learns: silent
    assert rc == 0 and not [ln for ln in lines if "uniform" in ln], lines
