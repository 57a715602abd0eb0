"""Pilot sweep for the CPU reproduction presets: where does RoPE start to degrade beyond its training length?

Each pilot trains the given position encodings (fope.train, the `cpu-tiny` preset plus dotted overrides) and
measures perplexity on the books validation split at L..16L (fope.eval, non-overlapping chunks, the same tokens
at every length), appending one JSON line per run to ``--log``. ``--table`` renders the log as the Markdown table
of docs/reproduce.md (nothing in that table is typed by hand).

    python benchmarks/pilot_sweep.py --name s800b32 --pes rope,fope model.train_len=128 train.max_steps=800 \\
        train.global_batch=32 train.micro_batch=32 train.lr=2e-3 data.tokenizer=train:2048 model.vocab_size=2048
    python benchmarks/pilot_sweep.py --table docs/results/pilots/pilots.jsonl

Wall times depend on the machine's load: the log records the load average next to each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path


def run(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from fope.utils import keep_freed_memory

    kept = keep_freed_memory()  # as the fope CLI and the grid's workers do
    from fope.eval import load_model
    from fope.eval.perplexity import perplexity_report, tokens_from_corpus
    from fope.train import apply_overrides, load_preset, train

    base = load_preset(args.base)
    for pe in args.pes.split(","):
        ov = [
            "train.eval_every=0",
            "train.save_every=100000",
            "data.eval_corpora=[]",
            f"model.pe={pe}",
            "model.pe_options={sigma: 0.3}" if pe == "fope" else "model.pe_options={}",
            *args.overrides,
        ]
        cfg = apply_overrides(base, ov)
        L = cfg.model.train_len
        out = Path(args.runs) / f"{args.name}-{pe}"
        shutil.rmtree(out, ignore_errors=True)
        load0 = os.getloadavg()[0]
        t0 = time.time()
        summary = train(cfg, out)
        t1 = time.time()
        if not summary.get("finished"):  # stopped by a signal: no row for a partly trained model
            raise SystemExit(f"pilot {args.name}/{pe} stopped at step {summary.get('step')}: not logged")
        model = load_model(out)
        lengths = [int(float(f) * L) for f in args.factors.split(",")]
        n = args.eval_tokens or 2 * max(lengths)
        stream = tokens_from_corpus("books", model.tokenizer, split="val", max_tokens=n + 1)[:n]
        ppl = {}
        for length in lengths:
            rep = perplexity_report(
                model, stream, [length], mode="chunks", batch_size=max(1, 16384 // length), progress=False
            )
            ppl[length] = round(rep[length].ppl, 2)
        rec = {
            "name": args.name,
            "pe": pe,
            "overrides": args.overrides,
            "train_s": round(t1 - t0, 1),
            "eval_s": round(time.time() - t1, 1),
            "load": round((load0 + os.getloadavg()[0]) / 2, 1),
            "threads": args.threads,
            "ppl": ppl,
            "ratio": {k: round(v / ppl[L], 3) for k, v in ppl.items()},
            "final_loss": summary.get("final_loss"),
            "keep_freed_memory": kept,
            "tokens": cfg.train.max_steps * cfg.train.global_batch * L,
        }
        print(json.dumps(rec), flush=True)
        with open(args.log, "a") as f:
            f.write(json.dumps(rec) + "\n")


#: the sweep's vocabulary (2048), left out of the table's override column; any other vocabulary is shown
DEFAULT_VOCAB = ("data.tokenizer=train:2048", "model.vocab_size=2048")


def table(path: str) -> str:
    """The pilot log as a Markdown table: configuration, tokens, wall time, ppl(L), ppl(16L)/ppl(L), ppl(4L)/ppl(L).

    † marks runs with `fope.utils.keep_freed_memory` (about 1.4x faster on this model; the numbers are unchanged).
    """
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    out = [
        "| pilot | PE | overrides (on `cpu-tiny`) | tokens | train s (load) | ppl(L) | ppl(4L)/ppl(L) | "
        "ppl(16L)/ppl(L) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ppl = {int(k): v for k, v in r["ppl"].items()}
        ratio = {int(k): v for k, v in r["ratio"].items()}
        L = min(ppl)
        ov = " ".join(o for o in r["overrides"] if o not in DEFAULT_VOCAB)
        load = f" (load {r['load']}, {r.get('threads', 1)} thr)" if "load" in r else ""
        load += " †" if r.get("keep_freed_memory") else ""
        out.append(
            f"| {r['name']} | {r['pe']} | `{ov}` | {r['tokens'] / 1e6:.2f}M | {r['train_s']:.0f}{load} | "
            f"{ppl[L]:.1f} | {ratio.get(4 * L, float('nan')):.3f} | {ratio.get(16 * L, float('nan')):.3f} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--table", metavar="LOG", help="print the Markdown table of a pilot log and exit")
    ap.add_argument("--name", help="pilot name (run directories are RUNS/NAME-PE)")
    ap.add_argument("--pes", default="rope,fope")
    ap.add_argument("--base", default="cpu-tiny", help="fope.train preset the overrides apply to")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--eval-tokens", type=int, default=32768, help="tokens scored per length")
    ap.add_argument("--factors", default="1,2,4,8,16", help="evaluation lengths as multiples of L")
    ap.add_argument("--runs", default="runs/pilots")
    ap.add_argument("--log", default="runs/pilots/pilots.jsonl")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    args = ap.parse_args()
    if args.table:
        print(table(args.table))
        return
    if not args.name:
        ap.error("--name is required")
    Path(args.runs).mkdir(parents=True, exist_ok=True)
    run(args)


if __name__ == "__main__":
    main()
