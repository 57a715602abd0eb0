"""Grid presets, the grid they build, and the `fope reproduce` command line (nothing is trained here)."""

from __future__ import annotations

import dataclasses

import pytest

from fope.cli import main as fope_main
from fope.reproduce import GRID_PRESETS, apply_grid_overrides, get_preset
from fope.reproduce.cli import build
from fope.reproduce.runconfig import run_config


def test_cpu_quick_is_the_six_pe_main_comparison_at_the_cpu_budget():
    quick, full = get_preset("cpu-quick"), get_preset("cpu")
    grid = build(quick)
    assert {c.experiment for c in grid.cells} == {"main"}
    assert [r.name for r in grid.runs] == [f"main/{pe}/seed0" for pe in quick.pes]
    assert set(quick.pes) == {"rope", "fope", "alibi", "nope", "kerple", "fire"}
    # one budget for both CPU presets: cpu is cpu-quick with 3 seeds and every experiment
    for f in (
        "base",
        "train_len",
        "steps",
        "warmup_steps",
        "global_batch",
        "lr",
        "train_overrides",
        "length_factors",
        "eval_tokens",
    ):
        assert getattr(quick, f) == getattr(full, f), f
    # bf16 only where the CPU has it natively: emulated bf16 autocast is ~8x slower than fp32 on an AVX2-only CPU
    assert quick.train_overrides["train.precision"] == "auto"


def test_cpu_grid_covers_every_experiment():
    name = "cpu"
    preset = get_preset(name)
    grid = build(preset)
    L = preset.train_len
    assert {c.experiment for c in grid.cells} == {"main", "extension", "ablations", "passkey", "table2"}
    assert (
        {c.arm for c in grid.cells_of("main")} == set(preset.pes) == {"rope", "fope", "alibi", "nope", "kerple", "fire"}
    )
    assert all(len(c.runs) == preset.seeds for c in grid.cells_of("main"))
    assert {c.arm for c in grid.cells_of("extension")} == {
        "rope",
        "fope",
        "rope+yarn",
        "rope+fope",
        "fope+yarn",
        "fope+fope",
    }
    assert {c.group for c in grid.cells_of("ablations")} == {"components", "sigma", "freq_dim", "shape"}
    assert preset.ppl_lengths[0] == L // 2 and preset.ppl_lengths[-1] == 16 * L
    assert preset.passkey_lengths[0] == L and preset.passkey_lengths[-1] == 16 * L
    names = [r.name for r in grid.runs]
    assert len(names) == len(set(names))
    for i, run in enumerate(grid.runs):
        if run.init_from:  # sources come first
            assert run.init_from in names[:i]


def test_no_run_trains_beyond_twice_the_training_length(tmp_path):
    preset = get_preset("cpu")
    grid = build(preset)
    for run in grid.runs:
        cfg = run_config(grid, run, tmp_path)
        limit = 2 * preset.train_len if run.name.startswith("extension/") else preset.train_len
        assert cfg.seq_len == cfg.model.train_len == limit
        if run.name.startswith("passkey/"):
            assert cfg.data.retrieval_share == preset.retrieval_share > 0
        else:
            assert cfg.data.retrieval_share == 0


def test_extension_arms_configs(tmp_path):
    preset = get_preset("cpu")
    grid = build(preset)
    cfg = {r.name: run_config(grid, r, tmp_path) for r in grid.runs if r.name.startswith("extension/")}
    yarn = cfg["extension/rope+yarn"].model.pe_options["scaling"]
    assert yarn == {
        "rope_type": "yarn",
        "factor": 16.0,
        "original_max_position_embeddings": preset.train_len,
        "beta_fast": 32,
        "beta_slow": 1,
        "attention_factor": 1.0,
    }
    assert cfg["extension/fope+yarn"].model.pe == "fope"
    assert cfg["extension/fope+yarn"].train.expand_fourier == "zero"
    assert cfg["extension/fope+fope"].train.expand_fourier == "expand"
    assert cfg["extension/rope+fope"].train.init_from.endswith("runs/main/rope/seed0")
    for c in cfg.values():
        assert c.train.reset_optimizer and c.train.max_steps == preset.extension_steps
        assert c.train.global_batch * c.seq_len == preset.global_batch * preset.train_len  # same tokens per step


def test_ablation_arms_options(tmp_path):
    preset = get_preset("cpu")
    grid = build(preset)
    opts = {r.name: run_config(grid, r, tmp_path).model for r in grid.runs if r.name.startswith("ablations/")}
    assert opts["ablations/no-fs/seed0"].pe_options == {"sigma": 0.0}
    assert opts["ablations/no-cf/seed0"].pe_options == {"sigma": preset.sigma, "clip_floor": False}
    assert opts["ablations/no-fs-no-cf/seed0"].pe_options == {"sigma": 0.0, "clip_floor": False}
    base = run_config(grid, grid.run("main/fope/seed0"), tmp_path).model
    assert opts["ablations/double-head-dim/seed0"].resolved().head_dim == 2 * base.resolved().head_dim
    assert opts["ablations/double-heads/seed0"].n_heads == 2 * base.n_heads
    assert opts["ablations/double-heads/seed0"].resolved().head_dim == base.resolved().head_dim
    assert opts["ablations/double-layers/seed0"].n_layers == 2 * base.n_layers
    assert opts["ablations/D64/seed0"].pe_options["freq_dim"] == 64
    # D <= head_dim is the release's default grid: the same run as the main FoPE run
    d_default = [c for c in grid.cells_of("ablations", "freq_dim") if int(c.arm) <= base.resolved().head_dim]
    assert d_default and all(c.runs == ("main/fope/seed0",) for c in d_default)


def test_grid_overrides():
    p = apply_grid_overrides(get_preset("cpu"), ["seeds=5", "sigmas=0,0.2", "pes=rope,fope", "train.lr=1e-3"])
    assert p.seeds == 5 and p.sigmas == (0.0, 0.2) and p.pes == ("rope", "fope")
    assert p.train_overrides == {"train.precision": "auto", "train.lr": "1e-3"}
    with pytest.raises(ValueError, match="'seeds'"):
        apply_grid_overrides(get_preset("cpu"), ["sedds=3"])
    with pytest.raises(ValueError, match="steps"):
        apply_grid_overrides(get_preset("cpu"), ["steps=many"])
    with pytest.raises(ValueError, match="unknown position encoding 'rop'"):
        dataclasses.replace(get_preset("cpu"), pes=("rop",))
    with pytest.raises(ValueError, match=r"unknown reproduce preset 'cpu-qiuck'.*cpu-quick"):
        get_preset("cpu-qiuck")


def test_paper_presets_build_and_print_torchrun_commands(capsys, tmp_path):
    for name in ("60M", "180M", "1.2B"):
        preset = GRID_PRESETS[name]
        grid = build(preset)
        cfg = run_config(grid, grid.run("main/fope/seed0"), tmp_path)
        assert cfg.model.train_len == 512 and cfg.model.pe_options["sigma"] == preset.sigma
        assert cfg.train.global_batch * 512 == 524_288
    rc = fope_main(["reproduce", "--preset", "60M", "--out", str(tmp_path / "p"), "--print-commands"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "torchrun --standalone --nproc_per_node=4 -m fope.cli train" in out
    assert "main/kerple/seed2" in out and "extension/fope+fope" in out


def test_cli_errors_are_one_line(capsys, tmp_path):
    assert fope_main(["reproduce", "--preset", "cpu", "--out", str(tmp_path), "sedds=3"]) == 2
    assert "unknown grid preset field 'sedds'" in capsys.readouterr().err
    assert fope_main(["reproduce", "--list-presets"]) == 0
    assert "cpu-quick" in capsys.readouterr().out


def test_two_spellings_of_one_knob_are_refused_naming_both():
    from fope.reproduce.presets import GRID_TRAIN_KEYS, apply_grid_overrides, get_preset

    preset = get_preset("cpu-quick")
    with pytest.raises(ValueError, match=r"^lr=1e-3 and train\.lr=2e-3 set the same knob"):
        apply_grid_overrides(preset, ["lr=1e-3", "seeds=1", "train.lr=2e-3"])
    for field, key in GRID_TRAIN_KEYS.items():  # every pair, either order
        with pytest.raises(ValueError, match=f"{field}=.* and {key}="):
            apply_grid_overrides(preset, [f"{key}=7", f"{field}=7"])
    assert apply_grid_overrides(preset, ["train.lr=2e-3"]).train_overrides["train.lr"] == "2e-3"  # one spelling: fine
