"""Zero-shot cost of converting a pretrained RoPE model to FoPE, per FoPE option set (no training).

Loads the model once, measures the source's perplexity, then converts it with each option set and measures
again, all in ONE process on the SAME evaluation tokens as `fope.reproduce.recovery` (``wiki`` val, chunks of each
length, ``max_chunks`` chunks per length). Prints a table, then one JSON line (also written to ``--out``).

    .venv/bin/python benchmarks/hf_conversion_options.py --model smollm2 --lengths 256,512,1024 --max-chunks 4 \
        --threads 1 --out runs/hf-conversion-options.json

Option sets (all ``pe="fope"``, floor length = the source's context, seed 0):
    release       the authors' defaults: sigma 0.3, out_dim "cap" (D_out = min(D_in, d_h/4)), pad "one"
    full          sigma 0.3, out_dim "full" (D_out = D_in: each kept frequency on its own pair), pad "one"
    full_zero     sigma 0.3, out_dim "full", pad "zero" (= fope.hf.CONVERT_PRESERVING)
    floor_only    sigma 0, out_dim "full", pad "zero": the pure clip floor (no Fourier mixing)
    rope_exact    sigma 0, clip_floor off, out_dim "full" (fope.hf.ROPE_REDUCTION): must equal the source
    cap_zero      sigma 0.3, out_dim "cap", pad "zero": the release's cap + step-eye alone
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

OPTION_SETS: dict[str, dict] = {  # measured in this order (the most informative first)
    "full_zero": {"sigma": 0.3, "out_dim": "full", "pad": "zero"},
    "floor_only": {"sigma": 0.0, "out_dim": "full", "pad": "zero"},
    "full": {"sigma": 0.3, "out_dim": "full"},
    "rope_exact": {"sigma": 0.0, "clip_floor": False, "out_dim": "full"},
    "release": {"sigma": 0.3},
    "cap_zero": {"sigma": 0.3, "pad": "zero"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--lengths", default="256,512,1024")
    parser.add_argument("--max-chunks", type=int, default=4)
    parser.add_argument("--data", default="wiki")
    parser.add_argument("--sets", default=",".join(OPTION_SETS), help=f"comma list of {list(OPTION_SETS)}")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from fope.eval.adapters import HFTokenizer
    from fope.eval.perplexity import tokens_from_corpus
    from fope.hf import convert, load, load_tokenizer
    from fope.reproduce.recovery import perplexities

    lengths = [int(x) for x in args.lengths.split(",")]
    sets = args.sets.split(",")
    unknown = [s for s in sets if s not in OPTION_SETS]
    if unknown:
        raise ValueError(f"unknown option set(s) {unknown}; choose from {list(OPTION_SETS)}")
    # identical to fope.reproduce.recovery.recovery's evaluation tokens
    tokens = tokens_from_corpus(
        args.data, HFTokenizer(load_tokenizer(args.model)), split="val", max_tokens=max(lengths) * args.max_chunks + 1
    )
    source = load(args.model)
    rows: dict[str, dict] = {}

    def measure(name: str, model, options: dict) -> None:
        t0 = time.time()
        ppl = perplexities(model, tokens, lengths, max_chunks=args.max_chunks)
        rows[name] = {
            "options": options,
            "ppl": {str(k): v for k, v in ppl.items()},
            "seconds": round(time.time() - t0, 1),
        }
        print(f"{name}: {rows[name]}", flush=True)
        if args.out:  # partial results survive an interrupted run
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps({"rows": rows}, indent=1))

    measure("source", source, {})
    for name in sets:
        converted = convert(source, pe="fope", **OPTION_SETS[name])
        measure(name, converted, {**OPTION_SETS[name], "pe_train_len": converted.config.pe_train_len})
        del converted

    src = rows["source"]["ppl"]
    print("\n| option set | options | " + " | ".join(f"ppl @ {n}" for n in lengths) + " | ln-ppl gap @ max |")
    print("|---|---|" + "---|" * len(lengths) + "---|")
    for name, row in rows.items():
        cells = " | ".join(f"{row['ppl'][str(n)]:.2f}" for n in lengths)
        gap = math.log(row["ppl"][str(lengths[-1])]) - math.log(src[str(lengths[-1])])
        print(f"| {name} | {json.dumps(row['options'])} | {cells} | {gap:+.3f} |")
    result = {
        "model": args.model,
        "data": args.data,
        "split": "val",
        "eval_tokens": len(tokens),
        "lengths": lengths,
        "max_chunks": args.max_chunks,
        "rows": rows,
    }
    line = json.dumps(result)
    print(line)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
