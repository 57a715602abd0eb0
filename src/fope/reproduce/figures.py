"""Figures of a reproduction report (PNG, matplotlib imported lazily), drawn from a results dict.

main_ppl.png         Fig. 1b / Fig. 5: perplexity vs length per position encoding, both corpora (mean ± std), and
                     the same as ratios ppl(n) / ppl(L)
main_passkey.png     Fig. 1a: passkey generation accuracy and likelihood top-1 vs length (y-axis 0-1)
passkey_task.png     the passkey task: retrieval-fine-tuned models, accuracy vs length with binomial error bars
extension.png        Fig. 4: perplexity and passkey of the length-extension arms
ablations.png        Fig. 6: components and shapes (ppl vs length), sigma sweep, D sweep
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _series(cell: dict, metric: str) -> tuple[list[int], list[float], list[float]]:
    data = cell.get(metric) or {}
    xs = sorted(data, key=float)
    xs = [k for k in xs if data[k].get("mean") is not None]
    return (
        [int(float(k)) for k in xs],
        [float(data[k]["mean"]) for k in xs],
        [float(data[k].get("std") or 0.0) for k in xs],
    )


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def _plot_cells(
    ax: Any,
    cells: dict[str, dict],
    metric: str,
    *,
    train_len: int,
    ylabel: str,
    log_y: bool,
    title: str,
    unit_y: bool = False,
    binomial: int = 0,
    ref: float | None = None,
) -> None:
    """One line per cell; distinct marker and line style per line (curves on top of each other stay visible).

    ``unit_y``: accuracy axis fixed to [0, 1]. ``binomial``: error bars are binomial standard errors with this many
    trials per point (instead of the seed std). ``ref``: a horizontal reference line (1 for ratios).
    """
    import math

    lo, hi = float("inf"), 0.0
    for i, (name, cell) in enumerate(cells.items()):
        x, y, e = _series(cell, metric)
        if binomial:
            e = [math.sqrt(max(v * (1 - v), 0.0) / binomial) for v in y]
        if x:
            ax.errorbar(
                x,
                y,
                yerr=e if any(e) else None,
                marker=MARKERS[i % len(MARKERS)],
                ms=4,
                capsize=2,
                ls=LINESTYLES[(i // len(MARKERS) + i) % len(LINESTYLES)],
                label=name,
                alpha=0.85,
            )
            lo, hi = min(lo, *y), max(hi, *y)
    if ref is not None:
        ax.axhline(ref, color="grey", ls="-", lw=0.6)
    if unit_y:
        ax.set_ylim(-0.03, 1.03)
        log_y = False
    log_y = log_y and lo > 0 and hi / lo > 3  # a narrow range reads better on a linear axis
    ax.axvline(train_len, color="grey", ls=":", lw=1)
    ax.set_xscale("log", base=2)
    if log_y:
        from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("evaluation length (tokens)")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def make_figures(results: dict, out_dir: str | Path) -> dict[str, str]:
    """Write the figures that the results allow; return ``{name: path relative to out_dir}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    L = int(results["config"]["train_len"])
    other = results["config"].get("other_corpus", "wiki")
    corpus = ((results["config"].get("base_config") or {}).get("data") or {}).get("corpus", "train corpus")
    written: dict[str, str] = {}

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        path = fig_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written[name] = str(path.relative_to(out))

    main = results.get("main") or {}
    if main:
        fig, axes = plt.subplots(2, 2, figsize=(10, 8))
        _plot_cells(
            axes[0, 0],
            main,
            "ppl",
            train_len=L,
            ylabel="perplexity",
            log_y=True,
            title=f"perplexity on {corpus} (validation), trained at L={L}",
        )
        _plot_cells(
            axes[0, 1],
            main,
            f"ppl_{other}",
            train_len=L,
            ylabel="perplexity",
            log_y=True,
            title=f"perplexity on {other} (different distribution)",
        )
        _plot_cells(
            axes[1, 0],
            main,
            "ppl_ratio",
            train_len=L,
            ylabel="ppl(n) / ppl(L)",
            log_y=False,
            ref=1.0,
            title=f"{corpus}: perplexity relative to the training length",
        )
        _plot_cells(
            axes[1, 1],
            main,
            f"ppl_ratio_{other}",
            train_len=L,
            ylabel="ppl(n) / ppl(L)",
            log_y=False,
            ref=1.0,
            title=f"{other}: perplexity relative to the training length",
        )
        save(fig, "main_ppl")
        if any(cell.get("passkey") for cell in main.values()):  # no empty axes when the main runs had no passkey
            fig, axes = plt.subplots(1, 2, figsize=(10, 4))
            _plot_cells(
                axes[0],
                main,
                "passkey",
                train_len=L,
                ylabel="accuracy",
                log_y=False,
                unit_y=True,
                title="passkey: greedy generation accuracy",
            )
            _plot_cells(
                axes[1],
                main,
                "passkey_likelihood",
                train_len=L,
                ylabel="top-1 of 10 candidates",
                log_y=False,
                unit_y=True,
                ref=0.1,
                title="passkey: likelihood top-1 (chance 0.1)",
            )
            save(fig, "main_passkey")
    pv = results.get("passkey_variant") or {}
    if pv:
        trials = int(results["config"].get("passkey_trials") or 0)
        how = "trained on retrieval" if results["config"].get("passkey_scratch") else "retrieval fine-tuned"
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        _plot_cells(
            axes[0],
            pv,
            "passkey",
            train_len=L,
            ylabel="accuracy",
            log_y=False,
            unit_y=True,
            binomial=trials,
            title=f"passkey task ({how}): generation accuracy",
        )
        _plot_cells(
            axes[1],
            pv,
            "passkey_likelihood",
            train_len=L,
            ylabel="top-1 of 10 candidates",
            log_y=False,
            unit_y=True,
            binomial=trials,
            ref=0.1,
            title="passkey task: likelihood top-1 (chance 0.1)",
        )
        save(fig, "passkey_task")
    ext = results.get("extension") or {}
    if ext:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        _plot_cells(
            axes[0],
            ext,
            "ppl",
            train_len=L,
            ylabel="perplexity",
            log_y=True,
            title=f"length extension L={L} -> {2 * L}: perplexity",
        )
        metric = (
            "passkey"
            if any(_series(c, "passkey")[1] and max(_series(c, "passkey")[1]) > 0 for c in ext.values())
            else "passkey_likelihood"
        )
        _plot_cells(
            axes[1],
            ext,
            metric,
            train_len=L,
            ylabel=metric,
            log_y=False,
            unit_y=True,
            title=f"length extension: {metric}",
        )
        axes[1].axvline(2 * L, color="black", ls=":", lw=1)
        save(fig, "extension")
    ab = results.get("ablations") or {}
    if ab:
        fig, axes = plt.subplots(2, 2, figsize=(10, 8))
        if ab.get("components"):
            _plot_cells(
                axes[0, 0],
                ab["components"],
                "ppl",
                train_len=L,
                ylabel="perplexity",
                log_y=True,
                title="FoPE components (FS: Fourier series, CF: clip floor)",
            )
        if ab.get("shape"):
            _plot_cells(
                axes[0, 1],
                ab["shape"],
                "ppl",
                train_len=L,
                ylabel="perplexity",
                log_y=True,
                title="double head_dim vs heads vs layers",
            )
        _sweep(axes[1, 0], ab.get("sigma") or {}, "sigma (Xavier gain)", L)
        _sweep(axes[1, 1], ab.get("freq_dim") or {}, "D (frequency-grid size)", L, passkey=True)
        save(fig, "ablations")
    return written


def _sweep(ax: Any, cells: dict[str, dict], xlabel: str, L: int, *, passkey: bool = False) -> None:
    """One value per arm: mean ppl beyond L (and passkey likelihood top-1 beyond L when ``passkey``)."""
    import math

    xs, ppl, pk = [], [], []
    for arm, cell in cells.items():
        x, y, _ = _series(cell, "ppl")
        vals = [v for n, v in zip(x, y) if n > L and v > 0]
        if not vals:
            continue
        xs.append(float(arm))
        ppl.append(math.exp(sum(math.log(v) for v in vals) / len(vals)))
        x2, y2, _ = _series(cell, "passkey_likelihood")
        vals2 = [v for n, v in zip(x2, y2) if n >= L]
        pk.append(sum(vals2) / len(vals2) if vals2 else float("nan"))
    if not xs:
        ax.set_visible(False)
        return
    ax.plot(xs, ppl, marker="o", color="C0")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("geometric-mean ppl beyond L", color="C0")
    ax.grid(alpha=0.3)
    if passkey:
        ax2 = ax.twinx()
        ax2.plot(xs, pk, marker="s", color="C3")
        ax2.set_ylabel("passkey likelihood top-1 (>= L)", color="C3")
        ax.set_xscale("log", base=2)
    ax.set_title(f"sweep over {xlabel}", fontsize=9)
