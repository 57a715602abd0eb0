"""How a measured number becomes a verdict: the rules, their constants, and the seed spread one-seed runs borrow.

Every claim of `fope.reproduce.claims` is made of *parts*, and every part is judged by one of four rules:

- **threshold** (a mean of n seeds against a fixed bar, e.g. FoPE's ppl(16L)/ppl(L) <= 1.2): the noise band is
  ``NOISE_SE`` standard errors of the mean, ``NOISE_SE * s / sqrt(n)``, where ``s`` is the seed-to-seed std, the
  run's own when it has two or more seeds, else the reference run's (`REFERENCE`). Beyond the bar by more than the
  band: does not hold; on the right side by more than the band: holds; otherwise: within noise.
- **perplexity comparison** (A lower than B): within noise when the two differ by at most ``rel`` (relative), where
  ``rel`` is ``PPL_NOISE_STDS`` times the median relative seed std of the main comparison's perplexities (the
  reference's for a one-seed run), and at least ``MIN_REL_TOL``; otherwise holds or does not hold.
- **rate comparison** (passkey rate A above B): within noise when the difference is at most ``RATE_NOISE_SE``
  binomial standard errors of the difference (pooled rate).
- **rate threshold** (a passkey rate against a fixed bar, e.g. the task is learnt at L): the band is
  ``RATE_NOISE_SE`` binomial standard errors at the bar, sqrt(bar (1 - bar) / trials).

A claim holds only if every part holds; it does not hold if any part does not hold; otherwise it is not measured
(a part without numbers) or within noise (some part within noise). Nothing is ever "mixed".

The constants are pinned: tests/reproduce/test_published.py recomputes every committed verdict with them and holds
them against the history table of docs/reproduce.md ("Verdict rules"), which says when and why each one was set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# ----------------------------------------------------------------------------------------------- verdict words
HOLDS, FAILS, NOISE, MISSING = "holds", "does not hold", "within noise", "not measured"
UNLEARNT = "task not learnt, not tested"  # a passkey claim about a model that does not retrieve the key within L
VERDICTS = (HOLDS, FAILS, NOISE, MISSING, UNLEARNT)

# ----------------------------------------------------------------------------------------------- the constants
#: the project's targets (docs/reproduce.md, "Verdict rules", has each one's history)
FOPE_FLAT_MAX = 1.2  # FoPE's ppl(16L) within 1.2x its ppl(L)
ROPE_BLOWUP_MIN = 1.5  # RoPE's ppl(16L) at least 1.5x its ppl(L): the regime where length generalisation shows
BELOW_FROM = 4  # FoPE's perplexity below RoPE's at every length >= 4L
PASSKEY_LEARNT = 0.8  # passkey accuracy at L that shows the task was learnt (the precondition of passkey claims)
#: noise rules
NOISE_SE = 2.0  # a threshold's band: standard errors of the mean over seeds
PPL_NOISE_STDS = 2.0  # a perplexity comparison's band: median relative seed stds
MIN_REL_TOL = 0.01  # perplexity differences below 1 % are never called a difference
RATE_NOISE_SE = 2.0  # a passkey rate's band: binomial standard errors
#: "drops to chance": a rate at most RATE_NOISE_SE of its own binomial s.e. above chance, and below chance + this
CHANCE_MARGIN = 0.1

RULES: dict[str, float] = {
    "FOPE_FLAT_MAX": FOPE_FLAT_MAX,
    "ROPE_BLOWUP_MIN": ROPE_BLOWUP_MIN,
    "BELOW_FROM": BELOW_FROM,
    "PASSKEY_LEARNT": PASSKEY_LEARNT,
    "NOISE_SE": NOISE_SE,
    "PPL_NOISE_STDS": PPL_NOISE_STDS,
    "MIN_REL_TOL": MIN_REL_TOL,
    "RATE_NOISE_SE": RATE_NOISE_SE,
    "CHANCE_MARGIN": CHANCE_MARGIN,
}


# ----------------------------------------------------------------------------------------------- seed spread
#: grid-preset fields that make two runs of the main comparison the same configuration
CONFIG_FIELDS = (
    "base",
    "train_len",
    "steps",
    "warmup_steps",
    "global_batch",
    "lr",
    "vocab_size",
    "sigma",
    "fope_init",
    "eval_tokens",
    "other_corpus",
)


@dataclass(frozen=True)
class SeedSpread:
    """The seed-to-seed spread of a committed multi-seed run: the noise a one-seed run is judged with."""

    source: str  # the committed results.json it was read from
    seeds: int  # how many seeds of each encoding it has
    ppl_rel_std: float  # median over its main cells, metrics and lengths of (seed std / mean) of the perplexity
    ratio_std: dict[str, float] = field(default_factory=dict)  # seed std of ppl(16L)/ppl(L), per encoding
    config: dict[str, Any] = field(default_factory=dict)  # its CONFIG_FIELDS values

    def same_config(self, config: dict[str, Any]) -> bool:
        """Are a run's main-comparison settings (its results.json ``config``) the reference's?"""
        return all(_same(config.get(k), v) for k, v in self.config.items())

    def ratio_std_of(self, pe: str) -> float | None:
        """The ppl-ratio seed std a one-seed run of ``pe`` borrows: the encoding's own, or for an encoding without
        a committed spread (a newly registered kind) the proxy `proxy_ratio_std`, never None while any exists."""
        return self.ratio_std.get(pe, self.proxy_ratio_std)

    @property
    def proxy_ratio_std(self) -> float | None:
        """The proxy band's std of an encoding without a committed spread: the widest committed one (the most
        cautious), named by `proxy_note`."""
        return max(self.ratio_std.values()) if self.ratio_std else None

    def proxy_note(self, pes: Any) -> str:
        """The sentence a one-seed report states for its encodings without a committed spread ("" for none)."""
        new = [pe for pe in pes if pe not in self.ratio_std]
        if not new or self.proxy_ratio_std is None:
            return ""
        widest = max(self.ratio_std, key=self.ratio_std.__getitem__)
        return (
            f"; {', '.join(new)} without a committed seed spread: proxy band from the widest committed ratio std "
            f"({widest}'s {self.proxy_ratio_std:.3g})"
        )


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-12)
    return a == b


def seed_spread(results: dict[str, Any], source: str) -> SeedSpread:
    """The `SeedSpread` of a results dict with two or more seeds (how `REFERENCE` was computed)."""
    main, cfg = results.get("main") or {}, results["config"]
    top = str(max(int(k) for cell in main.values() for k in (cell.get("ppl_ratio") or {})))
    rels = relative_stds(results)
    if not rels:
        raise ValueError(f"{source}: no seed spread (one seed per cell)")
    ratio_std = {
        pe: float(cell["ppl_ratio"][top]["std"])
        for pe, cell in main.items()
        if (cell.get("ppl_ratio") or {}).get(top, {}).get("std") is not None
    }
    return SeedSpread(
        source=source,
        seeds=int(cfg["seeds"]),
        ppl_rel_std=median(rels),
        ratio_std=ratio_std,
        config={k: cfg.get(k) for k in CONFIG_FIELDS},
    )


def relative_stds(results: dict[str, Any]) -> list[float]:
    """(seed std / mean) of every perplexity of the main comparison, on the training and the other corpus."""
    other = results["config"].get("other_corpus", "wiki")
    return [
        agg["std"] / agg["mean"]
        for cell in (results.get("main") or {}).values()
        for metric in ("ppl", f"ppl_{other}")
        for agg in (cell.get(metric) or {}).values()
        if agg.get("std") is not None and agg.get("mean")
    ]


def median(values: list[float]) -> float:
    """The upper median (the middle element of the sorted values; of an even count, the upper middle one)."""
    return sorted(values)[len(values) // 2]


#: The `cpu` grid's 3 seeds (docs/results/cpu/results.json): the noise of every one-seed run. Generated by
#: ``seed_spread(json.load(open("docs/results/cpu/results.json")), "docs/results/cpu/results.json")`` and checked
#: against that file by tests/reproduce/test_published.py.
REFERENCE = SeedSpread(
    source="docs/results/cpu/results.json",
    seeds=3,
    ppl_rel_std=0.015649545709292535,
    ratio_std={
        "rope": 0.09679317251966933,
        "fope": 0.03596658762327552,
        "alibi": 0.00044782980930488777,
        "nope": 0.0012853732928711668,
        "kerple": 0.002343771078236405,
        "fire": 0.0467411498351163,
    },
    config={
        "base": "cpu-tiny",
        "train_len": 256,
        "steps": 700,
        "warmup_steps": 70,
        "global_batch": 16,
        "lr": 0.004,
        "vocab_size": 2048,
        "sigma": 0.3,
        "fope_init": "",
        "eval_tokens": 32768,
        "other_corpus": "wiki",
    },
)


# ----------------------------------------------------------------------------------------------- parts
@dataclass(frozen=True)
class Part:
    """One judged part of a claim: its outcome (a verdict word) and, when it is not a plain hold, why."""

    outcome: str
    why: str = ""


def combine(parts: list[Part]) -> tuple[str, str]:
    """(verdict, why) of a claim from its parts: strict, every part must hold.

    Any part that does not hold -> does not hold; else any part not measured -> not measured; else any part about
    a model that did not learn the task -> not tested; else any part within noise -> within noise; else holds.
    ``why`` joins the texts of the parts that decided the verdict.
    """
    if not parts:
        return MISSING, ""
    for outcome in (FAILS, MISSING, UNLEARNT, NOISE):
        deciding = [p for p in parts if p.outcome == outcome]
        if deciding:
            return outcome, "; ".join(p.why for p in deciding if p.why)
    return HOLDS, ""


def threshold(value: float | None, band: float | None, bar: float, op: str, label: str) -> Part:
    """``value`` (± ``band``) against a fixed ``bar``; ``op`` is ``"<="`` or ``">="``.

    Beyond the bar by more than the band: does not hold (the text says by how much); on the right side by more
    than the band: holds; otherwise within noise. A band of 0 (no noise) decides on the value alone.
    """
    if value is None or not math.isfinite(value):
        return Part(MISSING, f"{label} not measured")
    if band is None:
        return Part(MISSING, f"{label} {fmt(value)}: no seed spread to judge it by")
    margin = (bar - value) if op == "<=" else (value - bar)  # > 0: on the right side of the bar
    text = f"{label} {fmt(value)} ± {fmt(band, 2)} vs {op} {fmt(bar)}".lstrip()
    if margin < -band or (band == 0 and margin < 0):
        return Part(FAILS, f"{text}: misses by {fmt(-margin, 2)}")
    if margin > band or (band == 0 and margin >= 0):
        return Part(HOLDS, text)
    where = (
        f"misses by {fmt(-margin, 2)}"
        if margin < 0
        else f"clears it by {fmt(margin, 2)}"
        if margin > 0
        else "on the bar"
    )
    return Part(NOISE, f"{text}: {where}, within the band")


def mean_band(std: float | None, n: int, borrowed: float | None) -> float | None:
    """The threshold band of a mean over ``n`` seeds: NOISE_SE standard errors, from the run's own seed std when it
    has two or more seeds, else from ``borrowed`` (the reference's); None without either."""
    if n >= 2 and std is not None:
        return NOISE_SE * std / math.sqrt(n)
    if borrowed is None:
        return None
    return NOISE_SE * borrowed / math.sqrt(max(n, 1))


def rate_band(bar: float, trials: int) -> float:
    """The band of a passkey rate from ``trials`` trials against ``bar``: binomial standard errors at the bar."""
    return RATE_NOISE_SE * math.sqrt(max(bar * (1 - bar), 0.0) / max(trials, 1))


def fmt(x: float | None, digits: int = 3) -> str:
    """A number as the report prints it (``digits`` significant digits; n/a for None)."""
    if x is None:
        return "n/a"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    return f"{x:.{digits}g}"
