"""`fope hf ...`: Hugging Face conversion, export, fine-tuning, LongBench and the conversion-recovery experiment.

    fope hf convert   --model (DIR|HUB_NAME|smollm2) --out DIR [--pe fope] [--preset keep-context] [--sigma 0.3]
                      [--train-len N | --floor-cycles C] [--rope-scaling yarn:2] [key=value ...]
    fope hf export    --model NATIVE_DIR --out DIR
    fope hf make-data --corpus wiki --out chat.jsonl [--n 2000]
    fope hf finetune  --model DIR --data (HUB_NAME|local.jsonl) --out DIR [--max-steps N] [--seq-len 4096] [--resume]
    fope hf longbench --model DIR [--tasks gov_report,trec,...] [--limit N] [--include-path DIR]
    fope hf extend    --model RoPE_MODEL --out DIR [--preset cpu|gpu] [--methods fope,yarn,pi,none]
    fope hf recovery  --model smollm2 --out DIR [--steps 60] [--seq-len 512]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def parse_value(text: str) -> Any:
    """CLI value: JSON when it parses (numbers, true/false, null, lists, dicts), else the raw string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        lowered = text.lower()
        return {"true": True, "false": False, "none": None}.get(lowered, text)


def parse_options(items: list[str]) -> dict[str, Any]:
    """["sigma=0.3", "out_dim=full"] -> {"sigma": 0.3, "out_dim": "full"}; a malformed item raises naming it."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {item!r}")
        out[key.replace("-", "_")] = parse_value(value)
    return out


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("hf", help="Hugging Face integration (convert, export, finetune, longbench)",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="hf_command", metavar="HF_COMMAND")

    p = sub.add_parser("convert", help="convert a HF Llama-family model from RoPE to a fope position encoding")
    p.add_argument("--model", required=True, help="HF directory, hub name, or 'smollm2'")
    p.add_argument("--out", required=True)
    p.add_argument("--pe", default="fope", help="fope | rope | nope | alibi | kerple (default fope)")
    p.add_argument("--sigma", type=float, help="FoPE coefficient noise gain (default 0.3)")
    p.add_argument("--train-len", type=int, help="FoPE floor length N (default: the source's context length)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default=None, help="load dtype, e.g. bfloat16 (default: the checkpoint's)")
    p.add_argument("--preserving", action="store_true", help="same as --preset preserving")
    p.add_argument("--preset", default=None,
                   help="conversion recipe (fope.hf.convert.PRESETS): release | preserving | keep-context | "
                        "noise-only | rope-exact; docs/huggingface.md measures each to 2x the trained context; "
                        "key=value items override")
    p.add_argument("--floor-cycles", type=float, default=None,
                   help="FoPE floor: clip the frequencies completing fewer than this many periods over the source's "
                        "context (1 = the paper's floor; keep-context uses 1/16)")
    p.add_argument("--rope-scaling", default=None,
                   help="frequency scaling of the new model: yarn:2, linear:2 (pi), dynamic:2, ntk:2, none, or an HF "
                        "rope_parameters JSON dict")
    p.add_argument("options", nargs="*", metavar="key=value", help="more pe options, e.g. out_dim=full pad=zero")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="export a native fope model directory to the HF format")
    p.add_argument("--model", required=True, help="fope model directory or training run directory")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("make-data", help="write stand-in chat JSONL from a fope.data corpus (offline)")
    p.add_argument("--corpus", default="wiki")
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--split", default="train")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_make_data)

    p = sub.add_parser("finetune", help="SFT with the paper's recipe (AdamW 3e-4, cosine, warmup 0.1, 1 epoch)")
    p.add_argument("--model", required=True, help="HF directory (e.g. from `fope hf convert`) or 'smollm2'")
    p.add_argument("--data", required=True, help="local .jsonl of {'messages': [...]} or a HF dataset name")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true", help="continue the run in OUT exactly (OUT/checkpoint)")
    p.add_argument("--allow-config-change", action="store_true",
                   help="with --resume: accept settings that differ from the checkpoint's (restarts the schedule)")
    p.add_argument("--no-progress", action="store_true")
    for name, typ, default in (("seq-len", int, 4096), ("batch-size", int, 1), ("grad-accum", int, 1),
                               ("lr", float, 3e-4), ("warmup-ratio", float, 0.1), ("weight-decay", float, 0.0),
                               ("epochs", int, 1), ("max-steps", int, None), ("max-examples", int, None),
                               ("save-every", int, 100), ("seed", int, 0)):
        p.add_argument(f"--{name}", type=typ, default=default)
    p.add_argument("--loss-on", choices=("assistant", "all"), default="assistant")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("longbench", help="LongBench-E (lm-eval's tasks and metrics) with length buckets")
    p.add_argument("--model", required=True, help="HF directory or hub name")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="allow the model directory's own Python code (auto_map) to run; off by default "
                        "(FoPE directories do not need it)")
    p.add_argument("--tasks", default=None, help="comma list: gov_report,multi_news,trec,triviaqa,samsum (default)")
    p.add_argument("--limit", type=float, default=None, help="samples per task (int) or fraction")
    p.add_argument("--include-path", default=None, help="extra lm-eval task YAML folder")
    p.add_argument("--data-dir", default=None,
                   help="local LongBench data: a folder of the HF dataset's JSONL files (trec_e.jsonl, ...), offline")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-length", type=int, default=None, help="truncate prompts to this many tokens")
    p.add_argument("--chat-template", action="store_true", help="apply the tokenizer's chat template")
    p.add_argument("--out", default=None, help="write the JSON summary here")
    p.set_defaults(func=cmd_longbench)

    p = sub.add_parser("extend", help="context extension: FoPE vs YaRN vs PI vs none, same data and steps")
    p.add_argument("--model", required=True, help="RoPE model: HF dir, hub name, smollm2, or native fope model/run dir")
    p.add_argument("--out", required=True)
    p.add_argument("--preset", default="cpu", help="cpu (a cpu-tiny RoPE model, minutes) | gpu (SmolLM2-135M)")
    p.add_argument("--methods", default="fope,yarn,pi,none")
    p.add_argument("--device", default="cpu")
    for name, typ in (("factor", int), ("steps", int), ("lr", float), ("n-examples", int), ("corpus", str),
                      ("max-chunks", int), ("passkey-trials", int), ("fope-preset", str), ("seed", int)):
        p.add_argument(f"--{name}", type=typ, default=None, help="override the preset's value")
    p.set_defaults(func=cmd_extend)

    p = sub.add_parser("recovery", help="perplexity before/after conversion and after a short fine-tune")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--pe", default="fope")
    p.add_argument("--train-len", type=int, default=None)
    p.add_argument("--lengths", default="256,512,1024")
    p.add_argument("--data", default="wiki")
    p.add_argument("--max-chunks", type=int, default=4)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--n-examples", type=int, default=2000)
    p.add_argument("options", nargs="*", metavar="key=value", help="pe options, e.g. sigma=0.3")
    p.set_defaults(func=cmd_recovery)

    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _dtype(name: str | None):
    if name is None:
        return None
    import torch

    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ValueError(f"unknown dtype {name!r}; use float32, bfloat16 or float16")
    return getattr(torch, name)


def cmd_convert(args: argparse.Namespace) -> int:
    from .convert import convert, parse_rope_scaling, preset_options
    from .io import load, load_tokenizer, save

    options = parse_options(args.options)
    preset = "preserving" if args.preserving else args.preset
    if args.preserving and args.preset not in (None, "preserving"):
        raise ValueError(f"--preserving conflicts with --preset {args.preset}")
    if preset is not None:
        if args.pe != "fope":
            raise ValueError(f"--preset {preset} applies to --pe fope only, got --pe {args.pe}")
        options = {**preset_options(preset), **options}
    if args.floor_cycles is not None:
        options["floor_cycles"] = args.floor_cycles
    if args.sigma is not None:
        options["sigma"] = args.sigma
    scaling = parse_rope_scaling(args.rope_scaling)  # bad input fails before the (slow) load
    model = load(args.model, dtype=_dtype(args.dtype))
    converted = convert(model, pe=args.pe, train_len=args.train_len, seed=args.seed, rope_scaling=scaling, **options)
    save(converted, args.out, tokenizer=_maybe_tokenizer(args.model, load_tokenizer))
    cfg = converted.config
    print(f"wrote {args.out}: pe={cfg.pe} options={cfg.pe_options} pe_train_len={cfg.pe_train_len} "
          f"rope_parameters={cfg.rope_parameters}")
    return 0


def _maybe_tokenizer(model: str, loader) -> Any:
    try:
        return loader(model)
    except (OSError, ValueError) as e:
        print(f"note: no tokenizer saved ({e})")
        return None


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export

    out = export(args.model, args.out)
    print(f"wrote {out}")
    return 0


def cmd_make_data(args: argparse.Namespace) -> int:
    from .finetune import make_chat_data

    out = make_chat_data(args.out, corpus=args.corpus, n=args.n, split=args.split, seed=args.seed)
    print(f"wrote {out}")
    return 0


def cmd_finetune(args: argparse.Namespace) -> int:
    from .finetune import FinetuneConfig, finetune
    from .io import load, load_tokenizer

    options = {k: getattr(args, k) for k in FinetuneConfig.__dataclass_fields__ if hasattr(args, k)}
    summary = finetune(load(args.model), load_tokenizer(args.model), args.data, args.out, resume=args.resume,
                       progress=not args.no_progress, allow_config_change=args.allow_config_change, **options)
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=1))
    return 0


def cmd_longbench(args: argparse.Namespace) -> int:
    from . import lmeval

    tasks = lmeval.resolve_tasks(args.tasks.split(",") if args.tasks else None)
    limit = int(args.limit) if args.limit is not None and args.limit >= 1 else args.limit
    results = lmeval.run(args.model, tasks, limit=limit, include_path=args.include_path, batch_size=args.batch_size,
                         device=args.device, max_length=args.max_length, apply_chat_template=args.chat_template,
                         trust_remote_code=args.trust_remote_code, data_dir=args.data_dir)
    summary = lmeval.summary(results)
    text = json.dumps(summary["by_bucket"], indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(summary, indent=1))
    return 0


def cmd_recovery(args: argparse.Namespace) -> int:
    from .recovery import recovery

    lengths = [int(x) for x in args.lengths.split(",")]
    recovery(args.model, args.out, pe=args.pe, pe_options=parse_options(args.options), train_len=args.train_len,
             lengths=lengths, data=args.data, max_chunks=args.max_chunks, steps=args.steps, seq_len=args.seq_len,
             n_examples=args.n_examples)
    return 0


def cmd_extend(args: argparse.Namespace) -> int:
    from .extend import extend, format_table

    names = ("factor", "steps", "lr", "n_examples", "corpus", "max_chunks", "passkey_trials", "fope_preset", "seed")
    overrides = {k: getattr(args, k) for k in names if getattr(args, k) is not None}
    result = extend(args.model, args.out, methods=args.methods.split(","), preset=args.preset, device=args.device,
                    **overrides)
    print(format_table(result))
    return 0
