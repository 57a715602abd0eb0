"""`fope reproduce` (the paper's experiment grid at a chosen scale, with its report) and the experiments on Hugging
Face models: `fope extend` (context extension) and `fope recovery` (what a RoPE -> FoPE conversion costs).

    fope reproduce --preset cpu-quick --out runs/repro-quick        # the six-PE main comparison, 8-14 min on 2 cores
    fope reproduce --preset cpu --out runs/repro-cpu                # whole grid, 3 seeds (about an hour, 2 cores)
    fope reproduce --preset gpu-quick --out runs/repro-gpu-quick    # one GPU, <= 15 min
    fope reproduce --preset gpu --out runs/repro-gpu                # one GPU, <= 3 h
    fope reproduce --preset cpu --out DIR seeds=5 steps=1000 train.lr=1e-3     # scale up with overrides
    fope reproduce --preset 60M --out DIR --print-commands          # paper scale: the torchrun commands
    fope reproduce --out DIR --report-only                          # rebuild report.md / results.json
    fope extend --model RoPE_MODEL --out DIR [--preset cpu|gpu] [--methods fope,yarn,pi,none]
    fope recovery --model smollm2 --out DIR [--steps 60] [--seq-len 512] [key=value ...]
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import time
from pathlib import Path

from fope.pos.options import KINDS
from fope.utils import add_field_flags, parse_lengths, parse_overrides, parse_value, read_json

GRID_FILE = "grid.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's experiment grid and write report.md / results.json",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--preset",
        help="grid preset: cpu-quick, cpu, gpu-quick, gpu, 60M, 180M, 1.2B (default: the one stored in --out)",
    )
    p.add_argument("--out", required=False, help="output directory (resumable: rerun to continue)")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="grid preset fields (seeds=5, steps=1000, sigmas=0,0.3) or fope.train keys (train.lr=1e-3)",
    )
    p.add_argument("--only", help="comma-separated experiments to run: main,extension,ablations,passkey")
    p.add_argument("--report-only", action="store_true", help="only rebuild results.json, report.md and figures")
    p.add_argument(
        "--print-commands",
        action="store_true",
        help="print every run, its overrides and its torchrun command; run nothing",
    )
    p.add_argument("--nproc", type=int, help="processes per training run (> 1: torchrun); default from the preset")
    p.add_argument("--jobs", type=int, help="runs at the same time, one process each; default from the preset")
    p.add_argument("--threads", type=int, help="torch threads per run (0: torch default); default from the preset")
    p.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    p.add_argument("--progress-bars", action="store_true", help="show the per-step progress bars of training")
    p.add_argument("--list-presets", action="store_true", help="list the grid presets and exit")
    p.set_defaults(func=main)


def register_extend(subparsers: argparse._SubParsersAction) -> None:
    from .extend import ExtendPreset

    p = subparsers.add_parser(
        "extend",
        help="context extension of a RoPE model: FoPE vs YaRN vs PI vs none, same data "
        "and steps (was `fope hf extend`)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="RoPE model: HF dir, hub name, smollm2, or native fope model/run dir")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="cpu", help="cpu (a cpu-tiny RoPE model, minutes) | gpu (SmolLM2-135M)")
    p.add_argument("--methods", default="fope,yarn,pi,none")
    p.add_argument("--device", default="cpu")
    add_field_flags(p, ExtendPreset, defaults=False)
    p.set_defaults(func=run_extend)


def register_recovery(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "recovery",
        help="perplexity before/after a RoPE -> FoPE conversion and after a short fine-tune (was `fope hf recovery`)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, help="HF RoPE model: directory, hub name or smollm2")
    p.add_argument("--out", required=True)
    p.add_argument("--pe", default="fope", help=f"the new model's encoding: {', '.join(KINDS)} (default fope)")
    p.add_argument("--train-len", type=int, default=None)
    p.add_argument("--lengths", default="256,512,1024", type=parse_lengths, help="comma-separated, e.g. 256,512,1k")
    p.add_argument("--data", default="wiki")
    p.add_argument("--max-chunks", type=int, default=4)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--n-examples", type=int, default=2000)
    p.add_argument("options", nargs="*", metavar="key=value", help="pe options, e.g. sigma=0.3")
    p.set_defaults(func=run_recovery)


def run_extend(args: argparse.Namespace) -> int:
    from .extend import ExtendPreset, extend, format_table

    overrides = {k: getattr(args, k) for k in ExtendPreset.__dataclass_fields__ if getattr(args, k) is not None}
    result = extend(
        args.model, args.out, methods=args.methods.split(","), preset=args.preset, device=args.device, **overrides
    )
    print(format_table(result))
    return 0


def run_recovery(args: argparse.Namespace) -> int:
    from .recovery import recovery

    lengths = args.lengths
    options = {key: parse_value(value) for key, value in parse_overrides(args.options).items()}  # fope.utils' spelling
    recovery(
        args.model,
        args.out,
        pe=args.pe,
        pe_options=options,
        train_len=args.train_len,
        lengths=lengths,
        data=args.data,
        max_chunks=args.max_chunks,
        steps=args.steps,
        seq_len=args.seq_len,
        n_examples=args.n_examples,
    )
    return 0


def _list_presets() -> int:
    from .presets import GRID_PRESETS

    for name, preset in GRID_PRESETS.items():
        print(f"{name:10s} {preset.description}")
    return 0


def resolve_preset(args: argparse.Namespace):
    """The grid preset from --preset (or OUT/grid.json), overrides and --only / --nproc."""
    import dataclasses

    from .presets import GridPreset, apply_grid_overrides, get_preset

    stored = Path(args.out) / GRID_FILE if args.out else None
    if args.preset:
        preset = get_preset(args.preset)
    elif stored is not None and stored.is_file():
        from fope.utils import reading

        fix = f"rewrite it by giving the grid's --preset (and overrides) again with --out {args.out}"
        with reading(stored, "grid description", fix):
            d = read_json(stored, "grid description", fix=fix)
            if not isinstance(d, dict):
                raise ValueError(f"a JSON {type(d).__name__}, not an object")
            preset = GridPreset(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
    else:
        raise ValueError("give --preset NAME (see --list-presets) or an --out directory of an earlier run")
    if args.overrides:
        preset = apply_grid_overrides(preset, list(args.overrides))
    if args.only:
        preset = dataclasses.replace(preset, experiments=tuple(e.strip() for e in args.only.split(",") if e.strip()))
    for name in ("nproc", "jobs", "threads"):
        if getattr(args, name) is not None:
            preset = dataclasses.replace(preset, **{name: int(getattr(args, name))})
    return preset


def build(preset):
    """The grid of a preset (the base model's shape comes from the fope.train preset it starts from)."""
    from .experiments import build_grid
    from .runconfig import base_config

    m = base_config(preset).model
    return build_grid(preset, head_dim=m.resolved().head_dim, n_heads=m.n_heads, n_layers=m.n_layers)


def _command_line(args: argparse.Namespace, preset_name: str) -> str:
    """The command, rebuilt from the parsed arguments (recorded in results.json and the report)."""
    parts = ["fope", "reproduce", "--preset", preset_name, "--out", str(args.out)]
    for flag in ("only", "nproc", "jobs", "threads"):
        if getattr(args, flag) is not None:
            parts += [f"--{flag}", str(getattr(args, flag))]
    if args.no_figures:
        parts.append("--no-figures")
    return " ".join(shlex.quote(p) for p in [*parts, *args.overrides])


def main(args: argparse.Namespace) -> int:
    if args.list_presets:
        return _list_presets()
    if not args.out:
        raise ValueError("--out DIR is required")
    if not args.progress_bars:
        os.environ.setdefault("TQDM_DISABLE", "1")  # one line per run instead of per-step bars
    from fope.utils import git_info

    from .backends import LocalBackend, TorchrunBackend, print_plan
    from .records import write_json_atomic
    from .report import write_outputs
    from .results import SESSIONS_FILE, collect, read_sessions
    from .scheduler import run_grid

    preset = resolve_preset(args)
    grid = build(preset)
    out = Path(args.out)
    command = _command_line(args, preset.name)
    if args.print_commands:
        print_plan(grid, out, nproc=preset.nproc)
        return 0
    if args.report_only:  # the command that produced the runs, not this one
        sessions = read_sessions(out)
        command = sessions[-1].get("command", command) if sessions else command
        paths = write_outputs(collect(grid, out, command=command), out, figures=not args.no_figures)
        print(f"wrote {paths['report']} and {paths['results']}")
        return 0
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / GRID_FILE, preset.to_dict())
    backend = (
        TorchrunBackend(nproc=preset.nproc, device=preset.device)
        if preset.nproc > 1
        else LocalBackend(device=preset.device)
    )
    tic = time.perf_counter()
    sessions = read_sessions(out)
    this = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wall_s": 0.0,
        "command": command,
        **git_info(),
    }  # the code this session runs (the report's commit is the one at report time)
    sessions.append(this)

    def record_session() -> None:
        this["wall_s"] = round(time.perf_counter() - tic, 1)
        write_json_atomic(out / SESSIONS_FILE, sessions)

    record_session()  # at once, then after every run: a session killed outright still leaves its start and progress

    def on_sigterm(signum, frame) -> None:  # `kill` of the grid: write this session's wall time, then die as before
        record_session()  # (the workers get SIGTERM from the kernel and checkpoint: scheduler._init_worker)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # by the signal itself: no wait for the workers' runs to end
        os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, on_sigterm)

    def partial_report() -> None:  # after every run: a usable report even if the grid is stopped later
        record_session()
        write_outputs(collect(grid, out, command=command, session_wall_s=time.perf_counter() - tic), out, figures=False)

    try:
        status = run_grid(
            grid, out, backend=backend, jobs=preset.jobs, threads=preset.threads or None, on_run_done=partial_report
        )
    finally:
        signal.signal(signal.SIGTERM, previous)
        record_session()
    results = collect(grid, out, command=command, session_wall_s=time.perf_counter() - tic)
    paths = write_outputs(results, out, figures=not args.no_figures)
    print(
        f"done in {status['session_s'] / 60:.1f} min (this session); {len(status['done'])} runs complete, "
        f"{len(status['failed'])} failed, {len(status['skipped'])} skipped"
    )
    from .claims import check_claims, headline, regime
    from .report import verdict_text

    head = headline(results)
    if head:
        print(head)
    reg = regime(results)
    if reg["ok"] is not None or reg["verdict"] != "not measured":
        word = {
            "holds": "in the regime: ",
            "does not hold": "BELOW the regime where length generalisation can be judged: ",
        }.get(reg["verdict"], "at the edge of the regime (within noise): ")
        print(word + reg["text"])
    for c in check_claims(results):
        print(f"  [{verdict_text(c, markdown=False)}] {c.figure}: {c.paper} -- {c.measured}")
    print(f"report: {paths['report']}\nresults: {paths['results']}")
    return 1 if status["failed"] or status["skipped"] else 0
