"""The table2 experiment (RoPE / RoPE-A / NoPE x QK norm) and the report's Mechanism section."""

from __future__ import annotations

import dataclasses
import math

from fope.reproduce import collect, render_report
from fope.reproduce.cli import build
from fope.reproduce.mechanism import PAPER_TABLE2, mechanism_section, table2_rows
from fope.reproduce.runconfig import run_config
from fope.reproduce.scheduler import run_grid


def test_table2_grid_arms_reuse_main_runs(tmp_path, tiny_preset):
    grid = build(dataclasses.replace(tiny_preset, experiments=("main", "table2")))
    cells = {c.arm: c for c in grid.cells_of("table2")}
    assert list(cells) == list(PAPER_TABLE2)
    assert cells["RoPE"].runs == ("main/rope/seed0",) and cells["NoPE"].runs == ("main/nope/seed0",)
    for arm in ("RoPE + QK Norm", "RoPE-A", "RoPE-A + QK Norm", "NoPE + QK Norm"):
        run = grid.run(cells[arm].runs[0])
        assert run.passkey_trials == 0
        cfg = run_config(grid, run, tmp_path)
        assert cfg.model.qk_norm is ("QK Norm" in arm)
        assert bool(cfg.model.pe_options.get("whole_cycles")) is arm.startswith("RoPE-A")
        assert cfg.model.pe == ("nope" if arm.startswith("NoPE") else "rope")
    assert not run_config(grid, grid.run("main/rope/seed0"), tmp_path).model.qk_norm


def test_table2_results_and_mechanism_section(tmp_path, Fake, tiny_preset):
    preset = dataclasses.replace(tiny_preset, experiments=("main", "table2"), seeds=1, pes=("rope", "fope", "nope"))
    grid = build(preset)
    run_grid(grid, tmp_path, backend=Fake(), log=lambda s: None)
    res = collect(grid, tmp_path)
    assert set(res["table2"]) == set(PAPER_TABLE2)
    lengths, rows = table2_rows(res)
    L = preset.train_len
    assert lengths == [L, 2 * L, 4 * L, 8 * L, 16 * L]
    ppl = res["table2"]["RoPE"]["ppl"]
    assert rows["RoPE"][2] == math.log(ppl[str(4 * L)]["mean"])
    mech = res["mechanism"]
    assert "error" not in mech and mech["models"] == {}  # the fake backend writes no model
    assert mech["toy"]["errors"]["sum"]["fope_rel"] < mech["toy"]["errors"]["sum"]["rope_rel"]
    assert (tmp_path / "mechanism.json").is_file() and collect(grid, tmp_path)["mechanism"] == mech  # cached
    text = "\n".join(mechanism_section(res))
    assert "### Table 2" in text and "(5.50)" in text and "Fig. 3 toy" in text and "Fig. 8" in text
    assert "## Mechanism" in render_report(res)
    assert mechanism_section({"config": {"train_len": 8}}) == []


def test_far_attention_section_and_the_presets_that_leave_it_out():
    from fope.analysis.far_tables import report_section as far_section
    from fope.reproduce.presets import get_preset
    from fope.reproduce.report import _left_out

    assert far_section(None, 8) == [] and far_section({"summary": {}}, 8) == []
    far = {
        "length": 128,
        "tokens": 1024,
        "corpus": "books",
        "cycle_pairs": {"rope": 3, "fope": 3},
        "summary": {
            "rope": {"full": {"mean": 1.9, "std": 0.1, "n": 3}, "window": {"mean": 0.98, "std": None, "n": 1}},
            "fope": {"full": {"mean": 1.2, "std": 0.04, "n": 3}},
        },
    }
    text = "\n".join(far_section(far, 8))
    assert "ppl(128) / ppl(8)" in text and "| rope | 3 | 1.900 ± 0.100 | 0.980 | - | - |" in text
    assert "| fope | 3 | 1.200 ± 0.040 | - | - | - |" in text
    assert "Attention weight on keys" not in text  # results from before the far-mass measurement
    far["runs"] = {"main/rope/seed0": {"edges": [0, 8, 16, 32, 64, 128]}}
    far["far_mass"] = {
        "rope": {"full": {"mean": 0.25, "std": 0.05, "n": 3}, "window": {"mean": 0.0, "std": None, "n": 1}}
    }
    text = "\n".join(far_section(far, 8))
    assert "queries at positions 64-128" in text and "| rope | 0.250 ± 0.050 | 0.000 | - | - |" in text
    quick, full = get_preset("cpu-quick").to_dict(), get_preset("cpu").to_dict()
    assert quick["far_attention"] is False and full["far_attention"] is True
    assert "far-attention decomposition" in "\n".join(_left_out(quick))
    assert "far-attention" not in "\n".join(_left_out(full))
