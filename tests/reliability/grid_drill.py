"""A grid process for test_leftovers: two parallel workers, each inside a real fope.train run whose micro-batches
sleep, so that a kill -9 of the grid finds them training (run as a script).

    python grid_drill.py OUT PIDS SHARDS
Each worker writes its pid to PIDS/<pid> once its training has done two steps.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from pathlib import Path


class SlowTrainBackend:
    """fope.train on a tiny config whose every micro-batch sleeps 0.3 s (SIGTERM then checkpoints and stops)."""

    def __init__(self, pids: str, shards: str):
        self.pids, self.shards = pids, shards

    def train(self, cfg, run_dir: Path, *, resume: bool) -> dict:
        from helpers import tiny_experiment

        from fope.train import loop, train

        real, calls = loop.compute_loss, [0]

        def slow(model, x, y, **kw):
            calls[0] += 1
            if calls[0] == 5:  # two steps done (two micro-batches each): there is something to checkpoint
                Path(self.pids, str(os.getpid())).write_text("")
            time.sleep(0.3)
            return real(model, x, y, **kw)

        loop.compute_loss = slow
        small = tiny_experiment(Path(self.shards), max_steps=200, save_every=100, eval_every=100)
        return train(small, run_dir, resume=resume)

    def evaluate(self, run_dir, request):  # pragma: no cover - never reached
        raise AssertionError


if __name__ == "__main__":
    from fope.reproduce import get_preset
    from fope.reproduce.cli import build
    from fope.reproduce.scheduler import run_grid

    out, pids, shards = sys.argv[1:4]
    preset = dataclasses.replace(get_preset("cpu"), steps=4, warmup_steps=1, seeds=1, experiments=("main",))
    run_grid(build(preset), Path(out), backend=SlowTrainBackend(pids, shards), jobs=2, threads=1, log=lambda s: None)
