"""The paper's claims (docs/paper.md §6.7) and the project's targets, checked against a results dict point by point.

Every check returns a `Claim` whose ``measured`` text is generated from the numbers in the results (nothing is
typed by hand), whose ``verdict`` is one of `fope.reproduce.verdicts.VERDICTS` (holds, does not hold, within noise,
not measured, task not learnt) and whose ``why`` says, for anything but a plain hold, which part decided it and by
how much. The rules, their constants and their noise bands are in `fope.reproduce.verdicts`; a claim holds only if
every one of its parts holds. Experiments that were not run give no claims.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from .verdicts import (
    BELOW_FROM,
    CHANCE_MARGIN,
    FAILS,
    FOPE_FLAT_MAX,
    HOLDS,
    MIN_REL_TOL,
    MISSING,
    NOISE,
    NOISE_SE,
    PASSKEY_LEARNT,
    PPL_NOISE_STDS,
    RATE_NOISE_SE,
    REFERENCE,
    ROPE_BLOWUP_MIN,
    UNLEARNT,
    Part,
    SeedSpread,
    combine,
    fmt,
    mean_band,
    median,
    rate_band,
    relative_stds,
    threshold,
)

__all__ = [
    "FOPE_FLAT_MAX",
    "ROPE_BLOWUP_MIN",
    "Claim",
    "Noise",
    "check_claims",
    "fmt",
    "headline",
    "noise_of",
    "regime",
]


@dataclass(frozen=True)
class Noise:
    """How large a difference must be to count (the rules of `fope.reproduce.verdicts`)."""

    rel: float  # relative band of a perplexity comparison
    source: str  # where ``rel`` and the threshold bands come from, in words
    trials: int  # passkey trials per length (main runs)
    ablation_trials: int  # passkey trials per length (ablation runs)
    task_trials: int  # passkey trials per length (passkey-task and extension runs)
    reference: SeedSpread | None = None  # the spread a one-seed run borrows (None: the run has its own)

    def lower(self, a: float | None, b: float | None, what: str = "") -> Part:
        """Is perplexity ``a`` lower than ``b``? Within noise when they are within ``rel`` of each other."""
        if a is None or b is None:
            return Part(MISSING, f"{what} not measured" if what else "")
        diff = (a - b) / max(abs(a), abs(b)) if max(abs(a), abs(b)) else 0.0
        text = f"{what}{': ' if what else ''}{fmt(a)} vs {fmt(b)}"
        if abs(a - b) <= self.rel * max(abs(a), abs(b)):
            return Part(NOISE, f"{text} differ by {abs(diff):.1%}, within the {self.rel:.1%} band")
        if a < b:
            return Part(HOLDS)
        return Part(FAILS, f"{text}: higher by {diff:.1%} (band {self.rel:.1%})")

    def higher_rate(self, a: float | None, b: float | None, n_a: int, n_b: int, what: str = "") -> Part:
        """Is rate ``a`` (from n_a trials) higher than ``b``? Within noise within RATE_NOISE_SE s.e. of the
        difference."""
        if a is None or b is None:
            return Part(MISSING, f"{what} not measured" if what else "")
        p = (a * n_a + b * n_b) / max(n_a + n_b, 1)
        band = RATE_NOISE_SE * math.sqrt(max(p * (1 - p), 0.0) * (1 / max(n_a, 1) + 1 / max(n_b, 1)))
        text = f"{what}{': ' if what else ''}{fmt(a, 2)} vs {fmt(b, 2)}"
        if abs(a - b) <= band or a == b:
            return Part(NOISE, f"{text} differ by {fmt(abs(a - b), 2)}, within the band {fmt(band, 2)}")
        if a > b:
            return Part(HOLDS)
        return Part(FAILS, f"{text}: lower by {fmt(b - a, 2)} (band {fmt(band, 2)})")

    def ratio_band(self, cell: dict | None, pe: str, metric: str, length: int) -> float | None:
        """The threshold band of a cell's mean ``metric`` (a ppl ratio) at ``length``."""
        agg = ((cell or {}).get(metric) or {}).get(str(length)) or {}
        borrowed = None if self.reference is None else self.reference.ratio_std_of(pe)
        return mean_band(agg.get("std"), int(agg.get("n") or 1), borrowed)


def noise_of(results: dict) -> Noise:
    """The noise of a results dict: its own seed spread, or with one seed the reference's (`verdicts.REFERENCE`)."""
    cfg = results["config"]
    main_trials = int(cfg.get("main_passkey_trials", -1))
    trials = main_trials if main_trials >= 0 else int(cfg.get("passkey_trials", 1))
    ab_trials = int(cfg.get("ablation_passkey_trials", 1))
    task_trials = int(cfg.get("passkey_trials", 1))
    rels = relative_stds(results)
    if rels:
        med = median(rels)
        rel = max(PPL_NOISE_STDS * med, MIN_REL_TOL)
        n = max(
            int(agg.get("n") or 1)
            for cell in (results.get("main") or {}).values()
            for agg in (cell.get("ppl") or {}).values()
        )
        return Noise(
            rel,
            f"{PPL_NOISE_STDS:g} x the median relative seed std of this run's main perplexities, "
            f"{med:.2%} over {n} seeds" + _floor_note(rel),
            trials,
            ab_trials,
            task_trials,
        )
    ref = REFERENCE
    rel = max(PPL_NOISE_STDS * ref.ppl_rel_std, MIN_REL_TOL)
    return Noise(
        rel,
        f"one seed: judged with the seed spread of `{ref.source}` ({ref.seeds} seeds, "
        + (
            "the same configuration"
            if ref.same_config(cfg)
            else "another configuration: a proxy until this one is run with several seeds"
        )
        + f"), {PPL_NOISE_STDS:g} x its median relative seed std {ref.ppl_rel_std:.2%}"
        + _floor_note(rel)
        + ref.proxy_note(results.get("main") or {}),
        trials,
        ab_trials,
        task_trials,
        reference=ref,
    )


def _floor_note(rel: float) -> str:
    return f", raised to the {MIN_REL_TOL:.0%} floor" if rel <= MIN_REL_TOL else ""


@dataclass(frozen=True)
class Claim:
    id: str
    figure: str
    paper: str
    measured: str
    verdict: str
    why: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def _claim(cid: str, figure: str, paper: str, measured: str, parts: list[Part]) -> Claim:
    verdict, why = combine(parts)
    return Claim(cid, figure, paper, measured, verdict, why)


def mean(cell: dict | None, metric: str, length: int | str) -> float | None:
    """The mean of ``metric`` at ``length`` in a results cell, or None."""
    if not cell:
        return None
    agg = (cell.get(metric) or {}).get(str(length))
    return None if not agg or agg.get("mean") is None else float(agg["mean"])


def spread(cell: dict | None, metric: str, length: int | str) -> float | None:
    if not cell:
        return None
    agg = (cell.get(metric) or {}).get(str(length))
    return None if not agg else agg.get("std")


def _pm(cell: dict | None, metric: str, length: int) -> str:
    """``mean ± std (n runs)`` of a cell's metric at one length."""
    m, sd = mean(cell, metric, length), spread(cell, metric, length)
    n = ((cell or {}).get(metric) or {}).get(str(length), {}).get("n")
    return fmt(m) if sd is None else f"{fmt(m)} ± {fmt(sd, 2)} ({n} seeds)"


def _lengths(cell: dict | None, metric: str) -> list[int]:
    return sorted(int(k) for k in ((cell or {}).get(metric) or {}))


def beyond(cell: dict | None, metric: str, L: int) -> float | None:
    """Mean of ``metric`` over the evaluated lengths > L (None if none)."""
    vals = [mean(cell, metric, n) for n in _lengths(cell, metric) if n > L]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def geo_beyond(cell: dict | None, metric: str, L: int) -> float | None:
    """Geometric mean of a perplexity over the evaluated lengths > L."""
    vals = [mean(cell, metric, n) for n in _lengths(cell, metric) if n > L]
    vals = [v for v in vals if v is not None and v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in vals) / len(vals)) if vals else None


def _metric_name(metric: str) -> str:
    if metric == "passkey":
        return "generation accuracy"
    return "likelihood top-1 (chance 0.1; no compared model generates the key beyond L)"


def passkey_metric(results: dict, cells: list[dict | None]) -> str:
    """Generation accuracy, or the likelihood top-1 score when no compared model retrieves beyond chance."""
    L = int(results["config"]["train_len"])
    gen = [beyond(c, "passkey", L - 1) for c in cells]
    return "passkey" if any(g for g in gen if g) else "passkey_likelihood"


# --------------------------------------------------------------------------- the checks
def _n_trials(cell: dict | None, metric: str, L: int, per_length: int) -> int:
    """Trials behind a cell's mean passkey rate over the lengths > L (trials x lengths x runs)."""
    lengths = [n for n in _lengths(cell, metric) if n > L]
    return per_length * len(lengths) * max(int((cell or {}).get("n_runs") or 1), 1)


def _top(cell: dict | None) -> int:
    return max(_lengths(cell, "ppl_ratio") or [0])


def _ratio_part(r: dict, noise: Noise, pe: str, bar: float, op: str, label: str) -> Part:
    """A main cell's ppl(top)/ppl(L) against a fixed bar, with its threshold band."""
    cell = (r.get("main") or {}).get(pe)
    top, L = _top(cell), int(r["config"]["train_len"])
    if top <= L:
        return Part(MISSING, f"{label} not measured beyond L")
    band = noise.ratio_band(cell, pe, "ppl_ratio", top)
    return threshold(mean(cell, "ppl_ratio", top), band, bar, op, label)


def regime(results: dict) -> dict[str, Any]:
    """Is this run in the regime where length generalisation can be judged (RoPE degrades beyond L)?

    Returns ``{"verdict": str, "ok": bool | None, "rope_ratio": float | None, "length": int | None, "text": str}``:
    ``verdict`` is the threshold rule's (holds, does not hold, within noise, not measured); ``ok`` is True when it
    holds, False when it does not, None otherwise.
    """
    main, L = results.get("main") or {}, int(results["config"]["train_len"])
    top = _top(main.get("rope"))
    ratio = mean(main.get("rope"), "ppl_ratio", top) if top > L else None
    if ratio is None:
        return {
            "verdict": MISSING,
            "ok": None,
            "rope_ratio": None,
            "length": None,
            "text": "RoPE beyond L was not measured",
        }
    part = _ratio_part(results, noise_of(results), "rope", ROPE_BLOWUP_MIN, ">=", f"RoPE's ppl({top})/ppl(L)")
    ok = {HOLDS: True, FAILS: False}.get(part.outcome)
    return {"verdict": part.outcome, "ok": ok, "rope_ratio": ratio, "length": top, "text": part.why}


def _targets(r: dict, noise: Noise) -> list[Claim]:
    main, L = r.get("main"), int(r["config"]["train_len"])
    if not main:
        return []
    fope, rope = main.get("fope"), main.get("rope")
    top = _top(rope)
    out = [
        _claim(
            "target-regime",
            "target",
            f"RoPE degrades beyond L: ppl(16L)/ppl(L) >= {ROPE_BLOWUP_MIN} "
            "(the regime where the paper's effect can show)",
            "RoPE ppl(16L)/ppl(L) = " + _pm(rope, "ppl_ratio", top) if top > L else "not measured",
            [_ratio_part(r, noise, "rope", ROPE_BLOWUP_MIN, ">=", "RoPE's ratio")],
        )
    ]
    f_r, r_r = mean(fope, "ppl_ratio", top), mean(rope, "ppl_ratio", top)
    out.append(
        _claim(
            "target-fope-flat",
            "target",
            f"FoPE stays flat where RoPE degrades: ppl(16L)/ppl(L) <= {FOPE_FLAT_MAX} and below RoPE's",
            f"ppl(16L)/ppl(L): FoPE {_pm(fope, 'ppl_ratio', top)}, RoPE {_pm(rope, 'ppl_ratio', top)}",
            [
                _ratio_part(r, noise, "fope", FOPE_FLAT_MAX, "<=", "FoPE's ratio"),
                noise.lower(f_r, r_r, "FoPE's ratio vs RoPE's"),
            ],
        )
    )
    longs = [n for n in _lengths(fope, "ppl") if n >= BELOW_FROM * L]
    parts = [noise.lower(mean(fope, "ppl", n), mean(rope, "ppl", n), f"at {n}, FoPE vs RoPE") for n in longs]
    out.append(
        _claim(
            "target-fope-below",
            "target",
            f"FoPE's perplexity below RoPE's at every length >= {BELOW_FROM}L",
            "; ".join(f"{n}: FoPE {_pm(fope, 'ppl', n)} vs RoPE {_pm(rope, 'ppl', n)}" for n in longs)
            or "not measured",
            parts or [Part(MISSING)],
        )
    )
    metric = passkey_metric(r, [fope, rope])
    fp, rp = beyond(fope, metric, L), beyond(rope, metric, L)
    name = _metric_name(metric)
    nf, nr = _n_trials(fope, metric, L, noise.trials), _n_trials(rope, metric, L, noise.trials)
    out.append(
        _claim(
            "target-passkey",
            "target",
            "FoPE's passkey accuracy beyond L above RoPE's",
            f"mean {name} over lengths > L: FoPE {fmt(fp)} ({nf} trials), RoPE {fmt(rp)} ({nr} trials)"
            if fp is not None and rp is not None
            else "not measured (no passkey trials in the main comparison)",
            [noise.higher_rate(fp, rp, nf, nr, "FoPE vs RoPE")],
        )
    )
    return out


#: display names of the position encodings in claim texts
_NAMES = {"rope": "RoPE", "fope": "FoPE", "alibi": "ALiBi", "nope": "NoPE", "kerple": "KERPLE", "fire": "FIRE"}


def _fig1(r: dict, noise: Noise) -> list[Claim]:
    main, L = r.get("main"), int(r["config"]["train_len"])
    if not main:
        return []
    top = _top(main.get("fope"))
    out = []
    fope_g = mean(main.get("fope"), "ppl_ratio", top)
    others = {pe: mean(c, "ppl_ratio", top) for pe, c in main.items() if pe not in ("fope", "alibi")}
    out.append(
        _claim(
            "fig1b-flat",
            "Fig. 1b",
            "Beyond L, RoPE and the other baselines (NoPE, KERPLE, FIRE) blow up while FoPE stays flatter: FoPE's "
            'ppl(16L)/ppl(L) below each of theirs (the paper\'s "much" flatter: how much is not judged)',
            f"ppl({top})/ppl(L) at L={L}: FoPE {_pm(main.get('fope'), 'ppl_ratio', top)}; "
            + ", ".join(f"{pe} {_pm(main.get(pe), 'ppl_ratio', top)}" for pe in others),
            [noise.lower(fope_g, v, f"FoPE's ratio vs {pe}'s") for pe, v in others.items()],
        )
    )
    for pe, v in others.items():  # the same comparison, one row per baseline: which half of Fig. 1b reproduces
        name = _NAMES.get(pe, pe)
        out.append(
            _claim(
                f"fig1b-flat-{pe}",
                "Fig. 1b",
                f"{name} blows up beyond L while FoPE stays flatter: FoPE's ppl(16L)/ppl(L) below {name}'s",
                f"ppl({top})/ppl(L): FoPE {_pm(main.get('fope'), 'ppl_ratio', top)}, {name} "
                f"{_pm(main.get(pe), 'ppl_ratio', top)}",
                [noise.lower(fope_g, v, f"FoPE's ratio vs {name}'s")],
            )
        )
    alibi = main.get("alibi")
    a_ppl, f_ppl = mean(alibi, "ppl", top), mean(main.get("fope"), "ppl", top)
    out.append(
        _claim(
            "fig1b-alibi",
            "Fig. 1b",
            f"ALiBi is flat (ppl(16L)/ppl(L) <= {FOPE_FLAT_MAX}) and its perplexity at 16L below FoPE's (the "
            'paper\'s "slightly" better: how much is not judged)',
            f"at {top}: ALiBi ppl {fmt(a_ppl)} (ratio to L {_pm(alibi, 'ppl_ratio', top)}), FoPE ppl {fmt(f_ppl)}"
            + _by(a_ppl, f_ppl),
            [
                _ratio_part(r, noise, "alibi", FOPE_FLAT_MAX, "<=", "ALiBi's ratio"),
                noise.lower(a_ppl, f_ppl, "ALiBi's ppl vs FoPE's"),
            ],
        )
    )
    metric = passkey_metric(r, [main.get("fope"), main.get("rope")])
    lengths = [n for n in _lengths(main.get("fope"), metric) if n > L]
    if lengths:
        fp = [mean(main.get("fope"), metric, n) for n in lengths]
        rp = [mean(main.get("rope"), metric, n) for n in lengths]
        fb, rb = beyond(main.get("fope"), metric, L), beyond(main.get("rope"), metric, L)
        nf, nr = (_n_trials(main.get(pe), metric, L, noise.trials) for pe in ("fope", "rope"))
        out.append(
            _claim(
                "fig1a-passkey",
                "Fig. 1a",
                "FoPE's passkey accuracy beyond L above RoPE's (the paper: FoPE the most stable across lengths)",
                f"{_metric_name(metric)} at {lengths}: FoPE {[fmt(v, 2) for v in fp]} (mean {fmt(fb, 2)}), "
                f"RoPE {[fmt(v, 2) for v in rp]} (mean {fmt(rb, 2)})",
                [noise.higher_rate(fb, rb, nf, nr, "FoPE vs RoPE")],
            )
        )
        a = [mean(alibi, metric, n) for n in [L, *lengths]]
        out.append(
            _claim(
                "fig1a-alibi",
                "Fig. 1a",
                "ALiBi's passkey accuracy declines with length",
                f"ALiBi {_metric_name(metric)} from L: {[fmt(v, 2) for v in a]}",
                [_declines(a)],
            )
        )
    return out


def _by(a: float | None, b: float | None) -> str:
    """``, lower by 22%`` (or higher): how far perplexity ``a`` is from ``b``, relative to ``b``."""
    if a is None or b is None or not b:
        return ""
    return f", {'lower' if a < b else 'higher'} by {abs(a - b) / b:.0%}"


def _declines(a: list[float | None]) -> Part:
    """A sequence of rates over increasing lengths never rises and ends below where it started (a shape claim:
    holds or does not hold)."""
    if any(v is None for v in a):
        return Part(MISSING)
    if all(x >= y - 1e-9 for x, y in itertools.pairwise(a)) and a[0] > a[-1]:
        return Part(HOLDS)
    return Part(FAILS, "rises between lengths" if a[0] > a[-1] else "does not end below its value at L")


def _fig5(r: dict, noise: Noise) -> list[Claim]:
    main, other = r.get("main"), r["config"].get("other_corpus", "wiki")
    if not main:
        return []
    key = f"ppl_ratio_{other}"
    top = max(_lengths(main.get("fope"), key) or [0])
    f, ro, a = (mean(main.get(pe), key, top) for pe in ("fope", "rope", "alibi"))
    fa, aa = mean(main.get("fope"), f"ppl_{other}", top), mean(main.get("alibi"), f"ppl_{other}", top)
    return [
        _claim(
            "fig5-flat",
            "Fig. 5",
            f"Trained on books, evaluated on {other}: FoPE far more stable than RoPE",
            f"{other} ppl({top})/ppl(L): FoPE {_pm(main.get('fope'), key, top)}, "
            f"RoPE {_pm(main.get('rope'), key, top)}",
            [noise.lower(f, ro, "FoPE's ratio vs RoPE's")],
        ),
        _claim(
            "fig5-alibi",
            "Fig. 5",
            f"ALiBi is again flat on {other} ({other} ppl(16L)/ppl(L) <= {FOPE_FLAT_MAX}) and its {other} perplexity "
            "at 16L below FoPE's (the paper's \"slightly\" better: how much is not judged)",
            f"{other} ppl at {top}: ALiBi {fmt(aa)} (ratio {_pm(main.get('alibi'), key, top)}), FoPE {fmt(fa)}"
            + _by(aa, fa),
            [
                threshold(
                    a, noise.ratio_band(main.get("alibi"), "alibi", key, top), FOPE_FLAT_MAX, "<=", "ALiBi's ratio"
                ),
                noise.lower(aa, fa, "ALiBi's ppl vs FoPE's"),
            ],
        ),
    ]


def _fig4(r: dict, noise: Noise) -> list[Claim]:
    ext, L = r.get("extension", {}), int(r["config"]["train_len"])
    if not ext:
        return []
    two_l = 2 * L
    ppl = {arm: geo_beyond(c, "ppl", two_l) for arm, c in ext.items()}
    metric = passkey_metric(r, list(ext.values()))
    pk = {arm: beyond(c, metric, two_l) for arm, c in ext.items()}

    def better(a: str, b: str) -> Part:
        return noise.lower(ppl.get(a), ppl.get(b), f"ppl {a} vs {b}")

    def pk_better(a: str, b: str) -> Part:
        n = _n_trials(ext.get(a), metric, two_l, noise.task_trials)
        return noise.higher_rate(pk.get(a), pk.get(b), n, n, f"{metric} {a} vs {b}")

    desc = "; ".join(f"{arm}: ppl {fmt(ppl.get(arm))}, {metric} {fmt(pk.get(arm), 2)}" for arm in ext)
    return [
        _claim(
            "fig4-fope-yarn",
            "Fig. 4",
            "FoPE+YaRN beats RoPE+YaRN (lower ppl, higher passkey)",
            f"beyond 2L (geometric-mean ppl, mean passkey) - {desc}",
            [better("fope+yarn", "rope+yarn"), pk_better("fope+yarn", "rope+yarn")],
        ),
        _claim(
            "fig4-fope-ext",
            "Fig. 4",
            "Extending with FoPE beats YaRN from both RoPE-L and FoPE-L",
            f"ppl beyond 2L: rope+fope {fmt(ppl.get('rope+fope'))} vs rope+yarn {fmt(ppl.get('rope+yarn'))}; "
            f"fope+fope {fmt(ppl.get('fope+fope'))} vs fope+yarn {fmt(ppl.get('fope+yarn'))}",
            [better("rope+fope", "rope+yarn"), better("fope+fope", "fope+yarn")],
        ),
    ]


def _ratio_score(cell: dict | None, L: int, beyond_l: bool = False) -> float | None:
    """The paper's Fig. 6 y-value (the PPL ratio ppl_other/ppl_train) summarised: its mean over the lengths >= L, or
    over the lengths > L with ``beyond_l``."""
    vals = [
        mean(cell, "ppl_other_over_train", n)
        for n in _lengths(cell, "ppl_other_over_train")
        if n > L or (n == L and not beyond_l)
    ]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


#: Fig. 6's metric, the paper's own (the PPL ratio ppl_other/ppl_train), and the one this project adds (the training
#: corpus's perplexity), each as (claim id suffix, words, value beyond L, value at L)
def _fig6_metrics(L: int) -> list[tuple[str, str, Callable, Callable]]:
    return [
        (
            "",
            "PPL ratio",
            lambda c: _ratio_score(c, L, beyond_l=True),
            lambda c: mean(c, "ppl_other_over_train", L),
        ),
        ("-ppl", "ppl", lambda c: geo_beyond(c, "ppl", L), lambda c: mean(c, "ppl", L)),
    ]


def _fig6(r: dict, noise: Noise) -> list[Claim]:
    """Fig. 6 judged on the paper's metric, the PPL ratio ppl_other/ppl_train (ids ``fig6...``), and again on the
    training corpus's perplexity (ids ``fig6...-ppl``, this project's addition)."""
    ab, L = r.get("ablations", {}), int(r["config"]["train_len"])
    if not ab:
        return []
    return [
        c for sfx, what, long_of, at_l_of in _fig6_metrics(L) for c in _fig6_on(r, noise, sfx, what, long_of, at_l_of)
    ]


def _fig6_on(r: dict, noise: Noise, sfx: str, what: str, long_of: Callable, at_l_of: Callable) -> list[Claim]:
    ab, L = r.get("ablations", {}), int(r["config"]["train_len"])
    added = " (this project's metric; the paper's is the PPL ratio)" if sfx else ""
    out = []
    comp = ab.get("components", {})
    long = {arm: long_of(c) for arm, c in comp.items()}
    at_l = {arm: at_l_of(c) for arm, c in comp.items()}

    def lt(d: dict, a: str, b: str, where: str) -> Part:
        return noise.lower(d.get(a), d.get(b), f"{what}{where} {a} vs {b}")

    desc = "; ".join(f"{arm}: {what}@L {fmt(at_l[arm])}, {what}>L {fmt(long[arm])}" for arm in comp)
    if comp:
        out += [
            _claim(
                f"fig6a-both-help{sfx}",
                "Fig. 6a",
                f"Both FS and CF help, their combination most: FoPE's {what} beyond L below each ablation's{added}",
                desc,
                [lt(long, "FoPE", b, ">L") for b in ("w/o FS", "w/o CF", "w/o FS, w/o CF")],
            ),
            _claim(
                f"fig6a-fs-long{sfx}",
                "Fig. 6a",
                f"FS contributes more to length generalisation than CF: {what} beyond L lower without CF than "
                f"without FS{added}",
                f"{what} beyond L: w/o FS {fmt(long.get('w/o FS'))}, w/o CF {fmt(long.get('w/o CF'))}",
                [lt(long, "w/o CF", "w/o FS", ">L")],
            ),
            _claim(
                f"fig6a-cf-fit{sfx}",
                "Fig. 6a",
                f"CF contributes more to in-distribution fit than FS: {what} at L lower without FS than without CF"
                f"{added}",
                f"{what} at L: w/o FS {fmt(at_l.get('w/o FS'))}, w/o CF {fmt(at_l.get('w/o CF'))}",
                [lt(at_l, "w/o FS", "w/o CF", "@L")],
            ),
        ]
    shape = ab.get("shape", {})
    if shape:
        sl = {arm: long_of(c) for arm, c in shape.items()}
        out.append(
            _claim(
                f"fig6a-head-dim{sfx}",
                "Fig. 6a",
                f"Doubling head_dim beats doubling heads or layers: lower {what} beyond L{added}",
                f"{what} beyond L: " + ", ".join(f"{a} {fmt(v)}" for a, v in sl.items()),
                [lt(sl, "2x head_dim", "2x heads", ">L"), lt(sl, "2x head_dim", "2x layers", ">L")],
            )
        )
    sig = ab.get("sigma", {})
    if sig and not sfx:
        score = {float(a): _ratio_score(c, L) for a, c in sig.items()}
        known = {a: v for a, v in score.items() if v is not None}
        best = min(known, key=known.get) if known and len(known) == len(score) else None
        out.append(
            _claim(
                "fig6b-sigma",
                "Fig. 6b",
                "The PPL ratio over sigma in [0, 0.5] is lowest at sigma = 0.3 (the paper's \"especially for longer "
                'context" is not judged)',
                "PPL ratio (mean over lengths >= L): "
                + ", ".join(f"{a:g}: {fmt(v)}" for a, v in score.items())
                + (f"; lowest at {best:g}" if best is not None else ""),
                [
                    _sweep(
                        best,
                        0.3,
                        spread_ok=_spread(known) > noise.rel,
                        spread=f"the sweep's spread {_spread(known):.1%} is within the {noise.rel:.1%} band",
                    )
                ],
            )
        )
    fd = ab.get("freq_dim", {})
    if sig:
        rope_long = long_of(comp.get("RoPE") or (r.get("main") or {}).get("rope"))
        arms = {
            **{f"sigma {float(a):g}": long_of(c) for a, c in sig.items()},
            **{f"D={a}": long_of(c) for a, c in fd.items()},
        }
        out.append(
            _claim(
                f"fig6-robust{sfx}",
                "Fig. 6b/c",
                f"FoPE beats RoPE for every sigma and D tried: lower {what} beyond L{added}",
                f"{what} beyond L: RoPE {fmt(rope_long)}; FoPE " + ", ".join(f"{a} {fmt(v)}" for a, v in arms.items()),
                [noise.lower(v, rope_long, f"{what}>L FoPE {a} vs RoPE") for a, v in arms.items()],
            )
        )
    if fd:
        flat = {int(a): long_of(c) for a, c in fd.items()}
        known = [v for v in flat.values() if v is not None]
        spread = _spread(dict(enumerate(known)))
        out.append(
            _claim(
                f"fig6c-D-flat{sfx}",
                "Fig. 6c",
                f"D barely changes perplexity: the {what} beyond L of every D within the noise band of each other"
                f"{added}",
                f"{what} beyond L: " + ", ".join(f"D={a}: {fmt(v)}" for a, v in flat.items()),
                [
                    Part(MISSING)
                    if len(known) < max(len(flat), 2)
                    else Part(HOLDS)
                    if spread <= noise.rel
                    else Part(FAILS, f"the sweep's spread {spread:.1%} exceeds the {noise.rel:.1%} band")
                ],
            )
        )
    if fd and not sfx:
        metric = passkey_metric(r, list(fd.values()))
        score = {int(a): beyond(c, metric, L - 1) for a, c in fd.items()}
        known = {a: v for a, v in score.items() if v is not None}
        best = max(known, key=known.get) if known and len(known) == len(score) else None
        n_lengths = len(_lengths(next(iter(fd.values())), metric))
        out.append(
            _claim(
                "fig6c-D",
                "Fig. 6c",
                "Passkey accuracy over D peaks at D = 64",
                f"mean {metric} over lengths >= L: "
                + ", ".join(f"D={a}: {fmt(v, 2)}" for a, v in score.items())
                + (f"; highest at D={best}" if best is not None else ""),
                [
                    _sweep(
                        best,
                        64,
                        spread_ok=_rate_spread(known, noise.ablation_trials, n_lengths),
                        spread=f"best and worst D within {RATE_NOISE_SE:g} binomial s.e.",
                    )
                ],
            )
        )
    return out


def _spread(values: dict) -> float:
    """Relative spread (max - min) / max of a sweep's perplexity scores."""
    v = list(values.values())
    return (max(v) - min(v)) / max(v) if v and max(v) > 0 else 0.0


def _rate_spread(values: dict, trials: int, n_lengths: int) -> bool:
    """Do the best and worst passkey rates of a sweep differ by more than RATE_NOISE_SE standard errors?"""
    v = list(values.values())
    if not v:
        return False
    n = max(trials * n_lengths, 1)
    p = sum(v) / len(v)
    se = math.sqrt(max(p * (1 - p), 0.0) * 2 / n)
    return max(v) - min(v) > RATE_NOISE_SE * se and max(v) > min(v)


def _sweep(best: Any, expected: Any, *, spread_ok: bool, spread: str) -> Part:
    """A sweep's best value against the paper's: within noise when the sweep's arms do not differ beyond noise."""
    if best is None:
        return Part(MISSING)
    if not spread_ok:
        return Part(NOISE, spread)
    if abs(float(best) - float(expected)) < 1e-9:
        return Part(HOLDS)
    return Part(FAILS, f"best at {best:g}, not {expected:g}")


def _far_needles(cell: dict, L: int) -> tuple[int, int] | None:
    """(correct, trials) of a passkey cell's needles at distance >= L from the question, over every length; None
    without distance counts or without such needles."""
    counts = [c["beyond"] for c in (cell.get("passkey_far") or {}).values() if "beyond" in c]
    k = sum(n for _, n in counts)
    return (sum(c for c, _ in counts), k) if k else None


def _passkey_task(r: dict, noise: Noise) -> list[Claim]:
    """Fig. 1a on the passkey task (models trained on in-length retrieval documents), judged twice: on greedy
    generation of the key (the paper's metric) and on the likelihood top-1 of the key among 10 candidates (a model
    can rank the key first before it generates all of its digits)."""
    return [c for metric in ("passkey", "passkey_likelihood") for c in _passkey_task_on(r, noise, metric)]


def _passkey_task_on(r: dict, noise: Noise, metric: str) -> list[Claim]:
    pv, L = r.get("passkey_variant") or {}, int(r["config"]["train_len"])
    if not pv:
        return []
    lik = metric == "passkey_likelihood"
    sfx, what = ("-lik", "likelihood top-1") if lik else ("", "generation accuracy")
    n = int(r["config"].get("passkey_trials") or 1)
    acc = {pe: {k: mean(c, metric, k) for k in _lengths(c, metric)} for pe, c in pv.items()}
    if lik and not any(acc.values()):
        return []  # an older results.json without likelihood scores
    at_l = {pe: a.get(L) for pe, a in acc.items()}
    learnt_part = {
        pe: threshold(v, rate_band(PASSKEY_LEARNT, n), PASSKEY_LEARNT, ">=", f"{pe} at L") for pe, v in at_l.items()
    }
    out = [
        _claim(
            f"passkey-learnt{sfx}",
            "Fig. 1a (task)",
            f"Each model retrieves the key within L ({what} at L >= "
            f"{PASSKEY_LEARNT}: the precondition of the passkey claims)",
            ", ".join(f"{pe} {fmt(v, 2)}" for pe, v in at_l.items()) + f" ({n} trials each)",
            list(learnt_part.values()),
        )
    ]
    fope, rope, alibi = acc.get("fope") or {}, acc.get("rope") or {}, acc.get("alibi") or {}
    beyond_l = [k for k in sorted(fope) if k > L]
    floor = 0.1 if lik else 0.0

    def learnt(*pes: str) -> bool:  # beyond L says nothing about a model that clearly does not retrieve at L
        return all(pe in learnt_part and learnt_part[pe].outcome in (HOLDS, NOISE) for pe in pes)

    def unlearnt(*pes: str) -> Part | None:
        return (
            None
            if learnt(*pes)
            else Part(
                UNLEARNT,
                "no retrieval within L: "
                + ", ".join(
                    learnt_part[pe].why
                    for pe in pes
                    if pe in learnt_part and learnt_part[pe].outcome not in (HOLDS, NOISE)
                ),
            )
        )

    def fope_above(other: str, name: str, cid: str, paper: str) -> Claim:
        """FoPE's mean rate beyond L against ``other``'s, pooled over the lengths beyond L."""
        base = acc[other]
        fb = sum(fope[k] for k in beyond_l) / len(beyond_l)
        ob = sum(base[k] for k in beyond_l) / len(beyond_l)
        m = n * len(beyond_l)
        part = unlearnt("fope", other) or noise.higher_rate(fb, ob, m, m, f"FoPE vs {name}")
        return _claim(
            f"{cid}{sfx}",
            "Fig. 1a (task)",
            paper,
            f"{what} at {beyond_l}: FoPE {[fmt(fope[k], 2) for k in beyond_l]}, {name} "
            f"{[fmt(base[k], 2) for k in beyond_l]} (means {fmt(fb, 2)} vs {fmt(ob, 2)}, {m} trials each)",
            [part],
        )

    # chance: 1 of 10 candidates; generating a 5-digit key by chance: ~0
    if fope and rope and beyond_l:
        out.append(
            fope_above(
                "rope",
                "RoPE",
                "passkey-task-fope",
                f"FoPE's passkey {what} beyond L above RoPE's, pooled over the lengths beyond L (the paper: FoPE the "
                "most stable across lengths)",
            )
        )
        r2 = rope.get(2 * L)
        out.append(
            _claim(
                f"passkey-task-rope{sfx}",
                "Fig. 1a (task)",
                "RoPE drops to " + ("chance (0.1)" if lik else "zero") + " at 2L",
                f"RoPE {what} at L {fmt(rope.get(L), 2)}, at 2L {fmt(r2, 2)}",
                [unlearnt("rope") or _at_chance(r2, floor, n)],
            )
        )
        later = [k for k in beyond_l if k > 2 * L]
        out.append(
            _claim(
                f"passkey-task-rope-remains{sfx}",
                "Fig. 1a (task)",
                "RoPE remains at " + ("chance (0.1)" if lik else "zero") + " beyond 2L",
                f"RoPE {what} at {later}: {[fmt(rope.get(k), 2) for k in later]}" if later else "not measured",
                [unlearnt("rope") or _at_chance(rope.get(k), floor, n) for k in later] or [Part(MISSING)],
            )
        )
    far = {pe: _far_needles(pv.get(pe) or {}, L) for pe in ("fope", "rope")}
    if not lik and all(far.values()):
        (fc, fk), (rc, rk) = far["fope"], far["rope"]
        out.append(
            _claim(
                "passkey-task-far-needles",
                "Fig. 1a (task)",
                "FoPE retrieves keys farther from the question than L (distances never seen in training) "
                "where RoPE does not",
                f"needles at distance >= L, all lengths: FoPE {fc}/{fk}, RoPE {rc}/{rk} generated",
                [unlearnt("fope", "rope") or noise.higher_rate(fc / fk, rc / rk, fk, rk, "FoPE vs RoPE")],
            )
        )
    if fope and alibi and beyond_l and all(k in alibi for k in beyond_l):
        out.append(
            fope_above(
                "alibi",
                "ALiBi",
                "passkey-task-fope-alibi",
                f"FoPE is the most stable: its passkey {what} beyond L above ALiBi's",
            )
        )
    for other, name in (("nope", "NoPE"), ("kerple", "KERPLE"), ("fire", "FIRE")):
        cid, paper = (
            f"passkey-task-fope-{other}",
            f"FoPE is the most stable: its passkey {what} beyond L above {name}'s",
        )
        if fope and acc.get(other) and beyond_l and all(k in acc[other] for k in beyond_l):
            out.append(fope_above(other, name, cid, paper))
        elif not lik:  # the paper compares them; no committed run trained them on the task: a row that asserts nothing
            out.append(
                _claim(cid, "Fig. 1a (task)", paper, f"not measured (no {name} model in this run)", [Part(MISSING)])
            )
    if alibi:
        a = [alibi[k] for k in sorted(alibi)]
        # a decline "with length" tolerates an uptick between lengths within the binomial noise of n trials
        rises = [(x, y) for x, y in itertools.pairwise(a) if noise.higher_rate(y, x, n, n).outcome == HOLDS]
        mono = (
            Part(HOLDS)
            if not rises and a[0] > a[-1]
            else Part(
                FAILS,
                f"rises beyond noise from {fmt(rises[0][0], 2)} to {fmt(rises[0][1], 2)}"
                if rises
                else "does not end below its value at L",
            )
        )
        out.append(
            _claim(
                f"passkey-task-alibi{sfx}",
                "Fig. 1a (task)",
                f"ALiBi's passkey {what} declines with length",
                f"ALiBi {what} from L: {[fmt(v, 2) for v in a]}",
                [unlearnt("alibi") or mono],
            )
        )
    return out


def _at_chance(rate: float | None, floor: float, trials: int) -> Part:
    """ "Drops to chance": the rate is within RATE_NOISE_SE of its own binomial s.e. of chance and below chance +
    CHANCE_MARGIN (an equality claim: holds or does not hold)."""
    if rate is None:
        return Part(MISSING)
    se = math.sqrt(max(rate * (1 - rate), 1e-12) / trials)
    if rate <= floor + RATE_NOISE_SE * se + 1e-9 and rate < floor + CHANCE_MARGIN:
        return Part(HOLDS)
    return Part(FAILS, f"{fmt(rate, 2)} is above chance ({fmt(floor, 2)}) by {fmt(rate - floor, 2)}")


def _log_std(cell: dict | None, metric: str, length: int) -> float | None:
    """The seed std of ln(``metric``) at ``length`` in a main cell (delta method: std / mean), or None."""
    agg = ((cell or {}).get(metric) or {}).get(str(length)) or {}
    return agg["std"] / agg["mean"] if agg.get("std") is not None and agg.get("mean") else None


def _single_runs_lower(a: float | None, b: float | None, s: float | None, what: str) -> Part:
    """Is the loss (or loss growth) ``a`` of one run below ``b`` of another, when each has the seed std ``s``? Within
    noise within NOISE_SE standard errors of the difference of two single runs, NOISE_SE * sqrt(2) * s."""
    if a is None or b is None:
        return Part(MISSING, f"{what} not measured")
    if s is None:
        return Part(MISSING, f"{what}: no seed spread to judge it by")
    band = NOISE_SE * math.sqrt(2) * s
    text = f"{what}: {a:.3f} vs {b:.3f}"
    if abs(a - b) <= band:
        return Part(NOISE, f"{text} differ by {abs(a - b):.3f}, within the band {band:.3f}")
    if a < b:
        return Part(HOLDS)
    return Part(FAILS, f"{text}: higher by {a - b:.3f} (band {band:.3f})")


def _table2(r: dict, noise: Noise) -> list[Claim]:
    """The paper's Table 2 (RoPE-A and QK norm), one run per arm, judged on the loss ln(ppl) the table gives, with the
    seed spread of the main runs of the same family (RoPE for the RoPE arms, NoPE for the NoPE arms)."""
    t2, L = r.get("table2") or {}, int(r["config"]["train_len"])
    if not t2:
        return []
    top, main = 16 * L, r.get("main") or {}

    def loss(arm: str, n: int) -> float | None:
        m = mean(t2.get(arm), "ppl", n)
        return math.log(m) if m else None

    def growth(arm: str) -> float | None:
        a, b = loss(arm, top), loss(arm, L)
        return None if a is None or b is None else a - b

    def f3(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    s_growth = _log_std(main.get("rope"), "ppl_ratio", top)
    s_rope_top = _log_std(main.get("rope"), "ppl", top)
    longer = [n * L for n in (2, 4, 8, 16)]
    return [
        _claim(
            "table2-qk-rope",
            "Table 2",
            "QK norm helps RoPE beyond L: RoPE + QK Norm's loss grows less from L to 16L than RoPE's",
            f"loss growth L to 16L (one run each): RoPE + QK Norm {f3(growth('RoPE + QK Norm'))}, RoPE "
            f"{f3(growth('RoPE'))}",
            [_single_runs_lower(growth("RoPE + QK Norm"), growth("RoPE"), s_growth, "growth")],
        ),
        _claim(
            "table2-ropea",
            "Table 2",
            "RoPE-A generalises better than RoPE: its loss at 16L below RoPE's",
            f"loss at {top} (one run each): RoPE-A {f3(loss('RoPE-A', top))}, RoPE {f3(loss('RoPE', top))}",
            [_single_runs_lower(loss("RoPE-A", top), loss("RoPE", top), s_rope_top, "loss at 16L")],
        ),
        _claim(
            "table2-ropea-qk",
            "Table 2",
            "QK norm does not help RoPE-A: RoPE-A + QK Norm's loss at 16L above RoPE-A's",
            f"loss at {top} (one run each): RoPE-A + QK Norm {f3(loss('RoPE-A + QK Norm', top))}, RoPE-A "
            f"{f3(loss('RoPE-A', top))}",
            [_single_runs_lower(loss("RoPE-A", top), loss("RoPE-A + QK Norm", top), s_rope_top, "loss at 16L")],
        ),
        _claim(
            "table2-qk-nope",
            "Table 2",
            "QK norm hurts NoPE: NoPE + QK Norm's loss above NoPE's at every length beyond L",
            "loss (one run each) at "
            + "; ".join(
                f"{n}: NoPE + QK Norm {f3(loss('NoPE + QK Norm', n))}, NoPE {f3(loss('NoPE', n))}" for n in longer
            ),
            [
                _single_runs_lower(
                    loss("NoPE", n), loss("NoPE + QK Norm", n), _log_std(main.get("nope"), "ppl", n), f"loss at {n}"
                )
                for n in longer
            ],
        ),
    ]


def _mechanism(r: dict, noise: Noise) -> list[Claim]:
    """The paper's Fig. 3 (the toy) and Fig. 7 (pre-rotation activations of RoPE's incomplete-cycle pairs) on the
    grid's mechanism measures: deterministic computations on one model each, judged as shapes (hold or not)."""
    mech, out = r.get("mechanism") or {}, []
    errors = (mech.get("toy") or {}).get("errors") or {}
    if errors:
        worse = [k for k, e in errors.items() if not e["fope_rel"] < e["rope_rel"]]
        out.append(
            _claim(
                "fig3-toy",
                "Fig. 3",
                "FoPE's attention score follows the frequency-matched ground truth more closely than RoPE's, per "
                "component and summed (relative RMS error lower)",
                "relative RMS error, RoPE -> FoPE: "
                + ", ".join(f"{k} {e['rope_rel']:.3f} -> {e['fope_rel']:.3f}" for k, e in errors.items()),
                [Part(FAILS, f"not lower in {', '.join(worse)}") if worse else Part(HOLDS)],
            )
        )
    summary = ((mech.get("models") or {}).get("rope") or {}).get("activation_summary") or {}
    if summary:
        below = {k: v for k, v in summary.items() if v["layers_above_1"] < v["n_layers"]}
        out.append(
            _claim(
                "fig7-activations",
                "Fig. 7",
                "In RoPE's model, the pairs that do not complete a cycle within L carry larger pre-rotation activations "
                "than the others (incomplete / complete ratio above 1 in every layer, for every measure)",
                "ratio incomplete / complete, mean over layers (layers above 1): "
                + ", ".join(f"{k} {v['mean']:.3f} ({v['layers_above_1']}/{v['n_layers']})" for k, v in summary.items()),
                [Part(FAILS, "at or below 1 in some layer for " + ", ".join(below)) if below else Part(HOLDS)],
            )
        )
    return out


# --------------------------------------------------------------------------- the clip-only comparison
def _clip_only(r: dict, noise: Noise) -> list[Claim]:
    """FoPE against the clip-only variants (`fope.reproduce.presets.CLIP_ONLY`: RoPE with FoPE's clip floor and no
    Fourier series), for a grid whose main comparison lists them (the `cpu-clip` preset); each reads "not measured"
    until its runs exist. The passkey claim compares FoPE with the best clip-only variant (the lowest ppl ratio)."""
    from .presets import CLIP_ONLY

    cfg = r["config"]
    listed = [v for v in CLIP_ONLY if v in (cfg.get("pes") or ())]
    if not listed:
        return []
    main, L = r.get("main") or {}, int(cfg["train_len"])
    fope = main.get("fope")
    top = _top(fope)
    ratio = {pe: mean(main.get(pe), "ppl_ratio", top) if top > L else None for pe in ("fope", *listed)}
    out = [
        _claim(
            "clip-only-ratio",
            "Fig. 1b (clip-only)",
            "FoPE's ppl(16L)/ppl(L) is below each clip-only variant's (the Fourier series, beyond the clip floor, "
            "carries FoPE's flatness)",
            f"ppl({top if top > L else '16L'})/ppl(L) at L={L}: FoPE {_pm(fope, 'ppl_ratio', top)}; "
            + ", ".join(f"{pe} {_pm(main.get(pe), 'ppl_ratio', top)}" for pe in listed),
            [noise.lower(ratio["fope"], ratio[pe], f"FoPE's ratio vs {pe}'s") for pe in listed],
        )
    ]
    measured = {pe: v for pe, v in ratio.items() if pe != "fope" and v is not None}
    best = min(measured, key=measured.__getitem__) if measured else None
    pv = r.get("passkey_variant") or {}
    n = int(cfg.get("passkey_trials") or 1)

    def rate(pe: str | None) -> tuple[float | None, int, Part | None]:
        """(mean generation accuracy beyond L, its trials, the not-learnt part if it does not retrieve at L)."""
        cell = pv.get(pe) if pe else None
        lengths = [k for k in _lengths(cell, "passkey") if k > L]
        if not lengths:
            return None, 0, None
        at_l = threshold(mean(cell, "passkey", L), rate_band(PASSKEY_LEARNT, n), PASSKEY_LEARNT, ">=", f"{pe} at L")
        unlearnt = None if at_l.outcome in (HOLDS, NOISE) else Part(UNLEARNT, f"no retrieval within L: {at_l.why}")
        return beyond(cell, "passkey", L), n * len(lengths), unlearnt

    (fb, nf, uf), (bb, nb, ub) = rate("fope"), rate(best)
    parts = [uf or ub or noise.higher_rate(fb, bb, nf, nb, f"FoPE vs {best or 'the best clip-only variant'}")]
    out.append(
        _claim(
            "clip-only-passkey",
            "Fig. 1a (task, clip-only)",
            "FoPE's passkey accuracy beyond L is above the best clip-only variant's",
            f"generation accuracy beyond L: FoPE {fmt(fb, 2)}, {best or 'best clip-only variant (none measured)'} "
            f"{fmt(bb, 2)}",
            parts,
        )
    )
    return out


CHECKS: tuple[Callable[[dict, Noise], list[Claim]], ...] = (
    _targets,
    _passkey_task,
    _fig1,
    _fig5,
    _fig4,
    _fig6,
    _table2,
    _mechanism,
    _clip_only,
)


def check_claims(results: dict[str, Any]) -> list[Claim]:
    """Every claim check that applies to ``results`` (experiments that were not run give no claims)."""
    noise = noise_of(results)
    return [c for check in CHECKS for c in check(results, noise)]


def headline(results: dict[str, Any], claims: list[Claim] | None = None) -> str | None:
    """The main result in one sentence a newcomer understands (None without RoPE and FoPE beyond L).

    E.g. "RoPE's perplexity grows 1.87x from L to 16L, FoPE's 1.18x: FoPE's grows clearly less than RoPE's, and its
    ratio is within noise of the <= 1.2 target (1.18 ± 0.072 vs <= 1.2, ...)".
    """
    main, L = results.get("main") or {}, int(results["config"]["train_len"])
    top = _top(main.get("rope"))
    f, r = mean(main.get("fope"), "ppl_ratio", top), mean(main.get("rope"), "ppl_ratio", top)
    if top <= L or f is None or r is None:
        return None
    noise = noise_of(results)
    flat = _ratio_part(results, noise, "fope", FOPE_FLAT_MAX, "<=", "")
    below = noise.lower(f, r)
    versus = {
        HOLDS: "FoPE's perplexity grows clearly less than RoPE's",
        FAILS: "FoPE's perplexity grows more than RoPE's",
        NOISE: "the two grow alike (within noise)",
    }.get(below.outcome, "the two cannot be compared")
    target = {
        HOLDS: f"and FoPE meets the <= {FOPE_FLAT_MAX} target ({flat.why})",
        FAILS: f"and FoPE does not meet the <= {FOPE_FLAT_MAX} target ({flat.why})",
        NOISE: f"and FoPE's ratio is within noise of the <= {FOPE_FLAT_MAX} target ({flat.why})",
    }.get(flat.outcome, f"and FoPE's ratio cannot be judged against the <= {FOPE_FLAT_MAX} target")
    seeds = int(((main.get("fope") or {}).get("ppl_ratio") or {}).get(str(top), {}).get("n") or 1)
    where = (
        f"{seeds} seeds"
        if noise.reference is None
        else f"one seed, with the noise of `{noise.reference.source}` ({noise.reference.seeds} seeds, "
        + ("the same configuration)" if noise.reference.same_config(results["config"]) else "another configuration)")
    )
    return (
        f"RoPE's perplexity grows {r:.2f}x from its training length L = {L} to {top // L}L, FoPE's {f:.2f}x: "
        f"{versus}, {target}; {where}."
    )
