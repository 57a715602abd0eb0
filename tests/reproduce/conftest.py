"""A fake backend (no training, no model) and a tiny grid preset, shared by the reproduce tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

import pytest

from fope.reproduce import get_preset
from fope.reproduce.experiments import EvalRequest

#: synthetic ppl(n)/ppl(L) - 1 per L beyond L, per position encoding (FoPE flat, RoPE blows up)
GROWTH = {"rope": 1.0, "fope": 0.01, "alibi": 0.0, "nope": 0.6, "kerple": 0.3, "fire": 0.4}


class FakeBackend:
    """Writes what fope.train would (config.yaml, a checkpoint) and returns synthetic evaluations.

    ``kill_after``: raise KeyboardInterrupt at that many train calls (a killed grid).
    ``stop_once``: names of runs whose first train call stops early with a checkpoint (SIGTERM).
    """

    def __init__(self, *, kill_after: int | None = None, stop_once: tuple[str, ...] = ()):
        self.kill_after = kill_after
        self.stop_once = set(stop_once)
        self.trained: list[tuple[str, bool]] = []  # (run dir, resume)
        self.evaluated: list[tuple[str, str]] = []  # (run dir, kind)
        self.configs: dict[str, tuple] = dict(FakeBackend.shared_configs)

    shared_configs: ClassVar[
        dict[str, tuple]
    ] = {}  # run dir -> (pe, L, seed), across instances (a rerun evaluates old runs)

    def train(self, cfg, run_dir: Path, *, resume: bool) -> dict:
        if self.kill_after is not None and len(self.trained) >= self.kill_after:
            raise KeyboardInterrupt
        self.trained.append((str(run_dir), resume))
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(run_dir / "config.yaml")
        self.configs[str(run_dir)] = FakeBackend.shared_configs[str(run_dir)] = (
            cfg.model.pe,
            cfg.model.train_len,
            cfg.train.seed,
        )
        name = run_dir.relative_to(run_dir.parents[2]).as_posix()
        if name in self.stop_once:
            self.stop_once.discard(name)
            ck = run_dir / "checkpoint"
            (ck / "model").mkdir(parents=True, exist_ok=True)
            (ck / "state.pt").write_text("x")
            (ck / "optimizer.pt").write_text("x")
            return {"finished": False, "step": 1, "stopped": "SIGTERM"}
        return {
            "finished": True,
            "step": cfg.train.max_steps,
            "first_loss": 8.0,
            "final_loss": 5.0,
            "tokens": cfg.train.max_steps * cfg.train.global_batch * cfg.seq_len,
            "tokens_per_s": 1000.0,
        }

    def evaluate(self, run_dir: Path, request: EvalRequest) -> dict:
        self.evaluated.append((str(run_dir), request.kind))
        pe, L, seed = self.configs[str(run_dir)]
        g = GROWTH[pe]
        lengths = request.settings["lengths"]
        if request.kind.startswith("ppl"):  # fope.eval's result schema (fope.eval.results.ppl_result)
            base = 20.0 + seed + (5.0 if request.kind != "ppl" else 0.0)
            # beyond L: growth g per L; below L: a shorter context costs 10 % per halving (not flat below L, so a
            # ratio taken against any length but L is caught)
            return {
                "kind": "ppl",
                "by_length": {
                    str(n): base * (1 + g * max(n / L - 1, 0)) * (1 + 0.1 * max(L / n - 1, 0)) for n in lengths
                },
            }
        acc = {str(n): (0.5 if n <= L else max(0.5 - g, 0.0)) for n in lengths}
        # two trial records per length: a needle far from the question (found only within L), one right before it
        trials = [
            {"length": n, "depth": d, "correct": n <= L or d > 0.5, "needle_distance": int((1 - d) * n)}
            for n in lengths
            for d in (0.05, 0.95)
        ]
        return {
            "kind": "passkey",
            "by_length": acc,
            "trials": trials,  # fope.eval.results.passkey_result's layout
            "likelihood": {
                "top1": {"by_length": {k: min(v + 0.1, 1.0) for k, v in acc.items()}},
                "mrr": {"by_length": {k: min(v + 0.3, 1.0) for k, v in acc.items()}},
            },
        }


def small_preset():
    """The whole cpu grid with the shortest schedule (the fake backend ignores it anyway) and 2 seeds."""
    return dataclasses.replace(
        get_preset("cpu"),
        steps=4,
        warmup_steps=1,
        extension_steps=2,
        extension_warmup=1,
        seeds=2,
        main_passkey_trials=-1,
    )


@pytest.fixture
def tiny_preset():
    return small_preset()


@pytest.fixture(scope="session")
def Fake():
    """The FakeBackend class (tests build it with their own kill/stop settings)."""
    return FakeBackend


@pytest.fixture(scope="session")
def make_small_preset():
    return small_preset
