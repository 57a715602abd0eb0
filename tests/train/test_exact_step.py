"""What one optimizer step computes does not depend on how it is cut or interrupted.

- Gradient accumulation: a global batch of 8 sequences taken as 2 micro-batches of 4 gives the same loss and the
  same gradient norm, at the first step and after it, as one micro-batch of 8 (each micro-batch's loss is divided
  by the number of micro-batches before backward, so the accumulated gradient is the mean over the global batch,
  not its sum).
- Resume: every random stream (torch, numpy, Python) continues after a resume exactly where the stopped run left
  it, so anything stochastic in a step (dropout, sampling in a user's loss) is the same as in an uninterrupted run.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from fope.train import loop as loop_module
from fope.train import train
from fope.train.metrics import read_metrics

from .helpers import tiny_experiment, write_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"))


def _first_steps(run_dir):
    return {r["step"]: r for r in read_metrics(run_dir) if "loss" in r}


def test_accumulated_micro_batches_equal_one_batch(shards, tmp_path):
    one = train(tiny_experiment(shards, micro_batch=8, max_steps=2, eval_every=0, save_every=2), tmp_path / "one")
    two = train(tiny_experiment(shards, micro_batch=4, max_steps=2, eval_every=0, save_every=2), tmp_path / "two")
    assert one["finished"] and two["finished"]
    a, b = _first_steps(tmp_path / "one"), _first_steps(tmp_path / "two")
    for step in (1, 2):
        assert b[step]["loss"] == pytest.approx(a[step]["loss"], rel=1e-5), step
        # the gradient of the mean loss: summing the micro-batch losses instead would double this norm
        assert b[step]["grad_norm"] == pytest.approx(a[step]["grad_norm"], rel=1e-4), step


def test_random_streams_continue_exactly_after_a_resume(shards, tmp_path, monkeypatch):
    real = loop_module.compute_loss
    draws: list[tuple[float, float, float]] = []

    def drawing(model, x, y, **kw):  # a loss that consumes every random stream, as dropout or sampling would
        draws.append((torch.rand(()).item(), float(np.random.rand()), random.random()))
        return real(model, x, y, **kw)

    monkeypatch.setattr(loop_module, "compute_loss", drawing)
    cfg = tiny_experiment(shards, max_steps=8, eval_every=0)
    train(cfg, tmp_path / "full")
    full = list(draws)
    draws.clear()
    stopped = train(cfg, tmp_path / "resumed", stop_at=3)
    assert stopped["step"] == 3 and len(draws) == 6  # 3 steps x 2 micro-batches
    draws.clear()
    # a different interpreter state between the two processes' worth of work: the resume must not depend on it
    torch.manual_seed(12345), np.random.seed(12345), random.seed(12345)
    train(cfg, tmp_path / "resumed", resume=True)
    assert draws == full[6:]
