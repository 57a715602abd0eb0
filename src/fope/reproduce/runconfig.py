"""What a run is made of: its fope.train ExperimentConfig (preset -> user overrides -> the run's own) and the
evaluations it gets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .experiments import EvalRequest, Grid, Run
from .presets import GRID_TRAIN_KEYS, GridPreset
from .records import run_dir


def base_overrides(preset: GridPreset, base_cfg: Any) -> dict[str, Any]:
    """The overrides every run of the preset gets (training length, budget, tokenizer, device)."""
    p = preset
    out: dict[str, Any] = {key: getattr(p, field) for field, key in GRID_TRAIN_KEYS.items() if field != "vocab_size"}
    out.update({"train.eval_every": 0, "train.save_every": max(10, p.steps // 5), "data.eval_corpora": []})
    if base_cfg.data.tokenizer.startswith("train:"):
        out["data.tokenizer"] = f"train:{p.vocab_size}"
        out["model.vocab_size"] = p.vocab_size
    return out


def base_config(preset: GridPreset) -> Any:
    """The fope.train config every run of ``preset`` starts from (before its own overrides); cached."""
    key = json.dumps(preset.to_dict(), sort_keys=True, default=str)
    if key not in _BASE_CACHE:
        from fope.train import apply_overrides, load_preset

        base = load_preset(preset.base)
        cfg = apply_overrides(base, base_overrides(preset, base))
        if preset.train_overrides:
            cfg = apply_overrides(cfg, dict(preset.train_overrides))
        _BASE_CACHE.clear()
        _BASE_CACHE[key] = cfg
    return _BASE_CACHE[key]


_BASE_CACHE: dict[str, Any] = {}


def run_config(grid: Grid, run: Run, out_dir: Path) -> Any:
    """The resolved fope.train ExperimentConfig of ``run``: preset -> user overrides -> the run's own."""
    from fope.train import apply_overrides

    cfg = base_config(grid.preset)
    overrides = dict(run.overrides)
    if run.init_from is not None:
        overrides["train.init_from"] = str(run_dir(out_dir, run.init_from).resolve())
    return apply_overrides(cfg, overrides)


def eval_requests(preset: GridPreset, run: Run, corpus: str) -> list[EvalRequest]:
    """Perplexity on the training corpus (``corpus``) and on the other corpus, passkey (generation + likelihood)."""
    p = preset
    ppl = {
        "mode": "chunks",
        "lengths": p.ppl_lengths,
        "max_tokens": p.eval_tokens,
        "batch_tokens": p.eval_batch_tokens,
        "split": "val",
    }
    out = [EvalRequest("ppl", {"corpus": corpus, **ppl})]
    if p.other_corpus and p.other_corpus != corpus:
        out.append(EvalRequest(f"ppl_{p.other_corpus}", {"corpus": p.other_corpus, **ppl}))
    if run.passkey_trials > 0:
        out.append(
            EvalRequest(
                "passkey",
                {
                    "lengths": p.passkey_lengths,
                    "trials": run.passkey_trials,
                    "seed": 0,
                    "mode": "both",
                    "depths": "uniform",
                },
            )
        )
    return out
