"""Compose docs/RESULTS.md and docs/results/cpu/ from real `fope reproduce` output directories.

    .venv/bin/python scripts/make_results_doc.py --cpu runs/cpu --quick runs/cpu-quick [--passkey runs/cpu-pk] \
        [--passkey-replicate runs/cpu-pk-s1 runs/cpu-pk-s2] \
        [--notes NOTES.md]

Copies the `cpu` run's results.json, report.md and figures into docs/results/cpu/, and writes docs/RESULTS.md:
a header with the commands, machine and wall times read from the two results.json files, the optional
hand-written analysis (NOTES.md: prose only, it must not contain measured numbers), and the generated report of
the `cpu` run (every number in it is read from results.json by `fope reproduce`).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _minutes(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds / 60:.1f} min"


def _publish(run: Path, name: str, figures: str | None = None) -> dict:
    """Copy a `fope reproduce` output's results.json (and its figures matching ``figures``) to docs/results/NAME/;
    return the results."""
    dest = ROOT / "docs" / "results" / name
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(run / "results.json", dest / "results.json")
    for png in sorted((run / "figures").glob(figures)) if figures else []:
        (dest / "figures").mkdir(exist_ok=True)
        shutil.copy2(png, dest / "figures" / png.name)
    return json.loads((run / "results.json").read_text())


def _verdicts(results: dict, prefix: str) -> list[str]:
    """One Markdown bullet per claim of a results.json whose id starts with ``prefix``, as the report words it."""
    return [f"- `{c['id']}` **{c['verdict']}**: {c['paper']} -- {c['measured']}"
            for c in results.get("claims", []) if c["id"].startswith(prefix)]


def _sessions(results: dict, commands: bool = False) -> str:
    """The grid sessions of a results.json (each `fope reproduce` that worked on the run directory), one line."""
    return "; ".join(
        (f"`{s.get('command')}` " if commands else "") + f"{s.get('started')}: {_minutes(s.get('wall_s'))}, "
        f"commit `{s.get('commit', 'not recorded')}`" + (" (dirty)" if s.get("dirty") else "")
        for s in results.get("sessions", []))


def _quick_section(quick: dict) -> list[str]:
    """The README main job's main comparison, read from its results.json (copied to docs/results/cpu-quick/)."""
    L = int(quick["config"]["train_len"])
    main = quick.get("main") or {}
    lengths = sorted({int(k) for cell in main.values() for k in cell.get("ppl", {})})
    out = ["## The README's main job (`cpu-quick`)", "",
           f"One seed of each encoding at L = {L} (`docs/results/cpu-quick/results.json`). Perplexity on books "
           "validation, and the ratio to the perplexity at L:", "",
           "| PE | " + " | ".join(str(n) for n in lengths) + " | ppl(16L)/ppl(L) |",
           "|" + "---|" * (len(lengths) + 2)]
    for pe, cell in main.items():
        ppl = [cell["ppl"].get(str(n), {}).get("mean") for n in lengths]
        ratio = (cell.get("ppl_ratio") or {}).get(str(16 * L), {}).get("mean")
        out.append(f"| {pe} | " + " | ".join("-" if v is None else f"{v:.1f}" for v in ppl)
                   + f" | {'-' if ratio is None else f'{ratio:.3f}'} |")
    out += ["", "Its verdicts on the demonstration targets:", "", *_verdicts(quick, "target-")]
    return out + [""]


def _passkey_section(run: Path, pk: dict) -> list[str]:
    """The passkey task's own report (docs/results/cpu-passkey/results.json), one heading level down."""
    report = (run / "report.md").read_text()
    body = report.split("\n## 5. Passkey", 1)
    if len(body) != 2:
        raise SystemExit(f"{run / 'report.md'} has no passkey section")
    section = "## 5. Passkey" + body[1].split("\n## ", 1)[0]
    section = "\n".join(("#" + line) if line.startswith("#") else line for line in section.splitlines())
    section = section.replace("](figures/", "](results/cpu-passkey/figures/")
    from fope.reproduce.presets import get_preset

    steps, default = pk["config"]["passkey_steps"], get_preset("cpu").passkey_steps
    now = "" if steps == default else (f" This run used {steps} steps; the preset now trains {default} "
                                       "(docs/reproduce.md says why).")
    return ["## The passkey task, run on its own (`cpu` preset, `experiments=passkey`)", "",
            "The passkey experiment of the `cpu` preset re-run after it changed to dedicated 4-layer models trained "
            "from scratch (`passkey_scratch`; docs/reproduce.md). It replaces section 5 of the `cpu` report further "
            f"down, which fine-tuned the 2-layer main runs.{now} Generated from "
            "`docs/results/cpu-passkey/results.json`:", "", *section.splitlines()[2:], "",  # heading, blank line
            "Its verdicts on the paper's passkey claims (Fig. 1a):", "", *_verdicts(pk, "passkey-"), ""]


def _scratch_seed(pk: dict) -> int:
    """The training seed of a passkey-task run (``train.seed`` of its ``passkey_scratch``; 0 when not set)."""
    return int((pk["config"].get("passkey_scratch") or {}).get("train.seed", 0))


def _replicate_section(pk: dict, dest: str) -> list[str]:
    """The passkey task retrained with another seed (docs/results/DEST/results.json): generation, its split by
    needle depth and distance, and the verdicts, as the report prints them."""
    from fope.reproduce.report import _binomial_table, _depth_table

    pv, L, seed = pk.get("passkey_variant") or {}, int(pk["config"]["train_len"]), _scratch_seed(pk)
    return [f"### The same task, seed {seed}", "",
            f"The passkey task retrained from scratch for {', '.join(pv)} with `train.seed` {seed} "
            "(`passkey_scratch`; same data, same test prompts), to see whether the seed above was typical. Generated "
            f"from `docs/results/{dest}/results.json`. Greedy-generation accuracy (± binomial s.e.):",
            "", *_binomial_table(pv, "passkey", L, pk["config"].get("passkey_trials")), *_depth_table(pv, L),
            "Its verdicts:", "", *_verdicts(pk, "passkey-"), ""]


def pooled_passkey(runs: list[dict]) -> dict[str, dict[int, dict[str, list[int]]]]:
    """Greedy-generation passkey counts summed over passkey-task runs (one per seed).

    Returns ``{pe: {length: {"all": [correct, trials], "far": [correct, trials], "seeds": [seed, ...]}}}``, where
    "far" counts the needles at L or more tokens from the question (``passkey_far``; absent from runs evaluated
    before it was recorded, which then count in "all" only).
    """
    pooled: dict[str, dict[int, dict[str, list[int]]]] = {}
    for pk in runs:
        trials, seed = int(pk["config"]["passkey_trials"]), _scratch_seed(pk)
        for pe, cell in (pk.get("passkey_variant") or {}).items():
            far = cell.get("passkey_far") or {}
            for n, agg in (cell.get("passkey") or {}).items():
                if agg.get("mean") is None:
                    continue
                slot = pooled.setdefault(pe, {}).setdefault(int(n), {"all": [0, 0], "far": [0, 0], "seeds": []})
                runs_n = int(agg.get("n") or 1)
                slot["all"][0] += round(float(agg["mean"]) * trials * runs_n)
                slot["all"][1] += trials * runs_n
                beyond = (far.get(n) or {}).get("beyond")
                if beyond:
                    slot["far"][0] += int(beyond[0])
                    slot["far"][1] += int(beyond[1])
                slot["seeds"].append(seed)
    return pooled


def _pooled_section(runs: list[dict]) -> list[str]:
    """One table of the passkey task's generation accuracy with every seed's trials pooled."""
    import math

    pooled, L = pooled_passkey(runs), int(runs[0]["config"]["train_len"])
    lengths = sorted({n for cells in pooled.values() for n in cells})

    def cell(k: int, t: int) -> str:
        return "-" if not t else f"{k}/{t} ({k / t:.2f} ± {math.sqrt(k / t * (1 - k / t) / t):.2f})"

    lines = ["### The passkey task over its seeds", "",
             "Greedy-generation accuracy with the trials of every seed above pooled (correct / trials, accuracy ± "
             "binomial s.e. of the pooled trials; the seeds differ, so the spread between them, in the tables above, "
             "is the better guide to what another seed would do). Beyond L, the second row of each encoding counts "
             "only the needles L or more tokens from the question, distances no training sequence contained:", "",
             "| PE | seeds | needles | " + " | ".join(f"{n} ({n / L:g}L)" for n in lengths) + " |",
             "|" + "---|" * (len(lengths) + 3)]
    for pe, cells in pooled.items():
        seeds = sorted({s for c in cells.values() for s in c["seeds"]})
        lines.append(f"| {pe} | {', '.join(map(str, seeds))} | all | "
                     + " | ".join(cell(*cells[n]["all"]) if n in cells else "-" for n in lengths) + " |")
        if any(cells[n]["far"][1] for n in cells if n > L):
            lines.append(f"| {pe} | {', '.join(map(str, seeds))} | L or farther | "
                         + " | ".join(cell(*cells[n]["far"]) if n in cells and n > L else "-" for n in lengths)
                         + " |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cpu", required=True, type=Path, help="output directory of `fope reproduce --preset cpu`")
    ap.add_argument("--quick", type=Path, help="output directory of `fope reproduce --preset cpu-quick`")
    ap.add_argument("--notes", type=Path, help="markdown analysis to put before the generated report")
    ap.add_argument("--passkey", type=Path, help="output directory of a later `fope reproduce --preset cpu "
                                                 "experiments=passkey` run (the passkey task re-run on its own)")
    ap.add_argument("--passkey-replicate", type=Path, nargs="+", default=[],
                    help="output directories of the passkey task retrained with other seeds (passkey_scratch "
                         "train.seed), each published to docs/results/cpu-passkey-seedN/")
    args = ap.parse_args()

    results = json.loads((args.cpu / "results.json").read_text())
    dest = ROOT / "docs" / "results" / "cpu"
    if dest.exists():
        shutil.rmtree(dest)
    (dest / "figures").mkdir(parents=True)
    shutil.copy2(args.cpu / "results.json", dest / "results.json")
    for png in sorted((args.cpu / "figures").glob("*.png")):
        shutil.copy2(png, dest / "figures" / png.name)
    report = (args.cpu / "report.md").read_text()
    report = report.replace("](figures/", "](results/cpu/figures/")
    # the report's own title becomes a section of RESULTS.md
    report = "\n".join(("#" + line) if line.startswith("#") else line for line in report.splitlines())

    m = results.get("machine", {})
    lines = [
        "# Results",
        "",
        "Everything on this page was produced by the code of this repository; the tables and verdicts below are",
        "generated by `fope reproduce` from `docs/results/cpu/results.json` (committed with its config and commit).",
        "",
        "| | |",
        "|---|---|",
        f"| `cpu` preset command | `{results.get('command')}` |",
        f"| `cpu` wall time | {_minutes(results.get('wall_time_s'))} |",
        f"| commit when the report was generated | `{results.get('commit')}`"
        + (" (with uncommitted changes)" if results.get("dirty") else "") + " |",
        f"| grid sessions (a killed grid resumes) | {_sessions(results)} |",
        f"| machine | {m.get('nproc')} CPU cores ({m.get('cpu')}), {m.get('memory_gib')} GiB, GPU: {m.get('gpu')}, "
        f"torch {m.get('torch')}, Python {m.get('python')} |",
    ]
    if results.get("missing"):
        lines.append(f"| runs of the grid not finished | {len(results['missing'])} (listed in the report below) |")
    quick_lines: list[str] = []
    if args.quick is not None:
        quick = _publish(args.quick, "cpu-quick")
        lines.append(f"| `cpu-quick` (the README's main job) | `{quick.get('command')}`: "
                     f"{_minutes(quick.get('wall_time_s'))} wall |")
        quick_lines = _quick_section(quick)
    passkey_lines: list[str] = []
    if args.passkey is not None:
        pk = _publish(args.passkey, "cpu-passkey", figures="passkey*.png")
        lines.append(f"| passkey task (run on its own) | {_minutes(pk.get('wall_time_s'))} wall in all; sessions: "
                     f"{_sessions(pk, commands=True)} |")
        passkey_lines = _passkey_section(args.passkey, pk)
    replicates = []
    for run in args.passkey_replicate:
        seed = _scratch_seed(json.loads((run / "results.json").read_text()))
        rep = _publish(run, f"cpu-passkey-seed{seed}")
        replicates.append(rep)
        lines.append(f"| passkey task, seed {seed} | {_minutes(rep.get('wall_time_s'))} wall in all; "
                     f"sessions: {_sessions(rep, commands=True)} |")
        passkey_lines += _replicate_section(rep, f"cpu-passkey-seed{seed}")
    if replicates:
        passkey_lines += _pooled_section(([pk] if args.passkey is not None else []) + replicates)
    lines += [""] + quick_lines + passkey_lines
    lines += ["## GPU presets", "",
              "`gpu-quick` and `gpu` (docs/reproduce.md) have not run on a GPU yet: no session so far had one. Their "
              "whole plan runs end to end on CPU with tiny overrides (`tests/reproduce/test_gpu_presets.py`), and "
              "`scripts/device_gpu_quick.sh` runs `gpu-quick` on a borrowed GPU machine as one prepared command "
              "(docs/reproduce.md).", ""]
    lines.append("Regenerate this page: `.venv/bin/python scripts/make_results_doc.py --cpu DIR --quick DIR "
                 "[--passkey DIR] [--passkey-replicate DIR ...] --notes docs/results/notes.md`.")
    lines.append("")
    if args.notes is not None:
        lines += [args.notes.read_text().rstrip(), ""]
    lines += [report]
    (ROOT / "docs" / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {ROOT / 'docs' / 'RESULTS.md'} and {dest}")


if __name__ == "__main__":
    main()
