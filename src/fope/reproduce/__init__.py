"""Experiments: the paper's grid at any scale (`fope reproduce --preset NAME --out DIR`) and the experiments on
Hugging Face models, context extension (`fope extend`) and conversion recovery (`fope recovery`).

    >>> from fope.reproduce import get_preset, build_grid, run_grid, LocalBackend, collect, write_outputs
    >>> preset = get_preset("cpu-quick")
    >>> grid = build_grid(preset, head_dim=32, n_heads=3, n_layers=2)
    >>> run_grid(grid, "runs/repro", backend=LocalBackend())
    >>> write_outputs(collect(grid, "runs/repro"), "runs/repro")

Modules: presets (GridPreset, GRID_PRESETS), experiments (runs, cells and evaluations of each figure), runconfig (a
run's config and evaluations), records (the output directory's files), onerun (one run), scheduler (resumable
`run_grid`), backends (who trains and evaluates), results (results.json), mechanism (Table 2 and fope.analysis on
the grid's models), claims (the paper's claims checked), report (report.md), figures (PNGs), extend (context
extension of an HF RoPE model), recovery (what a RoPE -> FoPE conversion costs and a fine-tune recovers), cli.
"""

from .backends import Backend, LocalBackend, TorchrunBackend
from .claims import Claim, check_claims
from .experiments import Cell, EvalRequest, Grid, Run, build_grid
from .presets import GRID_PRESETS, GridPreset, apply_grid_overrides, get_preset
from .report import render_report, write_outputs
from .results import collect
from .scheduler import run_grid

__all__ = [
    "GRID_PRESETS",
    "Backend",
    "Cell",
    "Claim",
    "EvalRequest",
    "Grid",
    "GridPreset",
    "LocalBackend",
    "Run",
    "TorchrunBackend",
    "apply_grid_overrides",
    "build_grid",
    "check_claims",
    "collect",
    "get_preset",
    "render_report",
    "run_grid",
    "write_outputs",
]
