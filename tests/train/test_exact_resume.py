"""Exact resume in the default precision (`auto`: bf16 autocast where the CPU computes bf16 natively, as CI's does):
a run stopped with --stop-at and resumed ends with the uninterrupted run's losses and weights, bit for bit, for FoPE
(whose position tables once followed the first caller's autocast) and RoPE. Every kind x {bf16, fp32}, with kill -9
as well, is drilled in tests/reliability/test_resume_precision.py."""

from __future__ import annotations

import pytest
import torch

from fope.train import train
from fope.train.loop import resolve_precision

from .helpers import losses, tiny_experiment, write_shards


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"), n_train=6_000, n_val=1_000)


@pytest.mark.parametrize("pe", ["fope", "rope"])
def test_stop_at_and_resume_equal_the_uninterrupted_run_in_the_default_precision(shards, tmp_path, pe):
    from safetensors.torch import load_file

    cfg = tiny_experiment(shards, pe=pe, max_steps=6, save_every=100, eval_every=3, warmup_steps=1)
    assert cfg.train.precision == "auto"
    ref = train(cfg, tmp_path / "full")
    assert ref["precision"] == resolve_precision("auto", torch.device("cpu"))
    train(cfg, tmp_path / "resumed", stop_at=3)
    train(cfg, tmp_path / "resumed", resume=True)
    assert losses(tmp_path / "resumed") == losses(tmp_path / "full")  # exact, not allclose
    a, b = (load_file(tmp_path / d / "model" / "model.safetensors") for d in ("full", "resumed"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
