"""torchrun DDP on CPU (gloo): 2 processes x micro-batch equals 1 process with the same global batch."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from fope.train import train

from .helpers import losses, tiny_experiment, write_shards

WORKER = Path(__file__).with_name("ddp_worker.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(shards: Path, out: Path, stop_at: int | None = None) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(_free_port()),
        str(WORKER),
        str(shards),
        str(out),
        str(stop_at or "none"),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


@pytest.mark.distributed
def test_two_processes_match_one(tmp_path):
    shards = write_shards(tmp_path / "shards")
    single = tmp_path / "single"
    train(tiny_experiment(shards), single)  # 1 process: micro-batch 4, accumulation 2
    ddp = tmp_path / "ddp"
    _torchrun(shards, ddp, stop_at=6)  # 2 processes: micro-batch 4, no accumulation; stop and resume
    _torchrun(shards, ddp)
    one, two = losses(single), losses(ddp)
    assert [s for s, _ in two] == list(range(1, 13))
    assert [s for s, _ in one] == [s for s, _ in two]
    for (_, a), (_, b) in zip(one, two):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-6)
    assert (ddp / "model" / "model.safetensors").is_file() and (ddp / "summary.json").is_file()
