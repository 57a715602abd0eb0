"""The GPU grid presets (gpu-quick, gpu): their budget, their plan, and an end-to-end run on CPU at a tiny scale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fope.cli import main as fope_main
from fope.reproduce import get_preset
from fope.reproduce.cli import build
from fope.reproduce.runconfig import base_config


@pytest.mark.parametrize("name", ["gpu-quick", "gpu"])
def test_gpu_presets_budget(name):
    preset = get_preset(name)
    cfg = base_config(preset)
    m = cfg.model
    assert (m.d_model, m.n_layers, m.n_heads, m.vocab_size) == (512, 8, 8, 16384)
    import fope.model

    n_params = sum(p.numel() for p in fope.model.build(m).parameters())
    assert n_params >= 50_000_000
    assert preset.steps * preset.global_batch * preset.train_len >= 13_000_000
    assert preset.device == "cuda" and preset.train_overrides.get("train.precision") == "bf16"
    grid = build(preset)
    assert {c.arm for c in grid.cells_of("main")} == {"rope", "fope", "alibi", "nope", "kerple", "fire"}
    assert {c.arm for c in grid.cells_of("ablations", "components")} >= {"w/o FS", "w/o CF", "w/o FS, w/o CF"}
    assert {c.arm for c in grid.cells_of("passkey")} == {"rope", "fope", "alibi"}
    if name == "gpu":
        assert preset.seeds == 3 and {c.group for c in grid.cells_of("ablations")} == {
            "components",
            "sigma",
            "freq_dim",
            "shape",
        }
        assert len(grid.cells_of("extension")) == 6
        # Table 2 at the paper's ~20M scale: its own runs (the arms without QK norm are not the main runs)
        t2 = grid.cells_of("table2")
        assert len(t2) == 6 and all(run.startswith("table2/") for c in t2 for run in c.runs)
        from fope.reproduce.runconfig import run_config

        cfg = run_config(grid, grid.run(t2[0].runs[0]), Path("unused"))
        n20 = sum(p.numel() for p in fope.model.build(cfg.model).parameters())
        assert (cfg.model.d_model, cfg.model.n_layers) == (384, 4) and 18e6 <= n20 <= 25e6, n20
    else:
        assert preset.seeds == 1 and not grid.cells_of("extension")


@pytest.mark.parametrize("name", ["gpu-quick", "gpu"])
def test_gpu_presets_print_commands(name, tmp_path, capsys):
    assert fope_main(["reproduce", "--preset", name, "--out", str(tmp_path / name), "--print-commands"]) == 0
    out = capsys.readouterr().out
    assert "main/rope/seed0" in out and "passkey/fope" in out


@pytest.mark.slow
@pytest.mark.data
def test_gpu_quick_end_to_end_on_cpu_tiny(tmp_path, capsys):
    """gpu-quick's whole plan (main, FS/CF ablations, passkey task; bf16 autocast) on CPU with a tiny model."""
    out = tmp_path / "gq"
    args = [
        "reproduce",
        "--preset",
        "gpu-quick",
        "--out",
        str(out),
        "--no-figures",
        "device=cpu",
        "steps=2",
        "warmup_steps=1",
        "global_batch=2",
        "micro_batch=2",
        "train_len=128",
        "vocab_size=2048",
        "length_factors=1,2",
        "passkey_factors=1,2",
        "passkey_trials=1",
        "eval_tokens=512",
        "eval_batch_tokens=512",
        "passkey_steps=2",
        "pes=rope,fope,alibi",
        "model.d_model=32",
        "model.n_layers=1",
        "model.n_heads=2",
    ]
    assert fope_main(args) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["missing"] == []
    assert set(res["main"]) == {"rope", "fope", "alibi"}
    assert set(res["ablations"]["components"]) == {"FoPE", "w/o FS", "w/o CF", "w/o FS, w/o CF", "RoPE"}
    assert set(res["passkey_variant"]) == {"rope", "fope", "alibi"}
    cfg = res["config"]["base_config"]
    assert cfg["train"]["precision"] == "bf16" and cfg["model"]["d_model"] == 32
    assert "**Left out by this preset:** experiment(s) `extension`" in (out / "report.md").read_text()


def test_device_script_needs_out_and_the_prepared_cache(tmp_path):
    """scripts/device_gpu_quick.sh (the gpu-quick run for a borrowed GPU machine) parses, and refuses to start without
    $OUT or without the cache archive that --prepare writes, saying what to do."""
    import os
    import subprocess

    script = Path(__file__).resolve().parents[2] / "scripts" / "device_gpu_quick.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    env = {**os.environ, "ARCHIVE": str(tmp_path / "missing.tar.gz"), "OUT": str(tmp_path / "out")}
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "missing.tar.gz" in r.stderr and "--prepare" in r.stderr
    assert not (tmp_path / "out").exists()
    del env["OUT"]
    r = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
    assert r.returncode != 0 and "set OUT" in r.stderr
