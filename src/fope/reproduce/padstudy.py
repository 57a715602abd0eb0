"""The FoPE pad experiment's claims and its docs/RESULTS.md section (issue 30; scripts/pad_experiment.py runs it).

FoPE pads its head_dim/2 − D_out unmixed pairs: with sin = cos = 1 (``pad="one"``: the authors' release, vLLM 0.33.0)
or with a true zero frequency, cos = 1 and sin = 0 (``pad="zero"``: vLLM's main branch, PR #55243). The experiment
trains FoPE from scratch with each pad at the ``cpu-quick`` budget and scores every model with both pads at
L..16L. Its results file (docs/results/fope-pad/pad.json): ``runs`` = [{trained_pad, seed, ppl: {served_pad:
{L: perplexity}}}].

The claims are judged by the rules of `fope.reproduce.verdicts` (a perplexity comparison: within noise when the two
differ by at most ``PPL_NOISE_STDS`` relative seed stds, from the experiment's own seeds when it has two or more,
else the `cpu` grid's reference, and never below ``MIN_REL_TOL``); strict: every part must hold.
"""

from __future__ import annotations

import math
from typing import Any

from .claims import Claim, Noise, _claim
from .verdicts import MIN_REL_TOL, PPL_NOISE_STDS, REFERENCE, fmt, median

PADS = ("one", "zero")
RESULTS_DIR = "fope-pad"
#: the committed results file under docs/results/RESULTS_DIR (not a grid results.json: its own claims)
RESULTS_FILE = "pad.json"


def _cell(results: dict, trained: str, served: str) -> dict[int, list[float]]:
    """{L: [perplexity per seed]} of the models trained with ``trained`` and served with ``served``."""
    out: dict[int, list[float]] = {}
    for run in results.get("runs", []):
        if run["trained_pad"] == trained:
            for length, value in run["ppl"][served].items():
                out.setdefault(int(length), []).append(float(value))
    return out


def _mean(values: list[float] | None) -> float | None:
    return sum(values) / len(values) if values else None


def pad_noise(results: dict) -> Noise:
    """The comparison band: the experiment's own median relative seed std with >= 2 seeds, else the reference's."""
    rel_stds = []
    for trained in PADS:
        for served in PADS:
            for values in _cell(results, trained, served).values():
                if len(values) >= 2:
                    m = sum(values) / len(values)
                    var = sum((v - m) ** 2 for v in values) / (len(values) - 1)
                    rel_stds.append(math.sqrt(var) / m)
    if rel_stds:
        rel, source = median(rel_stds), "this experiment's seeds"
    else:
        rel, source = REFERENCE.ppl_rel_std, f"the reference {REFERENCE.source} (one seed here)"
    return Noise(rel=max(PPL_NOISE_STDS * rel, MIN_REL_TOL), source=source, trials=0, ablation_trials=0, task_trials=0)


def pad_claims(results: dict[str, Any]) -> list[Claim]:
    """The experiment's claims, each with its strict verdict."""
    noise = pad_noise(results)
    lengths = [int(x) for x in results["lengths"]]
    L = int(results["train_len"])
    beyond = [n for n in lengths if n >= L]
    top = max(lengths)
    own = {pad: _cell(results, pad, pad) for pad in PADS}
    claims = []
    for trained in PADS:
        other = "zero" if trained == "one" else "one"
        served = _cell(results, trained, other)
        parts = [
            noise.lower(_mean(own[trained].get(n)), _mean(served.get(n)), f"{n // L}L own vs {other}") for n in beyond
        ]
        measured = ", ".join(
            f"{n // L}L {fmt(_mean(own[trained].get(n)))} -> {fmt(_mean(served.get(n)))}" for n in beyond
        )
        claims.append(
            _claim(
                f"pad-{trained}-served-{other}",
                "pad",
                f"a FoPE model trained with pad {trained} is worse served with pad {other}, at every length L..16L",
                measured,
                parts,
            )
        )
    for a, b, at in (("zero", "one", L), ("zero", "one", top), ("one", "zero", L), ("one", "zero", top)):
        part = noise.lower(_mean(own[a].get(at)), _mean(own[b].get(at)), f"{at // L}L")
        claims.append(
            _claim(
                f"pad-{a}-below-{b}-{at // L}L",
                "pad",
                f"trained and served with pad {a}, FoPE has a lower perplexity than with pad {b} at {at // L}L",
                f"{fmt(_mean(own[a].get(at)))} vs {fmt(_mean(own[b].get(at)))}",
                [part],
            )
        )
    ratio = {pad: _ratio(own[pad], L, top) for pad in PADS}
    claims.append(
        _claim(
            "pad-zero-flatter",
            "pad",
            "pad zero generalises better: its ppl(16L)/ppl(L) is lower than pad one's",
            f"{fmt(ratio['zero'])} vs {fmt(ratio['one'])}",
            [noise.lower(ratio["zero"], ratio["one"], "ppl(16L)/ppl(L)")],
        )
    )
    return claims


def _ratio(cell: dict[int, list[float]], L: int, top: int) -> float | None:
    a, b = _mean(cell.get(top)), _mean(cell.get(L))
    return None if a is None or not b else a / b


def pad_section(results: dict[str, Any]) -> list[str]:
    """The docs/RESULTS.md section: perplexity of each trained pad served with each pad, and the claims."""
    lengths = [int(x) for x in results["lengths"]]
    L = int(results["train_len"])
    seeds = sorted({int(r["seed"]) for r in results.get("runs", [])})
    noise = pad_noise(results)
    lines = [
        "## The FoPE pad: one or zero (issue 30)",
        "",
        f"FoPE trained from scratch at the `{results['preset']}` budget (L = {L}, σ = {results['sigma']}) with each pad, "
        f"seeds {', '.join(map(str, seeds))}; every model scored with both pads on the same "
        f"{results['eval_tokens']} validation tokens per length. Command: `{results['command']}`. "
        f"Commit `{(results.get('git') or {}).get('commit')}`. Band of a comparison: {noise.rel:.1%} ({noise.source}).",
        "",
        "| trained with | served with | " + " | ".join(f"{n / L:g}L" for n in lengths) + " |",
        "|---|---|" + "---|" * len(lengths),
    ]
    for trained in PADS:
        for served in PADS:
            cell = _cell(results, trained, served)
            lines.append(
                f"| pad {trained} | pad {served} | " + " | ".join(fmt(_mean(cell.get(n)), 4) for n in lengths) + " |"
            )
    lines += ["", "| claim | measured | verdict | why |", "|---|---|---|---|"]
    for c in pad_claims(results):
        lines.append(f"| {c.paper} | {c.measured} | **{c.verdict}** | {c.why} |")
    return lines + [
        "",
        "For vLLM issue #55204 (the summary, generated from the same file):",
        "",
        "> " + pad_summary(results),
        "",
    ]


def pad_summary(results: dict[str, Any]) -> str:
    """One paragraph for the engines' maintainers (vLLM issue #55204 / PR #55243), every number from ``results``."""
    L = int(results["train_len"])
    top = max(int(x) for x in results["lengths"])
    k = top // L
    own = {pad: _cell(results, pad, pad) for pad in PADS}
    swap = {pad: _cell(results, pad, "zero" if pad == "one" else "one") for pad in PADS}
    verdicts = {c.id: c.verdict for c in pad_claims(results)}
    seeds = len({int(r["seed"]) for r in results.get("runs", [])})

    def cost(pad: str, n: int) -> str:
        a, b = _mean(own[pad].get(n)), _mean(swap[pad].get(n))
        return f"{fmt(a)} -> {fmt(b)} (x{fmt(b / a if a and b else None)})"

    return (
        f"FoPE's pad, measured with the fope toolkit (`{results['command']}`; {seeds} seed(s), small models trained "
        f"from scratch at L = {L}, perplexity on held-out text at L and {k}L). A model trained with the authors' pad "
        f"(sin = cos = 1, vLLM 0.33.0) and served with main's pad (sin = 0) goes {cost('one', L)} at L and "
        f"{cost('one', top)} at {k}L (claim: {verdicts['pad-one-served-zero']}); a model trained with sin = 0 and "
        f"served with pad one goes {cost('zero', L)} at L and {cost('zero', top)} at {k}L (claim: "
        f"{verdicts['pad-zero-served-one']}). Trained and served with its own pad, pad zero against pad one: "
        f"{fmt(_mean(own['zero'].get(L)))} vs {fmt(_mean(own['one'].get(L)))} at L, "
        f"{fmt(_mean(own['zero'].get(top)))} vs {fmt(_mean(own['one'].get(top)))} at {k}L (pad zero lower at {k}L: "
        f"{verdicts[f'pad-zero-below-one-{k}L']}; pad one lower at {k}L: {verdicts[f'pad-one-below-zero-{k}L']}). "
        "So the pad is part of a FoPE model, not of the engine: a checkpoint trained with one pad and served with "
        "the other changes its outputs, and PR #55243 changes every served FoPE model that has padded pairs. fope "
        "records the pad in its exports (`rope_scaling.fope_pad`) and its vLLM plugin refuses a vLLM whose pad "
        "differs; an engine-side key read by the FoPE layer would let both pads be served."
    )


__all__ = ["PADS", "RESULTS_DIR", "RESULTS_FILE", "pad_claims", "pad_noise", "pad_section", "pad_summary"]
