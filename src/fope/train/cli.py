"""``fope train``: train a preset or a YAML experiment, resume a run, list presets.

fope train --preset cpu-tiny --pe fope --out runs/tiny
fope train configs/cpu-tiny.yaml train.lr=1e-3 --max-steps 200 --dry-run
fope train --resume runs/tiny [--stop-at 300]
fope train --list-presets
torchrun --nproc_per_node 4 -m fope.cli train --preset c4-512-60M-fope --out runs/c4-512-60M-fope
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fope.pos.options import KINDS
from fope.utils import ArgumentValueError

EPILOG = """overrides: dotted key=value pairs, e.g. train.lr=3e-4 model.pe=fope model.pe_options.sigma=0.4
data.corpus=wiki (see docs/training.md for every key). Stop a run with Ctrl-C / SIGTERM: it checkpoints at the
next micro-batch boundary and `fope train --resume OUT` continues it with bit-identical losses; a second Ctrl-C
aborts at once (safe too: every run file is written atomically, see docs/reliability.md)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model (presets, YAML configs, resume, torchrun DDP)",
        description=__doc__.splitlines()[0],
        epilog=EPILOG,
    )
    p.add_argument(
        "items",
        nargs="*",
        metavar="[CONFIG.yaml] [key=value ...]",
        help="an experiment YAML (optional with --preset) followed by dotted overrides",
    )
    p.add_argument("--preset", help="a named preset (see --list-presets)")
    p.add_argument(
        "--pe",
        help=f"position encoding: {', '.join(KINDS)} (resets pe_options to the preset's defaults for that kind)",
    )
    p.add_argument("--max-steps", type=int, help="schedule length in optimizer steps (train.max_steps)")
    p.add_argument("--stop-at", type=int, metavar="M", help="end the process after step M with a checkpoint")
    p.add_argument("--seed", type=int, help="train.seed")
    p.add_argument("--out", type=_directory, help="run directory (default runs/NAME)")
    p.add_argument(
        "--resume",
        metavar="OUT",
        help="continue the run in OUT with the config of its checkpoint; only the schedule length, cadences and "
        "logging may be overridden, and (to recover from a NaN stop) train.lr, train.warmup_steps, train.grad_clip",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (as for every long command)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config as YAML and exit")
    p.add_argument("--list-presets", action="store_true", help="list preset names and exit")
    p.set_defaults(func=run)


def resolve(args: argparse.Namespace):
    """(ExperimentConfig, run name) from the parsed arguments."""
    from .config import ExperimentConfig, apply_overrides
    from .presets import load_config, load_preset, with_pe

    items = list(args.items)
    yaml_path = items.pop(0) if items and "=" not in items[0] else None
    if args.resume:
        if args.preset or yaml_path:
            raise ValueError("--resume takes the config from the run directory; do not pass --preset or a YAML")
        from .checkpoint import find_checkpoint, read_checkpoint_config

        run_dir = Path(args.resume)
        ckpt = find_checkpoint(run_dir)  # the checkpoint's own config is the truth; OUT/config.yaml a copy
        cfg = (
            read_checkpoint_config(ckpt)
            if ckpt is not None
            else ExperimentConfig.from_yaml(run_dir / "config.yaml", complete=True)
        )
        name = run_dir.name
    elif args.preset and yaml_path:
        raise ValueError(f"give either --preset or a config file, not both ({args.preset!r}, {yaml_path!r})")
    elif args.preset:
        cfg, name = load_preset(args.preset), args.preset
    elif yaml_path:
        cfg, name = load_config(yaml_path), Path(yaml_path).stem
    else:
        raise ValueError("nothing to train: pass --preset NAME, a CONFIG.yaml, or --resume OUT")
    if args.pe:
        cfg = with_pe(cfg, args.pe)
        name = _rename(name, args.pe)
    extra = [f"train.max_steps={args.max_steps}"] if args.max_steps is not None else []
    extra += [f"train.seed={args.seed}"] if args.seed is not None else []
    bad = [i for i in items if "=" not in i]
    if bad:
        raise ValueError(f"expected key=value overrides after the config, got {bad[0]!r}")
    if not args.resume and not any(i.startswith("train.warmup_steps=") for i in items):
        extra += _fit_warmup(cfg, apply_overrides(cfg, items + extra + ["train.warmup_steps=0"]))
    return apply_overrides(cfg, items + extra), name


def _fit_warmup(preset, cfg) -> list[str]:
    """The override shortening a preset's warm-up that does not fit a shortened run (to the same fraction of the
    run), said in one line; [] when it fits."""
    w, old, steps = preset.train.warmup_steps, preset.train.max_steps, cfg.train.max_steps
    if w <= steps or steps >= old:
        return []
    fitted = max(1, round(w * steps / old)) if w else 0
    print(
        f"fope train: warm-up {w} -> {fitted} steps, the preset's {w}/{old} of the run for {steps} steps "
        f"(set train.warmup_steps to choose)",
        file=sys.stderr,
    )
    return [f"train.warmup_steps={fitted}"]


def _directory(text: str) -> str:
    """--out: a directory name; an empty one is refused (it would mean the default runs/NAME)."""
    if not text.strip():
        raise ArgumentValueError(f"an empty directory name ({text!r}); leave --out out for runs/NAME")
    return text


def _rename(name: str, pe: str) -> str:
    from fope.pos import KINDS as PE_KINDS

    parts = name.split("-")
    if parts[-1] in PE_KINDS:
        parts[-1] = pe
        return "-".join(parts)
    return f"{name}-{pe}"


def run(args: argparse.Namespace) -> int:
    if args.list_presets:
        from .presets import list_presets

        print("\n".join(list_presets()))
        return 0
    cfg, name = resolve(args)
    if args.dry_run:
        sys.stdout.write(cfg.to_yaml())
        return 0
    from .loop import NonFiniteLossError, train

    out = Path(args.resume or args.out or Path("runs") / name)
    try:
        summary = train(cfg, out, resume=bool(args.resume), stop_at=args.stop_at, progress=not args.no_progress)
    except NonFiniteLossError as e:
        print(f"fope train: error: {e}", file=sys.stderr)
        return 3
    brief = {
        k: summary[k]
        for k in (
            "step",
            "max_steps",
            "finished",
            "first_loss",
            "final_loss",
            "final_val_loss",
            "tokens_per_s",
            "model_dir",
        )
    }
    print(json.dumps(brief, indent=2))
    # stopped by a signal, with its checkpoint: 128 + the signal, as a shell reports it (130 for Ctrl-C)
    return {"SIGINT": 130, "SIGTERM": 143}.get(str(summary.get("stopped")), 0)
