"""`train.compile=true`: same losses as eager, exact resume, no wrapper prefixes saved, bounded recompilation."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from fope.train import train

from .helpers import losses, tiny_experiment, write_shards

pytestmark = pytest.mark.slow  # inductor compiles C++ on CPU: minutes on 2 cores


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("shards"))


@pytest.mark.parametrize("pe", ["fope", "alibi"])
def test_compiled_training_matches_eager_resumes_exactly_and_saves_plain_keys(shards, tmp_path, pe):
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    eager = train(tiny_experiment(shards, pe=pe), tmp_path / "eager")
    cfg = tiny_experiment(shards, pe=pe, compile=True)
    compiled = train(cfg, tmp_path / "compiled")
    # 12 steps x 2 micro-batches + 3 evaluations: one graph for the training shape, never one per step/evaluation
    assert counters["stats"]["unique_graphs"] <= 2, dict(counters["stats"])
    got, want = losses(tmp_path / "compiled"), losses(tmp_path / "eager")
    assert [s for s, _ in got] == [s for s, _ in want]
    torch.testing.assert_close(
        torch.tensor([v for _, v in got]), torch.tensor([v for _, v in want]), rtol=1e-4, atol=1e-4
    )  # fp32: kernels fused differently, same math
    assert compiled["finished"] and eager["finished"]
    keys = list(load_file(str(tmp_path / "compiled" / "model" / "model.safetensors")))
    assert keys and not any("_orig_mod" in k for k in keys)
    # stop + resume under compile is bit-identical to the uninterrupted compiled run
    out = tmp_path / "resumed"
    train(cfg, out, stop_at=6)
    train(cfg, out, resume=True)
    assert losses(out) == got
