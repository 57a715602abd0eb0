"""ExperimentConfig: YAML round trip, dotted overrides with type coercion, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fope.train import ExperimentConfig, apply_overrides, load_config, load_preset
from fope.train.config import DataConfig, TrainConfig, all_keys
from fope.utils import coerce, field_docs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture
def cfg() -> ExperimentConfig:
    return load_preset("cpu-tiny")


def test_yaml_round_trip(cfg, tmp_path):
    path = tmp_path / "c.yaml"
    cfg.to_yaml(path)
    assert ExperimentConfig.from_yaml(path) == cfg
    changed = apply_overrides(cfg, ["model.pe=alibi", "model.pe_options={}", "data.eval_corpora=[]"])
    changed.to_yaml(path)
    assert ExperimentConfig.from_yaml(path) == changed


def test_overrides_coerce_to_field_types(cfg):
    out = apply_overrides(
        cfg,
        [
            "train.lr=3e-4",
            "train.max_steps=1e3",
            "train.compile=yes",
            "train.seq_len=128",
            "data.eval_corpora=wiki,c4",
            "model.pe_options.sigma=0.5",
            "data.shard_dir=null",
            "train.metrics=[tensorboard]",
            "model.n_kv_heads=1",
        ],
    )
    assert out.train.lr == 3e-4 and isinstance(out.train.lr, float)
    assert out.train.max_steps == 1000 and isinstance(out.train.max_steps, int)
    assert out.train.compile is True
    assert out.seq_len == 128
    assert out.data.eval_corpora == ["wiki", "c4"]
    assert out.model.pe_options == {"sigma": 0.5}
    assert out.data.shard_dir is None
    assert out.train.metrics == ["tensorboard"]
    assert out.model.n_kv_heads == 1
    assert cfg.train.lr == 2e-3, "apply_overrides must not mutate its input"
    back = apply_overrides(out, ["train.seq_len=none"])
    assert back.seq_len == cfg.model.train_len


@pytest.mark.parametrize(
    "key, suggestion",
    [
        ("train.lrr", "train.lr"),
        ("trian.max_steps", "train.max_steps"),
        ("model.d_modle", "model.d_model"),
        ("data.corpsu", "data.corpus"),
    ],
)
def test_unknown_key_names_closest(cfg, key, suggestion):
    with pytest.raises(ValueError, match=f"unknown config key '{key}'.*did you mean '{suggestion}'"):
        apply_overrides(cfg, [f"{key}=1"])


@pytest.mark.parametrize(
    "override, match",
    [
        ("train.max_steps=1.5", "train.max_steps: cannot convert '1.5' to int"),
        ("train.compile=maybe", "train.compile: cannot convert 'maybe' to bool"),
        ("train.lr", "not of the form KEY=VALUE"),
        ("train.lr=-1", "train.lr must be > 0"),
        ("train.precision=fp8", "train.precision must be one of"),
        ("train.loss_chunk=-1", "train.loss_chunk must be 0"),
        ("train.micro_batch=5", "global_batch=16 must be a positive multiple of train.micro_batch=5"),
        ("model.d_model=100", "d_model=100 is not divisible by n_heads=3"),
        ("model.pe=rotary", "unknown pe 'rotary'"),
        ("train.lr.x=1", "train.lr is not a mapping"),
    ],
)
def test_bad_values_are_named(cfg, override, match):
    with pytest.raises(ValueError, match=match):
        apply_overrides(cfg, [override])


def test_yaml_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: {lr: 1e-3, warmup: 5}\nmodel: {vocab_size: 8, d_model: 8, n_layers: 1, n_heads: 1}\n")
    with pytest.raises(
        ValueError, match=r"unknown config key 'train\.warmup' \(did you mean 'train\.warmup_steps'\?\)"
    ):
        ExperimentConfig.from_yaml(bad)
    bad.write_text("model: {vocab_size: 8, d_model: 8, n_layers: 1, n_heads: 1}\ntrain: {max_steps: [1]}\n")
    with pytest.raises(ValueError, match=r"train.max_steps: expected int, got \[1\]"):
        ExperimentConfig.from_yaml(bad)
    bad.write_text("trainn: {}\n")
    with pytest.raises(ValueError, match="did you mean 'train'"):
        ExperimentConfig.from_yaml(bad)
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        ExperimentConfig.from_yaml(bad)
    with pytest.raises(FileNotFoundError, match=r"nope.yaml"):
        ExperimentConfig.from_yaml(tmp_path / "nope.yaml")


def test_yaml_preset_key_is_a_base(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("preset: cpu-small\ntrain: {lr: 0.01}\nmodel: {pe: alibi, pe_options: {}}\n")
    cfg = load_config(path)
    ref = apply_overrides(load_preset("cpu-small"), ["train.lr=0.01", "model.pe=alibi", "model.pe_options={}"])
    assert cfg == ref
    assert load_config({"preset": "cpu-small", "train": {"lr": 0.01}}) == apply_overrides(
        load_preset("cpu-small"), ["train.lr=0.01"]
    )
    with pytest.raises(ValueError, match=r"p.yaml: 'preset: cpu-small' starts from a named preset.*load_config"):
        ExperimentConfig.from_yaml(path)  # the schema alone does not know the presets
    path.write_text("preset: cpu-small\ntrian: {lr: 0.01}\n")
    with pytest.raises(ValueError, match=r"p.yaml: unknown config key 'trian' \(did you mean 'train'\?\)"):
        load_config(path)
    path.write_text("preset: cpu-smal\n")
    with pytest.raises(ValueError, match=r"p.yaml: unknown preset 'cpu-smal'"):
        load_config(path)
    assert load_config(CONFIGS / "cpu-tiny.yaml") == ExperimentConfig.from_yaml(CONFIGS / "cpu-tiny.yaml")


def test_coerce_optional_and_lists():
    assert coerce("none", int | None) is None
    assert coerce("7", int | None) == 7
    assert coerce("[1, 2]", list[int]) == [1, 2]
    assert coerce("{a: 1}", dict) == {"a": 1}


def test_every_field_is_documented():
    for cls in (DataConfig, TrainConfig):
        for name, (_, doc) in field_docs(cls).items():
            assert len(doc) > 10, f"{cls.__name__}.{name} has no documentation"
    assert "train.expand_fourier" in all_keys() and "model.pe_options" in all_keys()


def test_paper_optimizer_defaults():
    t = TrainConfig()
    assert (t.seed, t.lr, t.beta1, t.beta2, t.eps, t.weight_decay, t.final_lr_ratio, t.grad_clip) == (
        6198,
        6e-4,
        0.9,
        0.95,
        1e-8,
        0.1,
        0.1,
        1.0,
    )


def test_auto_precision_is_bf16_only_where_bf16_is_native(monkeypatch):
    import torch

    from fope.train.loop import autocast_context, resolve_precision

    for caps, expected in (
        ({"avx512_bf16": True, "amx_bf16": False}, "bf16"),
        ({"avx512_bf16": False, "amx_bf16": True}, "bf16"),
        ({"avx512_bf16": False, "amx_bf16": False}, "fp32"),
        ({}, "fp32"),
    ):
        monkeypatch.setattr(torch.cpu, "get_capabilities", lambda c=caps: dict(c))
        assert resolve_precision("auto", torch.device("cpu")) == expected
        assert isinstance(autocast_context("auto", torch.device("cpu")), torch.autocast) is (expected == "bf16")
        assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
        assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
