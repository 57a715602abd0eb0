"""PNG figures of the analyses (matplotlib, Agg backend); each takes the analysis's result dict and a path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fope.utils import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    _plt().close(fig)
    return Path(path)


def plot_toy(res: dict[str, Any], path: str | Path) -> Path:
    """Fig. 3: three panels (component 1, component 2, sum), truth vs RoPE vs FoPE against distance."""
    plt = _plt()
    fig, axes = plt.subplots(3, 1, figsize=(7, 8), sharex=True)
    x = res["distance"]
    for ax, (name, panel) in zip(axes, res["panels"].items()):
        err = res["errors"][name]
        ax.plot(x, panel["truth"], "k-", lw=2, label="ground truth")
        ax.plot(x, panel["rope"], "C0--", label=f"RoPE (rel. RMSE {err['rope_rel']:.2f})")
        ax.plot(x, panel["fope"], "C3:", lw=2, label=f"FoPE (rel. RMSE {err['fope_rel']:.2f})")
        ax.set_title(name)
        ax.legend(fontsize=8, loc="upper right")
    axes[-1].set_xlabel("token distance")
    fig.suptitle(f"Spectrum-damage toy ({res['config']['activation']} MLP)")
    return _save(fig, path)


def plot_decay(res: dict[str, Any], path: str | Path) -> Path:
    """Fig. 8: ideal decay (q = k = ones) and the expected score for q, k ~ N(mu, 1)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4))
    x = res["distance"]
    ax.plot(x, res["ideal"], "k-", lw=2, label="ideal (q = k = 1)")
    for i, (mu, e) in enumerate(res["expected"].items()):
        ax.plot(x, e["mc_mean"], f"C{i}-", label=f"E[score], mu = {mu} ({res['samples']} samples)")
        ax.plot(x, e["exact"], f"C{i}:", lw=1)
    ax.set_xlabel("relative distance")
    ax.set_ylabel("score")
    ax.set_title(f"{res['pe']} long-term decay, head dim {res['head_dim']} (dotted: mu^2 x ideal)")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_activations(res: dict[str, Any], path: str | Path) -> Path:
    """Fig. 7: |mean q| and |mean k| heatmaps (layer x dim), incomplete-cycle dims marked, plus per-layer ratios."""
    import numpy as np

    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), gridspec_kw={"width_ratios": [1, 1, 0.8]})
    info = res["info"]
    for ax, name in zip(axes[:2], ("q", "k")):
        data = np.asarray(res[f"{name}_abs_mean"])
        im = ax.imshow(data, aspect="auto", origin="lower", cmap="viridis")
        for d in info["incomplete_dims"]:
            ax.axvline(d, color="w", lw=0.4, alpha=0.5)
        ax.set_xlabel("head dim (white lines: < 1 cycle within L)")
        ax.set_ylabel("layer")
        ax.set_title(f"|mean {name}| before rotation")
        fig.colorbar(im, ax=ax)
    ax = axes[2]
    for key, style in (("q_abs_mean", "C0-o"), ("k_abs_mean", "C1-o"), ("q_mean_abs", "C0:"), ("k_mean_abs", "C1:")):
        vals = [np.nan if v is None else v for v in res["ratio"][key]]
        ax.plot(
            range(len(vals)),
            vals,
            style,
            ms=3,
            label=key.replace("_abs_mean", " |mean|").replace("_mean_abs", " mean|x|"),
        )
    ax.axhline(1, color="k", lw=0.5)
    ax.set_yscale("log")
    ax.set_xlabel("layer")
    ax.set_title("incomplete / complete dims")
    ax.legend(fontsize=8)
    fig.suptitle(
        f"{info['name']} (L = {info['train_len']}, {res['settings']['samples']} x {res['settings']['seq_len']} random tokens)"
    )
    return _save(fig, path)


def plot_damage(results: list[dict[str, Any]], path: str | Path) -> Path:
    """Per-layer damage of q and k, one line per model."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for i, res in enumerate(results):
        label = res["info"]["name"]
        for ax, name in zip(axes, ("q", "k")):
            vals = res["per_layer"][name]
            ax.plot(range(len(vals)), vals, f"C{i}-o", ms=3, label=label)
    for ax, name in zip(axes, ("q", "k")):
        ax.set_xlabel("layer")
        ax.set_title(f"spectrum damage of {name} (share of positional energy off its frequency)")
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=8)
    return _save(fig, path)
