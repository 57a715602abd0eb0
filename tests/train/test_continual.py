"""Continual pre-training (docs/paper.md §4.6) at tiny size: every arm of 512 -> 1024 with 16 -> 32 here."""

from __future__ import annotations

import pytest
import torch

import fope.model
from fope.model import ModelConfig
from fope.pos.fope import FoPE
from fope.pos.scaling import authors_yarn
from fope.train import train
from fope.train.config import apply_overrides
from fope.train.continual import merge_state

from .helpers import VOCAB, tiny_experiment, write_shards


def _model(pe: str, train_len: int, **pe_options) -> torch.nn.Module:
    # head_dim 32: FoPE keeps 2 frequencies at train_len 16 and 3 at 32, so the coefficients grow 2x2 -> 3x3
    return fope.model.build(
        ModelConfig(
            vocab_size=VOCAB, d_model=64, n_layers=2, n_heads=2, train_len=train_len, pe=pe, pe_options=pe_options
        )
    )


def _non_pe(state: dict) -> dict:
    return {k: v for k, v in state.items() if ".pos." not in k}


def _assert_same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_rope_to_yarn_copies_everything():
    src = _model("rope", 16)
    dst = _model("rope", 32, scaling=authors_yarn(16))
    report = merge_state(dst, src.state_dict(), "expand")
    _assert_same(dst.state_dict(), src.state_dict())
    assert not report["fresh"] and not report["resized"] and not report["dropped"]


def test_rope_to_fope_keeps_fresh_coefficients():
    src = _model("rope", 16)
    dst = _model("fope", 32, sigma=0.3)
    fresh = {k: v.clone() for k, v in dst.state_dict().items() if k.endswith("_coef")}
    report = merge_state(dst, src.state_dict(), "expand")
    _assert_same(_non_pe(dst.state_dict()), _non_pe(src.state_dict()))
    assert sorted(report["fresh"]) == sorted(fresh)
    for k, v in fresh.items():
        torch.testing.assert_close(dst.state_dict()[k], v, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["expand", "zero"])
def test_fope_to_longer_fope_expands_coefficients(mode):
    torch.manual_seed(1)
    src = _model("fope", 16, sigma=0.3)
    dst = _model("fope", 32, sigma=0.3)
    old = src.state_dict()["blocks.0.attn.pos.sin_coef"]
    assert tuple(old.shape) == (2, 2, 2) and tuple(dst.state_dict()["blocks.0.attn.pos.sin_coef"].shape) == (2, 3, 3)
    report = merge_state(dst, src.state_dict(), mode)
    assert len(report["resized"]) == 4  # sin and cos of 2 layers
    _assert_same(_non_pe(dst.state_dict()), _non_pe(src.state_dict()))
    for layer in range(2):
        for name in ("sin_coef", "cos_coef"):
            key = f"blocks.{layer}.attn.pos.{name}"
            new, old = dst.state_dict()[key], src.state_dict()[key]
            torch.testing.assert_close(new[:, :2, :2], old, rtol=0, atol=0)  # old block in the top-left corner
            border = torch.cat([new[:, 2:, :].flatten(), new[:, :2, 2:].flatten()])
            if mode == "zero":
                assert torch.count_nonzero(border) == 0
            else:  # fresh Xavier + step-eye: the new diagonal entry is ~1
                assert torch.all((new[:, 2, 2] - 1).abs() < 0.5)
                assert torch.count_nonzero(border) == border.numel()
    assert isinstance(dst.blocks[0].attn.pos, FoPE)
    x = torch.randint(0, VOCAB, (1, 8))
    assert torch.isfinite(dst(x)).all()


def test_fope_to_yarn_drops_coefficients():
    src = _model("fope", 16, sigma=0.3)
    dst = _model("rope", 32, scaling=authors_yarn(16))
    report = merge_state(dst, src.state_dict(), "expand")
    assert sorted(report["dropped"]) == sorted(k for k in src.state_dict() if k.endswith("_coef"))
    _assert_same(dst.state_dict(), _non_pe(src.state_dict()))


def test_incompatible_weights_are_named():
    src = _model("rope", 16)
    dst = fope.model.build(ModelConfig(vocab_size=VOCAB, d_model=64, n_layers=3, n_heads=2, train_len=32))
    with pytest.raises(ValueError, match=r"do not fit the new model: \['blocks.2"):
        merge_state(dst, src.state_dict(), "expand")


@pytest.mark.parametrize("reset", [True, False])
def test_train_init_from_run(tmp_path, reset):
    shards = write_shards(tmp_path / "shards")
    source = tmp_path / "fope16"
    train(tiny_experiment(shards, pe="fope", pe_options={"sigma": 0.3}, train_len=16, max_steps=2), source)
    cfg = tiny_experiment(shards, pe="fope", pe_options={"sigma": 0.3}, train_len=32, max_steps=2)
    cfg = apply_overrides(cfg, [f"train.init_from={source}", f"train.reset_optimizer={reset}"])
    out = tmp_path / "fope32"
    summary = train(cfg, out)
    assert summary["finished"]
    src, dst = fope.model.load(source).state_dict(), fope.model.load(out).state_dict()
    old, new = src["blocks.0.attn.pos.sin_coef"], dst["blocks.0.attn.pos.sin_coef"]
    assert old.shape[-2] < new.shape[-2]  # the floor moved: more kept frequencies at train_len 32
    r, c = old.shape[-2:]
    torch.testing.assert_close(new[:, :r, :c], old, rtol=0, atol=0)  # fixed coefficients: never trained
    opt = torch.load(out / "checkpoint" / "optimizer.pt", weights_only=True)
    assert int(opt["state"][0]["step"]) == (2 if reset else 4)  # AdamW moments continue from the source


def test_reset_optimizer_false_needs_a_run(tmp_path):
    shards = write_shards(tmp_path / "shards")
    model_dir = fope.model.save(_model("rope", 32), tmp_path / "bare")
    cfg = apply_overrides(tiny_experiment(shards), [f"train.init_from={model_dir}", "train.reset_optimizer=false"])
    with pytest.raises(ValueError, match="reset_optimizer=false needs a training run"):
        train(cfg, tmp_path / "out")
