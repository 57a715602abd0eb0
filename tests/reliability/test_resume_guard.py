"""Resume refuses a changed run (naming every differing key), and so does a finished run's idempotent return."""

from __future__ import annotations

import json

import pytest

from fope.cli import main
from fope.train import train
from fope.train.config import apply_overrides
from fope.train.loop import SUMMARY_DIGEST, saved_summary

from .helpers import losses, tiny_experiment


@pytest.fixture()
def stopped(shards, tmp_path):
    cfg = tiny_experiment(shards, max_steps=4, save_every=2, eval_every=2, warmup_steps=1)
    out = tmp_path / "run"
    train(cfg, out, stop_at=2)
    return out, cfg


def _error(capsys, argv) -> str:
    assert main(argv) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    "extra,keys",
    [
        (["--pe", "alibi"], ["model.pe"]),
        (["train.seq_len=16"], ["train.seq_len"]),
        (["train.seed=5", "train.weight_decay=0.2"], ["train.seed", "train.weight_decay"]),
        (["--seed", "7"], ["train.seed"]),
        (["model.pe_options.sigma=0.2"], ["model.pe_options"]),
        (["train.global_batch=16"], ["train.global_batch"]),
    ],
)
def test_resume_refuses_changed_keys(stopped, capsys, extra, keys):
    """A resume with another model, sequence length, seed, weight decay, pe options or batch is refused naming the keys; nothing touched."""
    out, _ = stopped
    before = (out / "metrics.jsonl").read_text()
    line = _error(capsys, ["train", "--resume", str(out), *extra])
    assert str(out / "checkpoint" / "config.yaml") in line
    diff = line.split("; ")[0]  # the differing keys, before the advice
    for key in keys:
        assert f"{key} " in diff, line
    assert (out / "metrics.jsonl").read_text() == before  # nothing was touched


def test_recovery_overrides_resume_and_are_recorded(stopped, capsys):
    """The NaN-recovery keys (lr, warm-up, grad clip) may change on a resume, said in one line and recorded."""
    import yaml

    out, _ = stopped
    argv = ["train", "--resume", str(out), "train.lr=1e-3", "train.warmup_steps=3", "train.grad_clip=0.5"]
    assert main(argv) == 0
    said = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("fope: resuming")]
    assert len(said) == 1 and "train.lr 0.003 -> 0.001" in said[0] and "train.grad_clip 1.0 -> 0.5" in said[0]
    saved = yaml.safe_load((out / "checkpoint" / "config.yaml").read_text())["train"]
    assert (saved["lr"], saved["warmup_steps"], saved["grad_clip"]) == (1e-3, 3, 0.5)
    event = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines() if '"event"' in ln]
    assert event[0]["changed"] == {
        "train.grad_clip": [1.0, 0.5],
        "train.lr": [0.003, 0.001],
        "train.warmup_steps": [1, 3],
    }


def test_whitelisted_changes_resume(stopped, capsys):
    """A resume may change the schedule length and the cadences."""
    out, _ = stopped
    assert (
        main(
            [
                "train",
                "--resume",
                str(out),
                "--max-steps",
                "5",
                "train.log_every=2",
                "train.eval_every=5",
                "train.save_every=5",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["finished"] and summary["step"] == 5
    assert [s for s, _ in losses(out)] == [1, 2, 4, 5]


def test_stop_at_and_max_steps_below_the_checkpoint(stopped, capsys):
    """--stop-at at or before the checkpoint's step and --max-steps below it are refused."""
    out, _ = stopped
    assert "--stop-at 1 is not after the checkpoint's step 2" in _error(
        capsys, ["train", "--resume", str(out), "--stop-at", "1"]
    )
    assert "train.max_steps=1 is below" in _error(capsys, ["train", "--resume", str(out), "--max-steps", "1"])


def test_finished_run_is_not_returned_for_another_config(stopped):
    """A finished run is returned as is for its own config only (another lr or pe is refused)."""
    out, cfg = stopped
    summary = train(cfg, out, resume=True)
    assert summary["finished"]
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk.pop(SUMMARY_DIGEST) and train(cfg, out) == on_disk  # same config: idempotent (less its digest)
    assert saved_summary(out) == on_disk
    with pytest.raises(ValueError, match=r"another config .*train\.lr 0\.003 -> 0\.001"):
        train(apply_overrides(cfg, ["train.lr=1e-3"]), out)
    with pytest.raises(ValueError, match=r"model\.pe 'rope' -> 'alibi'"):
        train(apply_overrides(cfg, ["model.pe=alibi"]), out)
