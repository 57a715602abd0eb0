"""benchmarks/train_step.py --profile: every op of a training step lands in the part of the model it belongs to."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

import fope.model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("train_step", ROOT / "benchmarks" / "train_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cfg():  # widths all different: vocab 2048, hidden 384 (x2 = 768), q/k/v 288, d_model 96, head_dim 32
    return fope.model.resolve_config("cpu-tiny", vocab_size=2048, train_len=64)


@pytest.mark.parametrize(
    "name,shapes,parents,part",
    [
        ("aten::mm", [[4096, 96], [96, 2048]], [], "output layer + cross-entropy"),
        ("aten::_log_softmax", [[4096, 2048], [], []], [], "output layer + cross-entropy"),
        ("aten::fill_", [[4096, 2048], []], [], "output layer + cross-entropy"),
        ("aten::_scaled_dot_product_flash_attention_for_cpu", [[16, 3, 256, 32]] * 3, [], "attention (SDPA)"),
        ("aten::mm", [[4096, 96], [96, 768]], [], "MLP (SwiGLU)"),
        ("aten::silu", [[16, 256, 384]], [], "MLP (SwiGLU)"),
        ("aten::mm", [[4096, 96], [96, 288]], [], "q/k/v/o projections"),
        ("aten::mm", [[4096, 96], [96, 96]], [], "q/k/v/o projections"),
        ("aten::mul", [[16, 3, 256, 16], [256, 16]], [], "position encoding"),
        ("aten::mul", [[16, 256, 96], [16, 256, 96]], [], "other"),
        ("aten::add_", [[96, 2048], [96, 2048]], ["aten::_foreach_add_", "Optimizer.step#AdamW.step"], "optimizer"),
    ],
)
def test_op_part(bench, cfg, name, shapes, parents, part):
    assert bench.op_part(name, shapes, parents, cfg) == part


def test_profile_of_a_real_step_covers_every_part_that_does_work(bench, cfg):
    torch.manual_seed(0)
    model = fope.model.build(cfg, pe="rope", train_len=64)
    step = bench.make_step(model, model, device=torch.device("cpu"), precision="fp32", fused=False)
    ids = torch.randint(0, cfg.vocab_size, (2, 65))
    step(ids[:, :-1], ids[:, 1:])
    parts = bench.profile_parts(step, ids[:, :-1], ids[:, 1:], cfg, steps=1)
    assert list(parts) == list(bench.PARTS)
    for part in (
        "optimizer",
        "output layer + cross-entropy",
        "attention (SDPA)",
        "MLP (SwiGLU)",
        "q/k/v/o projections",
        "position encoding",
    ):
        assert parts[part] > 0, part
    table = bench.parts_table({"rope/fp32": parts})
    assert table.splitlines()[0] == "| part | `rope/fp32` ms/step (share) |"
    assert len(table.splitlines()) == 2 + len(bench.PARTS) + 1
