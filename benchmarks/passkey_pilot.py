"""Passkey-task pilot: fine-tune a trained run (--src) on a retrieval-heavy mixture, then the zero-shot passkey test.

    python benchmarks/passkey_pilot.py --src RUN_DIR --name r600s6 --trials 40 --factors 1,2,4 \\
        --runs runs/pilots --log docs/results/pilots/passkey.jsonl \\
        train.max_steps=600 train.warmup_steps=30 data.retrieval_share=0.6 train.lr=3e-3

    python benchmarks/passkey_pilot.py --src RUN_DIR --scratch --name s4-rope model.n_layers=4 train.max_steps=1500 \\
        train.warmup_steps=150 train.lr=3e-3 data.retrieval_share=0.6 model.pe=rope model.pe_options={}

The fine-tuned model goes to RUNS/pk-NAME (fresh AdamW, as the `passkey` experiment of `fope reproduce` does);
with --scratch the model is trained from scratch with SRC's config and the overrides (no weights of SRC: the
`passkey_scratch` form of the experiment); with --reuse a finished RUNS/pk-NAME is evaluated without training again;
the passkey evaluation is the grid's (generation and likelihood, uniform depths, seed 0). One JSON line per
pilot is appended to --log: generation accuracy and likelihood top-1 per length, wall times, load average.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path


def table(path: str) -> str:
    """The passkey pilot log as a Markdown table: source model, fine-tune overrides, generation accuracy and
    likelihood top-1 at each length (as multiples of the source's L)."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    out = [
        "| pilot | source run | L | fine-tune overrides | train s | trials | generation at L, 2L, 4L | "
        "likelihood top-1 at L, 2L, 4L | digits in place at L, 2L, 4L |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lengths = sorted(r["acc"], key=int)
        parts = Path(r["src"]).parts
        src = (
            "/".join(parts[parts.index("runs") + 1 :]) if {"main", "passkey"} & set(parts) else parts[-1]
        )  # grid run / pilot
        if r.get("scratch"):
            src = f"from scratch, config of {src}"
        fmt = lambda d, lengths=lengths: " / ".join(f"{d[k]:.2f}" for k in lengths) if d else "-"  # noqa: E731
        out.append(
            f"| {r['name']} | {src} | {lengths[0]} | `{' '.join(r['overrides'])}` | {r['train_s']:.0f} | "
            f"{r.get('trials', 40)} | {fmt(r['acc'])} | {fmt(r.get('lik_top1'))} | "
            f"{fmt(r.get('digits_in_place'))} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", metavar="LOG", help="print the Markdown table of a passkey pilot log and exit")
    ap.add_argument("--src", help="run directory of the trained model (config.yaml, model/)")
    ap.add_argument("--name")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--factors", default="1,2,4", help="passkey lengths as multiples of L")
    ap.add_argument("--runs", default="runs/pilots")
    ap.add_argument("--log", default="runs/pilots/passkey.jsonl")
    ap.add_argument("--scratch", action="store_true", help="train from scratch with SRC's config (not SRC's weights)")
    ap.add_argument("--reuse", action="store_true", help="evaluate a finished RUNS/pk-NAME without training again")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    a = ap.parse_args()
    if a.table:
        print(table(a.table))
        return
    if not (a.src and a.name):
        ap.error("--src and --name are required (or --table LOG)")

    import torch

    torch.set_num_threads(a.threads)
    from fope.eval import load_model, passkey_eval
    from fope.train import ExperimentConfig, apply_overrides, train
    from fope.utils import keep_freed_memory

    keep_freed_memory()
    cfg = ExperimentConfig.from_yaml(f"{a.src}/config.yaml")
    start = [] if a.scratch else [f"train.init_from={a.src}/model", "train.reset_optimizer=true"]
    cfg = apply_overrides(cfg, [*start, "train.eval_every=0", "train.save_every=100000", *a.overrides])
    L = cfg.model.train_len
    out = Path(a.runs) / f"pk-{a.name}"
    load0 = os.getloadavg()[0]
    t0 = time.time()
    done = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    if a.reuse and done.get("finished"):
        summary = done
        t0 -= summary["tokens"] / summary["tokens_per_s"]  # the training time of the earlier run, from its summary
    else:
        shutil.rmtree(out, ignore_errors=True)
        summary = train(cfg, out)
    t1 = time.time()
    if not summary.get("finished"):
        raise SystemExit(f"pilot {a.name} stopped at step {summary.get('step')}: not logged")
    model = load_model(out)
    lengths = [int(float(f) * L) for f in a.factors.split(",")]
    res = passkey_eval(
        model, model.tokenizer, lengths, trials=a.trials, seed=0, mode="both", depths="uniform", progress=False
    )
    lik = (res.get("likelihood") or {}).get("top1", {}).get("by_length")
    rec = {
        "name": a.name,
        "src": a.src,
        "pe": cfg.model.pe,
        "overrides": a.overrides,
        "scratch": a.scratch,
        "train_s": round(t1 - t0, 1),
        "eval_s": round(time.time() - t1, 1),
        "load": round((load0 + os.getloadavg()[0]) / 2, 1),
        "trials": a.trials,
        "acc": res["by_length"],
        "lik_top1": lik,
        "digits_in_place": res["generate"]["digits_in_place"]["by_length"],
    }
    print(json.dumps(rec), flush=True)
    Path(a.log).parent.mkdir(parents=True, exist_ok=True)
    with open(a.log, "a") as f:
        f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
