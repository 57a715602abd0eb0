"""RULER's tables (tasks x lengths, per-length mean) of docs/evaluation.md from the committed result files
docs/results/ruler-*/ruler.json, and the NIAH depth x length heat map (docs/results/ruler-*/niah_heatmap.png);
tests/eval/test_ruler_docs.py checks that the page holds exactly these tables.

    fope eval ruler --model smollm2 --lengths 1k,2k --samples 2 --seed 0 --json docs/results/ruler-smollm2/ruler.json
    python scripts/ruler_tables.py            # prints the tables
    python scripts/ruler_tables.py --heatmap  # also writes each run's heat map PNG
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results"


def runs() -> list[Path]:
    return sorted(RESULTS.glob("ruler-*/ruler.json"))


def table(path: Path) -> str:
    """One run's markdown table: a row per task, a column per length, then the mean row (scores x100)."""
    res = json.loads(path.read_text())
    lengths = list(res["by_length"])
    model = res["model"].get("model") or path.parent.name
    lines = [
        f"`{path.parent.name}`: {model}, {res['samples']} samples per task and length, seed {res['seed']}"
        + (f"; skipped: {', '.join(res['skipped'])}" if res.get("skipped") else ""),
        "",
        "| task | " + " | ".join(lengths) + " |",
        "|---|" + "---:|" * len(lengths),
    ]
    for task, cells in res["tasks"].items():
        lines.append(f"| {task} | " + " | ".join(f"{cells[L]['score']:.1f}" for L in lengths) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{res['by_length'][L]:.1f}**" for L in lengths) + " |")
    return "\n".join(lines) + "\n"


def tables() -> str:
    return "\n".join(table(p) for p in runs())


def heatmap(path: Path) -> Path:
    """The NIAH depth x length heat map of one run (single-needle tasks, depth bins of 20 %)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fope.eval.ruler import niah_depth_grid

    grid = niah_depth_grid(json.loads(path.read_text()))
    lengths = list(grid)
    depths = sorted({d for c in grid.values() for d in c}, key=float)
    data = [[grid[L].get(d, float("nan")) for L in lengths] for d in depths]
    fig, ax = plt.subplots(figsize=(1.2 * len(lengths) + 2.5, 3.2))
    im = ax.imshow(data, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(lengths)), lengths)
    ax.set_yticks(range(len(depths)), [f"{float(d):.0f}%" for d in depths])
    ax.set_xlabel("length (tokens)")
    ax.set_ylabel("needle depth")
    ax.set_title(f"RULER NIAH single: {path.parent.name}")
    fig.colorbar(im, ax=ax, label="score")
    out = path.parent / "niah_heatmap.png"
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


if __name__ == "__main__":
    if "--heatmap" in sys.argv:
        for p in runs():
            print(f"wrote {heatmap(p)}", file=sys.stderr)
    sys.stdout.write(tables())
