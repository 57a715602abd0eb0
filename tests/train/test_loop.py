"""The training loop on a tiny model and synthetic shards: learning, exact resume, signals, NaN, bad input."""

from __future__ import annotations

import json
import os
import signal

import pytest
import torch

import fope.model
from fope.train import NonFiniteLossError, train
from fope.train import loop as loop_module
from fope.train.checkpoint import find_checkpoint
from fope.train.config import apply_overrides

from .helpers import losses, tiny_experiment, write_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def full_run(shards, tmp_path_factory):
    """The uninterrupted reference run (12 steps, accumulation 2, checkpoints every 4 steps)."""
    out = tmp_path_factory.mktemp("runs") / "full"
    summary = train(tiny_experiment(shards), out)
    return out, summary


def test_loss_goes_down_and_run_dir_is_complete(full_run):
    out, summary = full_run
    assert summary["finished"] and summary["step"] == 12 and summary["stopped"] is None
    steps = [s for s, _ in losses(out)]
    assert steps == list(range(1, 13))
    assert summary["final_loss"] < summary["first_loss"] - 0.5  # log(64) = 4.16 at init
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert {"step", "loss", "lr", "tokens", "tokens_per_s", "grad_norm"} <= set(records[0])
    assert [r["step"] for r in records if "val_loss" in r] == [4, 8, 12]
    assert records[-1]["tokens"] == 12 * 8 * 32
    assert (out / "config.yaml").is_file() and (out / "summary.json").is_file()
    assert not (out / "checkpoint.tmp").exists() and not (out / "checkpoint.prev").exists()
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 12
    model = fope.model.load(out)  # OUT/model is a loadable model directory
    ref = fope.model.load(out / "checkpoint" / "model")
    for (k, a), (_, b) in zip(model.state_dict().items(), ref.state_dict().items()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


def test_finished_run_is_idempotent(full_run, shards):
    out, summary = full_run
    before = (out / "metrics.jsonl").read_text()
    again = train(tiny_experiment(shards), out)
    assert again == json.loads(json.dumps(summary))
    assert (out / "metrics.jsonl").read_text() == before


def test_stop_at_then_resume_is_bit_identical(full_run, shards, tmp_path):
    out = tmp_path / "resumed"
    cfg = tiny_experiment(shards)
    first = train(cfg, out, stop_at=6)  # 6 is not a save_every multiple: the stop writes its own checkpoint
    assert first["step"] == 6 and first["stopped"] == "stop_at" and not first["finished"]
    assert not (out / "summary.json").exists()
    second = train(cfg, out, resume=True)
    assert second["finished"] and second["step"] == 12
    assert losses(out) == losses(full_run[0])  # exact equality, not allclose

    def val(d):
        return [
            r["val_loss"] for r in map(json.loads, (d / "metrics.jsonl").read_text().splitlines()) if "val_loss" in r
        ]

    assert val(out) == val(full_run[0])


def test_sigterm_checkpoints_and_resumes_exactly(full_run, shards, tmp_path, monkeypatch, capsys):
    out = tmp_path / "signalled"
    real = loop_module.compute_loss
    calls = {"n": 0}

    def send_sigterm_during_step_5(model, x, y, **kw):
        calls["n"] += 1
        if calls["n"] == 9:  # micro-batch 1 of step 5 (2 micro-batches per step)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(model, x, y, **kw)

    monkeypatch.setattr(loop_module, "compute_loss", send_sigterm_during_step_5)
    summary = train(tiny_experiment(shards), out)
    assert summary["step"] == 4 and summary["stopped"] == "SIGTERM"  # honoured inside step 5: step 4 kept
    assert "Resume with: fope train --resume" in capsys.readouterr().out
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))
    monkeypatch.setattr(loop_module, "compute_loss", real)
    train(tiny_experiment(shards), out, resume=True)
    assert losses(out) == losses(full_run[0])


def test_nan_loss_stops_and_keeps_last_checkpoint(shards, tmp_path, monkeypatch):
    out = tmp_path / "nan"
    real = loop_module.compute_loss
    calls = {"n": 0}

    def nan_at_step_6(model, x, y, **kw):
        calls["n"] += 1
        loss = real(model, x, y, **kw)
        return loss * float("nan") if calls["n"] > 10 else loss

    monkeypatch.setattr(loop_module, "compute_loss", nan_at_step_6)
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 6.*last good checkpoint \(step 4\)"):
        train(tiny_experiment(shards), out)
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 4
    assert max(s for s, _ in losses(out)) == 5
    monkeypatch.setattr(loop_module, "compute_loss", real)
    summary = train(tiny_experiment(shards), out, resume=True)  # resumes from step 4
    assert summary["finished"]
    assert [s for s, _ in losses(out)] == list(range(1, 13))


def test_existing_run_needs_resume(full_run, shards, tmp_path):
    cfg = apply_overrides(tiny_experiment(shards), ["train.max_steps=20"])  # not the finished schedule
    with pytest.raises(ValueError, match=r"already holds a training run.*--resume"):
        train(cfg, full_run[0])
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(cfg, tmp_path / "empty", resume=True)


def test_interrupted_checkpoint_swap_falls_back_to_prev(shards, tmp_path):
    out = tmp_path / "crash"
    cfg = tiny_experiment(shards)
    train(cfg, out, stop_at=4)
    os.replace(out / "checkpoint", out / "checkpoint.prev")  # as if killed between the two renames
    (out / "checkpoint.tmp").mkdir()  # and a half-written new one
    assert find_checkpoint(out) == out / "checkpoint.prev"
    assert train(cfg, out, resume=True)["finished"]


def test_indivisible_global_batch(shards, tmp_path):
    cfg = tiny_experiment(shards, global_batch=12, micro_batch=4)
    cfg.train.global_batch = 10
    with pytest.raises(ValueError, match="global_batch=10"):
        train(cfg, tmp_path / "x")


def test_missing_and_corrupt_shards(shards, tmp_path):
    with pytest.raises(FileNotFoundError, match="token shard"):
        train(tiny_experiment(tmp_path / "nowhere"), tmp_path / "a")
    bad = write_shards(tmp_path / "bad", n_train=5000, n_val=500)
    (bad / "meta.json").write_text(
        json.dumps(
            {
                "inputs": {},
                "dtype": "uint16",
                "splits": {"train": {"file": "train.bin", "tokens": 99}, "val": {"file": "val.bin", "tokens": 500}},
            }
        )
    )
    with pytest.raises(ValueError, match="corrupt token shard"):
        train(tiny_experiment(bad), tmp_path / "b")
    assert not (tmp_path / "b" / "checkpoint").exists()


def test_tokens_outside_vocab(tmp_path):
    d = write_shards(tmp_path / "s", n_train=5000, n_val=500)
    cfg = tiny_experiment(d)
    cfg.model = cfg.model.replace(vocab_size=16)
    with pytest.raises(ValueError, match=r"token id \d+ >= model.vocab_size=16"):
        train(cfg, tmp_path / "r")


def test_missing_metric_backend_is_a_clear_error(shards, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "wandb", None)  # makes `import wandb` raise ImportError
    cfg = apply_overrides(tiny_experiment(shards), ["train.metrics=[wandb]"])
    with pytest.raises(ValueError, match=r"train.metrics includes 'wandb' but it is not installed"):
        train(cfg, tmp_path / "w")


def test_resume_refuses_a_changed_config_and_model_is_a_copy(full_run, shards, tmp_path):
    out, _ = full_run
    assert os.stat(out / "model" / "model.safetensors").st_nlink == 1  # not hard-linked to the checkpoint
    with pytest.raises(ValueError, match=r"another config .*model\.pe 'rope' -> 'alibi'"):
        train(apply_overrides(tiny_experiment(shards), ["model.pe=alibi"]), out, resume=True)
    with pytest.raises(ValueError, match=r"train\.seed 0 -> 1"):
        train(apply_overrides(tiny_experiment(shards), ["train.seed=1"]), out)  # a finished run, another seed
    checksums = json.loads((out / "checkpoint" / "checksums.json").read_text())
    assert {"optimizer.pt", "state.pt", "config.yaml", "model/model.safetensors"} <= set(checksums)


def test_nan_before_the_first_checkpoint_names_none(shards, tmp_path, monkeypatch):
    real = loop_module.compute_loss
    monkeypatch.setattr(loop_module, "compute_loss", lambda m, x, y, **kw: real(m, x, y, **kw) * float("nan"))
    with pytest.raises(NonFiniteLossError, match="No checkpoint was written yet"):
        train(tiny_experiment(shards), tmp_path / "nan0")


def test_non_finite_parameters_are_never_checkpointed(shards, tmp_path, monkeypatch):
    """A finite loss whose update produced NaN weights: the save refuses, the older checkpoint is kept."""
    real = loop_module.build_optimizer

    def poisoned(model, t):
        opt = real(model, t)
        step, calls = opt.step, {"n": 0}

        def step_then_nan(*a, **k):
            out = step(*a, **k)
            calls["n"] += 1
            if calls["n"] == 8:  # the update of step 8, which is then due to be saved
                next(model.parameters()).data.fill_(float("nan"))
            return out

        opt.step = step_then_nan
        return opt

    monkeypatch.setattr(loop_module, "build_optimizer", poisoned)
    out = tmp_path / "nanw"
    with pytest.raises(NonFiniteLossError, match=r"not finite after step 8; not saving it.*checkpoint \(step 4\)"):
        train(tiny_experiment(shards), out)
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 4


def test_loss_in_chunks_trains_like_whole_logits(shards, tmp_path):
    """train.loss_chunk: the same training run (fp32) within summation-order noise, validation included."""
    whole = train(tiny_experiment(shards, precision="fp32"), tmp_path / "whole")
    chunked = train(tiny_experiment(shards, precision="fp32", loss_chunk=24), tmp_path / "chunked")
    a, b = losses(tmp_path / "whole"), losses(tmp_path / "chunked")
    assert [s for s, _ in a] == [s for s, _ in b] and len(a) == 12
    assert max(abs(x - y) for (_, x), (_, y) in zip(a, b)) < 1e-4
    assert abs(whole["final_val_loss"] - chunked["final_val_loss"]) < 1e-4
