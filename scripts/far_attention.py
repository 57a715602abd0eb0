"""The far-attention decomposition (fope.analysis.far) of several trained models, as one JSON and one Markdown table.

    python scripts/far_attention.py --out docs/results/analysis/far_attention.json \\
        "FoPE σ 0.3 (seed 0)=OUT/runs/main/fope/seed0" "RoPE (seed 0)=OUT/runs/main/rope/seed0" ...
    python scripts/far_attention.py --table docs/results/analysis/far_attention.json
    python scripts/far_attention.py --passkey-table docs/results/analysis/far-passkey/far-*.json
    python scripts/far_attention.py --mass-table docs/results/analysis/far_mass.json \\
        docs/results/analysis/far_mass_seeds.json docs/results/analysis/far_mass_sig0.json

Each model: perplexity at 16L (non-overlapping chunks, the first ``--tokens`` books validation tokens, as the grid's
perplexity evaluation) with the scores of keys at distance >= L unchanged, masked (window), or restricted to one
group of rotary pairs; its ppl(L) is measured on the same tokens. The table (docs/analysis.md) is generated from the
JSON; nothing in it is typed by hand. ``--passkey-table`` does the same for the passkey test under the variants, from
the JSON files `fope analyze far --passkey-trials N` writes (one per model). ``--mass-table`` tables the attention
weight each model puts on keys at distance >= L (``far_mass`` of the result files written by this script).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def run(models: list[str], out: Path, tokens: int, factor: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from fope.analysis.far import far_attention_report
    from fope.eval.adapters import load_model
    from fope.eval.perplexity import perplexity_report, tokens_from_corpus

    rows = []
    for item in models:
        label, _, path = item.rpartition("=")
        if not label:
            raise SystemExit(f"expected LABEL=MODEL_DIR, got {item!r}")
        t0 = time.time()
        adapter = load_model(path)
        model = adapter.model
        L = int(model.config.train_len)
        stream = tokens_from_corpus("books", adapter.tokenizer, split="val", max_tokens=tokens + 1)[:tokens]
        rep = far_attention_report(model, stream, train_len=L, length=factor * L)
        ppl_l = perplexity_report(adapter, stream[: rep["chunks"] * factor * L], [L], mode="chunks",
                                  batch_size=max(1, 16384 // L), progress=False)[L].ppl
        rows.append({"label": label, "pe": model.config.pe, "pe_options": dict(model.config.pe_options),
                     "d_model": model.config.d_model, "n_heads": model.config.n_heads, "train_len": L,
                     "ppl_L": round(ppl_l, 3), **{k: rep[k] for k in ("length", "chunks", "cycle_pairs", "edges")},
                     "variants": rep["variants"]})
        print(f"{label}: ppl(L) {ppl_l:.2f}, " + ", ".join(f"{v} {r['ppl']:.2f}" for v, r in rep["variants"].items())
              + f" ({time.time() - t0:.0f} s)", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"tokens": tokens, "factor": factor, "corpus": "books", "rows": rows}, indent=1) + "\n")
    print(f"wrote {out}")


def table(path: str) -> str:
    """The JSON as the Markdown table of docs/analysis.md: ppl(L) and ppl(16L)/ppl(L) of each variant."""
    data = json.loads(Path(path).read_text())
    f = data["factor"]
    out = [f"| model | ppl(L) | unchanged | keys within L only | far keys without the cycle pairs | "
           f"far keys: cycle pairs only | unchanged / within L |",
           "|---|---|---|---|---|---|---|"]
    for r in data["rows"]:
        v = r["variants"]
        ratio = {k: v[k]["ppl"] / r["ppl_L"] for k in v}
        out.append(f"| {r['label']} | {r['ppl_L']:.2f} | " + " | ".join(
            f"{ratio[k]:.3f}" if k in ratio else "-" for k in ("full", "window", "far_without_cycles", "far_cycles_only"))
            + f" | {v['full']['ppl'] / v['window']['ppl']:.3f} |")
    out.append("")
    out.append(f"Columns 3-6: ppl({f}L) / ppl(L) of each variant, {data['tokens']:,} `{data['corpus']}` validation "
               "tokens.")
    return "\n".join(out)


def mass_table(paths: list[str]) -> str:
    """The far-attention weight of each model and variant as the Markdown table of docs/analysis.md: the mean
    attention weight on keys at distance >= L for the queries of each position bucket beyond L (mean over layers
    and heads), the layers' means and the largest head in the last bucket, beside the variant's ppl(16L)/ppl(L)."""
    from fope.analysis.far import mean_far_mass

    files = [json.loads(Path(p).read_text()) for p in paths]
    rows = [r for d in files for r in d["rows"]]
    first: dict[str, int] = {}
    for i, r in enumerate(rows):
        first.setdefault(r["pe"], i)
    rows.sort(key=lambda r: first[r["pe"]])  # each encoding's rows together, in the order of their first file
    if not rows or any("far_mass" not in v for r in rows for v in r["variants"].values()):
        raise SystemExit(f"{paths}: rows without far_mass (written before the measurement existed); rerun them")
    edges = rows[0]["edges"]
    if any(r["edges"] != edges for r in rows):
        raise SystemExit("the files mix position buckets (different L or chunk lengths)")
    L, last = edges[1], len(edges) - 2
    spans = [f"{edges[i] // L}L-{edges[i + 1] // L}L" for i in range(1, len(edges) - 1)]
    out = ["| model | variant | ppl(n)/ppl(L) | " + " | ".join(f"queries at {s}" for s in spans)
           + f" | by layer, {spans[-1]} | largest head, {spans[-1]} |",
           "|---|---|---|" + "---|" * (len(spans) + 2)]
    for r in rows:
        for v, res in r["variants"].items():
            if v == "window":  # far keys masked: zero weight by construction
                continue
            mass = res["far_mass"]  # [layer][head][bucket]
            means = [mean_far_mass(mass, b) for b in range(1, len(edges) - 1)]
            layers = " / ".join(f"{mean_far_mass(mass, last, [i]):.3f}" for i in range(len(mass)))
            largest = max(h[last] for layer in mass for h in layer)
            out.append(f"| {r['label']} | `{v}` | {res['ppl'] / r['ppl_L']:.3f} | "
                       + " | ".join(f"{m:.3f}" for m in means) + f" | {layers} | {largest:.3f} |")
    uniform = []  # a query at position q spreading its weight evenly over its q + 1 keys: max(0, q - L + 1) / (q + 1)
    for i in range(1, len(edges) - 1):
        qs = range(max(edges[i], 1) - 1, edges[i + 1] - 1)
        uniform.append(sum(max(0, q - L + 1) / (q + 1) for q in qs) / len(qs))
    out.append("| uniform attention (reference) | - | - | " + " | ".join(f"{m:.3f}" for m in uniform) + " | - | - |")
    data = files[0]
    out += ["", f"Attention weight on keys at distance >= L = {L} (mean over the queries of each position bucket, "
            f"{data['tokens']:,} `{data['corpus']}` validation tokens in chunks of {edges[-1]}); `window` (far keys "
            "masked) is left out: its weight is zero by construction. The last row is the weight of a query that "
            "attends evenly to every earlier token."]
    return "\n".join(out)


def passkey_table(paths: list[str]) -> str:
    """`fope analyze far --passkey-trials` results as the Markdown table of docs/analysis.md: per model and variant,
    greedy generation at each length with its correct/trials per needle-depth bin, and likelihood top-1."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    runs = [r for r in runs if r.get("passkey")]
    if not runs:
        raise SystemExit(f"no passkey results in {paths} (run fope analyze far with --passkey-trials)")
    lengths = sorted({int(n) for r in runs for v in r["passkey"]["variants"].values() for n in v["generation"]})
    L = runs[0]["passkey"]["train_len"]
    name = {"rope": "RoPE", "fope": "FoPE", "alibi": "ALiBi", "kerple": "KERPLE", "fire": "FIRE", "nope": "NoPE"}
    out = ["| model | variant | " + " | ".join(f"generation at {n // L}L (by depth)" for n in lengths)
           + " | likelihood top-1 at " + ", ".join(f"{n // L}L" for n in lengths) + " |",
           "|---|---|" + "---|" * (len(lengths) + 1)]
    for r in runs:
        for variant, v in r["passkey"]["variants"].items():
            cells = [f"{v['generation'][str(n)]:.2f} ({' '.join(f'{c}/{k}' for c, k in v['depth'][str(n)].values())})"
                     for n in lengths]
            lik = " / ".join(f"{v['likelihood_top1'][str(n)]:.2f}" for n in lengths)
            out.append(f"| {name.get(r['pe'], r['pe'])} | `{variant}` | " + " | ".join(cells) + f" | {lik} |")
    trials = {r["passkey"]["trials"] for r in runs}
    out += ["", f"{'/'.join(map(str, sorted(trials)))} trials per length (the same keys and needle depths for every "
            "variant); by depth: correct/trials in five needle-depth bins from 0-0.2 (the needle at the start of the "
            "filler, farthest from the question) to 0.8-1.0 (right before it)."]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", metavar="JSON", help="print the Markdown table of a result file and exit")
    ap.add_argument("--passkey-table", nargs="+", metavar="JSON",
                    help="print the passkey table of `fope analyze far --passkey-trials` outputs and exit")
    ap.add_argument("--mass-table", nargs="+", metavar="JSON",
                    help="print the far-attention weight table of result files and exit")
    ap.add_argument("--out", type=Path, default=Path("far_attention.json"))
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--factor", type=int, default=16, help="chunk length as a multiple of L")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("models", nargs="*", metavar="LABEL=MODEL_DIR")
    a = ap.parse_args()
    if a.table:
        print(table(a.table))
        return
    if a.passkey_table:
        print(passkey_table(a.passkey_table))
        return
    if a.mass_table:
        print(mass_table(a.mass_table))
        return
    if not a.models:
        ap.error("give at least one LABEL=MODEL_DIR")
    run(a.models, a.out, a.tokens, a.factor, a.threads)


if __name__ == "__main__":
    main()
