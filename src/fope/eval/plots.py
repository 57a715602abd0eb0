"""Figures from result files (matplotlib, Agg backend, PNG).

* `plot_lengths(results, out)`: the paper's Fig. 1 layout: one panel per result kind present
  (passkey accuracy vs length, perplexity vs length), one line per result file, log2 length axis,
  the training length marked by a dotted vertical line.
* `plot_heatmap(results, out)`: passkey accuracy over length x needle depth, one panel per file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from fope.eval.results import series


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def label_of(result: dict) -> str:
    """A short legend label: the model's position encoding and directory name."""
    s = result["settings"]
    cfg = s.get("model_config") or {}
    name = Path(str(s.get("model") or "model")).name
    pe = cfg.get("pe")
    return f"{pe} ({name})" if pe and pe not in name else name


def plot_lengths(
    results: Sequence[dict], out: str | Path, *, labels: Sequence[str] | None = None, title: str | None = None
) -> Path:
    """Passkey accuracy (%) and perplexity against length; returns the PNG path."""
    if not results:
        raise ValueError("no results to plot")
    if labels is not None and len(labels) != len(results):
        raise ValueError(f"{len(labels)} labels for {len(results)} results")
    kinds = [k for k in ("passkey", "ppl") if any(r["kind"] == k for r in results)]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        train_lens = set()
        for i, r in enumerate(results):
            if r["kind"] != kind:
                continue
            xs, ys = series(r)
            if kind == "passkey":
                ys = [100 * y for y in ys]
            ax.plot(xs, ys, marker="o", label=labels[i] if labels else label_of(r))
            if r["settings"].get("train_len"):
                train_lens.add(int(r["settings"]["train_len"]))
        for t in sorted(train_lens):
            ax.axvline(t, color="grey", linestyle=":", linewidth=1)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("evaluation length (tokens)" + ("; dotted: training length" if train_lens else ""))
        if kind == "passkey":
            ax.set_ylabel("passkey accuracy (%)")
            ax.set_ylim(-3, 103)
            ax.set_title("Passkey retrieval")
        else:
            ax.set_ylabel("perplexity")
            _maybe_log_y(ax, results)
            ax.set_title("Perplexity")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, plt, out)


def _maybe_log_y(ax, results) -> None:
    vals = [v for r in results if r["kind"] == "ppl" for v in series(r)[1] if math.isfinite(v) and v > 0]
    if vals and max(vals) / min(vals) > 20:
        ax.set_yscale("log")


def plot_heatmap(results: Sequence[dict], out: str | Path, *, labels: Sequence[str] | None = None) -> Path:
    """Passkey accuracy heatmap (rows: needle depth, columns: length), one panel per passkey result."""
    pk = [r for r in results if r["kind"] == "passkey"]
    if not pk:
        raise ValueError("a heatmap needs at least one passkey result")
    plt = _pyplot()
    width = 1.0 + sum(1.3 + 0.45 * len(r["by_length_depth"]) for r in pk)
    fig, axes = plt.subplots(1, len(pk), figsize=(width, 3.6), squeeze=False, layout="constrained")
    for i, (ax, r) in enumerate(zip(axes[0], pk, strict=True)):
        lengths = sorted(r["by_length_depth"], key=int)
        depths = sorted({d for L in lengths for d in r["by_length_depth"][L]}, key=float)
        grid = [[100 * r["by_length_depth"][L].get(d, math.nan) for L in lengths] for d in depths]
        im = ax.imshow(grid, vmin=0, vmax=100, cmap="RdYlGn", aspect="auto", origin="upper")
        ax.set_xticks(range(len(lengths)), lengths, rotation=45)
        ax.set_yticks(range(len(depths)), [f"{float(d):.2f}" for d in depths])
        for y, row in enumerate(grid):
            for x, v in enumerate(row):
                if not math.isnan(v):
                    ax.text(x, y, f"{v:.0f}", ha="center", va="center", fontsize=7)
        ax.set_xlabel("length (tokens)")
        ax.set_ylabel("needle depth")
        ax.set_title(labels[i] if labels else label_of(r), fontsize=9)
    fig.colorbar(im, ax=list(axes[0]), label="accuracy (%)")
    return _save(fig, plt, out)


def _save(fig, plt, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
