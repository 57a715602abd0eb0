"""Every preset (CPU and the paper's grid) and every YAML in configs/ loads, validates and builds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import fope.model
import fope.pos
from fope.train import ExperimentConfig, list_presets, load_config, load_preset
from fope.train.presets import PAPER_PES, PAPER_SIZES

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PAPER = [n for n in list_presets() if not n.startswith(("cpu-", "gpu-"))]


def tiny_replica(cfg: ExperimentConfig) -> torch.nn.Module:
    """The preset's encoding, options, train_len and head dim on a 1-layer, 2-head, 64-token-vocab model."""
    head = cfg.model.resolved().head_dim
    return fope.model.build(
        cfg.model.replace(
            vocab_size=64, d_model=2 * head, n_heads=2, n_kv_heads=None, head_dim=None, n_layers=1, mlp_hidden=None
        )
    )


def test_grid_is_complete():
    assert len(PAPER) == 2 * 2 * 3 * 6
    assert list_presets()[:3] == ["cpu-tiny", "cpu-small", "cpu-base"]
    assert "c4-512-60M-fope" in PAPER and "books-1024-1.2B-fire" in PAPER


@pytest.mark.parametrize("name", list_presets())
def test_preset_validates(name):
    cfg = load_preset(name)
    cfg.validate()
    assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg


# a tiny replica per encoding at both head dims / lengths / sigmas by default; the whole grid with -m slow
FAST = (
    ["cpu-tiny", "cpu-small", "cpu-base"]
    + [f"c4-1024-60M-{pe}" for pe in PAPER_PES]
    + [f"books-512-1.2B-{pe}" for pe in PAPER_PES]
)
GRID = [pytest.param(n, marks=[] if n in FAST else pytest.mark.slow) for n in list_presets()]


@pytest.mark.parametrize("name", GRID)
def test_preset_tiny_replica_runs(name):
    cfg = load_preset(name)
    model = tiny_replica(cfg)
    ids = torch.randint(0, 64, (1, 8))
    assert model(ids).shape == (1, 8, 64)


@pytest.mark.parametrize("size, length", [(s, n) for s in PAPER_SIZES for n in (512, 1024)])
def test_paper_hyper_parameters(size, length):
    cfg = load_preset(f"c4-{length}-{size}-fope")
    t = cfg.train
    assert (t.lr, t.beta1, t.beta2, t.eps, t.weight_decay, t.grad_clip, t.seed) == (
        6e-4,
        0.9,
        0.95,
        1e-8,
        0.1,
        1.0,
        6198,
    )
    assert (t.warmup_steps, t.final_lr_ratio, t.precision) == (10_000, 0.1, "bf16")
    assert t.global_batch == {512: 1024, 1024: 512}[length]
    assert t.global_batch * cfg.seq_len == 524_288
    micro = {
        ("60M", 512): 64,
        ("60M", 1024): 32,
        ("180M", 512): 32,
        ("180M", 1024): 16,
        ("1.2B", 512): 8,
        ("1.2B", 1024): 4,
    }
    assert t.micro_batch == micro[(size, length)]
    assert t.global_batch % (t.micro_batch * 4) == 0, "the paper's 4 GPUs must divide the global batch"
    assert cfg.model.pe_options == {"sigma": {"60M": 0.3, "180M": 0.4, "1.2B": 0.6}[size]}
    assert cfg.model.train_len == length
    assert t.max_steps == 19_073  # 10B tokens / 524,288 per step
    assert load_preset(f"books-{length}-{size}-rope").train.max_steps == 10_025  # 5.256B tokens
    assert load_preset(f"books-{length}-{size}-rope").data.eval_corpora == ["c4"]
    assert load_preset(f"books-{length}-{size}-alibi").model.pe_options == {}


def test_paper_60m_on_meta_device():
    cfg = load_preset("c4-512-60M-rope")
    with torch.device("meta"):
        model = fope.model.build(cfg.model)
    one_embedding = 50304 * 512
    assert 59.2e6 < model.num_params() - one_embedding < 59.4e6  # docs/paper.md §4.1: non-emb + one emb = 59.3M


def test_unknown_preset_suggests():
    with pytest.raises(ValueError, match="unknown preset 'c4-512-60m-fope' \\(did you mean 'c4-512-60M-fope'\\?\\)"):
        load_preset("c4-512-60m-fope")


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_files(path):
    cfg = load_config(path)
    if path.stem in list_presets():
        assert cfg == load_preset(path.stem), f"{path} is out of date with the preset of that name"
    tiny_replica(cfg)


def test_config_files_exist():
    names = {p.stem for p in CONFIGS.rglob("*.yaml")}
    assert {"cpu-tiny", "cpu-small", "cpu-base", "c4-512-60M-fope"} <= names
    assert set(PAPER_PES)  # every paper kind appears in the grid


def test_docs_tables_are_current():
    from fope.train.config import fields_table
    from fope.train.presets import presets_table

    docs = (Path(__file__).resolve().parents[2] / "docs" / "training.md").read_text()
    assert presets_table() in docs, "regenerate the presets table in docs/training.md"
    assert fields_table() in docs, "regenerate the fields table in docs/training.md"
