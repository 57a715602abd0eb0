"""``report.md`` of a reproduction, rendered from a results dict (every number comes from the dict).

>>> text = render_report(results, figures={"main_ppl": "figures/main_ppl.png"})
>>> write_outputs(results, out_dir)        # results.json, figures/*.png, report.md
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fope.utils import atomic_write

from .claims import Claim, check_claims, headline, noise_of, regime
from .mechanism import mechanism_section
from .presets import ABLATION_GROUPS, EXPERIMENTS
from .records import write_json_atomic
from .verdicts import FAILS, HOLDS, MISSING, NOISE, NOISE_SE, RATE_NOISE_SE, ROPE_BLOWUP_MIN, VERDICTS, fmt


def verdict_text(c: Claim | dict, *, markdown: bool = True) -> str:
    """A claim's verdict as the report prints it: a miss (in bold with ``markdown``) with by how much, a target within
    noise of its bar said so, with the numbers."""
    d = c if isinstance(c, dict) else c.to_dict()
    verdict, why = d["verdict"], d.get("why") or ""
    if verdict == FAILS:
        word = "**does not hold**" if markdown else FAILS
        return f"{word} ({why})" if why else word
    if verdict == NOISE:
        word = "within noise of the target" if d.get("figure") == "target" else "within noise"
        return f"{word} ({why})" if why else word
    return verdict


def _agg(a: dict | None, digits: int = 4) -> str:
    if not a or a.get("mean") is None:
        return "-"
    s = fmt(a["mean"], digits)
    if a.get("std") is None:
        return s
    std = 0.0 if abs(a["std"]) < 1e-9 * max(1.0, abs(a["mean"])) else a["std"]  # float noise of equal values
    return f"{s} ± {fmt(std, 2)}"


def _length_label(n: int, L: int) -> str:
    f = n / L
    return f"{n} ({f:g}L)"


def _table(cells: dict[str, dict], metric: str, L: int, *, label: str = "", digits: int = 4) -> list[str]:
    """Rows = cells, columns = the evaluated lengths of ``metric``."""
    lengths = sorted({int(float(k)) for c in cells.values() for k in (c.get(metric) or {})})
    if not lengths:
        return []
    head = f"| {label} | " + " | ".join(_length_label(n, L) for n in lengths) + " |"
    lines = [head, "|" + "---|" * (len(lengths) + 1)]
    for name, cell in cells.items():
        data = cell.get(metric) or {}
        lines.append(f"| {name} | " + " | ".join(_agg(data.get(str(n)), digits) for n in lengths) + " |")
    return lines + [""]


def binomial_se(p: float, n: int) -> float:
    """The binomial standard error sqrt(p (1 - p) / n) of a rate ``p`` measured over ``n`` trials."""
    return math.sqrt(p * (1 - p) / n)


def _binomial_table(cells: dict[str, dict], metric: str, L: int, trials: Any) -> list[str]:
    """Accuracy per length with its binomial standard error (``trials`` per length and run)."""
    lengths = sorted({int(float(k)) for c in cells.values() for k in (c.get(metric) or {})})
    if not lengths:
        return ["(not measured)", ""]
    lines = ["| PE | " + " | ".join(_length_label(n, L) for n in lengths) + " |", "|" + "---|" * (len(lengths) + 1)]
    for name, cell in cells.items():
        row = []
        for n in lengths:
            agg = (cell.get(metric) or {}).get(str(n))
            if not agg or agg.get("mean") is None:
                row.append("-")
                continue
            p, k = float(agg["mean"]), int(trials or 0) * int(agg.get("n") or 1)
            row.append(f"{p:.2f} ± {binomial_se(p, k):.2f}" if k else f"{p:.2f}")
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return lines + [""]


def _depth_table(cells: dict[str, dict], L: int) -> list[str]:
    """Passkey generation beyond L by needle depth (correct / trials per depth bin), from ``passkey_depth``."""
    rows = [
        (pe, int(n), by_depth)
        for pe, c in cells.items()
        for n, by_depth in (c.get("passkey_depth") or {}).items()
        if int(n) > L
    ]
    if not rows:
        return []
    depths = sorted({d for _, _, by_depth in rows for d in by_depth}, key=float)
    half = 0.5 / len(depths)
    far = any(c.get("passkey_far") for c in cells.values())
    lines = [
        "Greedy generation beyond L by the needle's depth in the filler (correct / trials; depth 0 is the start "
        "of the filler, farthest from the question, depth 1 right before it, so at length n the needle of "
        "depth d is about (1 - d)·n tokens from the question)"
        + (
            ", and by the needle's distance from the question in tokens: closer than L, or L and farther "
            "(distances never seen in training)"
            if far
            else ""
        )
        + ":",
        "",
        "| PE | length | "
        + " | ".join(f"{float(d) - half:.1f}-{float(d) + half:.1f}" for d in depths)
        + (" | closer than L | L or farther" if far else "")
        + " |",
        "|" + "---|" * (len(depths) + 2 + 2 * far),
    ]
    for pe, n, by_depth in rows:
        cells_ = [f"{by_depth[d][0]}/{by_depth[d][1]}" if d in by_depth else "-" for d in depths]
        if far:
            split = (cells[pe].get("passkey_far") or {}).get(str(n)) or {}
            cells_ += [f"{split[k][0]}/{split[k][1]}" if k in split else "-" for k in ("within", "beyond")]
        lines.append(f"| {pe} | {_length_label(n, L)} | " + " | ".join(cells_) + " |")
    return lines + [""]


def _seeds_note(cells: dict[str, dict]) -> str:
    ns = sorted({c.get("n_runs", 0) for c in cells.values()})
    return f"Mean ± sample std over {'/'.join(str(n) for n in ns)} run(s) per row (no ± = one run)."


def render_report(results: dict[str, Any], figures: dict[str, str] | None = None) -> str:
    """The Markdown report of ``results`` (see fope.reproduce.results for the schema)."""
    r, figures = results, figures or {}
    cfg = r["config"]
    L = int(cfg["train_len"])
    other = cfg.get("other_corpus", "wiki")
    base = cfg.get("base_config") or {}
    model, data, train = base.get("model") or {}, base.get("data") or {}, base.get("train") or {}
    corpus = data.get("corpus", "the training corpus")
    m = r.get("machine") or {}
    out: list[str] = [f"# FoPE reproduction: preset `{r['preset']}`", ""]
    out += _regime_banner(r)
    out += ["Generated by `fope reproduce` from `results.json` (every number below is read from it).", ""]
    out += [
        "| | |",
        "|---|---|",
        f"| command | `{r.get('command') or 'n/a'}` |",
        f"| commit | `{r.get('commit')}`"
        + (" (uncommitted changes)" if r.get("dirty") else "")
        + _session_commits(r)
        + " |",
        (
            f"| machine | {m.get('nproc')} CPUs ({m.get('cpu')}), {m.get('memory_gib')} GiB, GPU: {m.get('gpu')}, "
            f"torch {m.get('torch')}, {m.get('torch_threads')} threads, Python {m.get('python')} |"
        ),
        (
            f"| wall time | {fmt((r.get('wall_time_s') or 0) / 60, 3)} min elapsed over {len(r.get('sessions') or [])} "
            f"session(s); {fmt((r.get('compute_s') or 0) / 60, 3)} min of training + evaluation summed over runs |"
        ),
        f"| preset | {cfg.get('description', '')} |",
        "",
    ]
    out += _settings(r, L, model, train, data)
    out += _left_out(cfg)
    if r.get("missing"):
        out += [
            f"**Incomplete:** {len(r['missing'])} run(s) without results: "
            + ", ".join(f"`{n}`" for n in r["missing"])
            + ".",
            "",
        ]
    out += _claims_section(r)
    main = r.get("main") or {}
    if main:
        out += [
            "## 1. Main comparison (paper Fig. 1)",
            "",
            f"Every position encoding trained with the same budget at L = {L} on `{corpus}`. " + _seeds_note(main),
            "",
        ]
        out += [f"### Perplexity on `{corpus}` validation", ""] + _table(main, "ppl", L, label="PE")
        out += ["### Perplexity relative to the training length: ppl(n) / ppl(L)", ""]
        out += _table(main, "ppl_ratio", L, label="PE", digits=3)
        if not _main_passkey_skipped(cfg):
            out += ["### Passkey retrieval: greedy-generation accuracy (zero-shot protocol of docs/paper.md §4.5)", ""]
            out += _table(main, "passkey", L, label="PE", digits=2)
            out += ["### Passkey: likelihood top-1 of the true key among 10 candidates (chance 0.1)", ""]
            out += _table(main, "passkey_likelihood", L, label="PE", digits=2)
        else:
            out += [
                "Zero-shot passkey of the main runs: not measured by this preset (`main_passkey_trials=0`; models "
                "of this size do not retrieve zero-shot, the passkey task below trains them to).",
                "",
            ]
        out += _figure(figures, "main_ppl", "perplexity vs length") + _figure(
            figures, "main_passkey", "passkey vs length"
        )
        out += [
            f"## 2. Cross-distribution (paper Fig. 5): trained on `{corpus}`, evaluated on `{other}`",
            "",
            "No extra training: the main runs evaluated on the other corpus.",
            "",
        ]
        out += _table(main, f"ppl_{other}", L, label="PE")
        out += [f"`{other}` ppl(n) / ppl(L):", ""] + _table(main, f"ppl_ratio_{other}", L, label="PE", digits=3)
        out += [f"ppl on `{other}` / ppl on `{corpus}` at the same length (the paper's Fig. 6 'PPL ratio'):", ""]
        out += _table(main, "ppl_other_over_train", L, label="PE", digits=3)
    ext = r.get("extension") or {}
    if ext:
        out += [
            "## 3. Length extension by continued training (paper Fig. 4)",
            "",
            (
                f"From the seed-0 RoPE and FoPE runs at L = {L}, training continues at 2L = {2 * L} for "
                f"{cfg.get('extension_steps')} steps (same tokens per step, AdamW reset, fresh warm-up of "
                f"{cfg.get('extension_warmup')} steps, peak lr {cfg.get('lr')}). YaRN: factor {cfg.get('yarn_factor')}, "
                "beta_fast 32, beta_slow 1, no attention temperature (the authors' released setting, docs/paper.md §4.6; "
                "for FoPE applied after the floor clip, new coefficient rows zero). FoPE extension: floor moves to "
                "2pi/(2L); FoPE->FoPE expands the coefficients (old block copied into a fresh Xavier + step-eye), "
                "RoPE->FoPE gets fresh coefficients. Rows `rope` and `fope` are the un-extended references."
            ),
            "",
        ]
        out += _table(ext, "ppl", L, label="arm")
        out += ["Passkey (generation accuracy):", ""] + _table(ext, "passkey", L, label="arm", digits=2)
        out += ["Passkey (likelihood top-1):", ""] + _table(ext, "passkey_likelihood", L, label="arm", digits=2)
        out += _figure(figures, "extension", "length extension")
    ab = r.get("ablations") or {}
    if ab:
        out += [
            "## 4. Ablations (paper Fig. 6)",
            "",
            (
                "One seed per arm (as in the paper). FS = Fourier series "
                "(sigma > 0), CF = clip floor. sigma is the Xavier-normal gain of the released code (docs/paper.md §7.1): "
                "the effective coefficient std is much smaller than sigma."
            ),
            "",
        ]
        titles = {
            "components": "Components",
            "sigma": "sigma sweep",
            "freq_dim": "Frequency-grid size D",
            "shape": "Doubled head_dim vs doubled heads / layers",
        }
        for group, cells in ab.items():
            out += [f"### {titles.get(group, group)}: perplexity on `{corpus}`", ""]
            out += _table(cells, "ppl", L, label=group)
            out += [f"PPL ratio `{other}` / `{corpus}`:", ""]
            out += _table(cells, "ppl_other_over_train", L, label=group, digits=3)
            if group == "freq_dim":
                out += ["Passkey likelihood top-1:", ""] + _table(cells, "passkey_likelihood", L, label=group, digits=2)
        out += _figure(figures, "ablations", "ablations")
    out += passkey_task_section(r, figures)
    out += mechanism_section(r, figures)
    out += _runs_section(r)
    return "\n".join(out).rstrip() + "\n"


def passkey_task_section(r: dict[str, Any], figures: dict[str, str] | None = None) -> list[str]:
    """Section 5 of the report: the passkey task (models trained on in-length retrieval documents)."""
    figures, cfg, L = figures or {}, r["config"], int(r["config"]["train_len"])
    corpus = ((cfg.get("base_config") or {}).get("data") or {}).get("corpus", "the training corpus")
    pv = r.get("passkey_variant") or {}
    if not pv:
        return []
    out: list[str] = []
    trials = cfg.get("passkey_trials")
    scratch = cfg.get("passkey_scratch")
    who = (
        f"Dedicated passkey models (the main runs' config with `{_overrides_text(scratch)}`), trained from "
        f"scratch for {cfg.get('passkey_steps')} steps"
        if scratch
        else f"The seed-0 main runs, fine-tuned for {cfg.get('passkey_steps')} steps"
    )
    out += [
        "## 5. Passkey: a retrieval task small models can learn",
        "",
        (
            f"{who} at L = {L} on a mixture with "
            f"{cfg.get('retrieval_share')} of the tokens in synthetic key-retrieval documents shorter than L (the "
            "test's frame, filler sentences from the training corpus, never the test's grass/sky/sun filler; no "
            "document is longer than L), then evaluated with the unchanged zero-shot protocol at L..16L. "
            f"{trials} trials per length; ± is the binomial standard error sqrt(p(1-p)/n). In-distribution "
            "accuracy at L shows whether the task was learnt; the columns beyond L show what survives "
            "length extrapolation."
        ),
        "",
    ]
    out += ["Greedy-generation accuracy (± binomial s.e.):", ""] + _binomial_table(pv, "passkey", L, trials)
    out += ["Likelihood top-1 among 10 candidate keys (chance 0.1):", ""]
    out += _binomial_table(pv, "passkey_likelihood", L, trials)
    if any(cell.get("passkey_digits") for cell in pv.values()):
        out += [
            "Digits in place: the share of the key's digits that greedy generation puts at their own "
            "position (low while likelihood top-1 is high: the model finds the needle but does not copy "
            "the digits in order):",
            "",
        ]
        out += _table(pv, "passkey_digits", L, label="PE", digits=2)
    out += _depth_table(pv, L)
    zero = {pe: cell.get("zero_shot") or {} for pe, cell in pv.items()}
    if any(zero.values()):
        out += ["The same models before the fine-tuning (generation accuracy):", ""]
        out += _binomial_table(zero, "passkey", L, trials)
    elif scratch:
        out += [
            "The 2-layer main runs are not the passkey models here: at this budget they find the needle "
            "(likelihood) but do not copy its digits in order, so the task trains deeper models from scratch "
            "(`passkey_scratch`; docs/reproduce.md).",
            "",
        ]
    else:
        out += ["The same models before the fine-tuning were not passkey-tested (`main_passkey_trials=0`).", ""]
    after = "of the passkey models" if scratch else "after the fine-tuning"
    out += [f"Perplexity on `{corpus}` {after}:", ""] + _table(pv, "ppl", L, label="PE")
    out += _figure(figures, "passkey_task", "passkey task")
    return out


def _regime_banner(r: dict) -> list[str]:
    """The main result in one sentence, then whether the run is in the regime where length generalisation can be
    judged (RoPE degrades beyond L); below it, nothing about length generalisation can be judged."""
    head = headline(r)
    out = [f"> **{head}**", ">"] if head else []
    reg = regime(r)
    if reg["verdict"] == MISSING:
        return out + [
            "> **Regime unknown:** RoPE was not evaluated beyond L, so this run cannot say whether it is in "
            "the regime where length generalisation shows.",
            "",
        ]
    if reg["verdict"] == HOLDS:
        return out + [
            f"> **In the regime:** {reg['text']}: RoPE degrades beyond its training length, so the "
            "comparison below can show whether an encoding generalises.",
            "",
        ]
    if reg["verdict"] == NOISE:
        return out + [
            f"> **At the edge of the regime:** {reg['text']}: whether RoPE degrades beyond its training "
            "length enough for the paper's effect to show is within noise; read the comparison below with "
            "that in mind.",
            "",
        ]
    return out + [
        f"> **Below the regime where length generalisation can be judged:** {reg['text']}. RoPE does not "
        "(yet) degrade beyond its training length at this budget: small models trained on few tokens rely "
        "little on the low-frequency dimensions whose angles beyond L are unseen, so every encoding looks "
        "flat and the paper's effect cannot show. Train longer (more steps or tokens per step), or use the "
        f"`cpu-quick` / `cpu` presets, whose budget was chosen so that RoPE crosses {ROPE_BLOWUP_MIN}x "
        "(docs/reproduce.md has the pilot sweep).",
        "",
    ]


def _main_passkey_skipped(cfg: dict) -> bool:
    """The preset skips the zero-shot passkey test of the main runs (``main_passkey_trials=0``)."""
    return int(cfg.get("main_passkey_trials", -1)) == 0


def _left_out(cfg: dict) -> list[str]:
    """Name the experiments (and ablation groups) this preset leaves out."""
    ex = list(cfg.get("experiments") or EXPERIMENTS)
    missing = [e for e in EXPERIMENTS if e not in ex]
    groups = list(cfg.get("ablation_groups") or ABLATION_GROUPS)
    missing_groups = [g for g in ABLATION_GROUPS if g not in groups] if "ablations" in ex else []
    no_zero_shot = "main" in ex and _main_passkey_skipped(cfg)
    no_far = "main" in ex and cfg.get("far_attention") is False
    if not missing and not missing_groups and not no_zero_shot and not no_far:
        return []
    parts = [
        f"experiment(s) {', '.join(f'`{e}`' for e in missing)}" if missing else "",
        f"ablation group(s) {', '.join(f'`{g}`' for g in missing_groups)}" if missing_groups else "",
        "the zero-shot passkey test of the main runs (`main_passkey_trials=0`)" if no_zero_shot else "",
        "the far-attention decomposition of the main runs (`far_attention=false`)" if no_far else "",
    ]
    full = " (the full grid is `fope reproduce --preset cpu`)" if missing or missing_groups or no_far else ""
    return ["**Left out by this preset:** " + "; ".join(p for p in parts if p) + full + ".", ""]


def _settings(r: dict, L: int, model: dict, train: dict, data: dict) -> list[str]:
    cfg = r["config"]
    tokens = None
    if train.get("global_batch") and train.get("max_steps"):
        tokens = int(train["global_batch"]) * int(train["max_steps"]) * L
    lines = [
        "## Settings",
        "",
        (
            f"- training length L = {L}; perplexity at {[int(float(f) * L) for f in cfg.get('length_factors', [])]}; "
            f"passkey at {[int(float(f) * L) for f in cfg.get('passkey_factors', [])]}"
        ),
        (
            f"- model: `{cfg.get('base')}` preset: d_model {model.get('d_model')}, {model.get('n_layers')} layers, "
            f"{model.get('n_heads')} heads, head_dim {_head_dim(model)}, vocabulary "
            f"{model.get('vocab_size')} (tokenizer `{data.get('tokenizer')}`), training corpus `{data.get('corpus')}`"
        ),
        f"- budget per run: {train.get('max_steps')} steps x {train.get('global_batch')} sequences x {L} tokens"
        + (f" = {tokens:,} tokens" if tokens else "")
        + f", lr {train.get('lr')}, warm-up {train.get('warmup_steps')}",
        (
            f"- seeds (main comparison): {cfg.get('seeds')}; FoPE sigma {cfg.get('sigma')}; sigma sweep "
            f"{cfg.get('sigmas')}; D sweep {cfg.get('freq_dims')}"
        ),
        f"- execution: {cfg.get('jobs')} run(s) at a time, {cfg.get('threads') or 'default'} torch thread(s) each"
        + _precisions(r),
        (
            f"- perplexity: non-overlapping chunks, {cfg.get('eval_tokens'):,} tokens scored per length (cut to a "
            "multiple of the longest length, the same tokens for every length); passkey: "
            f"{cfg.get('passkey_trials')} trials per length ({cfg.get('ablation_passkey_trials')} for ablations), "
            "needle depth uniform, seed 0"
        ),
        "",
    ]
    return lines


def _overrides_text(overrides: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in overrides.items())


def _precisions(r: dict) -> str:
    """The training precision(s) the runs resolved to (``auto`` is bf16 autocast only where the hardware has bf16)."""
    found = sorted({str(info["precision"]) for info in (r.get("runs") or {}).values() if info.get("precision")})
    if not found:  # results.json written before runs recorded their precision
        requested = _requested_precision(r)
        return "" if requested == "auto" else f"; training precision {requested}"
    return f"; training precision {' and '.join(found)} (`train.precision={_requested_precision(r)}`)"


def _requested_precision(r: dict) -> str:
    overrides = (r.get("config") or {}).get("train_overrides") or {}
    return str(overrides.get("train.precision", "auto"))


def _session_commits(r: dict) -> str:
    """The commits the sessions ran with, when they differ from the report's."""
    seen = [(x.get("commit"), x.get("dirty")) for x in r.get("sessions") or [] if "commit" in x]
    other = [c for c in seen if c != (r.get("commit"), r.get("dirty"))]
    if not other:
        return ""
    return "; runs made by " + ", ".join(f"`{c}`" + (" + uncommitted changes" if d else "") for c, d in seen)


def _head_dim(model: dict) -> Any:
    if model.get("head_dim"):
        return model["head_dim"]
    if model.get("d_model") and model.get("n_heads"):
        return int(model["d_model"]) // int(model["n_heads"])
    return None


def _claims_section(r: dict) -> list[str]:
    claims = check_claims(r)
    if not claims:
        return []
    noise = noise_of(r)
    L = int(r["config"]["train_len"])
    out = [
        "## The paper's claims vs this run",
        "",
        (
            f"Checked automatically against the numbers of this run (L = {L}; docs/paper.md §6.7). The paper's models are "
            "60M-1.2B parameters trained on billions of tokens; these are CPU-scale models, so a claim that does not "
            "hold here is a statement about this scale and budget, not a refutation."
        ),
        "",
        (
            "A claim holds only when every part of it holds. A value against a fixed bar is judged with a band of "
            f"{NOISE_SE:g} standard errors of its mean over seeds (with one seed, {NOISE_SE:g} x the reference's seed "
            "std): beyond the bar by more than the band it does not hold, within the band it is *within noise* of "
            f"the target. Perplexity differences smaller than {noise.rel:.1%} ({noise.source}) and passkey "
            f"differences within {RATE_NOISE_SE:g} binomial standard errors are *within noise* "
            '(docs/reproduce.md, "Verdict rules").'
        ),
        "",
        "| figure | paper's claim | measured here | verdict |",
        "|---|---|---|---|",
    ]
    for c in claims:
        out.append(f"| {c.figure} | {c.paper} | {c.measured} | {verdict_text(c)} |")
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    out += ["", "Summary: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ".", ""]
    return out


def _runs_section(r: dict) -> list[str]:
    runs = r.get("runs") or {}
    if not runs:
        return []
    out = [
        "## Runs",
        "",
        "| run | from | train s | eval s | tokens | tok/s | first -> final loss |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, info in runs.items():
        loss = f"{fmt(info.get('first_loss'))} -> {fmt(info.get('final_loss'))}" if info.get("final_loss") else "-"
        out.append(
            f"| `{name}` | {info.get('init_from') or ''} | {fmt(info.get('train_wall_s'), 3)} | "
            f"{fmt(info.get('eval_wall_s'), 3)} | {info.get('tokens') or '-'} | "
            f"{fmt(info.get('tokens_per_s'), 3)} | {loss} |"
        )
    return out + [""]


def _figure(figures: dict[str, str], name: str, alt: str) -> list[str]:
    return [f"![{alt}]({figures[name]})", ""] if name in figures else []


def write_outputs(results: dict, out_dir: str | Path, *, figures: bool = True) -> dict[str, Path]:
    """Write ``results.json``, the figures (when matplotlib is installed) and ``report.md`` into ``out_dir``."""
    out = Path(out_dir)
    results = {**results, "claims": [c.to_dict() for c in check_claims(results)]}
    write_json_atomic(out / "results.json", results)
    figs: dict[str, str] = {}
    if figures:
        try:
            from .figures import make_figures

            figs = make_figures(results, out)
        except ImportError as e:  # matplotlib is an optional extra
            print(f"figures skipped: {e} (pip install matplotlib)", flush=True)
    text = render_report(results, figs)
    atomic_write(out / "report.md", text)
    return {"results": out / "results.json", "report": out / "report.md", **{k: out / v for k, v in figs.items()}}
