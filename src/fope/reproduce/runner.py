"""Compatibility names: the grid runner is split into `runconfig` (a run's config and evaluations), `records`
(the output directory's files and lock), `onerun` (one run), `scheduler` (`run_grid`) and `backends`."""

from .backends import Backend, LocalBackend, TorchrunBackend, print_plan
from .onerun import GridInterrupted
from .records import (RUNS_DIR, check_same_config, config_fingerprint, eval_record, grid_lock, read_json, run_dir,
                      run_record, write_json_atomic)
from .runconfig import EvalRequest, base_config, base_overrides, eval_requests, run_config
from .scheduler import Progress, run_grid

__all__ = [
    "RUNS_DIR",
    "Backend",
    "EvalRequest",
    "GridInterrupted",
    "LocalBackend",
    "Progress",
    "TorchrunBackend",
    "base_config",
    "base_overrides",
    "check_same_config",
    "config_fingerprint",
    "eval_record",
    "eval_requests",
    "grid_lock",
    "print_plan",
    "read_json",
    "run_config",
    "run_dir",
    "run_grid",
    "run_record",
    "write_json_atomic",
]
