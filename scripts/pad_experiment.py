"""The FoPE pad experiment (issue 30): does the pad of FoPE's unmixed pairs matter?

FoPE pads the head_dim/2 − D_out pairs it does not mix. The authors' release (and vLLM 0.33.0) pad sin and cos with
1 (``pad="one"``); vLLM's main branch (PR #55243) pads sin with 0, a true zero frequency (``pad="zero"``). This
trains FoPE from scratch with each pad at the ``cpu-quick`` budget (the main comparison's FoPE run: same model, data,
steps and σ; only the pad and the seed differ), then scores every trained model with BOTH pads at L..16L on the
training corpus, so one table answers both questions: which pad generalises better when trained with it, and what a
model loses when served with the other one.

    flock /tmp/fope-heavy.lock python scripts/pad_experiment.py --out runs/pad --seeds 0      # train + evaluate
    python scripts/pad_experiment.py --out runs/pad --seeds 0 --write docs/results/fope-pad/pad.json

Training resumes where a run stopped (``fope.train.train(..., resume=True)``); evaluations are cached per run in
``eval-pads.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

PADS = ("one", "zero")
PRESET = "cpu-quick"
#: --smoke: a rehearsal of the whole pipeline in seconds (2 steps, 2 lengths, a few chunks); never published
SMOKE: dict = {}


def run_config(pad: str, seed: int):
    """The cpu-quick grid's FoPE run with ``pad`` and ``seed`` (everything else the grid's)."""
    from fope.reproduce.presets import get_preset
    from fope.reproduce.runconfig import base_config
    from fope.train import apply_overrides

    cfg = base_config(get_preset(PRESET))
    overrides = {"model.pe": "fope", "model.pe_options": {"sigma": 0.3, "pad": pad}, "train.seed": seed}
    if SMOKE:
        overrides.update({"train.max_steps": 2, "train.warmup_steps": 1})
    return apply_overrides(cfg, overrides)


def set_pad(model, pad: str) -> int:
    """Serve ``model`` with ``pad``: every FoPE layer's pad option replaced, the position tables rebuilt; returns
    how many layers changed."""
    from fope.pos.fope import FoPE

    n = 0
    for module in model.modules():
        if isinstance(module, FoPE):
            module.opts = dataclasses.replace(module.opts, pad=pad)
            module.tables.clear()
            n += 1
    return n


def evaluate(run_dir: Path, corpus: str) -> dict[str, dict[str, float]]:
    """{served pad: {L: perplexity}} of the trained model in ``run_dir``: the cpu-quick grid's perplexity task
    (chunks of L, the same ``eval_tokens`` tokens of the ``val`` split at every L) once per pad; cached in
    ``run_dir/eval-pads.json``."""
    from fope.eval import load_model, tokens_from_corpus
    from fope.eval.perplexity import perplexity_by_length
    from fope.reproduce.presets import get_preset
    from fope.utils import atomic_json

    cache = run_dir / "eval-pads.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    preset = get_preset(PRESET)
    lengths = SMOKE.get("lengths", preset.ppl_lengths)
    budget = SMOKE.get("tokens", preset.eval_tokens)
    loaded = load_model(run_dir, device="cpu")
    tokens = tokens_from_corpus(corpus, loaded.tokenizer, split="val", max_tokens=budget + 1)
    out = {}
    for pad in PADS:
        if set_pad(loaded.model, pad) == 0:
            raise ValueError(f"{run_dir}: no FoPE layer to set the pad of")
        ppl = perplexity_by_length(loaded, tokens, lengths, mode="chunks", max_tokens=budget, progress=False)
        out[pad] = {str(k): float(v) for k, v in ppl.items()}
    atomic_json(cache, out)
    return out


def reuse(run: Path, cfg, path: Path) -> None:
    """Copy the finished run ``run`` to ``path`` when its config is ``cfg`` (pad one is FoPE's default, so the
    grid's run, pe_options {sigma: 0.3}, is this experiment's pad-one run); ValueError naming what differs."""
    import shutil

    from fope.pos.options import FoPEOptions
    from fope.train.config import ExperimentConfig

    other = ExperimentConfig.from_yaml(run / "config.yaml")
    if not (run / "summary.json").is_file():
        raise ValueError(f"{run}: not a finished run (no summary.json)")
    mine, theirs = cfg.to_dict(), other.to_dict()
    default_pad = FoPEOptions().pad
    for d in (mine, theirs):
        d["model"]["pe_options"] = {"pad": default_pad, **d["model"]["pe_options"]}
    if mine != theirs:
        diff = sorted(k for k in mine if mine[k] != theirs.get(k))
        raise ValueError(f"{run}: its config differs from this experiment's pad-one run in {diff}")
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run, path, ignore=shutil.ignore_patterns("checkpoint", "eval"), dirs_exist_ok=True)


def main(argv: list[str] | None = None) -> None:
    import fope.train
    from fope.train.checkpoint import find_checkpoint

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="folder of the runs (runs/pad)")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--write", type=Path, help="write the results JSON here (docs/results/fope-pad/pad.json)")
    ap.add_argument("--pads", default="one,zero", help="the trained pads to run (default both)")
    ap.add_argument(
        "--reuse-one",
        type=Path,
        help="a finished cpu-quick grid FoPE run of the same seed (runs/.../main/fope/seed0): the pad-one model, whose "
        "config is checked equal to this experiment's pad-one config, copied instead of trained again",
    )
    ap.add_argument("--smoke", action="store_true", help="rehearse the pipeline in seconds (2 steps); not results")
    args = ap.parse_args(argv)
    if args.smoke:
        if args.write:
            raise SystemExit("--smoke results are a rehearsal: not written with --write")
        SMOKE.update(lengths=[256, 512], tokens=1024)
    seeds = [int(s) for s in args.seeds.split(",")]
    runs = []
    for seed in seeds:
        for pad in [p for p in PADS if p in args.pads.split(",")]:
            cfg = run_config(pad, seed)
            path = args.out / f"pad-{pad}" / f"seed{seed}"
            if pad == "one" and args.reuse_one is not None and not (path / "eval-pads.json").is_file():
                reuse(args.reuse_one, cfg, path)
            if not (path / "eval-pads.json").is_file() and not (path / "summary.json").is_file():
                summary = fope.train.train(cfg, path, resume=find_checkpoint(path) is not None)
                if not summary.get("finished", False):
                    raise SystemExit(f"training of {path} stopped at step {summary.get('step')}")
            ppl = evaluate(path, cfg.data.corpus)
            runs.append({"trained_pad": pad, "seed": seed, "ppl": ppl})
            print(json.dumps(runs[-1]), flush=True)
    if args.write:
        from fope.reproduce.presets import get_preset
        from fope.utils import atomic_json, git_info

        preset = get_preset(PRESET)
        from fope.reproduce.padstudy import pad_claims

        record = {
            "experiment": "fope-pad",
            "preset": PRESET,
            "train_len": preset.train_len,
            "lengths": preset.ppl_lengths,
            "eval_tokens": preset.eval_tokens,
            "sigma": 0.3,
            "command": "python scripts/pad_experiment.py "
            + " ".join(
                a for a in (argv if argv is not None else sys.argv[1:]) if a != "--write" and a != str(args.write)
            ),
            "pad_one_from": None if args.reuse_one is None else str(args.reuse_one),
            "git": git_info(),
            "runs": runs,
        }
        record["claims"] = [c.to_dict() for c in pad_claims(record)]
        atomic_json(args.write, record)


if __name__ == "__main__":
    main()
