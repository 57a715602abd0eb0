"""The paper's experiment grid at any scale: `fope reproduce --preset NAME --out DIR`.

    >>> from fope.reproduce import get_preset, build_grid, run_grid, LocalBackend, collect, write_outputs
    >>> preset = get_preset("cpu-quick")
    >>> grid = build_grid(preset, head_dim=32, n_heads=3, n_layers=2)
    >>> run_grid(grid, "runs/repro", backend=LocalBackend())
    >>> write_outputs(collect(grid, "runs/repro"), "runs/repro")

Modules: presets (GridPreset, the presets), experiments (runs and cells of each figure), runconfig (a run's config
and evaluations), records (the output directory's files), onerun (one run), scheduler (resumable `run_grid`),
backends (who trains and evaluates), results (results.json), claims (the paper's claims checked), report (report.md),
figures (PNGs), cli.
"""

from .backends import Backend, LocalBackend, TorchrunBackend
from .claims import Claim, check_claims
from .experiments import Cell, Grid, Run, build_grid
from .presets import PRESETS, GridPreset, apply_grid_overrides, get_preset
from .report import render_report, write_outputs
from .results import collect
from .runconfig import EvalRequest
from .scheduler import run_grid

__all__ = [
    "PRESETS",
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
