"""`fope analyze ...`: the paper's mechanism analyses and our spectrum-damage measure (docs/analysis.md).

fope analyze toy --out analysis/                      # Fig. 3 toy: truth vs RoPE vs FoPE scores and their errors
fope analyze decay --out analysis/                    # Fig. 8: long-term decay needs a nonzero mean
fope analyze activations --model smollm2 --out analysis/   # Fig. 7: |mean q|, |mean k|, incomplete-cycle dims
fope analyze damage --model runs/tiny-rope --model runs/tiny-fope --out analysis/
fope analyze far --model runs/tiny-rope --model runs/tiny-fope --factor 16   # where the loss beyond L comes from
fope analyze induction --model runs/tiny-rope --gap 200  # can it copy a repeated random sequence (and digit string)?
"""

from __future__ import annotations

import argparse
import json
import time
from itertools import pairwise
from pathlib import Path
from typing import Any

from fope.utils import atomic_write


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "analyze",
        help="mechanism analyses: toy, activations, decay, damage, far, induction",
        description=__doc__.splitlines()[0],
    )
    sub = p.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True)

    toy = sub.add_parser("toy", help="Fig. 3 spectrum-damage toy")
    toy.add_argument("--activation", default="gelu", help="identity, gelu, silu, relu, tanh, square (default gelu)")
    toy.add_argument("--leak", type=float, default=0.3, help="off-diagonal weight of the 2x2 linear layer")
    toy.add_argument("--bias", type=float, default=0.0, help="bias of both linear outputs")
    toy.add_argument("--max-distance", type=int, default=250)
    toy.set_defaults(func=run_toy)

    decay = sub.add_parser("decay", help="Fig. 8 long-term decay vs the mean of q and k")
    decay.add_argument("--head-dim", type=int, default=128)
    decay.add_argument("--theta", type=float, default=10000.0)
    decay.add_argument("--means", default="0,0.1,1.0", help="comma-separated means mu")
    decay.add_argument("--samples", type=int, default=1000)
    decay.add_argument("--max-distance", type=int, default=127)
    decay.add_argument("--seed", type=int, default=0)
    decay.set_defaults(func=run_decay)

    for name, func, helptext in (
        ("activations", run_activations, "Fig. 7 pre-rotation q/k means per layer x dim"),
        ("damage", run_damage, "spectrum damage of q/k per layer (ours)"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument(
            "--model",
            required=True,
            action="append",
            help="smollm2, a fope model/run dir, or an HF Llama-family dir (repeatable)",
        )
        sp.add_argument("--samples", type=int, default=32, help="random-token sequences")
        sp.add_argument("--seq-len", type=int, default=256, help="tokens per sequence (keep <= the training length)")
        sp.add_argument("--batch-size", type=int, default=4)
        sp.add_argument(
            "--train-len",
            type=int,
            default=None,
            help="training length L for the cycle count (default: the model's train_len / max_position_embeddings)",
        )
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--device", default="cpu")
        if name == "damage":
            sp.add_argument("--skip", type=int, default=1, help="leading positions left out (default 1)")
        sp.set_defaults(func=func)
    far = sub.add_parser("far", help="perplexity beyond L with the scores of far keys changed (ours)")
    far.add_argument("--model", required=True, action="append", help="a fope model/run dir (repeatable)")
    far.add_argument("--corpus", default="books", help="evaluation corpus (validation split; default books)")
    far.add_argument("--factor", type=int, default=16, help="chunk length as a multiple of L (default 16)")
    far.add_argument("--tokens", type=int, default=32768, help="tokens scored (default 32768)")
    far.add_argument("--train-len", type=int, default=None, help="L (default: the model's train_len)")
    far.add_argument(
        "--variants",
        default=None,
        help="comma-separated variants of " + ", ".join(_far_variants()) + " (default: every one that "
        "applies to the model)",
    )
    far.add_argument(
        "--passkey-trials",
        type=int,
        default=0,
        help="also run the zero-shot passkey test under each variant, this many trials per length",
    )
    far.add_argument(
        "--passkey-only",
        action="store_true",
        help="run only the passkey test under the variants, not the perplexity decomposition",
    )
    far.add_argument("--passkey-factors", default="2,4", help="passkey prompt lengths as multiples of L (default 2,4)")
    far.add_argument("--device", default="cpu")
    far.set_defaults(func=run_far, no_plot=True)
    ind = sub.add_parser("induction", help="repeated random tokens: does the model copy what it has seen? (ours)")
    ind.add_argument(
        "--model",
        required=True,
        action="append",
        help="smollm2, a fope model/run dir, or an HF Llama-family dir (repeatable)",
    )
    ind.add_argument("--length", type=int, default=50, help="tokens per copy (default 50)")
    ind.add_argument("--sequences", type=int, default=16, help="random rows (default 16)")
    ind.add_argument("--gap", type=int, default=0, help="random tokens between the two copies (default 0)")
    ind.add_argument("--seed", type=int, default=0)
    ind.add_argument("--device", default="cpu")
    ind.set_defaults(func=run_induction, no_plot=True)
    for sp in (toy, decay, *sub.choices.values()):
        if not any(a.dest == "out" for a in sp._actions):
            sp.add_argument("--out", default="analysis", help="output folder for JSON and PNG (default analysis/)")
            sp.add_argument("--no-plot", action="store_true", help="write the JSON only")


def _far_variants() -> tuple[str, ...]:
    from .far import VARIANTS

    return VARIANTS


def write_json(path: Path, obj: Any) -> Path:
    """Atomic JSON write."""
    return atomic_write(path, json.dumps(obj, indent=1, default=str) + "\n")


def _finish(args, stem: str, result: Any, plot) -> None:
    out = Path(args.out)
    print(f"wrote {write_json(out / f'{stem}.json', result)}")
    if not args.no_plot:
        print(f"wrote {plot(result, out / f'{stem}.png')}")


def run_toy(args) -> int:
    from . import plots
    from .toy import ToyConfig, spectrum_toy

    cfg = ToyConfig(
        activation=args.activation,
        mixing=((1.0, args.leak), (args.leak, 1.0)),
        bias=(args.bias, args.bias),
        max_distance=args.max_distance,
    )
    res = spectrum_toy(cfg)
    print(f"toy: activation {cfg.activation}, leak {args.leak}, omegas {[round(w, 4) for w in cfg.omegas]}")
    print(f"{'panel':<12} {'RoPE rmse':>10} {'FoPE rmse':>10} {'RoPE rel':>9} {'FoPE rel':>9}")
    for name, e in res["errors"].items():
        print(f"{name:<12} {e['rope_rmse']:>10.4f} {e['fope_rmse']:>10.4f} {e['rope_rel']:>9.3f} {e['fope_rel']:>9.3f}")
    _finish(args, "toy", res, plots.plot_toy)
    return 0


def run_decay(args) -> int:
    from . import plots
    from .decay import decay_curves

    means = tuple(float(m) for m in args.means.split(",") if m.strip())
    res = decay_curves(
        head_dim=args.head_dim,
        theta=args.theta,
        max_distance=args.max_distance,
        means=means,
        samples=args.samples,
        seed=args.seed,
    )
    x = res["distance"]
    picks = [d for d in (0, 16, 32, 64, x[-1]) if d <= x[-1]]
    print("distance      " + " ".join(f"{d:>8}" for d in picks))
    print("ideal         " + " ".join(f"{res['ideal'][d]:>8.2f}" for d in picks))
    for mu, e in res["expected"].items():
        print(
            f"mu={mu:<9} "
            + " ".join(f"{e['mc_mean'][d]:>8.2f}" for d in picks)
            + f"   (exact mu^2*ideal; max |z| {e['max_abs_z']:.2f})"
        )
    _finish(args, "decay", res, plots.plot_decay)
    return 0


def _stats(args, name: str):
    from .capture import load_for_analysis, model_info, qk_statistics

    t0 = time.time()
    model, desc = load_for_analysis(name, device=args.device)
    info = model_info(model, desc, train_len=args.train_len)
    stats = qk_statistics(
        model,
        info,
        samples=args.samples,
        seq_len=args.seq_len,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
    )
    print(
        f"{desc}: {info.n_layers} layers, head_dim {info.head_dim}, L = {info.train_len}, "
        f"{len(info.incomplete_pairs)} of {info.head_dim // 2} pairs with < 1 cycle ({time.time() - t0:.0f} s)"
    )
    return stats


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(name).name or name).strip("-") or "model"


def run_activations(args) -> int:
    from . import plots
    from .activations import activation_stats

    for name in args.model:
        res = activation_stats(_stats(args, name))
        r = res["ratio"]
        print("layer  q|mean| ratio  k|mean| ratio  q mean|x| ratio  k mean|x| ratio   (incomplete / complete dims)")
        for i in range(len(r["q_abs_mean"])):
            vals = [r[k][i] for k in ("q_abs_mean", "k_abs_mean", "q_mean_abs", "k_mean_abs")]
            print(f"{i:>5}  " + "  ".join("           -" if v is None else f"{v:>13.3f}" for v in vals))
        for key, s in res["summary"].items():
            if s["mean"] is not None:
                print(
                    f"{key}: mean {s['mean']:.3f}, min {s['min']:.3f}, max {s['max']:.3f}, "
                    f"{s['layers_above_1']}/{s['n_layers']} layers > 1"
                )
        _finish(args, f"activations-{_slug(name)}", res, plots.plot_activations)
    return 0


def run_damage(args) -> int:
    from . import plots
    from .damage import model_damage

    results = []
    for name in args.model:
        res = model_damage(_stats(args, name), skip=args.skip)
        print("layer  damage q  damage k  positional share q  k   noise share q  k")
        for i, (dq, dk) in enumerate(zip(res["per_layer"]["q"], res["per_layer"]["k"])):
            print(
                f"{i:>5}  {dq:>8.3f}  {dk:>8.3f}  {res['signal_share']['q'][i]:>18.3f} "
                f"{res['signal_share']['k'][i]:>5.3f}  {res['noise_share']['q'][i]:>13.3f} "
                f"{res['noise_share']['k'][i]:>5.3f}"
            )
        print(f"overall damage: q {res['overall']['q']:.4f}, k {res['overall']['k']:.4f}")
        write_json(Path(args.out) / f"damage-{_slug(name)}.json", res)
        print(f"wrote {Path(args.out) / f'damage-{_slug(name)}.json'}")
        results.append(res)
    if not args.no_plot:
        print(f"wrote {plots.plot_damage(results, Path(args.out) / 'damage.png')}")
    return 0


def _print_far(name: str, model, res: dict, L: int, n: int, seconds: float) -> None:
    from .far import mean_far_mass

    edges = res["edges"]
    print(
        f"{name} ({model.config.pe}, L = {L}, {res['chunks']} chunks of {n}, "
        f"{res['cycle_pairs']} cycle pairs, {seconds:.0f} s)"
    )
    print(f"{'variant':<28} {'ppl':>8}  " + " ".join(f"{f'{a}-{b}':>10}" for a, b in pairwise(edges)))
    for v, r in res["variants"].items():
        print(f"{v:<28} {r['ppl']:>8.2f}  " + " ".join(f"{x:>10.2f}" for x in r["buckets"]))
    print("attention weight on keys >= L away (mean over heads), by layer and position bucket:")
    for v, r in res["variants"].items():
        for i in range(len(r["far_mass"])):
            means = [mean_far_mass(r["far_mass"], b, [i]) for b in range(len(edges) - 1)]
            print(f"{f'{v} layer {i}':<38} " + " ".join(f"{x:>10.3f}" for x in means))


def run_far(args) -> int:
    from fope.eval.loader import load_model

    from .far import far_attention_of, far_passkey

    parts = [f.strip() for f in args.passkey_factors.split(",") if f.strip()]
    if not parts or not all(f.isdigit() and int(f) >= 1 for f in parts):
        raise ValueError(
            f"--passkey-factors must be positive integers separated by commas, got {args.passkey_factors!r}"
        )
    if args.passkey_trials < 0:
        raise ValueError(f"--passkey-trials must be >= 0, got {args.passkey_trials}")
    if args.passkey_only and not args.passkey_trials:
        raise ValueError("--passkey-only needs --passkey-trials N (N > 0)")
    factors = [int(f) for f in parts]
    variants = [v for v in args.variants.split(",") if v] if args.variants else None
    for name in args.model:
        t0 = time.time()
        if args.passkey_only:
            adapter = load_model(name, device=args.device)
            res = {"train_len": args.train_len or int(adapter.model.config.train_len)}
        else:
            adapter, _, res = far_attention_of(
                name,
                tokens=args.tokens,
                corpus=args.corpus,
                factor=args.factor,
                train_len=args.train_len,
                variants=variants,
                device=args.device,
            )
            _print_far(name, adapter.model, res, res["train_len"], res["length"], time.time() - t0)
        model, L = adapter.model, res["train_len"]
        res.update(model=name, pe=model.config.pe)
        if args.passkey_trials:
            res["passkey"] = pk = far_passkey(
                adapter, [f * L for f in factors], train_len=L, trials=args.passkey_trials, variants=variants
            )
            print(
                f"passkey, {args.passkey_trials} trials per length: generation accuracy (correct/trials by needle "
                "depth, 0 = farthest from the question) | likelihood top-1"
            )
            for v, r in pk["variants"].items():
                for n, acc in r["generation"].items():
                    depth = " ".join(f"{c}/{k}" for c, k in r["depth"][n].values())
                    print(f"{v:<20} {n:>6}: {acc:.3f} ({depth}) | {r['likelihood_top1'][n]:.3f}")
        print(f"wrote {write_json(Path(args.out) / f'far-{_slug(name)}.json', res)}")
    return 0


def run_induction(args) -> int:
    from fope.eval.loader import load_model

    from .induction import digit_token_ids, induction_report

    results = []
    print(f"{'model':<40} {'tokens':<7} {'nll 1st':>8} {'nll rep':>8} {'score':>7} {'top1 rep':>8} {'chance':>7}")
    for name in args.model:
        adapter = load_model(name, device=args.device)
        tok = adapter.tokenizer
        eos = getattr(tok, "eos_id", None)
        pools = {"any": [i for i in range(adapter.vocab_size) if i != eos]}
        try:
            pools["digits"] = digit_token_ids(tok)
        except (ValueError, AttributeError) as e:
            print(f"{name}: no digit probe ({e})")
        for kind, pool in pools.items():
            rep = induction_report(
                adapter, token_ids=pool, length=args.length, sequences=args.sequences, gap=args.gap, seed=args.seed
            )
            rep.update(model=name, tokens=kind)
            results.append(rep)
            print(
                f"{name:<40} {kind:<7} {rep['nll_first']:>8.3f} {rep['nll_repeat']:>8.3f} "
                f"{rep['induction_score']:>7.3f} {rep['top1_repeat']:>8.3f} {rep['chance_nll']:>7.3f}"
            )
    print(f"wrote {write_json(Path(args.out) / 'induction.json', results)}")
    return 0
