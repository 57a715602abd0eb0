"""The paper's claims (FOPE-SPEC 4.7) checked against a results dict, point by point.

Every check returns a `Claim` whose ``measured`` text is generated from the numbers in the results (nothing is
typed by hand) and whose verdict is ``holds``, ``does not hold``, ``mixed`` or ``not measured``. The thresholds of
the project's targets (issue "Reproduce the paper") are constants here, used as written, never tuned.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

FOPE_FLAT_MAX = 1.2  # FoPE's ppl at 8-16L within 1.2x its ppl at L
ROPE_BLOWUP_MIN = 2.0  # RoPE's ppl at 8-16L at least 2x its ppl at L
LONG_FACTORS = (8, 16)

HOLDS, FAILS, MIXED, MISSING = "holds", "does not hold", "mixed", "not measured"


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


def _verdict(flags: list[bool | None]) -> str:
    """All parts hold -> holds; none -> does not hold; some -> mixed; any part without numbers -> not measured."""
    if not flags or any(f is None for f in flags):
        return MISSING
    return HOLDS if all(flags) else (FAILS if not any(flags) else MIXED)


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
def _targets(r: dict) -> list[Claim]:
    main, L, longs = r.get("main", {}), int(r["config"]["train_len"]), _long(r)
    fope_r = [mean(main.get("fope"), "ppl_ratio", n) for n in longs]
    rope_r = [mean(main.get("rope"), "ppl_ratio", n) for n in longs]
    out = []
    if any(v is None for v in fope_r):
        out.append(Claim("target-fope-flat", "target", f"FoPE: ppl at 8L-16L within {FOPE_FLAT_MAX}x of ppl at L",
                         "not measured", MISSING))
    else:
        out.append(Claim("target-fope-flat", "target", f"FoPE: ppl at 8L-16L within {FOPE_FLAT_MAX}x of ppl at L",
                         "FoPE ppl(8L)/ppl(L) = " + _pm(main.get("fope"), "ppl_ratio", longs[0])
                         + ", ppl(16L)/ppl(L) = " + _pm(main.get("fope"), "ppl_ratio", longs[1]),
                         HOLDS if max(fope_r) <= FOPE_FLAT_MAX else FAILS))
    if any(v is None for v in rope_r):
        out.append(Claim("target-rope-blowup", "target", f"RoPE: ppl at 8L-16L at least {ROPE_BLOWUP_MIN}x ppl at L",
                         "not measured", MISSING))
    else:
        out.append(Claim("target-rope-blowup", "target", f"RoPE: ppl at 8L-16L at least {ROPE_BLOWUP_MIN}x ppl at L",
                         "RoPE ppl(8L)/ppl(L) = " + _pm(main.get("rope"), "ppl_ratio", longs[0])
                         + ", ppl(16L)/ppl(L) = " + _pm(main.get("rope"), "ppl_ratio", longs[1]),
                         HOLDS if min(rope_r) >= ROPE_BLOWUP_MIN else FAILS))
    fope, rope = main.get("fope"), main.get("rope")
    metric = passkey_metric(r, [fope, rope])
    fp, rp = beyond(fope, metric, L), beyond(rope, metric, L)
    name = _metric_name(metric)
    out.append(Claim("target-passkey", "target", "FoPE's passkey accuracy beyond L above RoPE's",
                     f"mean {name} over lengths > L: FoPE {fmt(fp)}, RoPE {fmt(rp)}",
                     MISSING if fp is None or rp is None else (HOLDS if fp > rp else FAILS)))
    return out


def _fig1(r: dict) -> list[Claim]:
    main, L = r.get("main", {}), int(r["config"]["train_len"])
    top = max(_lengths(main.get("fope"), "ppl_ratio") or [0])
    out = []
    fope_g = mean(main.get("fope"), "ppl_ratio", top)
    others = {pe: mean(c, "ppl_ratio", top) for pe, c in main.items() if pe not in ("fope", "alibi")}
    flags = [None if v is None or fope_g is None else fope_g < v for v in others.values()]
    out.append(Claim(
        "fig1b-flat", "Fig. 1b", "Beyond L, RoPE and the other baselines blow up while FoPE stays much flatter",
        f"ppl({top})/ppl(L) at L={L}: FoPE {_pm(main.get('fope'), 'ppl_ratio', top)}; "
        + ", ".join(f"{pe} {_pm(main.get(pe), 'ppl_ratio', top)}" for pe in others), _verdict(flags)))
    alibi = main.get("alibi")
    a_ratio, a_ppl, f_ppl = mean(alibi, "ppl_ratio", top), mean(alibi, "ppl", top), mean(main.get("fope"), "ppl", top)
    flags = [None if a_ppl is None or f_ppl is None else a_ppl < f_ppl,
             None if a_ratio is None or fope_g is None else a_ratio <= fope_g * 1.05]
    out.append(Claim("fig1b-alibi", "Fig. 1b", "ALiBi is flat and slightly better than FoPE on perplexity",
                     f"at {top}: ALiBi ppl {fmt(a_ppl)} (ratio to L {fmt(a_ratio)}), FoPE ppl {fmt(f_ppl)} "
                     f"(ratio {fmt(fope_g)})", _verdict(flags)))
    metric = passkey_metric(r, [main.get("fope"), main.get("rope")])
    lengths = [n for n in _lengths(main.get("fope"), metric) if n > L]
    if lengths:
        fp = [mean(main.get("fope"), metric, n) for n in lengths]
        rp = [mean(main.get("rope"), metric, n) for n in lengths]
        fb, rb = beyond(main.get("fope"), metric, L), beyond(main.get("rope"), metric, L)
        flags = [None if fb is None or rb is None else fb > rb]
        out.append(Claim("fig1a-passkey", "Fig. 1a", "FoPE keeps passkey accuracy beyond L; RoPE drops to zero at 2L",
                         f"{_metric_name(metric)} at {lengths}: FoPE {[fmt(v, 2) for v in fp]} (mean {fmt(fb, 2)}), "
                         f"RoPE {[fmt(v, 2) for v in rp]} (mean {fmt(rb, 2)})", _verdict(flags)))
        a = [mean(alibi, metric, n) for n in [L, *lengths]]
        mono = None if any(v is None for v in a) else all(x >= y - 1e-9 for x, y in itertools.pairwise(a))
        out.append(Claim("fig1a-alibi", "Fig. 1a", "ALiBi's passkey accuracy declines with length",
                         f"ALiBi {_metric_name(metric)} from L: {[fmt(v, 2) for v in a]}",
                         MISSING if mono is None else (HOLDS if mono and a[0] > a[-1] else FAILS)))
    return out


def _fig5(r: dict) -> list[Claim]:
    main, other = r.get("main", {}), r["config"].get("other_corpus", "wiki")
    key = f"ppl_ratio_{other}"
    top = max(_lengths(main.get("fope"), key) or [0])
    f, ro, a = (mean(main.get(pe), key, top) for pe in ("fope", "rope", "alibi"))
    fa, aa = mean(main.get("fope"), f"ppl_{other}", top), mean(main.get("alibi"), f"ppl_{other}", top)
    return [
        Claim("fig5-flat", "Fig. 5", f"Trained on books, evaluated on {other}: FoPE far more stable than RoPE",
              f"{other} ppl({top})/ppl(L): FoPE {fmt(f)}, RoPE {fmt(ro)}",
              MISSING if f is None or ro is None else (HOLDS if f < ro else FAILS)),
        Claim("fig5-alibi", "Fig. 5", f"ALiBi is again flat and slightly better than FoPE on {other}",
              f"{other} ppl at {top}: ALiBi {fmt(aa)} (ratio {fmt(a)}), FoPE {fmt(fa)} (ratio {fmt(f)})",
              MISSING if aa is None or fa is None else (HOLDS if aa < fa else FAILS)),
    ]


def _fig4(r: dict) -> list[Claim]:
    ext, L = r.get("extension", {}), int(r["config"]["train_len"])
    if not ext:
        return []
    two_l = 2 * L
    ppl = {arm: geo_beyond(c, "ppl", two_l) for arm, c in ext.items()}
    metric = passkey_metric(r, list(ext.values()))
    pk = {arm: beyond(c, metric, two_l) for arm, c in ext.items()}

    def better(a: str, b: str) -> bool | None:
        if ppl.get(a) is None or ppl.get(b) is None:
            return None
        return ppl[a] < ppl[b]

    def pk_better(a: str, b: str) -> bool | None:
        if pk.get(a) is None or pk.get(b) is None:
            return None
        return pk[a] >= pk[b]

    desc = "; ".join(f"{arm}: ppl {fmt(ppl.get(arm))}, {metric} {fmt(pk.get(arm), 2)}" for arm in ext)
    return [
        Claim("fig4-fope-yarn", "Fig. 4", "FoPE+YaRN beats RoPE+YaRN (lower ppl, higher passkey)",
              f"beyond 2L (geometric-mean ppl, mean passkey) - {desc}",
              _verdict([better("fope+yarn", "rope+yarn"), pk_better("fope+yarn", "rope+yarn")])),
        Claim("fig4-fope-ext", "Fig. 4", "Extending with FoPE beats YaRN from both RoPE-L and FoPE-L",
              f"ppl beyond 2L: rope+fope {fmt(ppl.get('rope+fope'))} vs rope+yarn {fmt(ppl.get('rope+yarn'))}; "
              f"fope+fope {fmt(ppl.get('fope+fope'))} vs fope+yarn {fmt(ppl.get('fope+yarn'))}",
              _verdict([better("rope+fope", "rope+yarn"), better("fope+fope", "fope+yarn")])),
    ]


def _ratio_score(cell: dict | None, L: int) -> float | None:
    """The paper's Fig. 6 y-value summarised: mean of ppl_other/ppl over lengths >= L."""
    vals = [mean(cell, "ppl_other_over_train", n) for n in _lengths(cell, "ppl_other_over_train") if n >= L]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def _fig6(r: dict) -> list[Claim]:
    ab, L = r.get("ablations", {}), int(r["config"]["train_len"])
    if not ab:
        return []
    out = []
    comp = ab.get("components", {})
    long = {arm: geo_beyond(c, "ppl", L) for arm, c in comp.items()}
    at_l = {arm: mean(c, "ppl", L) for arm, c in comp.items()}
    ratio = {arm: _ratio_score(c, L) for arm, c in comp.items()}

    def lt(d: dict, a: str, b: str) -> bool | None:
        return None if d.get(a) is None or d.get(b) is None else d[a] < d[b]

    desc = "; ".join(f"{arm}: ppl@L {fmt(at_l[arm])}, ppl>L {fmt(long[arm])}, PPL ratio {fmt(ratio[arm])}"
                     for arm in comp)
    out.append(Claim("fig6a-both-help", "Fig. 6a", "Both FS and CF help, their combination most (length generalisation)",
                     desc, _verdict([lt(long, "FoPE", "w/o FS"), lt(long, "FoPE", "w/o CF"),
                                     lt(long, "FoPE", "w/o FS, w/o CF")])))
    out.append(Claim("fig6a-fs-long", "Fig. 6a", "FS contributes more to length generalisation than CF",
                     f"ppl beyond L: w/o FS {fmt(long.get('w/o FS'))}, w/o CF {fmt(long.get('w/o CF'))}",
                     _verdict([lt(long, "w/o CF", "w/o FS")])))
    out.append(Claim("fig6a-cf-fit", "Fig. 6a", "CF contributes more to in-distribution fit than FS",
                     f"ppl at L: w/o FS {fmt(at_l.get('w/o FS'))}, w/o CF {fmt(at_l.get('w/o CF'))}",
                     _verdict([lt(at_l, "w/o FS", "w/o CF")])))
    shape = ab.get("shape", {})
    if shape:
        sl = {arm: geo_beyond(c, "ppl", L) for arm, c in shape.items()}
        out.append(Claim("fig6a-head-dim", "Fig. 6a", "Doubling head_dim beats doubling heads or layers",
                         "ppl beyond L: " + ", ".join(f"{a} {fmt(v)}" for a, v in sl.items()),
                         _verdict([lt(sl, "2x head_dim", "2x heads"), lt(sl, "2x head_dim", "2x layers")])))
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
                         MISSING if best is None else (HOLDS if abs(best - 0.3) < 1e-9 else FAILS)))
        rope_long = geo_beyond(r.get("main", {}).get("rope"), "ppl", L)
        fd = ab.get("freq_dim", {})
        arms = [*long_s.values(), *(geo_beyond(c, "ppl", L) for c in fd.values())]
        flags = [None if v is None or rope_long is None else v < rope_long for v in arms]
        out.append(Claim("fig6-robust", "Fig. 6b/c", "FoPE beats RoPE for every sigma and D tried",
                         f"ppl beyond L: RoPE {fmt(rope_long)}; FoPE arms {[fmt(v) for v in arms]}", _verdict(flags)))
    fd = ab.get("freq_dim", {})
    if fd:
        metric = passkey_metric(r, list(fd.values()))
        score = {int(a): beyond(c, metric, L - 1) for a, c in fd.items()}
        known = {a: v for a, v in score.items() if v is not None}
        best = max(known, key=known.get) if known and len(known) == len(score) else None
        out.append(Claim("fig6c-D", "Fig. 6c", "Passkey accuracy over D peaks at D = 64",
                         f"mean {metric} over lengths >= L: " + ", ".join(f"D={a}: {fmt(v, 2)}" for a, v in score.items())
                         + (f"; highest at D={best}" if best is not None else ""),
                         MISSING if best is None else (HOLDS if best == 64 else FAILS)))
    return out


CHECKS: tuple[Callable[[dict], list[Claim]], ...] = (_targets, _fig1, _fig5, _fig4, _fig6)


def check_claims(results: dict[str, Any]) -> list[Claim]:
    """Every claim check that applies to ``results`` (experiments that were not run give no claims)."""
    return [c for check in CHECKS for c in check(results)]
