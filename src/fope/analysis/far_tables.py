"""The Markdown tables of the far-attention decomposition (fope.analysis.far), all generated here from its JSON:

    report_section(far, L)      the grid report's "Where the loss beyond L comes from" (fope.reproduce.mechanism)
    model_table(json)           docs/analysis.md's table of scripts/far_attention.py's models
    mass_table(jsons)           docs/analysis.md's far-attention weight per model, variant and position bucket
    passkey_table(jsons)        docs/analysis.md's passkey test under the variants (`fope analyze far --passkey-trials`)

scripts/far_attention.py prints the last three; a test keeps docs/analysis.md equal to them. Nothing is typed by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fope.utils import read_json

from .far import mean_far_mass

FAR_LABELS = {
    "full": "model unchanged",
    "window": "keys within L only",
    "far_without_cycles": "far keys: without the cycle pairs",
    "far_cycles_only": "far keys: cycle pairs only",
}


def _corpora(corpus: str | dict[str, str]) -> str:
    """The far pass's corpus as text: one name, or (each run on its own training corpus) the distinct names."""
    names = sorted(set(corpus.values())) if isinstance(corpus, dict) else [corpus]
    text = ", ".join(f"`{n}`" for n in names)
    return text if len(names) == 1 else f"each run's own training corpus ({text})"


def report_section(far: dict[str, Any] | None, L: int) -> list[str]:
    """Markdown lines of the far-attention decomposition (empty when it was not run)."""
    if not far or not far.get("summary"):
        return []
    n = int(far["length"])
    variants = list(FAR_LABELS)
    out = [
        "### Where the loss beyond L comes from: attention to far keys (ours; docs/analysis.md)",
        "",
        (
            f"ppl({n}) / ppl({L}) of the main RoPE and FoPE runs (mean ± std over seeds) when the attention scores of "
            f"keys at distance >= L = {L} are changed, on the perplexity evaluation's {far['tokens']:,} "
            f"{_corpora(far['corpus'])} validation tokens. Cycle pairs: the rotary pairs that complete a cycle within L "
            "(FoPE's mixed pairs; RoPE's pairs with frequency >= 2π/L); FoPE's other pairs are position-free, "
            "RoPE's other pairs are the ones whose angles beyond L were never seen in training. Where 'keys within L "
            "only' is flat and the unchanged model is not, the growth comes from attending beyond L; the two far-key "
            "columns say which pairs' scores at unseen distances do the harm."
        ),
        "",
        "| PE | cycle pairs | " + " | ".join(FAR_LABELS[v] for v in variants) + " |",
        "|---" * (len(variants) + 2) + "|",
    ]

    def cell(m: dict[str, Any] | None) -> str:
        return "-" if not m else f"{m['mean']:.3f}" + (f" ± {m['std']:.3f}" if m.get("std") else "")

    for pe, summ in far["summary"].items():
        cells = [cell(summ.get(v)) for v in variants]
        out.append(f"| {pe} | {(far.get('cycle_pairs') or {}).get(pe)} | " + " | ".join(cells) + " |")
    out.append("")
    if far.get("far_mass"):
        edges = next(iter(far["runs"].values()))["edges"]
        out += [
            (
                f"Attention weight on keys at distance >= L, for the queries at positions {edges[-2]}-{n} (mean over "
                "layers, heads and seeds): how much attention each variant spends where the distances were never "
                "seen in training."
            ),
            "",
            "| PE | " + " | ".join(FAR_LABELS[v] for v in variants) + " |",
            "|---" * (len(variants) + 1) + "|",
        ]
        for pe, summ in far["far_mass"].items():
            out.append(f"| {pe} | " + " | ".join(cell(summ.get(v)) for v in variants) + " |")
        out.append("")
    return out


def model_table(path: str | Path) -> str:
    """The JSON as the Markdown table of docs/analysis.md: ppl(L) and ppl(16L)/ppl(L) of each variant."""
    data = read_json(path, "far-attention result")
    f = data["factor"]
    out = [
        "| model | ppl(L) | unchanged | keys within L only | far keys without the cycle pairs | "
        "far keys: cycle pairs only | unchanged / within L |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in data["rows"]:
        v = r["variants"]
        ratio = {k: v[k]["ppl"] / r["ppl_L"] for k in v}
        out.append(
            f"| {r['label']} | {r['ppl_L']:.2f} | "
            + " | ".join(
                f"{ratio[k]:.3f}" if k in ratio else "-"
                for k in ("full", "window", "far_without_cycles", "far_cycles_only")
            )
            + f" | {v['full']['ppl'] / v['window']['ppl']:.3f} |"
        )
    out.append("")
    out.append(
        f"Columns 3-6: ppl({f}L) / ppl(L) of each variant, {data['tokens']:,} `{data['corpus']}` validation tokens."
    )
    return "\n".join(out)


def mass_table(paths: Sequence[str | Path]) -> str:
    """The far-attention weight of each model and variant as the Markdown table of docs/analysis.md: the mean
    attention weight on keys at distance >= L for the queries of each position bucket beyond L (mean over layers
    and heads), the layers' means and the largest head in the last bucket, beside the variant's ppl(16L)/ppl(L)."""
    files = [read_json(p, "far-attention result") for p in paths]
    rows = [r for d in files for r in d["rows"]]
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        first.setdefault(r["pe"], i)
    rows.sort(key=lambda r: first[r["pe"]])  # each encoding's rows together, in the order of their first file
    if not rows or any("far_mass" not in v for r in rows for v in r["variants"].values()):
        raise ValueError(
            f"{[str(p) for p in paths]}: rows without far_mass (written before the measurement existed); rerun them"
        )
    edges = rows[0]["edges"]
    if any(r["edges"] != edges for r in rows):
        raise ValueError("the files mix position buckets (different L or chunk lengths)")
    L, last = edges[1], len(edges) - 2
    spans = [f"{edges[i] // L}L-{edges[i + 1] // L}L" for i in range(1, len(edges) - 1)]
    out = [
        "| model | variant | ppl(n)/ppl(L) | "
        + " | ".join(f"queries at {s}" for s in spans)
        + f" | by layer, {spans[-1]} | largest head, {spans[-1]} |",
        "|---|---|---|" + "---|" * (len(spans) + 2),
    ]
    for r in rows:
        for v, res in r["variants"].items():
            if v == "window":  # far keys masked: zero weight by construction
                continue
            mass = res["far_mass"]  # [layer][head][bucket]
            means = [mean_far_mass(mass, b) for b in range(1, len(edges) - 1)]
            layers = " / ".join(f"{mean_far_mass(mass, last, [i]):.3f}" for i in range(len(mass)))
            largest = max(h[last] for layer in mass for h in layer)
            out.append(
                f"| {r['label']} | `{v}` | {res['ppl'] / r['ppl_L']:.3f} | "
                + " | ".join(f"{m:.3f}" for m in means)
                + f" | {layers} | {largest:.3f} |"
            )
    uniform = []  # a query at position q spreading its weight evenly over its q + 1 keys: max(0, q - L + 1) / (q + 1)
    for i in range(1, len(edges) - 1):
        qs = range(max(edges[i], 1) - 1, edges[i + 1] - 1)
        uniform.append(sum(max(0, q - L + 1) / (q + 1) for q in qs) / len(qs))
    out.append("| uniform attention (reference) | - | - | " + " | ".join(f"{m:.3f}" for m in uniform) + " | - | - |")
    data = files[0]
    out += [
        "",
        f"Attention weight on keys at distance >= L = {L} (mean over the queries of each position bucket, "
        f"{data['tokens']:,} `{data['corpus']}` validation tokens in chunks of {edges[-1]}); `window` (far keys "
        "masked) is left out: its weight is zero by construction. The last row is the weight of a query that "
        "attends evenly to every earlier token.",
    ]
    return "\n".join(out)


def passkey_table(paths: Sequence[str | Path]) -> str:
    """`fope analyze far --passkey-trials` results as the Markdown table of docs/analysis.md: per model and variant,
    greedy generation at each length with its correct/trials per needle-depth bin, and likelihood top-1."""
    runs = [read_json(p, "far-attention passkey result") for p in paths]
    runs = [r for r in runs if r.get("passkey")]
    if not runs:
        raise ValueError(
            f"no passkey results in {[str(p) for p in paths]} (run fope analyze far with --passkey-trials)"
        )
    lengths = sorted({int(n) for r in runs for v in r["passkey"]["variants"].values() for n in v["generation"]})
    L = runs[0]["passkey"]["train_len"]
    name = {"rope": "RoPE", "fope": "FoPE", "alibi": "ALiBi", "kerple": "KERPLE", "fire": "FIRE", "nope": "NoPE"}
    out = [
        "| model | variant | "
        + " | ".join(f"generation at {n // L}L (by depth)" for n in lengths)
        + " | likelihood top-1 at "
        + ", ".join(f"{n // L}L" for n in lengths)
        + " |",
        "|---|---|" + "---|" * (len(lengths) + 1),
    ]
    for r in runs:
        for variant, v in r["passkey"]["variants"].items():
            cells = [
                f"{v['generation'][str(n)]:.2f} ({' '.join(f'{c}/{k}' for c, k in v['depth'][str(n)].values())})"
                for n in lengths
            ]
            lik = " / ".join(f"{v['likelihood_top1'][str(n)]:.2f}" for n in lengths)
            out.append(f"| {name.get(r['pe'], r['pe'])} | `{variant}` | " + " | ".join(cells) + f" | {lik} |")
    trials = {r["passkey"]["trials"] for r in runs}
    out += [
        "",
        f"{'/'.join(map(str, sorted(trials)))} trials per length (the same keys and needle depths for every "
        "variant); by depth: correct/trials in five needle-depth bins from 0-0.2 (the needle at the start of the "
        "filler, farthest from the question) to 0.8-1.0 (right before it).",
    ]
    return "\n".join(out)


__all__ = ["FAR_LABELS", "mass_table", "model_table", "passkey_table", "report_section"]
