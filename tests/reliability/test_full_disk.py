"""A disk that fills up at any write: one line naming the file, no partial output, and an exact finish once the
space is back by following the line's advice.

Where the tests may mount a file system (root here) the disk is real: a small tmpfs holds the run directory, and a
forked `fope train` fills it to the last byte just before its N-th write (create, append, lock record, probe, mkdir;
fope.utils.set_fs_hook says when), so the kernel's ENOSPC reaches safetensors, torch.save and Python's writes as it
would in production. Elsewhere the same drill injects OSError(ENOSPC) without a file name at every write from the
N-th on (what the kernel gives a write or an fsync).
"""

from __future__ import annotations

import errno
import os
import re
import shlex
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from fope.cli import main
from fope.train import train
from fope.train.checkpoint import find_checkpoint
from fope.utils import FileProblem, set_fs_hook

from .helpers import assert_same_run, tiny_experiment

WRITE_OPS = ("create", "append", "lock", "probe", "mkdir")  # the first step of every write


class Disk:
    """A folder on a small tmpfs (real ENOSPC) or, where none can be mounted, on the normal disk (injected)."""

    def __init__(self, root: Path, size: str = "32m") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.real = (
            not os.environ.get("FOPE_DRILL_NO_MOUNT")  # =1: the injected variant, as where nothing can be mounted
            and subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(root)], capture_output=True
            ).returncode
            == 0
        )
        self.full = False

    def fill(self) -> None:
        """Take every free byte (tmpfs), or make every later write fail (injected)."""
        self.full = True
        if not self.real:
            return
        with open(self.root / "filler", "ab", buffering=0) as f:
            for size in (1 << 20, 1 << 12, 1):
                try:
                    while True:
                        f.write(b"\0" * size)
                except OSError:
                    pass

    def free(self) -> None:
        self.full = False
        (self.root / "filler").unlink(missing_ok=True)

    def injected(self, op: str, path: str) -> None:
        if self.full and not self.real and op in (*WRITE_OPS, "write", "fsync") and path.startswith(str(self.root)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # no file name, as the kernel's write/fsync

    def close(self) -> None:
        if self.real:
            subprocess.run(["umount", "-l", str(self.root)], capture_output=True)


@pytest.fixture
def disk(tmp_path):
    d = Disk(tmp_path / "disk")
    yield d
    d.close()


def _child(argv: list[str], disk: Disk, fill_at: int, err: Path) -> int:
    """``fope ARGV`` in a forked child whose disk fills just before its ``fill_at``-th write; its exit status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        rc = 99
        try:
            sys.stderr = open(err, "w")  # noqa: SIM115
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
            seen = 0

            def hook(op: str, path: str) -> None:
                nonlocal seen
                if op in WRITE_OPS:
                    seen += 1
                    if seen == fill_at:
                        disk.fill()
                disk.injected(op, path)

            set_fs_hook(hook)
            rc = main(argv)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(rc)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _cfg(shards):
    return tiny_experiment(shards, max_steps=3, save_every=2, eval_every=2, warmup_steps=1)


@pytest.fixture(scope="module")
def reference(shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "run"
    train(_cfg(shards), out)
    return out


def _count_writes(argv: list[str]) -> int:
    seen = []
    set_fs_hook(lambda op, path: seen.append(op) if op in WRITE_OPS else None)
    try:
        assert main(argv) == 0
    finally:
        set_fs_hook(None)
    return len(seen)


def test_full_disk_at_every_write_of_a_run(shards, reference, disk, tmp_path, capsys, drill):
    """ENOSPC before each write of a run (weights, optimizer.pt, state.pt, metrics, config, summary, lock, probe):
    one line naming a file of the run, no temp files or checkpoint.tmp left, and its advice finishes the run."""
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    n = _count_writes(["train", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "count")])
    capsys.readouterr()
    assert n >= 25
    for k in range(1, n + 1):
        with drill.attempt():
            out = disk.root / f"run{k}"
            argv = ["train", str(tmp_path / "a.yaml"), "--out", str(out)]
            rc = _child(argv, disk, k, tmp_path / "err.txt")
            disk.free()
            err = (tmp_path / "err.txt").read_text()
            lines = [ln for ln in err.splitlines() if ln.strip() and "%|" not in ln and not ln.startswith("fope: ")]
            where = f"write {k} of {n} ({'tmpfs' if disk.real else 'injected'})"
            assert rc in (0, 2), f"{where}: exit {rc}\n{err[-3000:]}"
            if rc == 2:
                assert len(lines) == 1 and lines[0].startswith("fope train: error: "), f"{where}: {err[-3000:]}"
                assert str(out) in lines[0] and re.search(r"no space left|probably full|MiB free", lines[0]), lines[0]
            leftovers = [p for p in out.rglob("*") if p.name.endswith(".tmp") or p.name in (".lock", ".lock.pid")]
            assert not leftovers, f"{where}: {leftovers}"
            command = re.findall(r"`(fope [^`]+)`", lines[0]) if rc == 2 else []
            if command:  # the advice, verbatim
                again = shlex.split(command[-1])[1:]
            else:  # "free space and run the same command again"
                again = ["train", "--resume", str(out)] if find_checkpoint(out) is not None else argv
            assert main(again) == 0, f"{where}: {again}"
            capsys.readouterr()
            assert_same_run(out, reference)
            subprocess.run(["rm", "-rf", str(out)], check=True)


def test_disk_precheck_counts_the_second_save(shards, tmp_path):
    """The pre-check asks for the real peak (old checkpoint + new one + OUT/model: 3 weights + 2 moments): a disk
    with room for the first save only is refused before training, and the same run fits a disk of that size."""
    import fope.model
    from fope.train.loop import checkpoint_bytes

    cfg = tiny_experiment(shards, max_steps=2, save_every=1, eval_every=2, warmup_steps=1)
    cfg.model = cfg.model.replace(d_model=256, n_heads=4, vocab_size=2048)
    need = checkpoint_bytes(fope.model.build(cfg.model))
    weights = sum(t.numel() * 4 for t in fope.model.build(cfg.model).state_dict().values())
    assert need >= 3 * weights + 2 * 2 * weights  # moments: two fp32 per parameter
    small = Disk(tmp_path / "small", size=f"{(2 * weights + 2 * weights) // 1024}k")  # 2W + M: the old estimate
    big = Disk(tmp_path / "big", size=f"{(need + (4 << 20)) // 1024}k")
    try:
        if not small.real:
            pytest.skip("cannot mount a tmpfs here")
        with pytest.raises(FileProblem, match=r"only \d+ MiB free on its disk, the run directory .* needs about"):
            train(cfg, small.root / "run")
        assert not (small.root / "run" / "checkpoint").exists()
        assert train(cfg, big.root / "run")["finished"]
    finally:
        small.close()
        big.close()


def test_full_disk_for_export_eval_json_and_grid_records(shards, reference, disk, tmp_path, capsys):
    """`fope hf export` leaves no half-written directory; an eval result and a grid record name their file."""
    from fope.eval.results import save_result
    from fope.reproduce.records import write_json_atomic

    if not disk.real:
        pytest.skip("cannot mount a tmpfs here")
    blob = disk.root / "blob"
    blob.write_bytes(b"\0" * (28 << 20))  # leaves a few MiB: the export starts and then runs out
    disk.fill()
    rc = main(["hf", "export", "--model", str(reference / "model"), "--out", str(disk.root / "hf")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and "no space left" in err[0] and str(disk.root) in err[0], err
    assert not (disk.root / "hf").exists() and not list(disk.root.glob(".hf.*"))
    result = {"kind": "ppl", "settings": {"pad": "x" * 100_000}, "by_length": {"32": 1.0}}
    with pytest.raises(FileProblem, match=f"{disk.root / 'ppl.json'}: no space left"):
        save_result(result, disk.root / "ppl.json")
    with pytest.raises(FileProblem, match=f"{disk.root / 'run.json'}: no space left"):
        write_json_atomic(disk.root / "run.json", {"x": "y" * 100_000})
    assert not [p for p in disk.root.iterdir() if p.name.endswith(".tmp")]
