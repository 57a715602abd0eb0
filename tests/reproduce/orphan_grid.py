"""A grid process for test_runner's orphan test: two parallel workers whose training sleeps (run as a script)."""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path


class SleepyBackend:
    """Each train call writes the worker's pid to PIDS/<pid> and sleeps; nothing else is ever reached."""

    def __init__(self, pids: str):
        self.pids = pids

    def train(self, cfg, run_dir: Path, *, resume: bool) -> dict:
        Path(self.pids, str(os.getpid())).write_text("")
        time.sleep(600)
        return {"finished": False, "step": 0}

    def evaluate(self, run_dir, request):  # pragma: no cover - never reached
        raise AssertionError


if __name__ == "__main__":
    from fope.reproduce import get_preset
    from fope.reproduce.cli import build
    from fope.reproduce.scheduler import run_grid

    out, pids = sys.argv[1], sys.argv[2]
    preset = dataclasses.replace(get_preset("cpu"), steps=4, warmup_steps=1, seeds=1, experiments=("main",))
    run_grid(build(preset), Path(out), backend=SleepyBackend(pids), jobs=2, threads=1, log=lambda s: None)
