"""Verification cannot be switched off by deleting a file; train.init_from checks its source; the final model is
checked by content (sha256), not by size and time, on --resume and before evaluation."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest

from fope.cli import main
from fope.train import train

from .helpers import one_line_error, tiny_experiment


@pytest.fixture(scope="module")
def finished(shards, tmp_path_factory):
    root = tmp_path_factory.mktemp("integrity")
    cfg = tiny_experiment(shards, max_steps=4, save_every=2, eval_every=2, warmup_steps=1)
    train(cfg, root / "run")
    return root / "run", cfg


def flip_keeping_size_and_time(path: Path, at: int = 4000) -> None:
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_deleting_checksums_json_does_not_switch_verification_off(finished, tmp_path, capsys):
    """checkpoint/checksums.json deleted: the resume refuses, naming it (state.pt says it was written)."""
    _run, cfg = finished
    out = tmp_path / "run"
    train(cfg, out, stop_at=2)
    (out / "checkpoint" / "checksums.json").unlink()
    one_line_error(capsys, ["train", "--resume", out], out / "checkpoint" / "checksums.json", "cannot be verified")


@pytest.mark.parametrize("source", ["run directory", "model directory"])
def test_init_from_a_bit_flipped_source_is_refused(finished, tmp_path, capsys, source):
    """train.init_from of a run (its checkpoint's checksums) or a model directory (config.json's weights_sha256)
    with one flipped bit: refused naming the file."""
    run, cfg = finished
    src = tmp_path / "src"
    shutil.copytree(run if source == "run directory" else run / "model", src)
    weights = (src / "checkpoint" / "model" if source == "run directory" else src) / "model.safetensors"
    flip_keeping_size_and_time(weights)
    cfg.to_yaml(tmp_path / "a.yaml")
    one_line_error(
        capsys, ["train", tmp_path / "a.yaml", f"train.init_from={src}", "--out", tmp_path / "new"], weights, "sha256"
    )


def test_init_from_a_pickled_optimizer_state_is_one_line(finished, tmp_path, capsys):
    """A source optimizer.pt that is a pickle (checksum made to match): one line, never unpickled."""
    import hashlib

    run, cfg = finished
    src = tmp_path / "src"
    shutil.copytree(run, src)
    marker = tmp_path / "pwned"
    optimizer = src / "checkpoint" / "optimizer.pt"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    optimizer.write_bytes(pickle.dumps({"state": Evil()}))
    sums = json.loads((src / "checkpoint" / "checksums.json").read_text())
    sums["optimizer.pt"] = hashlib.sha256(optimizer.read_bytes()).hexdigest()
    (src / "checkpoint" / "checksums.json").write_text(json.dumps(sums))
    cfg.to_yaml(tmp_path / "a.yaml")
    argv = ["train", tmp_path / "a.yaml", f"train.init_from={src}", "train.reset_optimizer=false"]
    one_line_error(capsys, [*argv, "--out", tmp_path / "new"], optimizer, "optimizer state")
    assert not marker.exists()


def test_flipped_byte_in_the_final_model_is_caught_by_content(finished, tmp_path, capsys):
    """OUT/model/model.safetensors with a flipped byte (size and mtime kept): evaluation refuses it naming the file
    and the resume it advises restores it from the checkpoint, after which evaluation works."""
    run, _ = finished
    out = tmp_path / "run"
    shutil.copytree(run, out)
    weights = out / "model" / "model.safetensors"
    flip_keeping_size_and_time(weights)
    line = one_line_error(
        capsys, ["eval", "ppl", "--model", out, "--data", "wiki", "--lengths", "32"], weights, "sha256"
    )
    assert f"`fope train --resume {out}`" in line
    assert main(["train", "--resume", str(out)]) == 0  # the advice, verbatim
    assert f"{out / 'model'} differs from" in capsys.readouterr().err
    assert weights.read_bytes() == (run / "model" / "model.safetensors").read_bytes()
    import fope.model

    fope.model.load(out)  # verified, loads


def _edit_json(f: Path) -> None:
    data = json.loads(f.read_text())
    data["edited"] = 1
    f.write_text(json.dumps(data))


def test_edited_model_files_of_a_run_are_refused(finished, tmp_path, capsys, drill):
    """A valid-JSON edit of a run's OUT/model/config.json (or tokenizer.json, when there is one), both recorded in
    checksums.json, is refused in one line naming the file by fope eval and fope hf export."""
    run, _ = finished
    names = [n for n in ("config.json", "tokenizer.json") if (run / "model" / n).is_file()]
    assert "config.json" in names
    for name in names:
        for argv in (
            ["eval", "ppl", "--model", "{out}", "--data", "{out}/t.txt", "--lengths", "16"],
            ["hf", "export", "--model", "{out}/model"],
        ):
            with drill.attempt():
                out = tmp_path / f"edit-{name}-{argv[0]}"
                shutil.copytree(run, out)
                _edit_json(out / "model" / name)
                (out / "t.txt").write_text("some text to score " * 50)
                args = [a.format(out=out) for a in argv] + (["--out", str(tmp_path / "hf")] if argv[0] == "hf" else [])
                one_line_error(capsys, args, out / "model" / name, "sha256 differs")


def test_export_reads_only_what_it_exports(finished, tmp_path, capsys):
    """An intact model directory exports although the run's config.yaml above it is damaged."""
    run, _ = finished
    out = tmp_path / "run"
    shutil.copytree(run, out)
    (out / "config.yaml").write_text("{not: [yaml")
    assert main(["hf", "export", "--model", str(out / "model"), "--out", str(tmp_path / "hf")]) == 0, (
        capsys.readouterr().err
    )


def test_edited_summary_is_refused_and_a_rebuilt_one_keeps_the_speed(finished, tmp_path, capsys, drill):
    """A valid-JSON edit of summary.json is refused by `fope train --resume` in one line naming it; deleted, the
    resume rebuilds it from the checkpoint with the run's numbers and its last recorded speed (not 0.0)."""
    run, _ = finished
    original = json.loads((run / "summary.json").read_text())
    with drill.attempt():
        out = tmp_path / "edited"
        shutil.copytree(run, out)
        summary = json.loads((out / "summary.json").read_text())
        summary["final_loss"] = 0.01
        (out / "summary.json").write_text(json.dumps(summary))
        one_line_error(capsys, ["train", "--resume", out], out / "summary.json", "sha256")
    with drill.attempt():
        out = tmp_path / "deleted"
        shutil.copytree(run, out)
        (out / "summary.json").unlink()
        assert main(["train", "--resume", str(out)]) == 0
        rebuilt = json.loads((out / "summary.json").read_text())
        for key in ("step", "finished", "first_loss", "final_loss", "final_val_loss", "tokens"):
            assert rebuilt[key] == original[key], key
        assert rebuilt["tokens_per_s"] and rebuilt["tokens_per_s"] > 0
