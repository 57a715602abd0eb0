"""Zero-shot cost of each conversion preset (`fope.hf.convert.CONVERT_PRESETS`) at every length up to 2x the source's
trained context: the table in docs/huggingface.md, "Conversion presets to 2x the trained context".

    OMP_NUM_THREADS=1 nice -n 15 .venv/bin/python benchmarks/hf_conversion_context.py --model smollm2 \\
        --lengths 512,2048,8192,16384 --out runs/hf-conversion-context.json

Loads the source once, measures it, then converts it with each preset (seed 0) and measures again, in ONE process
on the SAME tokens (``--data`` val split; one chunk per length from the start of the stream, so every length reads
the first L tokens). Partial results are written after every row, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    from fope.hf.convert import CONVERT_PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--lengths", default="512,2048,8192,16384")
    parser.add_argument("--data", default="wiki")
    parser.add_argument(
        "--presets", default="keep-context,noise-only,preserving,release", help=f"comma list of {list(CONVERT_PRESETS)}"
    )
    parser.add_argument(
        "--sigma", type=float, default=None, help="override every preset's sigma (rows named NAME@sSIGMA)"
    )
    parser.add_argument("--no-source", action="store_true", help="skip the source row")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="JSON",
        help="print one table from earlier --out files (rows and lengths merged) and exit",
    )
    parser.add_argument("--out", default=None, help="also write the JSON here")
    args = parser.parse_args()
    if args.merge:
        print(format_table(merge([json.loads(Path(f).read_text()) for f in args.merge])))
        return

    import torch

    torch.set_num_threads(args.threads)
    from fope.eval.adapters import HFTokenizer
    from fope.eval.perplexity import tokens_from_corpus
    from fope.hf import convert, load, load_tokenizer
    from fope.hf.convert import preset_options
    from fope.reproduce.recovery import perplexities

    lengths = [int(x) for x in args.lengths.split(",")]
    presets = [p for p in args.presets.split(",") if p]
    for name in presets:
        preset_options(name)  # fail before the slow part
    tokens = tokens_from_corpus(
        args.data, HFTokenizer(load_tokenizer(args.model)), split="val", max_tokens=max(lengths) + 1
    )
    if len(tokens) < max(lengths) + 1:
        raise ValueError(f"corpus {args.data!r} val has {len(tokens)} tokens; need {max(lengths) + 1}")
    source = load(args.model)
    result = {
        "model": args.model,
        "data": args.data,
        "split": "val",
        "eval_tokens": len(tokens),
        "lengths": lengths,
        "max_chunks": 1,
        "rows": {},
    }

    def measure(name: str, model, options: dict) -> None:
        t0 = time.time()
        ppl = perplexities(model, tokens, lengths, max_chunks=1)
        result["rows"][name] = {
            "options": options,
            "ppl": {str(k): v for k, v in ppl.items()},
            "seconds": round(time.time() - t0, 1),
        }
        print(f"{name}: {result['rows'][name]}", flush=True)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(args.out).with_suffix(".tmp")
            tmp.write_text(json.dumps(result, indent=1))
            os.replace(tmp, args.out)

    if not args.no_source:
        measure("source", source, {})
    for name in presets:
        options = preset_options(name) if args.sigma is None else {**preset_options(name), "sigma": args.sigma}
        converted = convert(source, pe="fope", **options)
        cfg = converted.config
        row = name if args.sigma is None else f"{name}@s{args.sigma:g}"
        measure(
            row,
            converted,
            {
                **options,
                "pe_train_len": cfg.pe_train_len,
                "d_in": int(converted.model.layers[0].self_attn.pos_enc.cos_coef.shape[-2]),
            },
        )
        del converted
    print(format_table(result))


def merge(results: list[dict]) -> dict:
    """Rows of several runs (same model and data) in one result: rows with the same preset and σ merged (their ppl
    dicts united), lengths united."""
    out = {"lengths": sorted({n for r in results for n in r["lengths"]}), "rows": {}}
    for r in results:
        for name, row in r["rows"].items():
            base = name.split("@")[0]
            key = base if base == "source" else f"{base}@s{row['options'].get('sigma', 0.3):g}"
            merged = out["rows"].setdefault(key, {"options": row["options"], "ppl": {}})
            merged["ppl"].update(row["ppl"])
    return out


def format_table(result: dict) -> str:
    """Markdown table: ppl per length and the ratio to the source at each length (– where not measured)."""
    lengths = result["lengths"]
    if "source" not in result["rows"]:
        return ""
    src = result["rows"]["source"]["ppl"]

    def cell(row: dict, n: int) -> str:
        value, ref = row["ppl"].get(str(n)), src.get(str(n))
        if value is None:
            return "–"
        return f"{value:.2f}" + ("" if ref is None else f" (×{value / ref:.3f})")

    lines = [
        "| preset | σ | floor N' (D_in) | " + " | ".join(f"ppl @ {n} (× src)" for n in lengths) + " |",
        "|---|---|---|" + "---|" * len(lengths),
    ]
    for name, row in sorted(result["rows"].items(), key=lambda kv: kv[0] != "source"):  # source first
        o = row["options"]
        floor = (
            "–"
            if name == "source"
            else (
                f"{o.get('pe_train_len')} ({o.get('d_in')})" if o.get("clip_floor", True) else f"off ({o.get('d_in')})"
            )
        )
        sigma = "–" if name == "source" else f"{o.get('sigma', 0.3):g}"
        lines.append(f"| {name} | {sigma} | {floor} | " + " | ".join(cell(row, n) for n in lengths) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
