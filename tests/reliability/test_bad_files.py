"""Corrupt, truncated or missing files and bad inputs: each ends in an exact resume or in a one-line error
(exit 2) that names the file, never in a traceback or a silently different run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from fope.cli import main
from fope.train import train

from .helpers import losses, one_line_error, records, tiny_experiment, write_shards


@pytest.fixture(scope="module")
def finished(shards, tmp_path_factory):
    """A finished 4-step run (checkpoints at 2 and 4) and its YAML config."""
    root = tmp_path_factory.mktemp("finished")
    cfg = tiny_experiment(shards, max_steps=4, save_every=2, eval_every=2, warmup_steps=1)
    cfg.to_yaml(root / "run.yaml")
    train(cfg, root / "run")
    return root / "run", root / "run.yaml", cfg


def _stopped_copy(finished, tmp_path: Path) -> Path:
    """A run stopped at step 2 (checkpoint at 2), ready to resume."""
    _, _, cfg = finished
    out = tmp_path / "run"
    train(cfg, out, stop_at=2)
    return out


def _flip(path: Path, at: int = 200) -> None:
    data = bytearray(path.read_bytes())
    data[min(at, len(data) - 1)] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "name", ["model/model.safetensors", "optimizer.pt", "state.pt", "config.yaml", "model/config.json"]
)
def test_corrupt_checkpoint_file_is_named(name, finished, tmp_path, capsys):
    """A checkpoint file changed after the save (weights, optimizer, state, config, model config): named by its checksum."""
    out = _stopped_copy(finished, tmp_path)
    _flip(out / "checkpoint" / name)
    line = one_line_error(capsys, ["train", "--resume", str(out)], str(out / "checkpoint" / name))
    assert "sha256" in line and "checksums.json" in line


@pytest.mark.parametrize(
    "name,what",
    [
        ("model/model.safetensors", "safetensors"),
        ("optimizer.pt", "optimizer"),
        ("state.pt", "training state"),
        ("config.yaml", "config"),
    ],
)
def test_truncated_checkpoint_file_without_checksums_is_named(name, what, finished, tmp_path, capsys):
    """A truncated file of a checkpoint written before checksums existed: named with its kind."""
    import torch

    out = _stopped_copy(finished, tmp_path)
    (out / "checkpoint" / "checksums.json").unlink()  # as written by fope versions before checksums: state.pt
    state = torch.load(out / "checkpoint" / "state.pt", weights_only=True)  # then did not say it had one
    del state["checksummed"]
    torch.save(state, out / "checkpoint" / "state.pt")
    path = out / "checkpoint" / name
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    line = one_line_error(capsys, ["train", "--resume", str(out)], str(path))
    assert what in line


def test_run_files_outside_the_checkpoint_are_rebuilt(finished, tmp_path):
    """An emptied OUT/config.yaml or OUT/summary.json and a deleted OUT/model are rebuilt by --resume, exactly."""
    ref, _, _ = finished
    out = _stopped_copy(finished, tmp_path)
    (out / "config.yaml").write_text("")  # emptied by a crash in older versions: the checkpoint's copy is used
    assert main(["train", "--resume", str(out)]) == 0
    assert records(out) == records(ref)
    (out / "summary.json").write_text("")  # an unreadable summary is rebuilt from the checkpoint
    shutil.rmtree(out / "model")  # and a missing OUT/model from the checkpoint's model
    assert main(["train", "--resume", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["final_loss"] == losses(ref)[-1][1]
    assert (out / "model" / "model.safetensors").read_bytes() == (ref / "model" / "model.safetensors").read_bytes()


def test_truncated_run_config_never_resumes_with_defaults(finished, tmp_path, capsys):
    """A truncated run config is refused naming it, never filled with defaults."""
    out = _stopped_copy(finished, tmp_path)
    shutil.rmtree(out / "checkpoint")  # no checkpoint: the CLI falls back on OUT/config.yaml
    text = (out / "config.yaml").read_text()
    (out / "config.yaml").write_text(text[: len(text) // 2].rsplit("\n", 1)[0] + "\n")
    one_line_error(capsys, ["train", "--resume", str(out)], str(out / "config.yaml"), "incomplete")


def test_corrupt_metrics_line_is_named(finished, tmp_path, capsys):
    """A corrupt line before the checkpoint: restored from the checkpoint's copy, said in one line naming the file;
    a checkpoint without that copy (written before it existed) names the file and the line."""
    ref, _, _ = finished
    out = _stopped_copy(finished, tmp_path)
    lines = (out / "metrics.jsonl").read_text().splitlines()
    damaged = lines[0][:10] + "\n" + "\n".join(lines[1:]) + "\n"
    (out / "metrics.jsonl").write_text(damaged)
    legacy = tmp_path / "legacy"
    shutil.copytree(out, legacy)
    assert main(["train", "--resume", str(out)]) == 0
    notes = [ln for ln in capsys.readouterr().err.splitlines() if str(out / "metrics.jsonl") in ln]
    assert len(notes) == 1 and "restored them from" in notes[0], notes
    assert records(out) == records(ref)
    (legacy / "checkpoint" / "metrics.jsonl").unlink()
    sums = json.loads((legacy / "checkpoint" / "checksums.json").read_text())
    del sums["metrics.jsonl"]
    (legacy / "checkpoint" / "checksums.json").write_text(json.dumps(sums))
    one_line_error(capsys, ["train", "--resume", str(legacy)], str(legacy / "metrics.jsonl"), "line 1")


def test_cut_short_last_metrics_line_is_dropped(finished, tmp_path):
    """A metrics line cut short by a kill is dropped and the resumed run is exact."""
    ref, _, _ = finished
    out = _stopped_copy(finished, tmp_path)
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "loss": 3.')  # a kill -9 in the middle of an append
    assert main(["train", "--resume", str(out)]) == 0
    assert records(out) == records(ref)


def _shards_with_meta(directory: Path) -> Path:
    write_shards(directory, n_train=8_000, n_val=1_000)
    splits = {
        s: {
            "file": f"{s}.bin",
            "tokens": (directory / f"{s}.bin").stat().st_size // 2,
            "sha256": hashlib.sha256((directory / f"{s}.bin").read_bytes()).hexdigest(),
        }
        for s in ("train", "val")
    }
    (directory / "meta.json").write_text(json.dumps({"inputs": {}, "dtype": "uint16", "splits": splits}))
    return directory


def test_garbage_in_a_shard_is_caught_by_its_checksum(tmp_path, capsys):
    """Valid-looking garbage written into a token shard (same size) is caught by its sha256."""
    d = _shards_with_meta(tmp_path / "shards")
    cfg = tiny_experiment(d, max_steps=2)
    cfg.to_yaml(tmp_path / "a.yaml")
    assert main(["train", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "ok")]) == 0
    assert (d / ".verified.json").is_file()  # verified once; later runs only stat the file
    tokens = np.fromfile(d / "train.bin", dtype=np.uint16)
    tokens[100:200] = np.arange(100) % 64  # valid-looking ids, same size
    tokens.tofile(d / "train.bin")
    one_line_error(
        capsys, ["train", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "bad")], str(d / "train.bin"), "sha256"
    )
    assert not (tmp_path / "bad" / "checkpoint").exists()


@pytest.mark.parametrize("meta", ["{not json", '{"dtype": "uint16"}', '{"dtype": "uint16", "splits": {"train": 3}}'])
def test_corrupt_shard_meta_is_named(meta, tmp_path, capsys):
    """A shard folder's meta.json (not JSON, missing entries) is named."""
    d = _shards_with_meta(tmp_path / "shards")
    (d / "meta.json").write_text(meta)
    tiny_experiment(d, max_steps=2).to_yaml(tmp_path / "a.yaml")
    one_line_error(capsys, ["train", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "r")], str(d / "meta.json"))


def test_corrupt_tokenizer_is_named(shards, tmp_path, capsys):
    """A shard folder's corrupt tokenizer.json is named before training."""
    d = tmp_path / "shards"
    shutil.copytree(shards, d)
    (d / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    tiny_experiment(d, max_steps=2).to_yaml(tmp_path / "a.yaml")
    one_line_error(
        capsys,
        ["train", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "r")],
        str(d / "tokenizer.json"),
        "tokenizer",
    )


def test_micro_batch_zero_and_short_validation_split(shards, tmp_path, capsys):
    """train.micro_batch=0, and a validation split shorter than one window, are named before training."""
    tiny_experiment(shards).to_yaml(tmp_path / "a.yaml")
    one_line_error(
        capsys,
        ["train", str(tmp_path / "a.yaml"), "train.micro_batch=0", "--dry-run"],
        "train.micro_batch must be >= 1, got 0",
    )
    d = write_shards(tmp_path / "short", n_train=8_000, n_val=20)  # val shorter than one window of 33 tokens
    tiny_experiment(d).to_yaml(tmp_path / "b.yaml")
    one_line_error(
        capsys,
        ["train", str(tmp_path / "b.yaml"), "--out", str(tmp_path / "r")],
        str(d / "val.bin"),
        "fewer than one window",
    )
    assert not (tmp_path / "r" / "metrics.jsonl").exists()  # found before any training


def test_model_directory_errors_name_the_file(finished, tmp_path, capsys):
    """A model directory's broken config.json, safetensors header and tokenizer.json are named."""
    import fope.model
    from fope.utils import FileProblem

    run, _, _ = finished
    model = tmp_path / "model"
    shutil.copytree(run / "model", model)
    (model / "config.json").write_text("{")
    with pytest.raises(FileProblem, match=str(model / "config.json")):
        fope.model.load(model)
    shutil.copy(run / "model" / "config.json", model / "config.json")
    _flip(model / "model.safetensors", at=3)  # the header length
    with pytest.raises(FileProblem, match=str(model / "model.safetensors")):
        fope.model.load(model)
    shutil.copy(run / "model" / "model.safetensors", model / "model.safetensors")
    (model / "tokenizer.json").write_text("{")
    one_line_error(
        capsys,
        ["eval", "ppl", "--model", str(model), "--data", str(run), "--lengths", "16"],
        str(model / "tokenizer.json"),
    )


def test_missing_relative_model_path_exits_2(tmp_path, capsys, monkeypatch):
    """A missing relative model path (or a name the offline hub cannot give) is one line, exit 2."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    one_line_error(
        capsys, ["eval", "ppl", "--model", "runs/missing", "--data", "wiki", "--lengths", "16"], "runs/missing"
    )
    os.rmdir(tmp_path / "runs")  # no runs/ here: the name is tried on the (offline) hub, still one line
    one_line_error(
        capsys, ["eval", "ppl", "--model", "runs/missing", "--data", "wiki", "--lengths", "16"], "runs/missing"
    )
