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

A thin command line: the measurement is `fope.analysis.far.far_attention_of`, the tables `fope.analysis.far_tables`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def run(models: list[str], out: Path, tokens: int, factor: int, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    from fope.analysis.far import far_attention_of
    from fope.eval.perplexity import perplexity_report
    from fope.utils import atomic_json

    rows = []
    for item in models:
        label, _, path = item.rpartition("=")
        if not label:
            raise SystemExit(f"expected LABEL=MODEL_DIR, got {item!r}")
        t0 = time.time()
        adapter, stream, rep = far_attention_of(path, tokens=tokens, corpus="books", factor=factor)
        model = adapter.model
        L = int(model.config.train_len)
        ppl_l = perplexity_report(
            adapter,
            stream[: rep["chunks"] * factor * L],
            [L],
            mode="chunks",
            batch_size=max(1, 16384 // L),
            progress=False,
        )[L].ppl
        rows.append(
            {
                "label": label,
                "pe": model.config.pe,
                "pe_options": dict(model.config.pe_options),
                "d_model": model.config.d_model,
                "n_heads": model.config.n_heads,
                "train_len": L,
                "ppl_L": round(ppl_l, 3),
                **{k: rep[k] for k in ("length", "chunks", "cycle_pairs", "edges")},
                "variants": rep["variants"],
            }
        )
        print(
            f"{label}: ppl(L) {ppl_l:.2f}, "
            + ", ".join(f"{v} {r['ppl']:.2f}" for v, r in rep["variants"].items())
            + f" ({time.time() - t0:.0f} s)",
            flush=True,
        )
    print(f"wrote {atomic_json(out, {'tokens': tokens, 'factor': factor, 'corpus': 'books', 'rows': rows}, indent=1)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", metavar="JSON", help="print the Markdown table of a result file and exit")
    ap.add_argument(
        "--passkey-table",
        nargs="+",
        metavar="JSON",
        help="print the passkey table of `fope analyze far --passkey-trials` outputs and exit",
    )
    ap.add_argument(
        "--mass-table", nargs="+", metavar="JSON", help="print the far-attention weight table of result files and exit"
    )
    ap.add_argument("--out", type=Path, default=Path("far_attention.json"))
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--factor", type=int, default=16, help="chunk length as a multiple of L")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("models", nargs="*", metavar="LABEL=MODEL_DIR")
    a = ap.parse_args()
    from fope.analysis import far_tables

    try:
        if a.table:
            print(far_tables.model_table(a.table))
            return
        if a.passkey_table:
            print(far_tables.passkey_table(a.passkey_table))
            return
        if a.mass_table:
            print(far_tables.mass_table(a.mass_table))
            return
    except ValueError as e:
        raise SystemExit(f"far_attention.py: {e}") from None
    if not a.models:
        ap.error("give at least one LABEL=MODEL_DIR")
    run(a.models, a.out, a.tokens, a.factor, a.threads)


if __name__ == "__main__":
    main()
