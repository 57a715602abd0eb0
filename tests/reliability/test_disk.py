"""Full disk and read-only output: detected before the work where possible, one line naming the path otherwise,
and the previous checkpoint always intact."""

from __future__ import annotations

import errno
import shutil
from collections import namedtuple

import pytest

from fope.cli import main
from fope.train import loop as loop_module
from fope.train import train
from fope.train.checkpoint import find_checkpoint
from fope.utils import set_fs_hook

from .helpers import records, tiny_experiment


@pytest.fixture(autouse=True)
def _no_hook():
    yield
    set_fs_hook(None)


def _cfg(shards):
    return tiny_experiment(shards, max_steps=4, save_every=2, eval_every=2, warmup_steps=1)


def test_disk_full_during_a_checkpoint_save(shards, tmp_path, capsys):
    """ENOSPC (injected) at the second save: one line, the previous checkpoint intact, then an exact resume."""
    cfg = _cfg(shards)
    cfg.to_yaml(tmp_path / "a.yaml")
    out = tmp_path / "run"

    def full_at_second_save(op, path):
        if "checkpoint.tmp" in path and op == "write" and find_checkpoint(out) is not None:
            raise OSError(errno.ENOSPC, "No space left on device", path)

    set_fs_hook(full_at_second_save)
    assert main(["train", str(tmp_path / "a.yaml"), "--out", str(out)]) == 2
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("fope train: error")]
    assert len(err) == 1 and "no space left on the device while writing the checkpoint of step 4" in err[0]
    assert str(out / "checkpoint") + " is intact" in err[0]
    assert not (out / "checkpoint.tmp").exists()  # the partial save is removed
    assert find_checkpoint(out) == out / "checkpoint"
    set_fs_hook(None)
    ref = tmp_path / "ref"
    train(cfg, ref)
    assert main(["train", "--resume", str(out)]) == 0  # after freeing space: an exact resume
    assert records(out) == records(ref)


def test_torch_save_full_disk_error_is_one_line(shards, tmp_path):
    """torch.save reports a full disk as RuntimeError('... unexpected pos N vs M'): named as a full disk too."""
    from fope.utils import FileProblem

    cfg = _cfg(shards)
    out = tmp_path / "run"

    def torch_full(op, path):
        if op == "write" and path.endswith(".tmp") and "optimizer.pt" in path and find_checkpoint(out) is not None:
            raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 3261824 vs 3261712")

    set_fs_hook(torch_full)
    with pytest.raises(
        FileProblem,
        match=r"checkpoint of step 4 failed \(.*unexpected pos.*\); the disk is probably "
        r"full .* the previous checkpoint in .* is intact",
    ):
        train(cfg, out)
    assert not (out / "checkpoint.tmp").exists() and find_checkpoint(out) == out / "checkpoint"


def test_too_little_space_is_found_before_training(shards, tmp_path, monkeypatch, capsys):
    """Too little free space for the checkpoint saves is found before training."""
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    assert main(["train", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"fope train: error: {tmp_path / 'run'}: only 0 MiB free") and "\n" not in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_read_only_output_is_found_before_the_data_preparation(shards, tmp_path, monkeypatch, capsys):
    """A read-only run directory is found before the data preparation."""

    def read_only(op, path):
        if op == "probe":
            raise OSError(errno.EROFS, "Read-only file system", path)

    def no_data(*a, **k):
        raise AssertionError("data preparation started")

    monkeypatch.setattr(loop_module, "prepare_data", no_data)
    set_fs_hook(read_only)
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    assert main(["train", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"fope train: error: {tmp_path / 'run'}: cannot write here while checking that the run directory "
        "is writable (Read-only file system); choose a writable output directory"
    )
