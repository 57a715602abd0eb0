"""The far-attention decomposition (fope.analysis.far) of several trained models, as one JSON and one Markdown table.

    python scripts/far_attention.py --out docs/results/analysis/far_attention.json \\
        "FoPE σ 0.3 (seed 0)=OUT/runs/main/fope/seed0" "RoPE (seed 0)=OUT/runs/main/rope/seed0" ...
    python scripts/far_attention.py --table docs/results/analysis/far_attention.json

Each model: perplexity at 16L (non-overlapping chunks, the first ``--tokens`` books validation tokens, as the grid's
perplexity evaluation) with the scores of keys at distance >= L unchanged, masked (window), or restricted to one
group of rotary pairs; its ppl(L) is measured on the same tokens. The table (docs/analysis.md) is generated from the
JSON; nothing in it is typed by hand.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", metavar="JSON", help="print the Markdown table of a result file and exit")
    ap.add_argument("--out", type=Path, default=Path("far_attention.json"))
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--factor", type=int, default=16, help="chunk length as a multiple of L")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("models", nargs="*", metavar="LABEL=MODEL_DIR")
    a = ap.parse_args()
    if a.table:
        print(table(a.table))
        return
    if not a.models:
        ap.error("give at least one LABEL=MODEL_DIR")
    run(a.models, a.out, a.tokens, a.factor, a.threads)


if __name__ == "__main__":
    main()
