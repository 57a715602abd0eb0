"""docs/RESULTS.md and the committed results under docs/results/, generated from `fope reproduce` output only.

    >>> publish_run(Path("runs/cpu"), Path("docs/results/cpu"))      # results.json (+ figures) of a finished grid
    >>> text = results_doc(Path("docs/results"), notes=Path("docs/results/notes.md").read_text())

`publish_run` copies a run's ``results.json`` (its claims recomputed with the current verdict rules) and figures
into ``docs/results/NAME/``. `results_doc` writes the whole of RESULTS.md from the committed ``results.json`` files
alone: every table, verdict and timing on the page is read from them (the notes are prose). A test regenerates the
page and compares it with the committed one, so a changed rule, threshold or number cannot go unnoticed.

The folders it reads (``Published``): ``cpu`` (the full grid, required), ``cpu-quick`` (the README's main job),
``cpu-quick-avx2`` (the same job on an AVX2-only CPU), ``cpu-passkey`` (the passkey task re-run on its own) and
``cpu-passkey-seedN`` (the passkey task retrained with other seeds).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fope.utils import read_json

from .claims import check_claims, headline, mean
from .records import write_json_atomic
from .report import _binomial_table, _depth_table, binomial_se, passkey_task_section, render_report, verdict_text
from .verdicts import FAILS, HOLDS, MISSING, NOISE, NOISE_SE, REFERENCE, UNLEARNT, mean_band


def committed_results(root: Path) -> list[Path]:
    """The results files under ``root`` (docs/results) whose claims are published: every ``results.json``, and the
    JSON files under ``pilots/`` that hold claims."""
    return [
        p
        for p in sorted(Path(root).glob("**/*.json"))
        if p.name == "results.json" or (p.parent.name == "pilots" and '"claims"' in p.read_text())
    ]


def with_current_claims(results: dict[str, Any]) -> dict[str, Any]:
    """``results`` with its ``claims`` recomputed by the current rules (everything else untouched)."""
    return {**results, "claims": [c.to_dict() for c in check_claims(results)]}


def publish_run(run: Path, dest: Path, figures: str | None = "*.png") -> dict[str, Any]:
    """Copy a `fope reproduce` output's results.json (claims recomputed) and its figures matching ``figures`` to
    ``dest``; return the results. ``dest`` is replaced as a whole."""
    results = with_current_claims(read_json(Path(run) / "results.json", "grid results"))
    if dest.exists():
        shutil.rmtree(dest)
    write_json_atomic(dest / "results.json", results)
    for png in sorted((Path(run) / "figures").glob(figures)) if figures else []:
        (dest / "figures").mkdir(exist_ok=True)
        shutil.copy2(png, dest / "figures" / png.name)
    return results


def refresh_claims(path: Path) -> bool:
    """Recompute the claims stored in a committed results.json; True if they changed."""
    results = read_json(path, "committed results")
    new = with_current_claims(results)
    if new == results:
        return False
    write_json_atomic(path, new)
    return True


@dataclass
class Published:
    """The committed results.json files that RESULTS.md is made of."""

    root: Path
    cpu: dict[str, Any]
    quick: dict[str, Any] | None = None
    quick_avx2: dict[str, Any] | None = None
    quick_bf16_tables: dict[str, Any] | None = None  # the main job with the code before FoPE's fp32 tables
    quick_earlier: dict[str, Any] | None = None  # the main job published before that fix (another machine)
    passkey: dict[str, Any] | None = None
    replicates: dict[int, dict[str, Any]] = field(default_factory=dict)  # seed -> results

    @classmethod
    def read(cls, root: Path) -> Published:
        def load(name: str) -> dict[str, Any] | None:
            p = root / name / "results.json"
            return read_json(p, "committed results", missing=None)  # a run not published (yet): None

        cpu = load("cpu")
        if cpu is None:
            raise FileNotFoundError(f"no {root / 'cpu' / 'results.json'}: publish the `cpu` grid first")
        seeds = sorted(
            int(m.group(1))
            for p in root.glob("cpu-passkey-seed*")
            if (m := re.fullmatch(r"cpu-passkey-seed(\d+)", p.name)) and (p / "results.json").is_file()
        )
        return cls(
            root,
            cpu,
            load("cpu-quick"),
            load("cpu-quick-avx2"),
            load("cpu-quick-bf16-tables"),
            load("cpu-quick-bf16-tables-earlier"),
            load("cpu-passkey"),
            {s: load(f"cpu-passkey-seed{s}") for s in seeds},
        )


def _minutes(seconds: float | None) -> str:
    return "unknown" if seconds is None else f"{seconds / 60:.1f} min"


def _verdicts(results: dict, prefix: str) -> list[str]:
    """One Markdown bullet per claim of a results dict whose id starts with ``prefix`` (claims recomputed)."""
    return [
        f"- `{c['id']}` {verdict_text(c)}: {c['paper']} -- {c['measured']}"
        for c in with_current_claims(results)["claims"]
        if c["id"].startswith(prefix)
    ]


def _sessions(results: dict, commands: bool = False) -> str:
    """The grid sessions of a results.json (each `fope reproduce` that worked on the run directory), one line."""
    return "; ".join(
        (f"`{s.get('command')}` " if commands else "") + f"{s.get('started')}: {_minutes(s.get('wall_s'))}, "
        f"commit `{s.get('commit', 'not recorded')}`" + (" (dirty)" if s.get("dirty") else "")
        for s in results.get("sessions", [])
    )


def scratch_seed(pk: dict) -> int:
    """The training seed of a passkey-task run (``train.seed`` of its ``passkey_scratch``; 0 when not set)."""
    return int((pk["config"].get("passkey_scratch") or {}).get("train.seed", 0))


def _ratio_at_top(cell: dict | None, L: int) -> float | None:
    return mean(cell, "ppl_ratio", 16 * L)


def _quick_section(quick: dict) -> list[str]:
    """The README main job's main comparison, read from docs/results/cpu-quick/results.json."""
    L = int(quick["config"]["train_len"])
    main = quick.get("main") or {}
    lengths = sorted({int(k) for cell in main.values() for k in cell.get("ppl", {})})
    out = [
        "## The README's main job (`cpu-quick`)",
        "",
        f"One seed of each encoding at L = {L} (`docs/results/cpu-quick/results.json`). Perplexity on books "
        "validation, and the ratio to the perplexity at L:",
        "",
        "| PE | " + " | ".join(str(n) for n in lengths) + " | ppl(16L)/ppl(L) |",
        "|" + "---|" * (len(lengths) + 2),
    ]
    for pe, cell in main.items():
        ppl = [cell["ppl"].get(str(n), {}).get("mean") for n in lengths]
        ratio = _ratio_at_top(cell, L)
        out.append(
            f"| {pe} | "
            + " | ".join("-" if v is None else f"{v:.1f}" for v in ppl)
            + f" | {'-' if ratio is None else f'{ratio:.3f}'} |"
        )
    head = headline(quick)
    out += [
        "",
        *([f"In one sentence: {head}", ""] if head else []),
        "Its verdicts on the project's targets and the paper's Fig. 1 and Fig. 5 (the main comparison's claims):",
        "",
        *_verdicts(quick, MAIN_CLAIMS),
    ]
    return out + [""]


def max_relative_difference(a: dict, b: dict) -> tuple[float, str]:
    """The largest relative difference between the main-comparison perplexities (both corpora) of two results
    dicts, and where it is (``pe metric length``)."""
    other = a["config"].get("other_corpus", "wiki")
    worst, where = 0.0, ""
    for pe, cell in (a.get("main") or {}).items():
        for metric in ("ppl", f"ppl_{other}"):
            for n, agg in (cell.get(metric) or {}).items():
                x = agg.get("mean")
                y = (((b.get("main") or {}).get(pe) or {}).get(metric) or {}).get(n, {}).get("mean")
                if x and y and abs(x - y) / x > worst:
                    worst, where = abs(x - y) / x, f"{pe} {metric} at {n}"
    return worst, where


def _ratio_rows(before: dict, after: dict, heads: tuple[str, str]) -> list[str]:
    """A Markdown table of each encoding's ppl(16L)/ppl(L) in two results dicts of the main comparison, and the
    change from the first to the second."""
    L = int(before["config"]["train_len"])
    rows = [f"| PE | {heads[0]} | {heads[1]} | change |", "|---|---|---|---|"]
    for pe, cell in (before.get("main") or {}).items():
        a, b = _ratio_at_top(cell, L), _ratio_at_top((after.get("main") or {}).get(pe), L)
        change = "-" if a is None or b is None else f"{b - a:+.4f}"
        rows.append(f"| {pe} | {'-' if a is None else f'{a:.4f}'} | {'-' if b is None else f'{b:.4f}'} | {change} |")
    return rows


def _same_verdicts(a: dict, b: dict) -> tuple[int, int]:
    """How many of ``a``'s claims (recomputed) have the same verdict in ``b``, and how many it has."""
    ours, theirs = check_claims(a), check_claims(b)
    same = [c.id for c, d in zip(ours, theirs, strict=False) if c.id == d.id and c.verdict == d.verdict]
    return len(same), len(ours)


def _avx2_section(quick: dict, avx2: dict) -> list[str]:
    """The main job run again on an AVX2-only CPU (fp32): its wall time, ratios and how far its numbers are from
    the committed `cpu-quick` run's."""
    precisions = sorted({str(i.get("precision")) for i in (avx2.get("runs") or {}).values() if i.get("precision")})
    worst, where = max_relative_difference(quick, avx2)
    same, n = _same_verdicts(quick, avx2)
    return [
        "## The same job on an AVX2-only CPU",
        "",
        f"`{avx2.get('command')}` on a CPU without native bf16 (training precision "
        f"{' and '.join(precisions) or 'not recorded'}): {_minutes(avx2.get('wall_time_s'))} wall "
        f"({avx2.get('wall_time_s')} s), commit `{avx2.get('commit')}`"
        + (" with uncommitted changes" if avx2.get("dirty") else "")
        + " (`docs/results/cpu-quick-avx2/results.json`). Its perplexities differ from the `cpu-quick` run's by "
        f"up to {worst:.1%} ({where}); {same} of its {n} verdicts are the same:",
        "",
        *_ratio_rows(quick, avx2, ("`cpu-quick`", "the same on AVX2")),
        "",
    ]


def _tables_section(quick: dict, before: dict, earlier: dict | None) -> list[str]:
    """The main job before and after FoPE's position tables became fp32 whatever the caller's autocast, on one
    machine: FoPE's ratio then and now, and the largest difference of every other encoding's perplexities (none
    expected: the change touches FoPE's tables only). ``earlier``: the run published before the fix, made on
    another machine, which says how far the same code's numbers move between two CPUs."""
    L = int(quick["config"]["train_len"])
    band = mean_band(None, 1, REFERENCE.ratio_std.get("fope"))
    f_before, f_after = (
        _ratio_at_top((before.get("main") or {}).get("fope"), L),
        _ratio_at_top((quick.get("main") or {}).get("fope"), L),
    )
    others = {pe for pe in (quick.get("main") or {}) if pe != "fope"}
    worst_other, where_other = max_relative_difference(_only(before, others), _only(quick, others))
    worst_fope, where_fope = max_relative_difference(_only(before, {"fope"}), _only(quick, {"fope"}))
    same, n = _same_verdicts(before, quick)
    change = "not measured" if f_before is None or f_after is None else f"{f_after - f_before:+.4f}"
    inside = (
        ""
        if band is None or f_before is None or f_after is None
        else (
            f", {'within' if abs(f_after - f_before) <= band else 'beyond'} the ±{band:.3f} one-seed band of FoPE's "
            f"ratio ({NOISE_SE:g} x its seed std in `{REFERENCE.source}`)"
        )
    )
    lines = [
        "## FoPE's position tables in fp32: the main job before and after",
        "",
        "Until the fix, FoPE's cached position tables took the dtype of the autocast of their first caller, so in "
        "bf16 training (the `auto` precision on a CPU with native bf16, and on every GPU) FoPE's tables were bf16 "
        "and a resumed run used fp32 ones. The main job was run again on one machine with the code before the fix "
        f"(commit `{before.get('commit')}`, `docs/results/cpu-quick-bf16-tables/results.json`) and after it "
        f"(commit `{quick.get('commit')}`, `docs/results/cpu-quick/results.json`). FoPE's ppl(16L)/ppl(L) moves by "
        f"{change}{inside}; its perplexities move by up to {worst_fope:.2%} ({where_fope}); "
        + (
            "the other encodings' perplexities are exactly the same"
            if worst_other == 0
            else f"the other encodings' perplexities by up to {worst_other:.2%} ({where_other})"
        )
        + f"; {same} of {n} verdicts are the same:",
        "",
        *_ratio_rows(before, quick, ("bf16 tables (before)", "fp32 tables (now)")),
        "",
    ]
    if earlier is not None:
        worst, where = max_relative_difference(_only(earlier, others), _only(before, others))
        exact = max_relative_difference(_only(before, others), _only(quick, others))[0] == 0
        cpu_a, cpu_b = (earlier.get("machine") or {}).get("cpu"), (before.get("machine") or {}).get("cpu")
        lines += [
            f"The run published before the fix (commit `{earlier.get('commit')}`, on an {cpu_a}; "
            "`docs/results/cpu-quick-bf16-tables-earlier/results.json`) and the same code's run above (on an "
            f"{cpu_b}) differ by up to {worst:.2%} in the encodings the fix does not touch ({where})"
            + (
                ": the same code and seed give the same numbers on one type of CPU (the two runs on one machine above "
                "agree exactly where the fix does not reach), and numbers that differ by about that much on another."
                if exact
                else "."
            ),
            "",
        ]
    return lines


def _only(results: dict, pes: set[str]) -> dict:
    """``results`` with its main comparison restricted to the encodings ``pes``."""
    return {**results, "main": {pe: c for pe, c in (results.get("main") or {}).items() if pe in pes}}


def _passkey_section(pk: dict, figures: dict[str, str]) -> list[str]:
    """The passkey task's own section (docs/results/cpu-passkey/results.json), one heading level down."""
    from .presets import get_preset

    section = _from_docs(passkey_task_section(pk, figures), "cpu-passkey")
    steps, default = pk["config"]["passkey_steps"], get_preset("cpu").passkey_steps
    now = (
        ""
        if steps == default
        else (f" This run used {steps} steps; the preset now trains {default} (docs/reproduce.md says why).")
    )
    return [
        "## The passkey task, run on its own (`cpu` preset, `experiments=passkey`)",
        "",
        "The passkey experiment of the `cpu` preset re-run after it changed to dedicated 4-layer models trained "
        "from scratch (`passkey_scratch`; docs/reproduce.md). It replaces section 5 of the `cpu` report further "
        f"down, which fine-tuned the 2-layer main runs.{now} Generated from "
        "`docs/results/cpu-passkey/results.json`:",
        "",
        *section[2:],
        "Its verdicts on the paper's passkey claims (Fig. 1a):",
        "",
        *_verdicts(pk, "passkey-"),
        "",
    ]


def _replicate_section(pk: dict, dest: str) -> list[str]:
    """The passkey task retrained with another seed: generation, its split by needle depth and distance, and the
    verdicts, as the report prints them."""
    pv, L, seed = pk.get("passkey_variant") or {}, int(pk["config"]["train_len"]), scratch_seed(pk)
    return [
        f"### The same task, seed {seed}",
        "",
        f"The passkey task retrained from scratch for {', '.join(pv)} with `train.seed` {seed} "
        "(`passkey_scratch`; same data, same test prompts), to see whether the seed above was typical. Generated "
        f"from `docs/results/{dest}/results.json`. Greedy-generation accuracy (± binomial s.e.):",
        "",
        *_binomial_table(pv, "passkey", L, pk["config"].get("passkey_trials")),
        *_depth_table(pv, L),
        "Its verdicts:",
        "",
        *_verdicts(pk, "passkey-"),
        "",
    ]


def pooled_passkey(runs: list[dict]) -> dict[str, dict[int, dict[str, list[int]]]]:
    """Greedy-generation passkey counts summed over passkey-task runs (one per seed).

    Returns ``{pe: {length: {"all": [correct, trials], "far": [correct, trials], "seeds": [seed, ...]}}}``, where
    "far" counts the needles at L or more tokens from the question (``passkey_far``; absent from runs evaluated
    before it was recorded, which then count in "all" only).
    """
    pooled: dict[str, dict[int, dict[str, list[int]]]] = {}
    for pk in runs:
        trials, seed = int(pk["config"]["passkey_trials"]), scratch_seed(pk)
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
    pooled, L = pooled_passkey(runs), int(runs[0]["config"]["train_len"])
    lengths = sorted({n for cells in pooled.values() for n in cells})

    def cell(k: int, t: int) -> str:
        return "-" if not t else f"{k}/{t} ({k / t:.2f} ± {binomial_se(k / t, t):.2f})"

    lines = [
        "### The passkey task over its seeds",
        "",
        "Greedy-generation accuracy with the trials of every seed above pooled (correct / trials, accuracy ± "
        "binomial s.e. of the pooled trials; the seeds differ, so the spread between them, in the tables above, "
        "is the better guide to what another seed would do). Beyond L, the second row of each encoding counts "
        "only the needles L or more tokens from the question, distances no training sequence contained:",
        "",
        "| PE | seeds | needles | " + " | ".join(f"{n} ({n / L:g}L)" for n in lengths) + " |",
        "|" + "---|" * (len(lengths) + 3),
    ]
    for pe, cells in pooled.items():
        seeds = sorted({s for c in cells.values() for s in c["seeds"]})
        lines.append(
            f"| {pe} | {', '.join(map(str, seeds))} | all | "
            + " | ".join(cell(*cells[n]["all"]) if n in cells else "-" for n in lengths)
            + " |"
        )
        if any(cells[n]["far"][1] for n in cells if n > L):
            lines.append(
                f"| {pe} | {', '.join(map(str, seeds))} | L or farther | "
                + " | ".join(cell(*cells[n]["far"]) if n in cells and n > L else "-" for n in lengths)
                + " |"
            )
    return lines + [""]


def _figures(root: Path, name: str) -> dict[str, str]:
    """``{figure name: path relative to the run}`` of the PNGs committed under docs/results/NAME/figures/."""
    folder = root / name / "figures"
    return {p.stem: f"figures/{p.name}" for p in sorted(folder.glob("*.png"))} if folder.is_dir() else {}


def _from_docs(lines: list[str], name: str) -> list[str]:
    """A report's lines as RESULTS.md shows them: headings one level down, figure links relative to docs/."""
    return [
        ("#" + line if line.startswith("#") else line).replace("](figures/", f"](results/{name}/figures/")
        for line in lines
    ]


# ----------------------------------------------------------------------------------------------- generated prose
#: the claims of the main comparison (the project's targets, the paper's Fig. 1 and Fig. 5)
MAIN_CLAIMS = ("target-", "fig1", "fig5")
#: a finding-stating sentence in README.md, docs/results/notes.md, docs/analysis.md: a block between these markers,
#: ``<!-- fope:KIND ARG -->generated text<!-- /fope -->``, filled by `fill_generated` from the committed claims
_BLOCK = re.compile(r"<!-- fope:([a-z0-9-]+) ([^ >]+) -->(.*?)<!-- /fope -->", re.S)
#: the order a summary lists the verdicts in (nothing left out), and their plural forms
_ORDER = (HOLDS, NOISE, FAILS, UNLEARNT, MISSING)
_PLURAL = {HOLDS: "hold", FAILS: "do not hold"}


def _stored(root: Path, run: str) -> dict[str, Any]:
    path = Path(root) / run / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no committed results for a generated block naming {run!r}")
    return read_json(path, "committed results")


def _claim_of(results: dict, cid: str, run: str) -> dict[str, Any]:
    found = [c for c in results.get("claims", []) if c["id"] == cid]
    if not found:
        raise ValueError(f"docs/results/{run}/results.json: no claim {cid!r} (a generated block names it)")
    return found[0]


def claim_sentence(run: str, c: dict[str, Any]) -> str:
    """A claim as one sentence: its id, run and figure, the claim, its verdict in bold and why (or what was
    measured when it holds)."""
    detail = c.get("why") or c.get("measured") or ""
    return f"`{c['id']}` (`{run}`, {c['figure']}): {c['paper']}: **{c['verdict']}**" + (
        f" ({detail})" if detail else ""
    )


def _ids(claims: list[dict]) -> str:
    return ", ".join(f"`{c['id']}`" for c in claims)


def comparison_summary(run: str, results: dict[str, Any]) -> str:
    """Every verdict of a run's main comparison in a few sentences, misses included, from its stored claims: the
    headline (`claims.headline`), the claims grouped by verdict, and which baselines of Fig. 1b FoPE is flatter
    than (the ``fig1b-flat-*`` rows)."""
    claims = [c for c in results.get("claims", []) if c["id"].startswith(MAIN_CLAIMS)]
    main = [c for c in claims if not c["id"].startswith("fig1b-flat-")]
    groups = [(v, [c for c in main if c["verdict"] == v]) for v in _ORDER]
    text = f"`{run}`: {headline(results) or 'RoPE and FoPE were not both measured beyond L.'}"
    text += f" Of its main comparison's {len(main)} claims (the project's targets, the paper's Fig. 1 and 5), " + (
        "; ".join(f"{len(cs)} {_PLURAL.get(v, v) if len(cs) > 1 else v}: {_ids(cs)}" for v, cs in groups if cs) + "."
    )
    per = {c["id"].removeprefix("fig1b-flat-"): c["verdict"] for c in claims if c["id"].startswith("fig1b-flat-")}
    flat = next((c for c in main if c["id"] == "fig1b-flat"), None)
    if per and flat is not None:
        names = {"rope": "RoPE", "nope": "NoPE", "kerple": "KERPLE", "fire": "FIRE"}

        def who(verdict: str) -> str:
            pes = [f"{names.get(pe, pe)}'s" for pe, v in per.items() if v == verdict]
            return ", ".join(pes[:-1]) + (" and " if len(pes) > 1 else "") + (pes[-1] if pes else "")

        said = [
            f"below {who(HOLDS)}" if who(HOLDS) else "",
            f"within noise of {who(NOISE)}" if who(NOISE) else "",
            f"above {who(FAILS)}" if who(FAILS) else "",
        ]
        text += (
            f" Fig. 1b (the baselines blow up beyond L while FoPE stays flatter, `fig1b-flat`) {flat['verdict']}: "
            f"FoPE's ppl(16L)/ppl(L) is {', '.join(x for x in said if x)}"
            + (
                f", so of Fig. 1b's comparisons only the one with {who(HOLDS).replace(chr(39) + 's', '')} reproduces."
                if who(HOLDS) and (who(NOISE) or who(FAILS))
                else "."
            )
        )
    return text


def _avx2_sentence(root: Path, arg: str) -> str:
    a, _, b = arg.partition(":")
    one, two = _stored(root, a), _stored(root, b)
    same = sum(
        1
        for c, d in zip(one.get("claims", []), two.get("claims", []), strict=False)
        if c["id"] == d["id"] and c["verdict"] == d["verdict"]
    )
    worst, _ = max_relative_difference(one, two)
    n = len(one.get("claims", []))
    return ("the same verdicts" if same == n else f"{same} of {n} verdicts the same") + (
        f" and perplexities that differ by up to {worst:.1%}"
    )


def fill_generated(text: str, root: Path) -> str:
    """``text`` with every ``<!-- fope:KIND ARG -->...<!-- /fope -->`` block refilled from the committed results
    under ``root`` (docs/results): ``claim RUN:ID`` (`claim_sentence`), ``summary RUN`` (`comparison_summary`),
    ``same RUN_A:RUN_B`` (how many verdicts two runs share, their largest perplexity difference). Idempotent."""

    def fill(m: re.Match) -> str:
        kind, arg = m.group(1), m.group(2)
        if kind == "claim":
            run, _, cid = arg.partition(":")
            body = claim_sentence(run, _claim_of(_stored(root, run), cid, run))
        elif kind == "summary":
            body = comparison_summary(arg, _stored(root, arg))
        elif kind == "same":
            body = _avx2_sentence(root, arg)
        else:
            raise ValueError(f"unknown generated block <!-- fope:{kind} {arg} --> (claim, summary, same)")
        return f"<!-- fope:{kind} {arg} -->{body}<!-- /fope -->"

    return _BLOCK.sub(fill, text)


#: the pages whose finding-stating sentences are generated blocks (paths relative to the repository)
GENERATED_PAGES = ("README.md", "docs/results/notes.md", "docs/analysis.md")


REGENERATE = (
    "Regenerate this page: `.venv/bin/python scripts/make_results_doc.py` (from the committed "
    "`docs/results/*/results.json`); publish a new run first with `--publish NAME=RUN_DIR`."
)


def _pad_section(root: Path) -> list[str]:
    """The FoPE pad experiment's section (fope.reproduce.padstudy) when docs/results/fope-pad/pad.json exists."""
    from .padstudy import RESULTS_DIR, RESULTS_FILE, pad_section

    path = root / RESULTS_DIR / RESULTS_FILE
    if not path.is_file():
        return []
    return pad_section(read_json(path, "pad experiment results"))


def results_doc(root: Path, notes: str | None = None) -> str:
    """The whole of docs/RESULTS.md from the committed results under ``root`` (docs/results) and the notes."""
    pub = Published.read(Path(root))
    results = pub.cpu
    m = results.get("machine", {})
    lines = [
        "# Results",
        "",
        "Everything on this page was produced by the code of this repository and is generated from the committed",
        "`docs/results/*/results.json` files by `scripts/make_results_doc.py` (a test regenerates it and compares).",
        "The `cpu` grid's tables and verdicts below are its `fope reproduce` report.",
        "",
        "| | |",
        "|---|---|",
        f"| `cpu` preset command | `{results.get('command')}` |",
        f"| `cpu` wall time | {_minutes(results.get('wall_time_s'))} |",
        f"| commit when the report was generated | `{results.get('commit')}`"
        + (" (with uncommitted changes)" if results.get("dirty") else "")
        + " |",
        f"| grid sessions (a killed grid resumes) | {_sessions(results)} |",
        f"| machine | {m.get('nproc')} CPU cores ({m.get('cpu')}), {m.get('memory_gib')} GiB, GPU: {m.get('gpu')}, "
        f"torch {m.get('torch')}, Python {m.get('python')} |",
    ]
    if results.get("missing"):
        lines.append(f"| runs of the grid not finished | {len(results['missing'])} (listed in the report below) |")
    body: list[str] = []
    if pub.quick is not None:
        lines.append(
            f"| `cpu-quick` (the README's main job) | `{pub.quick.get('command')}`: "
            f"{_minutes(pub.quick.get('wall_time_s'))} wall |"
        )
        body += _quick_section(pub.quick)
        if pub.quick_avx2 is not None:
            lines.append(f"| `cpu-quick` on an AVX2-only CPU | {_minutes(pub.quick_avx2.get('wall_time_s'))} wall |")
            body += _avx2_section(pub.quick, pub.quick_avx2)
        if pub.quick_bf16_tables is not None:
            body += _tables_section(pub.quick, pub.quick_bf16_tables, pub.quick_earlier)
    if pub.passkey is not None:
        lines.append(
            f"| passkey task (run on its own) | {_minutes(pub.passkey.get('wall_time_s'))} wall in all; "
            f"sessions: {_sessions(pub.passkey, commands=True)} |"
        )
        body += _passkey_section(pub.passkey, _figures(Path(root), "cpu-passkey"))
    for seed, rep in pub.replicates.items():
        lines.append(
            f"| passkey task, seed {seed} | {_minutes(rep.get('wall_time_s'))} wall in all; "
            f"sessions: {_sessions(rep, commands=True)} |"
        )
        body += _replicate_section(rep, f"cpu-passkey-seed{seed}")
    if pub.replicates:
        body += _pooled_section(([pub.passkey] if pub.passkey is not None else []) + list(pub.replicates.values()))
    body += _pad_section(Path(root))
    lines += [""] + body
    lines += [
        "## GPU presets",
        "",
        "`gpu-quick` and `gpu` (docs/reproduce.md) have not run on a GPU yet: no session so far had one. Their "
        "whole plan runs end to end on CPU with tiny overrides (`tests/reproduce/test_gpu_presets.py`), and "
        "`scripts/device_gpu_quick.sh` runs `gpu-quick` on a borrowed GPU machine as one prepared command "
        "(docs/reproduce.md).",
        "",
        REGENERATE,
        "",
    ]
    if notes is not None:
        lines += [fill_generated(notes, Path(root)).rstrip(), ""]
    lines += _from_docs(render_report(results, _figures(Path(root), "cpu")).splitlines(), "cpu")
    return "\n".join(lines) + "\n"
