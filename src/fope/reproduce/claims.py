"""The paper's claims (docs/paper.md §6.7) checked against a results dict, point by point.

Every check returns a `Claim` whose ``measured`` text is generated from the numbers in the results (nothing is
typed by hand) and whose verdict is ``holds``, ``does not hold``, ``mixed``, ``within noise`` or ``not measured``.
The thresholds of the project's targets (issue "Reproduce the paper") are constants here, used as written, never
tuned.

Noise: a comparison "A lower than B" of perplexities is called *within noise* when the two differ by less than
``Noise.rel`` (relative): twice the median relative seed-to-seed std of the main comparison's perplexities, and at
least ``MIN_REL_TOL``. Passkey rates are compared against two binomial standard errors of their difference.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

FOPE_FLAT_MAX = 1.2  # FoPE's ppl(16L) within 1.2x its ppl(L)
ROPE_BLOWUP_MIN = 1.5  # RoPE's ppl(16L) at least 1.5x its ppl(L): the regime where length generalisation shows
BELOW_FROM = 4  # FoPE's absolute perplexity below RoPE's at every length >= 4L
LONG_FACTORS = (8, 16)

MIN_REL_TOL = 0.01  # perplexity differences below 1% are never called a difference

HOLDS, FAILS, MIXED, MISSING, NOISE = "holds", "does not hold", "mixed", "not measured", "within noise"
ONE_SEED = "one seed, not tested"  # a comparison that would hold, but no seed spread exists to judge it by
UNLEARNT = "task not learnt, not tested"  # a passkey claim about a model that does not retrieve within L


@dataclass(frozen=True)
class Noise:
    """How large a difference must be to count (see the module docstring)."""

    rel: float
    source: str
    trials: int  # passkey trials per length (main runs)
    ablation_trials: int
    measured: bool = True  # False: no seed spread exists (one seed); perplexity comparisons cannot be judged

    def lower(self, a: float | None, b: float | None) -> bool | str | None:
        """Is perplexity ``a`` lower than ``b``? NOISE when they are within ``rel`` of each other."""
        if a is None or b is None:
            return None
        if abs(a - b) <= self.rel * max(abs(a), abs(b)):
            return NOISE
        return a < b

    def higher_rate(self, a: float | None, b: float | None, n_a: int, n_b: int) -> bool | str | None:
        """Is rate ``a`` (from n_a trials) higher than ``b``? NOISE within two standard errors of the difference."""
        if a is None or b is None:
            return None
        p = (a * n_a + b * n_b) / max(n_a + n_b, 1)
        se = math.sqrt(max(p * (1 - p), 0.0) * (1 / max(n_a, 1) + 1 / max(n_b, 1)))
        if abs(a - b) <= 2 * se or a == b:
            return NOISE
        return a > b


def noise_of(results: dict) -> Noise:
    """The noise level of a results dict (relative seed std of the main comparison's perplexities)."""
    rels = []
    for cell in (results.get("main") or {}).values():
        for metric in ("ppl", f"ppl_{results['config'].get('other_corpus', 'wiki')}"):
            for agg in (cell.get(metric) or {}).values():
                if agg.get("std") is not None and agg.get("mean"):
                    rels.append(agg["std"] / agg["mean"])
    cfg = results["config"]
    main_trials = int(cfg.get("main_passkey_trials", -1))
    trials = main_trials if main_trials >= 0 else int(cfg.get("passkey_trials", 1))
    ab_trials = int(cfg.get("ablation_passkey_trials", 1))
    if not rels:
        return Noise(MIN_REL_TOL, f"no seed spread available (one seed): {MIN_REL_TOL:.0%} floor", trials, ab_trials,
                     measured=False)
    rels.sort()
    med = rels[len(rels) // 2]
    rel = max(2 * med, MIN_REL_TOL)
    return Noise(rel, f"2 x median relative seed std of the main perplexities = {2 * med:.2%}"
                      + ("" if rel > MIN_REL_TOL else f", raised to the {MIN_REL_TOL:.0%} floor"), trials, ab_trials)


@dataclass(frozen=True)
class Claim:
    id: str
    figure: str
    paper: str
    measured: str
    verdict: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


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


def fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    return f"{x:.{digits}g}"


def _pm(cell: dict | None, metric: str, length: int) -> str:
    """``mean ± std (n runs)`` of a cell's metric at one length."""
    m, sd = mean(cell, metric, length), spread(cell, metric, length)
    n = ((cell or {}).get(metric) or {}).get(str(length), {}).get("n")
    return fmt(m) if sd is None else f"{fmt(m)} ± {fmt(sd, 2)} ({n} seeds)"


def _lengths(cell: dict | None, metric: str) -> list[int]:
    return sorted(int(k) for k in ((cell or {}).get(metric) or {}))


def _long(results: dict) -> list[int]:
    L = int(results["config"]["train_len"])
    return [f * L for f in LONG_FACTORS]


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


def _verdict(flags: list[bool | str | None], noise: Noise | None = None) -> str:
    """All parts hold -> holds; all fail -> does not hold; all within noise -> within noise; else mixed.

    Any part without numbers -> not measured. With ``noise`` (perplexity comparisons) and no measured seed spread,
    a comparison that would hold is ``one seed, not tested``.
    """
    if not flags or any(f is None for f in flags):
        return MISSING
    if all(f is True for f in flags):
        return ONE_SEED if noise is not None and not noise.measured else HOLDS
    if all(f is False for f in flags):
        return FAILS
    if all(f == NOISE for f in flags):
        return NOISE
    return MIXED


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


def regime(results: dict) -> dict[str, Any]:
    """Is this run in the regime where length generalisation can be judged (RoPE degrades beyond L)?

    Returns ``{"ok": bool | None, "rope_ratio": float | None, "length": int | None, "text": str}``; ``ok`` is None
    when RoPE was not run at the top length.
    """
    main, L = results.get("main") or {}, int(results["config"]["train_len"])
    top = max(_lengths(main.get("rope"), "ppl_ratio") or [0])
    ratio = mean(main.get("rope"), "ppl_ratio", top) if top > L else None
    if ratio is None:
        return {"ok": None, "rope_ratio": None, "length": None, "text": "RoPE beyond L was not measured"}
    ok = ratio >= ROPE_BLOWUP_MIN
    text = (f"RoPE's ppl({top})/ppl(L) = {fmt(ratio)}" + (f" >= {ROPE_BLOWUP_MIN}" if ok else f" < {ROPE_BLOWUP_MIN}"))
    return {"ok": ok, "rope_ratio": ratio, "length": top, "text": text}


def _targets(r: dict, noise: Noise) -> list[Claim]:
    main, L = r.get("main", {}), int(r["config"]["train_len"])
    fope, rope = main.get("fope"), main.get("rope")
    top = max(_lengths(rope, "ppl_ratio") or [0])
    out = []
    reg = regime(r)
    out.append(Claim("target-regime", "target", f"RoPE degrades beyond L: ppl(16L)/ppl(L) >= {ROPE_BLOWUP_MIN} "
                     "(the regime where the paper's effect can show)",
                     "RoPE ppl(16L)/ppl(L) = " + _pm(rope, "ppl_ratio", top) if reg["ok"] is not None else "not measured",
                     MISSING if reg["ok"] is None else (HOLDS if reg["ok"] else FAILS)))
    f_r, r_r = mean(fope, "ppl_ratio", top), mean(rope, "ppl_ratio", top)
    flat = None if f_r is None else f_r <= FOPE_FLAT_MAX
    out.append(Claim("target-fope-flat", "target",
                     f"FoPE stays flat where RoPE degrades: ppl(16L)/ppl(L) <= {FOPE_FLAT_MAX} and below RoPE's",
                     f"ppl(16L)/ppl(L): FoPE {_pm(fope, 'ppl_ratio', top)}, RoPE {_pm(rope, 'ppl_ratio', top)}",
                     _verdict([flat, noise.lower(f_r, r_r)], noise)))
    longs = [n for n in _lengths(fope, "ppl") if n >= BELOW_FROM * L]
    flags = [noise.lower(mean(fope, "ppl", n), mean(rope, "ppl", n)) for n in longs]
    out.append(Claim("target-fope-below", "target", f"FoPE's perplexity below RoPE's at every length >= {BELOW_FROM}L",
                     "; ".join(f"{n}: FoPE {_pm(fope, 'ppl', n)} vs RoPE {_pm(rope, 'ppl', n)}" for n in longs)
                     or "not measured", _verdict(flags or [None], noise)))
    metric = passkey_metric(r, [fope, rope])
    fp, rp = beyond(fope, metric, L), beyond(rope, metric, L)
    name = _metric_name(metric)
    nf, nr = _n_trials(fope, metric, L, noise.trials), _n_trials(rope, metric, L, noise.trials)
    out.append(Claim("target-passkey", "target", "FoPE's passkey accuracy beyond L above RoPE's",
                     f"mean {name} over lengths > L: FoPE {fmt(fp)} ({nf} trials), RoPE {fmt(rp)} ({nr} trials)",
                     _verdict([noise.higher_rate(fp, rp, nf, nr)])))
    return out


def _fig1(r: dict, noise: Noise) -> list[Claim]:
    main, L = r.get("main", {}), int(r["config"]["train_len"])
    top = max(_lengths(main.get("fope"), "ppl_ratio") or [0])
    out = []
    fope_g = mean(main.get("fope"), "ppl_ratio", top)
    others = {pe: mean(c, "ppl_ratio", top) for pe, c in main.items() if pe not in ("fope", "alibi")}
    flags = [noise.lower(fope_g, v) for v in others.values()]
    out.append(Claim(
        "fig1b-flat", "Fig. 1b", "Beyond L, RoPE and the other baselines blow up while FoPE stays much flatter",
        f"ppl({top})/ppl(L) at L={L}: FoPE {_pm(main.get('fope'), 'ppl_ratio', top)}; "
        + ", ".join(f"{pe} {_pm(main.get(pe), 'ppl_ratio', top)}" for pe in others), _verdict(flags, noise)))
    alibi = main.get("alibi")
    a_ratio, a_ppl, f_ppl = mean(alibi, "ppl_ratio", top), mean(alibi, "ppl", top), mean(main.get("fope"), "ppl", top)
    flags = [noise.lower(a_ppl, f_ppl), None if a_ratio is None or fope_g is None else a_ratio <= fope_g * 1.05]
    out.append(Claim("fig1b-alibi", "Fig. 1b", "ALiBi is flat and slightly better than FoPE on perplexity",
                     f"at {top}: ALiBi ppl {fmt(a_ppl)} (ratio to L {fmt(a_ratio)}), FoPE ppl {fmt(f_ppl)} "
                     f"(ratio {fmt(fope_g)})", _verdict(flags, noise)))
    metric = passkey_metric(r, [main.get("fope"), main.get("rope")])
    lengths = [n for n in _lengths(main.get("fope"), metric) if n > L]
    if lengths:
        fp = [mean(main.get("fope"), metric, n) for n in lengths]
        rp = [mean(main.get("rope"), metric, n) for n in lengths]
        fb, rb = beyond(main.get("fope"), metric, L), beyond(main.get("rope"), metric, L)
        nf, nr = (_n_trials(main.get(pe), metric, L, noise.trials) for pe in ("fope", "rope"))
        flags = [noise.higher_rate(fb, rb, nf, nr)]
        out.append(Claim("fig1a-passkey", "Fig. 1a", "FoPE keeps passkey accuracy beyond L; RoPE drops to zero at 2L",
                         f"{_metric_name(metric)} at {lengths}: FoPE {[fmt(v, 2) for v in fp]} (mean {fmt(fb, 2)}), "
                         f"RoPE {[fmt(v, 2) for v in rp]} (mean {fmt(rb, 2)})", _verdict(flags)))
        a = [mean(alibi, metric, n) for n in [L, *lengths]]
        mono = None if any(v is None for v in a) else all(x >= y - 1e-9 for x, y in itertools.pairwise(a))
        out.append(Claim("fig1a-alibi", "Fig. 1a", "ALiBi's passkey accuracy declines with length",
                         f"ALiBi {_metric_name(metric)} from L: {[fmt(v, 2) for v in a]}",
                         MISSING if mono is None else (HOLDS if mono and a[0] > a[-1] else FAILS)))
    return out


def _fig5(r: dict, noise: Noise) -> list[Claim]:
    main, other = r.get("main", {}), r["config"].get("other_corpus", "wiki")
    key = f"ppl_ratio_{other}"
    top = max(_lengths(main.get("fope"), key) or [0])
    f, ro, a = (mean(main.get(pe), key, top) for pe in ("fope", "rope", "alibi"))
    fa, aa = mean(main.get("fope"), f"ppl_{other}", top), mean(main.get("alibi"), f"ppl_{other}", top)
    return [
        Claim("fig5-flat", "Fig. 5", f"Trained on books, evaluated on {other}: FoPE far more stable than RoPE",
              f"{other} ppl({top})/ppl(L): FoPE {_pm(main.get('fope'), key, top)}, RoPE {_pm(main.get('rope'), key, top)}",
              _verdict([noise.lower(f, ro)], noise)),
        Claim("fig5-alibi", "Fig. 5", f"ALiBi is again flat and slightly better than FoPE on {other}",
              f"{other} ppl at {top}: ALiBi {fmt(aa)} (ratio {fmt(a)}), FoPE {fmt(fa)} (ratio {fmt(f)})",
              _verdict([noise.lower(aa, fa)], noise)),
    ]


def _fig4(r: dict, noise: Noise) -> list[Claim]:
    ext, L = r.get("extension", {}), int(r["config"]["train_len"])
    if not ext:
        return []
    two_l = 2 * L
    ppl = {arm: geo_beyond(c, "ppl", two_l) for arm, c in ext.items()}
    metric = passkey_metric(r, list(ext.values()))
    pk = {arm: beyond(c, metric, two_l) for arm, c in ext.items()}

    def better(a: str, b: str) -> bool | str | None:
        return noise.lower(ppl.get(a), ppl.get(b))

    def pk_better(a: str, b: str) -> bool | str | None:
        n = _n_trials(ext.get(a), metric, two_l, noise.trials)
        return noise.higher_rate(pk.get(a), pk.get(b), n, n)

    desc = "; ".join(f"{arm}: ppl {fmt(ppl.get(arm))}, {metric} {fmt(pk.get(arm), 2)}" for arm in ext)
    return [
        Claim("fig4-fope-yarn", "Fig. 4", "FoPE+YaRN beats RoPE+YaRN (lower ppl, higher passkey)",
              f"beyond 2L (geometric-mean ppl, mean passkey) - {desc}",
              _verdict([better("fope+yarn", "rope+yarn"), pk_better("fope+yarn", "rope+yarn")], noise)),
        Claim("fig4-fope-ext", "Fig. 4", "Extending with FoPE beats YaRN from both RoPE-L and FoPE-L",
              f"ppl beyond 2L: rope+fope {fmt(ppl.get('rope+fope'))} vs rope+yarn {fmt(ppl.get('rope+yarn'))}; "
              f"fope+fope {fmt(ppl.get('fope+fope'))} vs fope+yarn {fmt(ppl.get('fope+yarn'))}",
              _verdict([better("rope+fope", "rope+yarn"), better("fope+fope", "fope+yarn")], noise)),
    ]


def _ratio_score(cell: dict | None, L: int) -> float | None:
    """The paper's Fig. 6 y-value summarised: mean of ppl_other/ppl over lengths >= L."""
    vals = [mean(cell, "ppl_other_over_train", n) for n in _lengths(cell, "ppl_other_over_train") if n >= L]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def _fig6(r: dict, noise: Noise) -> list[Claim]:
    ab, L = r.get("ablations", {}), int(r["config"]["train_len"])
    if not ab:
        return []
    out = []
    comp = ab.get("components", {})
    long = {arm: geo_beyond(c, "ppl", L) for arm, c in comp.items()}
    at_l = {arm: mean(c, "ppl", L) for arm, c in comp.items()}
    ratio = {arm: _ratio_score(c, L) for arm, c in comp.items()}

    def lt(d: dict, a: str, b: str) -> bool | str | None:
        return noise.lower(d.get(a), d.get(b))

    desc = "; ".join(f"{arm}: ppl@L {fmt(at_l[arm])}, ppl>L {fmt(long[arm])}, PPL ratio {fmt(ratio[arm])}"
                     for arm in comp)
    out.append(Claim("fig6a-both-help", "Fig. 6a", "Both FS and CF help, their combination most (length generalisation)",
                     desc, _verdict([lt(long, "FoPE", "w/o FS"), lt(long, "FoPE", "w/o CF"),
                                     lt(long, "FoPE", "w/o FS, w/o CF")], noise)))
    out.append(Claim("fig6a-fs-long", "Fig. 6a", "FS contributes more to length generalisation than CF",
                     f"ppl beyond L: w/o FS {fmt(long.get('w/o FS'))}, w/o CF {fmt(long.get('w/o CF'))}",
                     _verdict([lt(long, "w/o CF", "w/o FS")], noise)))
    out.append(Claim("fig6a-cf-fit", "Fig. 6a", "CF contributes more to in-distribution fit than FS",
                     f"ppl at L: w/o FS {fmt(at_l.get('w/o FS'))}, w/o CF {fmt(at_l.get('w/o CF'))}",
                     _verdict([lt(at_l, "w/o FS", "w/o CF")], noise)))
    shape = ab.get("shape", {})
    if shape:
        sl = {arm: geo_beyond(c, "ppl", L) for arm, c in shape.items()}
        out.append(Claim("fig6a-head-dim", "Fig. 6a", "Doubling head_dim beats doubling heads or layers",
                         "ppl beyond L: " + ", ".join(f"{a} {fmt(v)}" for a, v in sl.items()),
                         _verdict([lt(sl, "2x head_dim", "2x heads"), lt(sl, "2x head_dim", "2x layers")], noise)))
    sig = ab.get("sigma", {})
    if sig:
        score = {float(a): _ratio_score(c, L) for a, c in sig.items()}
        long_s = {float(a): geo_beyond(c, "ppl", L) for a, c in sig.items()}
        known = {a: v for a, v in score.items() if v is not None}
        best = min(known, key=known.get) if known and len(known) == len(score) else None
        out.append(Claim("fig6b-sigma", "Fig. 6b", "The PPL ratio over sigma in [0, 0.5] is lowest at sigma = 0.3",
                         "PPL ratio (mean over lengths >= L): " + ", ".join(f"{a:g}: {fmt(v)}" for a, v in score.items())
                         + "; ppl beyond L: " + ", ".join(f"{a:g}: {fmt(v)}" for a, v in long_s.items())
                         + (f"; lowest at {best:g}" if best is not None else ""),
                         _sweep_verdict(best, 0.3, known, spread_ok=_spread(known) > noise.rel)))
        rope_long = geo_beyond(r.get("main", {}).get("rope"), "ppl", L)
        fd = ab.get("freq_dim", {})
        arms = [*long_s.values(), *(geo_beyond(c, "ppl", L) for c in fd.values())]
        flags = [noise.lower(v, rope_long) for v in arms]
        out.append(Claim("fig6-robust", "Fig. 6b/c", "FoPE beats RoPE for every sigma and D tried",
                         f"ppl beyond L: RoPE {fmt(rope_long)}; FoPE arms {[fmt(v) for v in arms]}", _verdict(flags, noise)))
    fd = ab.get("freq_dim", {})
    if fd:
        metric = passkey_metric(r, list(fd.values()))
        score = {int(a): beyond(c, metric, L - 1) for a, c in fd.items()}
        known = {a: v for a, v in score.items() if v is not None}
        best = max(known, key=known.get) if known and len(known) == len(score) else None
        out.append(Claim("fig6c-D", "Fig. 6c", "Passkey accuracy over D peaks at D = 64",
                         f"mean {metric} over lengths >= L: " + ", ".join(f"D={a}: {fmt(v, 2)}" for a, v in score.items())
                         + (f"; highest at D={best}" if best is not None else ""),
                         _sweep_verdict(best, 64, known, spread_ok=_rate_spread(known, noise.ablation_trials,
                                                                                  len(_lengths(next(iter(fd.values())), metric))))))
    return out


def _spread(values: dict) -> float:
    """Relative spread (max - min) / max of a sweep's perplexity scores."""
    v = list(values.values())
    return (max(v) - min(v)) / max(v) if v and max(v) > 0 else 0.0


def _rate_spread(values: dict, trials: int, n_lengths: int) -> bool:
    """Do the best and worst passkey rates of a sweep differ by more than two standard errors?"""
    v = list(values.values())
    if not v:
        return False
    n = max(trials * n_lengths, 1)
    p = sum(v) / len(v)
    se = math.sqrt(max(p * (1 - p), 0.0) * 2 / n)
    return max(v) - min(v) > 2 * se and max(v) > min(v)


def _sweep_verdict(best: Any, expected: Any, known: dict, *, spread_ok: bool) -> str:
    if best is None:
        return MISSING
    if not spread_ok:
        return NOISE
    return HOLDS if abs(float(best) - float(expected)) < 1e-9 else FAILS


PASSKEY_LEARNT = 0.8  # in-distribution accuracy at L that shows the passkey task was learnt


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
    out = [Claim(f"passkey-learnt{sfx}", "Fig. 1a (task)", f"Each model retrieves the key within L ({what} at L >= "
                 f"{PASSKEY_LEARNT}: the precondition of the passkey claims)",
                 ", ".join(f"{pe} {fmt(v, 2)}" for pe, v in at_l.items()) + f" ({n} trials each)",
                 _verdict([None if v is None else v >= PASSKEY_LEARNT for v in at_l.values()]))]
    fope, rope, alibi = acc.get("fope") or {}, acc.get("rope") or {}, acc.get("alibi") or {}
    beyond_l = [k for k in sorted(fope) if k > L]
    floor = 0.1 if lik else 0.0

    def learnt(*pes: str) -> bool:  # what a model does beyond L says nothing unless it retrieves at L
        return all((at_l.get(pe) or 0.0) >= PASSKEY_LEARNT for pe in pes)

    def fope_above(other: str, name: str, cid: str, paper: str) -> Claim:
        """FoPE's mean rate beyond L against ``other``'s, pooled over the lengths beyond L."""
        base = acc[other]
        fb = sum(fope[k] for k in beyond_l) / len(beyond_l)
        ob = sum(base[k] for k in beyond_l) / len(beyond_l)
        m = n * len(beyond_l)
        return Claim(f"{cid}{sfx}", "Fig. 1a (task)", paper,
                     f"{what} at {beyond_l}: FoPE {[fmt(fope[k], 2) for k in beyond_l]}, {name} "
                     f"{[fmt(base[k], 2) for k in beyond_l]} (means {fmt(fb, 2)} vs {fmt(ob, 2)}, {m} trials each)",
                     _verdict([noise.higher_rate(fb, ob, m, m)]) if learnt("fope", other) else UNLEARNT)

    # chance: 1 of 10 candidates; generating a 5-digit key by chance: ~0
    if fope and rope and beyond_l:
        out.append(fope_above("rope", "RoPE", "passkey-task-fope", f"FoPE keeps passkey {what} beyond L better than RoPE"))
        r2 = rope.get(2 * L)
        se = None if r2 is None else math.sqrt(max(r2 * (1 - r2), 1e-12) / n)
        out.append(Claim(f"passkey-task-rope{sfx}", "Fig. 1a (task)",
                         "RoPE drops to " + ("chance (0.1)" if lik else "zero") + " at 2L",
                         f"RoPE {what} at L {fmt(rope.get(L), 2)}, at 2L {fmt(r2, 2)}",
                         MISSING if r2 is None else UNLEARNT if not learnt("rope") else
                         (HOLDS if r2 <= floor + 2 * se + 1e-9 and r2 < floor + 0.1 else FAILS)))
    far = {pe: _far_needles(pv.get(pe) or {}, L) for pe in ("fope", "rope")}
    if not lik and all(far.values()):
        (fc, fk), (rc, rk) = far["fope"], far["rope"]
        out.append(Claim("passkey-task-far-needles", "Fig. 1a (task)",
                         "FoPE retrieves keys farther from the question than L (distances never seen in training) "
                         "where RoPE does not",
                         f"needles at distance >= L, all lengths: FoPE {fc}/{fk}, RoPE {rc}/{rk} generated",
                         _verdict([noise.higher_rate(fc / fk, rc / rk, fk, rk)]) if learnt("fope", "rope")
                         else UNLEARNT))
    if fope and alibi and beyond_l and all(k in alibi for k in beyond_l):
        out.append(fope_above("alibi", "ALiBi", "passkey-task-fope-alibi",
                              f"FoPE is the most stable: its passkey {what} beyond L above ALiBi's"))
    if alibi:
        a = [alibi[k] for k in sorted(alibi)]
        # a decline "with length" tolerates an uptick between lengths within the binomial noise of n trials
        mono = all(noise.higher_rate(y, x, n, n) is not True for x, y in itertools.pairwise(a)) and a[0] > a[-1]
        out.append(Claim(f"passkey-task-alibi{sfx}", "Fig. 1a (task)", f"ALiBi's passkey {what} declines with length",
                         f"ALiBi {what} from L: {[fmt(v, 2) for v in a]}",
                         UNLEARNT if not learnt("alibi") else HOLDS if mono else FAILS))
    return out


CHECKS: tuple[Callable[[dict, Noise], list[Claim]], ...] = (_targets, _passkey_task, _fig1, _fig5, _fig4, _fig6)


def check_claims(results: dict[str, Any]) -> list[Claim]:
    """Every claim check that applies to ``results`` (experiments that were not run give no claims)."""
    noise = noise_of(results)
    return [c for check in CHECKS for c in check(results, noise)]
