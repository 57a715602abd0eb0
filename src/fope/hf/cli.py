"""`fope hf ...`: the Hugging Face format (conversion, export) and fine-tuning.

    fope hf convert   --model (DIR|HUB_NAME|smollm2) --out DIR [--pe fope] [--preset keep-context] [--sigma 0.3]
                      [--train-len N | --floor-cycles C] [--rope-scaling yarn:2] [key=value ...]
    fope hf export    --model NATIVE_DIR --out DIR
    fope hf make-data --corpus wiki --out chat.jsonl [--n 2000]
    fope hf finetune  --model DIR --data (HUB_NAME|local.jsonl) --out DIR [--max-steps N] [--seq-len 4096] [--resume]

Moved (the old names still work and say so): `fope hf longbench` is `fope eval longbench`; `fope hf extend` and
`fope hf recovery` are `fope extend` and `fope recovery`.
"""

from __future__ import annotations

import argparse
import json
import math
from typing import Any

from fope.pos.options import KINDS
from fope.utils import add_field_flags, atomic_dir, parse_overrides, parse_value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "hf",
        help="Hugging Face format: convert, export, make-data, finetune",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="hf_command", metavar="HF_COMMAND")

    p = sub.add_parser("convert", help="convert a HF Llama-family model from RoPE to a fope position encoding")
    p.add_argument("--model", required=True, help="HF directory, hub name, or 'smollm2'")
    p.add_argument("--out", required=True)
    p.add_argument("--pe", default="fope", help=f"{' | '.join(KINDS)} (default fope)")
    p.add_argument("--sigma", type=float, help="FoPE coefficient noise gain (default 0.3)")
    p.add_argument("--train-len", type=int, help="FoPE floor length N (default: the source's context length)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", default=None, help="load dtype, e.g. bfloat16 (default: the checkpoint's)")
    p.add_argument("--preserving", action="store_true", help="same as --preset preserving")
    p.add_argument(
        "--preset",
        default=None,
        help="conversion recipe (fope.hf.convert.CONVERT_PRESETS): release | preserving | keep-context | "
        "noise-only | rope-exact; docs/huggingface.md measures each to 2x the trained context; "
        "key=value items override",
    )
    p.add_argument(
        "--floor-cycles",
        type=float,
        default=None,
        help="FoPE floor: clip the frequencies completing fewer than this many periods over the source's "
        "context (1 = the paper's floor; keep-context uses 1/16)",
    )
    p.add_argument(
        "--rope-scaling",
        default=None,
        help="frequency scaling of the new model: yarn:2, linear:2 (pi), dynamic:2, ntk:2, none, or an HF "
        "rope_parameters JSON dict",
    )
    p.add_argument("options", nargs="*", metavar="key=value", help="more pe options, e.g. out_dim=full pad=zero")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("export", help="export a native fope model directory to the HF format")
    p.add_argument(
        "--model",
        required=True,
        help="fope model directory or training run directory (--format engines: also a HF "
        "FoPE directory, e.g. from `fope hf convert`)",
    )
    p.add_argument("--out", required=True)
    p.add_argument(
        "--format",
        choices=("fope", "engines"),
        default="fope",
        help="fope: FopeForCausalLM with remote code (default); engines: a Llama/Qwen2/Qwen3 checkpoint in the "
        "serving engines' FoPE format (vLLM, SGLang, lmdeploy; fope.hf.engines), the pad recorded",
    )
    p.add_argument(
        "--layout",
        choices=("layers", "model"),
        default="layers",
        help="--format engines: coefficients per layer (default) or one model-level set (Intern-S1-Pro's layout; "
        "every layer's coefficients must be equal)",
    )
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
    p.add_argument(
        "--allow-config-change",
        action="store_true",
        help="with --resume: accept settings that differ from the checkpoint's (restarts the schedule)",
    )
    p.add_argument("--no-progress", action="store_true")
    from .finetune import FinetuneConfig

    add_field_flags(p, FinetuneConfig)
    p.set_defaults(func=cmd_finetune)

    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def _dtype(name: str | None):
    if name is None:
        return None
    import torch

    if not isinstance(getattr(torch, name, None), torch.dtype):
        raise ValueError(f"unknown dtype {name!r}; use float32, bfloat16 or float16")
    return getattr(torch, name)


def cmd_convert(args: argparse.Namespace) -> int:
    from .convert import SOURCE_MODEL_TYPES, check_convert_options, convert, parse_rope_scaling, preset_options
    from .io import load, load_tokenizer, save

    options = {key: parse_value(value) for key, value in parse_overrides(args.options).items()}  # fope.utils' spelling
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
    if args.train_len is not None and args.train_len < 1:
        raise ValueError(f"--train-len must be a positive number of tokens, got {args.train_len}")
    if args.sigma is not None and not (math.isfinite(args.sigma) and args.sigma >= 0):
        raise ValueError(f"--sigma must be a finite number >= 0, got {args.sigma}")
    floor_cycles = options.pop("floor_cycles", None)
    check_convert_options(args.pe, options, train_len=args.train_len, floor_cycles=floor_cycles)
    if floor_cycles is not None:
        options["floor_cycles"] = floor_cycles
    model = load(args.model, dtype=_dtype(args.dtype), model_types=SOURCE_MODEL_TYPES, what="fope hf convert")
    converted = convert(model, pe=args.pe, train_len=args.train_len, seed=args.seed, rope_scaling=scaling, **options)
    with atomic_dir(args.out) as tmp:  # Ctrl-C or a full disk while saving leaves no half-written model at OUT
        save(converted, tmp, tokenizer=_maybe_tokenizer(args.model, load_tokenizer))
    cfg = converted.config
    print(
        f"wrote {args.out}: pe={cfg.pe} options={cfg.pe_options} pe_train_len={cfg.pe_train_len} "
        f"rope_parameters={cfg.rope_parameters}"
    )
    return 0


def _maybe_tokenizer(model: str, loader) -> Any:
    try:
        return loader(model)
    except (OSError, ValueError) as e:
        print(f"note: no tokenizer saved ({e})")
        return None


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export

    if args.format == "engines":
        from .export import export_engines

        out = export_engines(args.model, args.out, layout=args.layout)
    else:
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
    summary = finetune(
        load(args.model),
        load_tokenizer(args.model),
        args.data,
        args.out,
        resume=args.resume,
        progress=not args.no_progress,
        allow_config_change=args.allow_config_change,
        **options,
    )
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=1))
    return 0
