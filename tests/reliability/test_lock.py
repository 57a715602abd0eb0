"""One writer per run directory: a second `fope train` (finetune's run loop, a grid) on a directory in use fails at
once in one line naming the holder; a lock left by a killed process is taken over; pid reuse and other hosts are
told apart where the file system has no flock."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fope.utils import DirectoryInUse, directory_lock, process_start

from . import procs
from .helpers import tiny_experiment

WORKER = Path(__file__).with_name("signal_worker.py")


def _cfg(shards, **kw):
    return tiny_experiment(shards, **{"max_steps": 6, "save_every": 3, "eval_every": 3, **kw})


def test_two_fope_train_started_0_3_s_apart(shards, tmp_path, drill):
    """Two `fope train` 0.3 s apart into one directory: the second refuses naming the first, whose model ends there."""
    _cfg(shards).to_yaml(tmp_path / "a.yaml")
    rc, err = procs.fope("train", str(tmp_path / "a.yaml"), "--out", str(tmp_path / "alone"))
    assert rc == 0, err
    reference = (tmp_path / "alone" / "model" / "model.safetensors").read_bytes()
    for i in range(2):
        with drill.attempt():
            out = tmp_path / f"X{i}"
            first = procs.start("train", str(tmp_path / "a.yaml"), "--out", str(out))
            time.sleep(0.3)
            second = procs.start("train", str(tmp_path / "a.yaml"), "--pe", "alibi", "--out", str(out))
            _, err2 = second.communicate(timeout=300)
            _, err1 = first.communicate(timeout=300)
            lines = procs.error_lines(err2)
            assert second.returncode == 2 and len(lines) == 1, err2
            assert f"{out}: this run directory is in use by pid {first.pid} on {socket.gethostname()}" in lines[0]
            assert "started 20" in lines[0] and "--out" in lines[0]
            assert first.returncode == 0, err1
            assert (out / "model" / "model.safetensors").read_bytes() == reference  # the first's model, not ALiBi's
            assert json.loads((out / "model" / "config.json").read_text())["pe"] == "rope"
            assert not (out / ".lock").exists()  # released (and removed) at the end


def test_lock_of_a_killed_process_is_taken_over(shards, tmp_path):
    """kill -9 of a training process: while it lived a second writer was refused; after, the resume takes over."""
    _cfg(shards, max_steps=40, save_every=1).to_yaml(tmp_path / "a.yaml")
    out, log = tmp_path / "run", tmp_path / "err.txt"
    proc = procs.start(str(tmp_path / "a.yaml"), str(out), "0.5", "2", stderr=log, script=WORKER)
    procs.wait_for(log, "micro-batch 3.0", proc)
    rc, err = procs.fope("train", "--resume", str(out))
    assert rc == 2 and len(err) == 1 and f"in use by pid {proc.pid}" in err[0], err
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert json.loads((out / ".lock").read_text())["pid"] == proc.pid  # left behind by the kill
    rc, err = procs.fope("train", "--resume", str(out), "--max-steps", "40", "--stop-at", "3")
    assert rc == 0, err
    assert any(f"taking over from pid {proc.pid}" in line for line in err), err
    assert not (out / ".lock").exists()


def test_run_loop_lock_covers_finetune_jobs(shards, tmp_path):
    """fope.train.loop.run (the loop of `fope hf finetune`) refuses a directory another process holds."""
    import torch

    import fope.model
    from fope.train.data import prepare_data
    from fope.train.distributed import DistInfo
    from fope.train.loop import Job, run
    from fope.train.optim import build_optimizer

    cfg = _cfg(shards)
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    model = fope.model.build(cfg.model)
    job = Job(
        model=model,
        optimizer=build_optimizer(model, cfg.train),
        data=prepare_data(cfg, info),
        train=cfg.train,
        seq_len=cfg.seq_len,
        vocab_size=cfg.model.vocab_size,
        config=cfg.to_dict(),
        progress=False,
    )
    out = tmp_path / "ft"
    holder = _hold(out)
    try:
        with pytest.raises(DirectoryInUse, match=f"in use by pid {holder.pid}"):
            run(job, out, info, ckpt=None, stop_at=None)
    finally:
        holder.kill()
        holder.wait()
    assert not (out / "metrics.jsonl").exists()  # refused before writing anything


def test_second_grid_on_one_directory_is_refused(tmp_path):
    """A grid whose output directory another process holds fails at once, naming that process."""
    import dataclasses

    from fope.reproduce import get_preset
    from fope.reproduce.cli import build
    from fope.reproduce.scheduler import run_grid

    holder = _hold(tmp_path / "grid")
    try:
        preset = dataclasses.replace(get_preset("cpu"), steps=4, warmup_steps=1, seeds=1, experiments=("main",))
        with pytest.raises(DirectoryInUse, match=f"grid output directory is in use by pid {holder.pid}"):
            run_grid(build(preset), tmp_path / "grid", backend=None, log=lambda s: None)
    finally:
        holder.kill()
        holder.wait()


def _hold(directory: Path) -> subprocess.Popen:
    """Another process holding ``directory``'s lock until killed."""
    code = "import sys,time\nfrom fope.utils import directory_lock\nwith directory_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(directory)], stdout=subprocess.PIPE, env=procs.env(), text=True
    )
    assert proc.stdout.readline().strip() == "held"
    return proc


# --------------------------------------------------------------------------- where the file system has no flock
@pytest.fixture
def no_flock(monkeypatch):
    import fcntl

    def flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", flock)


def _record(**kw) -> dict:
    rec = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "boot_id": Path("/proc/sys/kernel/random/boot_id").read_text().strip(),
        "process_start": process_start(os.getpid()),
        "started": "2025-01-01T00:00:00+0000",
        "command": "fope train --out X",
    }
    return {**rec, **kw}


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(
    "case,taken_over",
    [
        ("dead pid", True),
        ("pid reused by a later process", True),
        ("before a reboot", True),
        ("live holder", False),
        ("another host", False),
    ],
)
def test_pid_file_lock_tells_stale_from_live(no_flock, tmp_path, capsys, case, taken_over):
    """Without flock: a pid file is taken over only when its process is certainly gone on this host."""
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        time.sleep(0.2)
        record = {
            "dead pid": _record(pid=_dead_pid()),
            "pid reused by a later process": _record(pid=holder.pid, process_start=1),
            "before a reboot": _record(pid=holder.pid, boot_id="another-boot"),
            "live holder": _record(pid=holder.pid, process_start=process_start(holder.pid)),
            "another host": _record(host="elsewhere.example", pid=holder.pid),
        }[case]
        (tmp_path / ".lock.pid").write_text(json.dumps(record))
        if taken_over:
            with directory_lock(tmp_path, what="run directory"):
                assert json.loads((tmp_path / ".lock.pid").read_text())["pid"] == os.getpid()
            assert "removing the stale lock" in capsys.readouterr().err
            assert not (tmp_path / ".lock.pid").exists()
            return
        match = f"in use by pid {record['pid']} on {record['host']}"
        with pytest.raises(DirectoryInUse, match=match) as e, directory_lock(tmp_path, what="run directory"):
            pass
        if case == "another host":  # the advice, followed: the operator knows that process is gone
            assert f"delete {tmp_path / '.lock.pid'}" in str(e.value)
            (tmp_path / ".lock.pid").unlink()
            with directory_lock(tmp_path, what="run directory"):
                pass
    finally:
        holder.kill()
        holder.wait()
