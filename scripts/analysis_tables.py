"""The measured tables and numbers of docs/analysis.md §1-3, §5 and §7, generated from the committed JSON under
docs/results/analysis/ (nothing in them is typed by hand; tests/test_doc_numbers.py keeps the page equal to them).

    python scripts/analysis_tables.py toy --out docs/results/analysis/toy.json   # run §1's six toy settings (~2 s)
    python scripts/analysis_tables.py print                                        # print every table below

The other files are the outputs of the `fope analyze` / `fope eval ppl` commands docs/analysis.md names:

    docs/results/analysis/decay.json                         fope analyze decay
    docs/results/analysis/smollm2/activations-smollm2.json   fope analyze activations --model smollm2 ...
    docs/results/analysis/smollm2-L2048/activations-smollm2.json   the same with --train-len 2048
    docs/results/analysis/smollm2/damage-smollm2.json        fope analyze damage --model smollm2 ...
    docs/results/analysis/tiny/{activations,damage,ppl}-tiny-{rope,fope}.json   the two tiny models of §2 and §5
    docs/results/analysis/induction.json                     fope analyze induction ...
    docs/results/analysis/damage_vs_ratio.json               scripts/damage_vs_ratio.py
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "docs" / "results" / "analysis"

# §1: (the command the row stands for, its description, its toy settings); `fope analyze toy` defaults otherwise
TOY_SETTINGS: list[tuple[str, str, dict[str, Any]]] = [
    ("fope analyze toy", "GELU, leak 0.3", {"activation": "gelu", "leak": 0.3}),
    ("fope analyze toy --activation silu", "", {"activation": "silu", "leak": 0.3}),
    ("fope analyze toy --activation relu", "", {"activation": "relu", "leak": 0.3}),
    ("fope analyze toy --activation tanh", "", {"activation": "tanh", "leak": 0.3}),
    ("fope analyze toy --leak 0", "activation only", {"activation": "gelu", "leak": 0.0}),
    ("fope analyze toy --activation identity", "leakage only", {"activation": "identity", "leak": 0.3}),
]
TOY_PANELS = ("component 1", "component 2", "sum")


def _load(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def _num(x: float, digits: int) -> str:
    """A number as the docs print it: Unicode minus, fixed digits."""
    return f"{x:.{digits}f}".replace("-", "−")


# ----------------------------------------------------------------------------------------------------------- §1 toy
def toy_results() -> list[dict[str, Any]]:
    """§1's six settings, run as `fope analyze toy` runs them (fope.analysis.toy.spectrum_toy)."""
    from fope.analysis.toy import ToyConfig, spectrum_toy

    out = []
    for command, desc, s in TOY_SETTINGS:
        leak = s["leak"]
        cfg = ToyConfig(
            activation=s["activation"], mixing=((1.0, leak), (leak, 1.0)), bias=(0.0, 0.0), max_distance=250
        )
        res = spectrum_toy(cfg)
        out.append({"command": command, "description": desc, "config": res["config"], "errors": res["errors"]})
    return out


def toy_table(path: str | Path = FOLDER / "toy.json") -> str:
    """§1's relative RMS errors, RoPE → FoPE, per panel and setting."""
    lines = ["| command | component 1 | component 2 | sum |", "|---|---|---|---|"]
    for r in _load(path)["settings"]:
        name = f"`{r['command']}`" + (f" ({r['description']})" if r["description"] else "")
        cells = [f"{r['errors'][p]['rope_rel']:.3f} → {r['errors'][p]['fope_rel']:.3f}" for p in TOY_PANELS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def toy_sentence(path: str | Path = FOLDER / "toy.json") -> str:
    """§1's finding, from the same errors: in how many settings FoPE's error is below RoPE's in every panel."""
    settings = _load(path)["settings"]
    closer = [r for r in settings if all(r["errors"][p]["fope_rel"] < r["errors"][p]["rope_rel"] for p in TOY_PANELS)]
    if len(closer) == len(settings):
        return "In every setting FoPE tracks the ground truth more closely than RoPE, as the paper's Fig. 3 shows qualitatively."
    return (
        f"In {len(closer)} of the {len(settings)} settings FoPE tracks the ground truth more closely than RoPE in every "
        "panel, where the paper's Fig. 3 shows it closer throughout."
    )


# --------------------------------------------------------------------------------------------------------- §3 decay
def decay_table(path: str | Path = FOLDER / "decay.json") -> str:
    """§3's ideal curve and Monte-Carlo means at five distances, and the largest |z| against the closed form."""
    d = _load(path)
    picks = [x for x in (0, 16, 32, 64) if x <= d["distance"][-1]] + [d["distance"][-1]]
    lines = ["| Δ | " + " | ".join(str(x) for x in picks) + " |", "|---" * (len(picks) + 1) + "|"]
    lines.append("| ideal | " + " | ".join(_num(d["ideal"][x], 2) for x in picks) + " |")
    for mu, e in d["expected"].items():
        lines.append(f"| μ = {mu} | " + " | ".join(_num(e["mc_mean"][x], 2) for x in picks) + " |")
    zs = [e["max_abs_z"] for e in d["expected"].values()]
    lines += [
        "",
        f"Over all {len(d['distance'])} distances the Monte-Carlo mean stays within {max(zs):.1f} standard errors of "
        f"μ²·ideal (`max_abs_z` {' / '.join(f'{z:.2f}' for z in zs)}).",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------- §2 activations
RATIO_ROWS = (("q_abs_mean", "q, \\|mean\\|"), ("k_abs_mean", "k, \\|mean\\|"), ("q_mean_abs", "q, mean \\|x\\|"))
RATIO_ROWS += (("k_mean_abs", "k, mean \\|x\\|"),)


def activations_summary(path: str | Path = FOLDER / "smollm2" / "activations-smollm2.json") -> str:
    """§2's SmolLM2 table: the incomplete / complete ratio over layers, and the per-layer q/k |mean| ratios."""
    d = _load(path)
    lines = [
        "| ratio incomplete / complete | mean over layers | min | max | layers > 1 |",
        "|---|---|---|---|---|",
    ]
    for key, label in RATIO_ROWS:
        s = d["summary"][key]
        lines.append(
            f"| {label} | {s['mean']:.3f} | {s['min']:.3f} | {s['max']:.3f} | {s['layers_above_1']} / {s['n_layers']} |"
        )
    q, k = d["ratio"]["q_abs_mean"], d["ratio"]["k_abs_mean"]
    lines += ["", "Per layer (q |mean|, k |mean|), from the same command:"]
    for start in range(0, len(q), 10):
        end = min(start + 10, len(q))
        pairs = ", ".join(f"{q[i]:.2f}/{k[i]:.2f}" for i in range(start, end))
        lines.append(f"- layers {start}–{end - 1}: {pairs}" + (";" if end < len(q) else "."))
    return "\n".join(lines)


def activations_other_length(path: str | Path = FOLDER / "smollm2-L2048" / "activations-smollm2.json") -> str:
    """§2's SmolLM2 ratios with another training length (--train-len)."""
    d = _load(path)
    s = d["summary"]
    n = len(d["info"]["incomplete_pairs"])
    base = _load(FOLDER / "smollm2" / "activations-smollm2.json")["summary"]
    moved = max(
        abs(s[k]["mean"] - base[k]["mean"]) / base[k]["mean"] for k in ("q_abs_mean", "k_abs_mean", "q_mean_abs")
    )
    return "\n".join(
        [
            f"With `--train-len {d['info']['train_len']}` (same command otherwise), {n} pairs are incomplete and the "
            f"mean ratios move by at most {moved:.1%} from the table above:",
            f"- q |mean|: mean {s['q_abs_mean']['mean']:.3f}, {s['q_abs_mean']['layers_above_1']}/"
            f"{s['q_abs_mean']['n_layers']} layers > 1;",
            f"- k |mean|: mean {s['k_abs_mean']['mean']:.3f}, {s['k_abs_mean']['layers_above_1']}/"
            f"{s['k_abs_mean']['n_layers']} layers > 1;",
            f"- q mean|x|: mean {s['q_mean_abs']['mean']:.3f}, {s['q_mean_abs']['layers_above_1']}/"
            f"{s['q_mean_abs']['n_layers']} layers > 1.",
        ]
    )


def activations_sentence(path: str | Path = FOLDER / "smollm2" / "activations-smollm2.json") -> str:
    """§2's finding against the paper's Fig. 7, from the same summary: in how many layers and by how much the
    incomplete-cycle dimensions carry larger pre-rotation means."""
    summary = _load(path)["summary"]
    means = [v["mean"] for v in summary.values()]
    above = [v["layers_above_1"] for v in summary.values()]
    n = max(v["n_layers"] for v in summary.values())
    where = "in every layer" if min(above) == n else f"in {min(above)}–{max(above)} of the {n} layers (per measure)"
    return (
        ("This agrees with" if min(means) > 1 else "Unlike")
        + " the paper's Fig. 7 finding on Llama-2-7B: the dimensions that do not complete a cycle within L carry "
        + ("larger" if min(means) > 1 else "not always larger")
        + f" pre-rotation means {where}, {min(means):.2f}–{max(means):.2f}× on average over layers here (the table's "
        "second column)."
    )


def brightest_dims(path: str | Path = FOLDER / "smollm2" / "activations-smollm2.json", n: int = 4) -> list[int]:
    """The n head dims with the largest q |mean| averaged over layers (the brightest columns of the heatmap)."""
    q = _load(path)["q_abs_mean"]
    means = [sum(layer[j] for layer in q) / len(q) for j in range(len(q[0]))]
    return sorted(sorted(range(len(means)), key=lambda j: -means[j])[:n])


def tiny_activations_table(folder: str | Path = FOLDER / "tiny") -> str:
    """§2's two tiny models: the q and k |mean| ratio per layer."""
    lines = ["| model | q \\|mean\\| ratio, layers 0/1 | k \\|mean\\| ratio, layers 0/1 |", "|---|---|---|"]
    for pe, label in (("rope", "RoPE"), ("fope", "FoPE")):
        r = _load(Path(folder) / f"activations-tiny-{pe}.json")["ratio"]
        q, k = (" / ".join(f"{x:.3f}" for x in r[key]) for key in ("q_abs_mean", "k_abs_mean"))
        lines.append(f"| {label} | {q} | {k} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------- §5 damage
def _damage_row(label: str, d: dict[str, Any], ratio: str, per_layer_share: bool) -> str:
    best = max(((v, kind, i) for kind in ("q", "k") for i, v in enumerate(d["per_layer"][kind])), key=lambda t: t[0])
    v, kind, i = best
    noise = d["noise_share"][kind][i]
    largest = f"{v:.3f} ({kind}, layer {i}" + (f"; noise share {noise:.2f})" if noise >= 0.1 else ")")
    share = d["signal_share"]["q"]
    if per_layer_share:
        shares = " / ".join(f"{x:.2f}" for x in share) + f" (layers {' / '.join(str(j) for j in range(len(share)))})"
    else:
        shares = f"{min(share):.2f}–{max(share):.2f} per layer"
    return f"| {label} | {d['overall']['q']:.4f} | {d['overall']['k']:.4f} | {largest} | {shares} | {ratio} |"


def damage_table(folder: str | Path = FOLDER) -> str:
    """§5's table: spectrum damage of SmolLM2 and the two tiny models, next to the tiny models' ppl(8L)/ppl(L)."""
    folder = Path(folder)
    lines = [
        "| model | damage q (overall) | damage k | largest layer value | positional share of q | ppl(8L) / ppl(L) |",
        "|---|---|---|---|---|---|",
    ]
    smol = _load(folder / "smollm2" / "damage-smollm2.json")
    name = smol["info"]["name"].split(" (")[0]
    lines.append(_damage_row(name, smol, f"not measured (L = {smol['info']['train_len']})", per_layer_share=False))
    for pe, label in (("rope", "RoPE"), ("fope", "FoPE")):
        d = _load(folder / "tiny" / f"damage-tiny-{pe}.json")
        L = d["info"]["train_len"]
        ppl = _load(folder / "tiny" / f"ppl-tiny-{pe}.json")["by_length"]
        far, near = ppl[str(8 * L)], ppl[str(L)]
        ratio = f"{far:.2f} / {near:.2f} = {far / near:.3f}"
        lines.append(_damage_row(f"tiny {label} (L = {L})", d, ratio, per_layer_share=True))
    return "\n".join(lines)


def _sci(x: float) -> str:
    """1.78e-06 -> 2e-6 (one significant digit, no zero padding in the exponent)."""
    mantissa, exp = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exp)}"


def damage_vs_ratio_summary(path: str | Path = FOLDER / "damage_vs_ratio.json") -> list[str]:
    """The two phrases of §5 that quote scripts/damage_vs_ratio.py's output."""
    rows = _load(path)["rows"]
    ratios = [r["ratio"] for r in rows]
    k, q = max(r["damage_k"] for r in rows), max(r["damage_q"] for r in rows)
    return [
        f"{len(rows)} models with ppl(16L)/ppl(L) from {min(ratios):.2f} to {max(ratios):.2f}",
        f"damage of {k:g} in every model for k and at most {_sci(q)} for q",
    ]


def damage_phrases(folder: str | Path = FOLDER) -> list[str]:
    """The phrases of §5's reading that quote the damage files: SmolLM2's oscillating share by depth, and the
    positional (constant) share of the pairs' energy in SmolLM2 and in the last layer of the tiny models."""
    folder = Path(folder)
    smol = _load(folder / "smollm2" / "damage-smollm2.json")
    q, k = smol["per_layer"]["q"], smol["per_layer"]["k"]
    half = len(q) // 2
    shallow = max(q[:half] + k[:half])
    deep = q[half:] + k[half:]
    shares = smol["signal_share"]["q"] + smol["signal_share"]["k"]
    for pe in ("rope", "fope"):
        tiny = _load(folder / "tiny" / f"damage-tiny-{pe}.json")["signal_share"]
        shares += [tiny["q"][-1], tiny["k"][-1]]
    return [
        f"at most {max(q + k):.1%} in any SmolLM2 layer",
        f"≤ {shallow:.1%} in layers 0–{half - 1}, {100 * min(deep):.1f}–{max(deep):.1%} in layers {half}–{len(q) - 1}",
        f"{100 * min(shares):.0f}–{max(shares):.0%} of the pairs' energy (q and k) in every SmolLM2 layer",
    ]


# ------------------------------------------------------------------------------------------------- §7 induction
def induction_block(path: str | Path = FOLDER / "induction.json") -> str:
    """§7's output of `fope analyze induction`, as that command prints it (fope.analysis.cli.run_induction)."""
    lines = [f"{'model':<40} {'tokens':<7} {'nll 1st':>8} {'nll rep':>8} {'score':>7} {'top1 rep':>8} {'chance':>7}"]
    for r in _load(path):
        lines.append(
            f"{r['model']:<40} {r['tokens']:<7} {r['nll_first']:>8.3f} {r['nll_repeat']:>8.3f} "
            f"{r['induction_score']:>7.3f} {r['top1_repeat']:>8.3f} {r['chance_nll']:>7.3f}"
        )
    return "\n".join(line.rstrip() for line in lines)


def every_table() -> str:
    parts = [
        ("§1 toy", toy_table()),
        ("§1 toy, the finding", toy_sentence()),
        ("§2 SmolLM2", activations_summary()),
        ("§2 SmolLM2, other L", activations_other_length()),
        ("§2 SmolLM2, the finding", activations_sentence()),
        ("§2 brightest q dims", ", ".join(str(j) for j in brightest_dims())),
        ("§2 tiny models", tiny_activations_table()),
        ("§3 decay", decay_table()),
        ("§5 damage", damage_table()),
        ("§5 damage, phrases", "\n".join(damage_phrases() + damage_vs_ratio_summary())),
        ("§7 induction", induction_block()),
    ]
    return "\n\n".join(f"<!-- {name} -->\n{text}" for name, text in parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    toy = sub.add_parser("toy", help="run §1's toy settings and write their errors as JSON")
    toy.add_argument("--out", type=Path, default=FOLDER / "toy.json")
    sub.add_parser("print", help="print every table of docs/analysis.md §1-3, §5 and §7 from the committed JSON")
    a = ap.parse_args()
    if a.cmd == "toy":
        from fope.utils import atomic_json

        atomic_json(a.out, {"analysis": "toy", "settings": toy_results()})
        print(toy_table(a.out))
        print(f"wrote {a.out}")
    else:
        print(every_table())


if __name__ == "__main__":
    main()
