"""The "Mechanism" part of a reproduction: Table 2 and the analyses of fope.analysis on the grid's own models.

`mechanism_results(grid, out_dir)` (called by fope.reproduce.results.collect) computes, and caches in
``OUT/mechanism.json`` until the runs it reads change:

* the Fig. 3 toy (errors of RoPE and FoPE against the frequency-matched ground truth);
* the Fig. 8 decay curves at the grid's head dim (ideal, and the expected score for μ ∈ {0, 0.1, 1});
* for the seed-0 main runs of RoPE and FoPE (when trained): Fig. 7 activation ratios (incomplete / complete-cycle
  dims) and the spectrum damage of q and k per layer;
* for every trained RoPE and FoPE main run (all seeds; preset field ``far_attention``): the far-attention
  decomposition of fope.analysis.far at the longest perplexity length, on the same validation tokens as the
  perplexity evaluation: where the loss beyond L comes from;

and draws their PNGs into ``OUT/figures``. `mechanism_section(results, figures)` renders the report section,
including Table 2 (``results["table2"]``) as loss = ln(perplexity) in the paper's layout next to the paper's numbers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fope.analysis import far_tables
from fope.model import find_model_dir
from fope.utils import atomic_write, read_json

from .experiments import Grid
from .records import run_dir

#: paper Table 2 (docs/analysis.md): loss at 512, 1024, 2048, 4096, 8192 (= L..16L) of ~20M models trained at 512
PAPER_TABLE2 = {
    "RoPE": (5.50, 6.01, 6.58, 6.99, 7.16),
    "RoPE + QK Norm": (5.46, 5.56, 5.89, 6.32, 6.66),
    "RoPE-A": (5.72, 5.86, 6.18, 6.46, 6.67),
    "RoPE-A + QK Norm": (5.69, 5.89, 6.27, 6.59, 6.81),
    "NoPE": (5.65, 6.03, 6.60, 6.81, 6.99),
    "NoPE + QK Norm": (5.59, 6.18, 6.87, 7.10, 7.43),
}
PAPER_FACTORS = (1, 2, 4, 8, 16)
ANALYSIS_SAMPLES = 32
DECAY_SAMPLES = 200
CACHE = "mechanism.json"


def _trained(out: Path, run: str) -> Path | None:
    """The model directory of the grid's run ``run`` once it has weights (fope.model.find_model_dir), else None."""
    path = find_model_dir(run_dir(out, run))
    return path if path is not None and (path / "model.safetensors").is_file() else None


def _model_dir(out: Path, grid: Grid, pe: str) -> Path | None:
    cell = next((c for c in grid.cells_of("main") if c.arm == pe), None)
    if cell is None or not cell.runs:
        return None
    return _trained(out, cell.runs[0])


def _far_models(out: Path, grid: Grid) -> dict[str, list[tuple[str, Path]]]:
    """{pe: [(run name, model dir)]} of every trained RoPE / FoPE main run, all seeds."""
    found: dict[str, list[tuple[str, Path]]] = {}
    for cell in grid.cells_of("main"):
        if cell.arm not in ("rope", "fope"):
            continue
        for run in cell.runs:
            path = _trained(out, run)
            if path is not None:
                found.setdefault(cell.arm, []).append((run, path))
    return found


def mechanism_results(grid: Grid, out_dir: str | Path, *, figures: bool = True) -> dict[str, Any]:
    """Toy, decay, (for trained seed-0 RoPE/FoPE main runs) activations and damage, and (for every trained RoPE/FoPE
    main run) the far-attention decomposition; cached (see module doc)."""
    out = Path(out_dir)
    p = grid.preset
    L = int(p.train_len)
    models = {pe: _model_dir(out, grid, pe) for pe in ("rope", "fope")}
    far = _far_models(out, grid) if p.far_attention else {}
    key = {
        "L": L,
        "models": {pe: (str(m), (m / "model.safetensors").stat().st_mtime) if m else None for pe, m in models.items()},
        "samples": ANALYSIS_SAMPLES,
        "version": 2,
        "far": {pe: [(run, (m / "model.safetensors").stat().st_mtime) for run, m in runs] for pe, runs in far.items()},
        "far_setting": [max(p.ppl_lengths), int(p.eval_tokens)] if far else None,
        "far_corpus": {run: run_corpus(out, run) for runs in far.values() for run, _ in runs},
    }
    cache = out / CACHE
    if cache.is_file():
        try:
            cached = json.loads(cache.read_text())
            if cached.get("key") == json.loads(json.dumps(key)):
                return cached
        except (OSError, ValueError):
            pass
    try:
        res = _compute(models, L, out if figures else None)
        if far:
            res["far"] = far_results(
                far, L, length=max(p.ppl_lengths), tokens=int(p.eval_tokens), out=out, device=_analysis_device(p.device)
            )
    except Exception as e:  # an analysis failure must not lose the grid's results
        return {"key": key, "error": f"{type(e).__name__}: {e}"}
    res["key"] = key
    text = json.dumps(res, default=str)
    atomic_write(cache, text)
    return json.loads(text)  # the same plain-JSON form a cached read gives


def _analysis_device(device: str) -> str:
    import torch

    return "cuda" if device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"


def far_results(
    far: dict[str, list[tuple[str, Path]]],
    L: int,
    *,
    length: int,
    tokens: int,
    out: Path,
    device: str = "cpu",
) -> dict[str, Any]:
    """fope.analysis.far on each model at ``length`` over the first ``tokens`` validation tokens of the run's own
    training corpus (its perplexity evaluation's tokens), with each variant's ppl(length) / ppl(L) against the run's
    own ppl(L) on that corpus (``eval/ppl.json``, used only when it was measured on that corpus)."""
    import statistics

    from fope.analysis.far import VARIANTS, far_attention_of, mean_far_mass

    res: dict[str, Any] = {
        "length": length,
        "tokens": tokens,
        "corpus": {},
        "runs": {},
        "summary": {},
        "far_mass": {},
    }

    def stats(x: list[float]) -> dict[str, Any]:
        return {"mean": statistics.fmean(x), "std": statistics.stdev(x) if len(x) > 1 else None, "n": len(x)}

    for pe, runs in far.items():
        ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
        masses: dict[str, list[float]] = {v: [] for v in VARIANTS}
        for run, path in runs:
            corpus = run_corpus(out, run)
            _, _, rep = far_attention_of(path, tokens=tokens, corpus=corpus, length=length, train_len=L, device=device)
            ppl_l = _ppl_at(out, run, corpus, L)
            res["corpus"][run] = corpus
            row = {
                "corpus": corpus,
                "cycle_pairs": rep["cycle_pairs"],
                "edges": rep["edges"],
                "ppl_L": ppl_l,
                "variants": rep["variants"],
            }
            res["runs"][run] = row
            res.setdefault("cycle_pairs", {})[pe] = rep["cycle_pairs"]
            if ppl_l:
                for v, r in rep["variants"].items():
                    ratios[v].append(r["ppl"] / ppl_l)
            for v, r in rep["variants"].items():  # the last position bucket, mean over layers and heads
                masses[v].append(mean_far_mass(r["far_mass"], -1))
        res["summary"][pe] = {v: stats(x) for v, x in ratios.items() if x}
        res["far_mass"][pe] = {v: stats(x) for v, x in masses.items() if x}
    return res


def run_corpus(out: Path, run: str) -> str:
    """The training corpus of the grid's run ``run`` (its run.json, written when its training finished)."""
    record = read_json(run_dir(out, run) / "run.json", what="run record")
    return str(record["corpus"])


def _ppl_at(out: Path, run: str, corpus: str, L: int) -> float | None:
    """The run's own ppl(L) on ``corpus`` (its eval/ppl.json), or None when not measured there (yet)."""
    result = read_json(run_dir(out, run) / "eval" / "ppl.json", what="perplexity result", missing=None)
    if result is None or (result.get("request") or {}).get("corpus", corpus) != corpus:
        return None
    return (result.get("by_length") or {}).get(str(L))


def _compute(models: dict[str, Path | None], L: int, fig_dir: Path | None) -> dict[str, Any]:
    from fope.analysis.activations import activation_stats
    from fope.analysis.capture import load_for_analysis, model_info, qk_statistics
    from fope.analysis.damage import model_damage
    from fope.analysis.decay import decay_curves
    from fope.analysis.toy import spectrum_toy

    toy = spectrum_toy()
    head_dim = 32
    res: dict[str, Any] = {"toy": {"errors": toy["errors"], "config": toy["config"]}, "models": {}, "figures": {}}
    analyses = {}
    for pe, path in models.items():
        if path is None:
            continue
        model, _ = load_for_analysis(str(path))
        info = model_info(model, f"main/{pe}/seed0")
        head_dim = info.head_dim
        stats = qk_statistics(model, info, samples=ANALYSIS_SAMPLES, seq_len=L, batch_size=8)
        act, dmg = activation_stats(stats), model_damage(stats)
        analyses[pe] = (act, dmg)
        res["models"][pe] = {
            "incomplete_pairs": info.incomplete_pairs,
            "activation_ratio": act["ratio"],
            "activation_summary": act["summary"],
            "damage_per_layer": dmg["per_layer"],
            "damage_overall": dmg["overall"],
            "signal_share": dmg["signal_share"],
            "noise_share": dmg["noise_share"],
        }
    decay = decay_curves(head_dim=head_dim, train_len=L, max_distance=L - 1, samples=DECAY_SAMPLES)
    picks = sorted({0, L // 8, L // 4, L // 2, L - 1})
    res["decay"] = {
        "head_dim": head_dim,
        "samples": DECAY_SAMPLES,
        "distance": picks,
        "ideal": [decay["ideal"][d] for d in picks],
        "expected": {mu: [e["mc_mean"][d] for d in picks] for mu, e in decay["expected"].items()},
    }
    if fig_dir is not None:
        try:
            from fope.analysis import plots

            figs = {
                "mechanism_toy": plots.plot_toy(toy, fig_dir / "figures" / "mechanism_toy.png"),
                "mechanism_decay": plots.plot_decay(decay, fig_dir / "figures" / "mechanism_decay.png"),
            }
            for pe, (act, _) in analyses.items():
                figs[f"mechanism_activations_{pe}"] = plots.plot_activations(
                    act, fig_dir / "figures" / f"mechanism_activations_{pe}.png"
                )
            if analyses:
                figs["mechanism_damage"] = plots.plot_damage(
                    [d for _, d in analyses.values()], fig_dir / "figures" / "mechanism_damage.png"
                )
            res["figures"] = {k: str(Path(v).relative_to(fig_dir)) for k, v in figs.items()}
        except ImportError:
            pass
    return res


def _f(x: Any, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def table2_rows(results: dict[str, Any]) -> tuple[list[int], dict[str, list[float | None]]]:
    """(lengths L..16L, {arm: loss = ln(mean ppl) per length}) of ``results["table2"]``."""
    L = int(results["config"]["train_len"])
    lengths = [f * L for f in PAPER_FACTORS]
    rows = {}
    for arm, cell in (results.get("table2") or {}).items():
        ppl = cell.get("ppl") or {}
        rows[arm] = [math.log(ppl[str(n)]["mean"]) if (ppl.get(str(n)) or {}).get("mean") else None for n in lengths]
    return lengths, rows


def table2_table(results: dict[str, Any]) -> list[str]:
    """Table 2 as the report prints it: loss per length L..16L, the paper's in brackets."""
    lengths, rows = table2_rows(results)
    if not rows:
        return []
    L = int(results["config"]["train_len"])
    out = ["| PE | " + " | ".join(f"{n} ({n // L}L)" for n in lengths) + " |", "|---" * (len(lengths) + 1) + "|"]
    for arm, vals in rows.items():
        paper = PAPER_TABLE2.get(arm, (None,) * len(lengths))
        out.append(f"| {arm} | " + " | ".join(f"{_f(v)} ({_f(p, 2)})" for v, p in zip(vals, paper)) + " |")
    return out + [""]


def table2_growth(results: dict[str, Any]) -> list[str]:
    """Each Table 2 arm's loss growth from L to 16L beside the paper's, and the seed-to-seed std of that growth and
    of the loss at L in the main runs (std / mean of the perplexity ratio or perplexity: the delta-method std of its
    log) as the yardstick of a one-seed difference."""
    lengths, rows = table2_rows(results)
    if not rows:
        return []
    out = ["| PE | loss at L | loss at 16L | growth L to 16L | paper's growth |", "|---|---|---|---|---|"]
    for arm, vals in rows.items():
        paper = PAPER_TABLE2.get(arm)
        grow = None if vals[0] is None or vals[-1] is None else vals[-1] - vals[0]
        out.append(
            f"| {arm} | {_f(vals[0])} | {_f(vals[-1])} | {_f(grow)} | {_f(paper[-1] - paper[0], 2) if paper else '-'} |"
        )
    top, at_l = str(lengths[-1]), str(lengths[0])
    growth, loss = [], []
    for pe in ("rope", "nope"):
        cell = (results.get("main") or {}).get(pe) or {}
        for metric, length, into in (("ppl_ratio", top, growth), ("ppl", at_l, loss)):
            agg = (cell.get(metric) or {}).get(length) or {}
            if agg.get("std") is not None and agg.get("mean"):
                into.append(f"{pe} {agg['std'] / agg['mean']:.3f}")
    if growth:
        seeds = results["config"].get("seeds")
        out += [
            "",
            f"Seed-to-seed std in the main runs ({seeds} seeds) of the growth from L to 16L: "
            + ", ".join(growth)
            + "; of the loss at L: "
            + ", ".join(loss)
            + ".",
        ]
    return out + [""]


def mechanism_section(results: dict[str, Any], figures: dict[str, str] | None = None) -> list[str]:
    """Markdown lines of the report's Mechanism section (empty when there is nothing to show)."""
    mech = results.get("mechanism") or {}
    _, rows = table2_rows(results)
    if not rows and not mech:
        return []
    L = int(results["config"]["train_len"])
    out = ["## Mechanism (paper Table 2, Fig. 3, 7, 8) and spectrum damage", ""]
    if rows:
        out += [
            "### Table 2: loss (ln perplexity) of RoPE, RoPE-A and NoPE, without and with QK norm",
            "",
            (
                "One seed per arm; RoPE-A rounds every frequency up to whole cycles within L; QK norm standardises "
                "each q and k head vector before the rotation. Paper (~20M models at L = 512) in brackets."
            ),
            "",
            *table2_table(results),
        ]
    if mech.get("error"):
        return out + [f"Mechanism analyses failed: `{mech['error']}`", ""]
    if mech.get("toy"):
        out += [
            "### Fig. 3 toy: RMS error against the frequency-matched ground truth (relative to its RMS)",
            "",
            "| panel | RoPE | FoPE |",
            "|---|---|---|",
        ]
        for name, e in mech["toy"]["errors"].items():
            out.append(f"| {name} | {_f(e['rope_rel'])} | {_f(e['fope_rel'])} |")
        out.append("")
    if mech.get("decay"):
        d = mech["decay"]
        out += [
            f"### Fig. 8: RoPE score vs distance, head dim {d['head_dim']} ({d['samples']} samples per mean)",
            "",
            "| curve | " + " | ".join(f"Δ={x}" for x in d["distance"]) + " |",
            "|---" * (len(d["distance"]) + 1) + "|",
            "| ideal (q = k = 1) | " + " | ".join(_f(v, 1) for v in d["ideal"]) + " |",
        ]
        for mu, vals in d["expected"].items():
            out.append(f"| E[score], mu = {mu} | " + " | ".join(_f(v, 2) for v in vals) + " |")
        out.append("")
    models = mech.get("models") or {}
    if models:
        main = results.get("main") or {}
        out += [
            "### Fig. 7 and spectrum damage of the seed-0 main models",
            "",
            (
                "Activation ratio: mean |mean q| (|mean k|) over the dims with < 1 cycle within L, divided by the "
                "same over the other dims, averaged over layers. Damage: share of the positional energy of q (k) "
                "away from each pair's own frequency (docs/analysis.md), energy-weighted over layers."
            ),
            "",
            "| model | incomplete pairs | q ratio | k ratio | damage q | damage k | ppl(4L)/ppl(L) | ppl(16L)/ppl(L) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for pe, m in models.items():
            ratio = (main.get(pe) or {}).get("ppl_ratio") or {}
            r4, r16 = ((ratio.get(str(f * L)) or {}).get("mean") for f in (4, 16))
            s = m["activation_summary"]
            out.append(
                f"| {pe} | {len(m['incomplete_pairs'])} | {_f(s['q_abs_mean']['mean'])} | "
                f"{_f(s['k_abs_mean']['mean'])} | {_f(m['damage_overall']['q'], 4)} | "
                f"{_f(m['damage_overall']['k'], 4)} | {_f(r4)} | {_f(r16)} |"
            )
        out.append("")
    out += far_tables.report_section(mech.get("far"), L)
    for name, path in (mech.get("figures") or {}).items():
        out += [f"![{name}]({path})", ""]
    return out
