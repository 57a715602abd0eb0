"""Fig. 7 (docs/analysis.md): the mean of q and k before the rotation, per layer and head dimension.

For every layer, head and dimension: the mean over all samples and positions of the pre-rotation activation,
its absolute value averaged over heads ("|mean|", the positional bias a dimension adds whatever the token), and
mean |activation| averaged over heads (the magnitude). Dimensions whose rotary pair completes fewer than one
cycle within the training length (r_i = ω_i·L/2π < 1) are the paper's "undertrained" ones; the per-layer ratio
of their average over the average of the complete-cycle dimensions is the number the paper shows only as a
heatmap.
"""

from __future__ import annotations

from typing import Any

import torch

from .capture import QKStats


def _ratio(values: torch.Tensor, incomplete: list[int]) -> list[float | None]:
    """values (NL, D) -> per layer mean over incomplete dims / mean over the others (None if either is empty)."""
    D = values.shape[-1]
    if not incomplete or len(incomplete) == D:
        return [None] * values.shape[0]
    mask = torch.zeros(D, dtype=torch.bool)
    mask[incomplete] = True
    return (values[:, mask].mean(-1) / values[:, ~mask].mean(-1)).tolist()


def activation_stats(stats: QKStats) -> dict[str, Any]:
    """The Fig. 7 heatmaps and the per-layer incomplete/complete ratios, JSON-ready.

    Keys: ``info`` (model shape, train_len, cycles r_i per pair, incomplete dims), ``q_abs_mean`` / ``k_abs_mean``
    (NL x D lists: |mean| averaged over heads), ``q_mean_abs`` / ``k_mean_abs`` (NL x D: mean |x|),
    ``ratio`` {"q_abs_mean", "k_abs_mean", "q_mean_abs", "k_mean_abs"}: per-layer lists, and ``summary``.
    """
    info = stats.info
    n = stats.samples * stats.seq_len
    out: dict[str, Any] = {"analysis": "activations", "settings": stats.settings(), "info": _info(info)}
    ratios = {}
    for name in ("q", "k"):
        mean = getattr(stats, f"{name}_sum").sum(2) / n  # (NL, H, D)
        abs_mean = mean.abs().mean(1)  # (NL, D)
        mean_abs = (getattr(stats, f"{name}_abs") / n).mean(1)  # (NL, D)
        out[f"{name}_abs_mean"] = abs_mean.tolist()
        out[f"{name}_mean_abs"] = mean_abs.tolist()
        ratios[f"{name}_abs_mean"] = _ratio(abs_mean, info.incomplete_dims)
        ratios[f"{name}_mean_abs"] = _ratio(mean_abs, info.incomplete_dims)
    out["ratio"] = ratios
    out["summary"] = {key: _summary(vals) for key, vals in ratios.items()}
    return out


def _summary(values: list[float | None]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"mean": None, "min": None, "max": None, "layers_above_1": 0, "n_layers": len(values)}
    return {
        "mean": sum(vals) / len(vals),
        "min": min(vals),
        "max": max(vals),
        "layers_above_1": sum(v > 1 for v in vals),
        "n_layers": len(values),
    }


def _info(info) -> dict[str, Any]:
    return {
        "name": info.name,
        "kind": info.kind,
        "pe": info.pe,
        "n_layers": info.n_layers,
        "n_heads": info.n_heads,
        "n_kv_heads": info.n_kv_heads,
        "head_dim": info.head_dim,
        "train_len": info.train_len,
        "inv_freq": info.inv_freq,
        "cycles": info.cycles,
        "incomplete_pairs": info.incomplete_pairs,
        "incomplete_dims": info.incomplete_dims,
        "note": info.note,
    }
