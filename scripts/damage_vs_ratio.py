"""Spectrum damage (fope.analysis.damage) of every trained model of a finished `fope reproduce` grid, next to
its perplexity ratio ppl(16L)/ppl(L) from the grid's results.json, with Spearman rank correlations.

    python scripts/damage_vs_ratio.py docs/results/cpu/results.json --runs /work/runs/cpu/runs --out damage.json

Models: every run with a rotary encoding (RoPE, FoPE and their variants; bias-only encodings have no rotary pairs)
trained at the grid's L. Settings as `fope analyze damage` (random-token sequences of length L, positions 1..).
Prints a Markdown table and writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def spearman(x: list[float], y: list[float]) -> float:
    """Spearman rank correlation (average ranks for ties)."""

    def ranks(v: list[float]) -> list[float]:
        order = sorted(range(len(v)), key=lambda i: v[i])
        r = [0.0] * len(v)
        i = 0
        while i < len(v):
            j = i
            while j + 1 < len(v) and v[order[j + 1]] == v[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return r

    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    var = (sum((a - mx) ** 2 for a in rx) * sum((b - my) ** 2 for b in ry)) ** 0.5
    return cov / var if var else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", type=Path, help="results.json of a finished grid")
    ap.add_argument("--runs", type=Path, required=True, help="the grid's OUT/runs folder (trained models)")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--out", type=Path, default=Path("damage_vs_ratio.json"))
    a = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from fope.analysis.capture import load_for_analysis, model_info, qk_statistics
    from fope.analysis.damage import model_damage

    res = json.loads(a.results.read_text())
    L = int(res["config"]["train_len"])
    top = str(max(int(f * L) for f in res["config"]["length_factors"]))
    rows = []
    for name, info in res["runs"].items():
        ov = info.get("overrides") or {}
        if ov.get("model.pe", "rope") not in ("rope", "fope") or "model.train_len" in ov or not info.get("complete"):
            continue
        ppl = json.loads((a.runs / name / "eval" / "ppl.json").read_text())["by_length"]
        model, desc = load_for_analysis(str(a.runs / name), device="cpu")
        mi = model_info(model, desc, train_len=L)
        dmg = model_damage(qk_statistics(model, mi, samples=a.samples, seq_len=L, batch_size=8, seed=0))
        rows.append(
            {
                "run": name,
                "pe": ov.get("model.pe"),
                "damage_q": dmg["overall"]["q"],
                "damage_k": dmg["overall"]["k"],
                "ratio": ppl[top] / ppl[str(L)],
            }
        )
        print(
            f"{name}: damage q {rows[-1]['damage_q']:.4f} k {rows[-1]['damage_k']:.4f} ratio {rows[-1]['ratio']:.3f}",
            flush=True,
        )
    rq = spearman([r["damage_q"] for r in rows], [r["ratio"] for r in rows])
    rk = spearman([r["damage_k"] for r in rows], [r["ratio"] for r in rows])
    a.out.write_text(
        json.dumps(
            {"results": str(a.results), "samples": a.samples, "rows": rows, "spearman_q": rq, "spearman_k": rk},
            indent=1,
        )
        + "\n"
    )
    print(f"\n| run | PE | damage q | damage k | ppl({top})/ppl({L}) |\n|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["ratio"]):
        print(f"| {r['run']} | {r['pe']} | {r['damage_q']:.4f} | {r['damage_k']:.4f} | {r['ratio']:.3f} |")
    print(f"\nSpearman rank correlation with the ratio over {len(rows)} models: damage q {rq:.2f}, damage k {rk:.2f}")


if __name__ == "__main__":
    main()
