"""`fope eval ...`: perplexity against length, passkey retrieval, plots, LongBench and the paper's downstream tables.
Prints tables, saves JSON.

fope eval ppl --model runs/small-fope --data wiki --lengths 512,1024,2048,4096,8192 --json ppl.json
fope eval ppl --model runs/small-fope --data shards/books --mode sliding --stride 256 --max-tokens 65536
fope eval passkey --model runs/small-fope --lengths 512,1024,2048 --trials 50 --seed 0 --likelihood --json pk.json
fope eval ruler --model smollm2 --lengths 1k,2k,4k,8k --samples 20 --seed 0 --json ruler.json
fope eval plot ppl.json pk.json other-ppl.json --out fig1.png [--heatmap]
fope eval longbench --model DIR [--tasks gov_report,trec,...] [--limit N] [--data-dir DIR] [--out lb.json]
fope eval downstream --model DIR [--tables 4,5,6] [--limit 200] [--data-dir local/] [--json report.json]
"""

from __future__ import annotations

import argparse
import sys

from fope.utils import parse_lengths  # the one lengths parser (re-exported here for the eval CLI's users)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate models: perplexity, passkey, plots, LongBench, downstream tables",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="eval_command", metavar="EVAL")

    ppl = sub.add_parser("ppl", help="perplexity against evaluation length")
    _model_args(ppl)
    ppl.add_argument(
        "--data", required=True, help="corpus name (books, wiki, c4, ...), shard folder, .bin/.npy, .txt or folder"
    )
    ppl.add_argument("--split", default="val", help="split of a corpus or shard folder (default: val)")
    ppl.add_argument("--mode", choices=("chunks", "sliding"), default="chunks")
    ppl.add_argument("--stride", type=int, default=None, help="sliding mode: stride S (default L/2)")
    ppl.add_argument("--max-tokens", type=int, default=None, help="token budget, the same for every length")
    ppl.add_argument("--max-chunks", type=int, default=None, help="token budget as chunks of the largest length")
    ppl.add_argument("--batch-size", type=int, default=1)
    ppl.set_defaults(func=run_ppl)

    pk = sub.add_parser("passkey", help="passkey retrieval accuracy (docs/paper.md §4.5)")
    _model_args(pk)
    pk.add_argument("--trials", type=int, default=100, help="trials per length (per length and depth with a grid)")
    pk.add_argument("--seed", type=int, default=0)
    pk.add_argument(
        "--depths", default="uniform", type=_depths, help="uniform | grid | comma-separated depths in [0, 1]"
    )
    pk.add_argument(
        "--likelihood", action="store_true", help="also score the key against distractors by log-probability"
    )
    pk.add_argument("--likelihood-only", action="store_true", help="only the likelihood score (no generation)")
    pk.add_argument("--distractors", type=int, default=9, help="distractor keys per trial for --likelihood")
    pk.add_argument("--max-new-tokens", type=int, default=10)
    pk.add_argument(
        "--train-len",
        type=int,
        default=None,
        help="L: also split generation by whether the needle is closer to the question than L tokens "
        "(default: a fope model's train_len; none for Hugging Face models)",
    )
    pk.set_defaults(func=run_passkey)

    ru = sub.add_parser("ruler", help="RULER's 13 tasks, generated offline and scored as RULER scores them")
    _model_args(ru)
    ru.add_argument("--tasks", default=None, help="comma-separated RULER tasks (default: all 13)")
    ru.add_argument("--samples", type=int, default=20, help="samples per task and length (RULER: 500)")
    ru.add_argument("--seed", type=int, default=0)
    ru.add_argument("--data-dir", default=None, help="folder with squad.json (SQuAD v2 dev) and hotpotqa.json")
    ru.set_defaults(func=run_ruler)

    pl = sub.add_parser("plot", help="plot result files (PNG)")
    pl.add_argument("results", nargs="+", help="result JSON files of `fope eval ppl/passkey`")
    pl.add_argument("--out", required=True, help="PNG file")
    pl.add_argument("--heatmap", action="store_true", help="passkey length x depth heatmap instead of the curves")
    pl.add_argument("--labels", default=None, help="comma-separated legend labels, one per result file")
    pl.add_argument("--title", default=None)
    pl.set_defaults(func=run_plot)
    lb = sub.add_parser(
        "longbench", help="LongBench(-E) through lm-eval, generated and scored as LongBench's pred.py/eval.py"
    )
    lb.add_argument("--model", required=True, help="HF directory, hub name, smollm2, or a native fope model/run dir")
    lb.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model directory's own Python code (auto_map) to run; off by default "
        "(FoPE directories do not need it)",
    )
    lb.add_argument(
        "--tasks",
        default=None,
        help="comma list of LongBench datasets (LongBench-E where it exists: trec = longbench_trec_e) or lm-eval "
        "task names; default gov_report,multi_news,trec,triviaqa,samsum",
    )
    lb.add_argument("--limit", type=float, default=None, help="samples per task (int) or fraction")
    lb.add_argument("--include-path", default=None, help="extra lm-eval task YAML folder")
    lb.add_argument(
        "--data-dir",
        default=None,
        help="local LongBench data: a folder of the HF dataset's JSONL files (trec_e.jsonl, ...), offline",
    )
    lb.add_argument("--batch-size", type=int, default=1)
    lb.add_argument(
        "--bootstrap-iters", type=int, default=100000, help="lm-eval's resamples for the stderr column (0: none)"
    )
    lb.add_argument("--device", default="cpu")
    lb.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="prompt + generation budget in tokens (default: the model's context); longer prompts are cut in the "
        "middle, as LongBench's pred.py does",
    )
    lb.add_argument(
        "--chat-template",
        action="store_true",
        help="apply the tokenizer's chat template to the tasks LongBench's pred.py wraps (not trec, triviaqa, "
        "samsum, lsht, lcc, repobench-p)",
    )
    lb.add_argument(
        "--out",
        "--json",
        dest="out",
        default=None,
        help="write the JSON here: lm-eval's results/versions/n-shot/configs, the length buckets, the predictions",
    )
    lb.set_defaults(func=run_longbench)

    ds = sub.add_parser("downstream", help="the paper's Tables 4-6 through lm-eval, paper numbers beside ours")
    ds.add_argument("--model", required=True, help="HF model dir, hub name, smollm2, or a native fope model/run dir")
    ds.add_argument("--tables", default="4,5,6", help="comma list of 4 (accuracy), 5 (gold-answer NLL), 6 (MMLU)")
    ds.add_argument("--tasks", default=None, help="comma list of lm-eval task names to restrict to")
    ds.add_argument("--data-dir", default=None, help="offline: <task>.jsonl files in the HF datasets' row format")
    ds.add_argument("--limit", type=float, default=None, help="documents per task (int) or fraction")
    ds.add_argument("--batch-size", type=int, default=1)
    ds.add_argument(
        "--bootstrap-iters", type=int, default=100000, help="lm-eval's resamples for the stderr column (0: none)"
    )
    ds.add_argument("--device", default="cpu")
    ds.add_argument(
        "--json",
        "--out",
        dest="json",
        default=None,
        help="write the JSON here: lm-eval's results/versions/n-shot/configs, the tables, Table 5's answers",
    )
    ds.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the model directory's own Python code (auto_map) to run; off by default",
    )
    ds.set_defaults(func=run_downstream)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, help="fope model dir, fope run dir, HF model dir, hub name or smollm2")
    p.add_argument("--lengths", required=True, type=parse_lengths, help="comma-separated lengths, e.g. 512,1k,2k")
    p.add_argument("--tokenizer", default=None, help="tokenizer.json / folder / hub name (default: the model's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default=None, choices=("float32", "bfloat16", "float16"), help="HF models only")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow a HF model directory's own Python code (auto_map) to run; off by default "
        "(fope's HF exports load without it)",
    )
    p.add_argument(
        "--rope-scaling",
        default=None,
        help="HF models: frequency scaling set before loading, e.g. yarn:2, linear:2, dynamic:2, ntk:2 or "
        "an HF rope_parameters JSON dict",
    )
    p.add_argument("--json", default=None, help="write the result here")
    p.add_argument("--no-progress", action="store_true")


def _load(args):
    from fope.eval.loader import load_model

    model = load_model(
        args.model,
        device=args.device,
        dtype=args.dtype,
        trust_remote_code=args.trust_remote_code,
        rope_scaling=args.rope_scaling,
    )
    tok = model.tokenizer
    if args.tokenizer is not None:
        from fope.data import load_tokenizer

        tok = load_tokenizer(args.tokenizer)
    return model, tok


def run_ppl(args) -> int:
    from fope.eval.perplexity import load_eval_tokens, perplexity_report
    from fope.eval.results import ppl_result, save_result

    model, tok = _load(args)
    budget = args.max_tokens if args.max_chunks is None else args.max_chunks * max(args.lengths)
    tokens = load_eval_tokens(args.data, tok, split=args.split, max_tokens=budget)
    report = perplexity_report(
        model,
        tokens,
        args.lengths,
        mode=args.mode,
        batch_size=args.batch_size,
        max_chunks=args.max_chunks,
        max_tokens=args.max_tokens,
        stride=args.stride,
        progress=not args.no_progress,
    )
    result = ppl_result(
        model.describe(),
        report,
        data=str(args.data),
        split=args.split,
        tokenizer=args.tokenizer,
        mode=args.mode,
        stride=args.stride,
        max_tokens=args.max_tokens,
        max_chunks=args.max_chunks,
        batch_size=args.batch_size,
        stream_tokens=len(tokens),
    )
    print(f"{'length':>8} {'ppl':>12} {'mean CE':>9} {'tokens':>10} {'windows':>8}")
    for L, r in report.items():
        print(f"{L:>8} {r.ppl:>12.3f} {r.mean_ce:>9.4f} {r.n_tokens:>10} {r.n_windows:>8}")
    if args.json:
        print(f"wrote {save_result(result, args.json)}", file=sys.stderr)
    return 0


def _depths(text: str) -> str | list[float]:
    """``--depths``: ``uniform``, ``grid`` or comma-separated needle depths in [0, 1] (checked before any work)."""
    if text in ("uniform", "grid"):
        return text
    try:
        depths = [float(d) for d in text.split(",") if d.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not uniform, grid or comma-separated numbers in [0, 1]"
        ) from None
    bad = [d for d in depths if not 0.0 <= d <= 1.0]
    if not depths or bad:
        raise argparse.ArgumentTypeError(
            f"{text!r}: needle depths are numbers in [0, 1]" + (f", got {bad[0]}" if bad else "")
        )
    return depths


def run_passkey(args) -> int:
    from fope.eval.passkey import distance_counts, passkey_eval
    from fope.eval.results import passkey_result, save_result

    model, tok = _load(args)
    if tok is None:
        raise ValueError(f"model {args.model} has no tokenizer; pass --tokenizer")
    if args.train_len is not None and args.train_len < 1:
        raise ValueError(f"--train-len must be a positive number of tokens, got {args.train_len}")
    train_len = args.train_len or getattr(getattr(getattr(model, "model", None), "config", None), "train_len", None)
    mode = "likelihood" if args.likelihood_only else ("both" if args.likelihood else "generate")
    depths = args.depths
    res = passkey_eval(
        model,
        tok,
        args.lengths,
        trials=args.trials,
        seed=args.seed,
        depths=depths,
        mode=mode,
        n_distractors=args.distractors,
        max_new_tokens=args.max_new_tokens,
        progress=not args.no_progress,
    )
    result = passkey_result(
        model.describe(),
        res,
        args.lengths,
        tokenizer=args.tokenizer,
        trials=args.trials,
        seed=args.seed,
        depths=depths,
        mode=mode,
        n_distractors=args.distractors,
        max_new_tokens=args.max_new_tokens,
    )
    lik = res["likelihood"]
    split = distance_counts(res["trials"], int(train_len)) if train_len and res["generate"] else None
    if split is not None:
        result["needle_distance_split"] = {"train_len": int(train_len), "by_length": split}
    head = f"{'length':>8} {'n_garbage':>9}" + (f" {'accuracy':>9}" if res["generate"] else "")
    head += f" {f'< {train_len}':>9} {f'>= {train_len}':>9}" if split is not None else ""
    print(head + (f" {'top1':>6} {'MRR':>6} {'margin':>8}" if lik else ""))
    for L in args.lengths:
        line = f"{L:>8} {res['n_garbage'][L]:>9}"
        if res["generate"]:
            line += f" {res['generate']['by_length'][L]:>9.3f}"
        if split is not None:  # correct/trials of needles closer to the question than train_len, and the rest
            cells = split.get(str(L), {"within": [0, 0], "beyond": [0, 0]})
            line += "".join(f" {f'{c}/{k}':>9}" for c, k in (cells["within"], cells["beyond"]))
        if lik:
            top1, mrr, margin = (lik[k]["by_length"][L] for k in ("top1", "mrr", "margin"))
            line += f" {top1:>6.3f} {mrr:>6.3f} {margin:>8.3f}"
        print(line)
    if args.json:
        print(f"wrote {save_result(result, args.json)}", file=sys.stderr)
    return 0


def run_ruler(args) -> int:
    from fope.eval.ruler import TASKS, ruler_eval, table
    from fope.utils import atomic_json

    tasks = TASKS if args.tasks is None else [t.strip() for t in args.tasks.split(",") if t.strip()]
    bad = [t for t in tasks if t not in TASKS]
    if bad or not tasks:
        raise ValueError(f"--tasks: unknown RULER task(s) {', '.join(bad) or args.tasks!r}; known: {', '.join(TASKS)}")
    model, tok = _load(args)
    if tok is None:
        raise ValueError(f"model {args.model} has no tokenizer; pass --tokenizer")
    res = ruler_eval(
        model,
        tok,
        args.lengths,
        tasks=tasks,
        samples=args.samples,
        seed=args.seed,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        log=lambda line: print(line, file=sys.stderr),
    )
    print(table(res))
    print("essay haystack: " + res["substitutions"]["essay_haystack"])
    if args.json:
        print(f"wrote {atomic_json(args.json, {'model': model.describe()} | res)}", file=sys.stderr)
    return 0


def run_plot(args) -> int:
    from fope.eval.plots import plot_heatmap, plot_lengths
    from fope.eval.results import load_result

    results = [load_result(p) for p in args.results]
    labels = None if args.labels is None else [s.strip() for s in args.labels.split(",")]
    if args.heatmap:
        out = plot_heatmap(results, args.out, labels=labels)
    else:
        out = plot_lengths(results, args.out, labels=labels, title=args.title)
    print(f"wrote {out}")
    return 0


def run_longbench(args) -> int:
    from fope.eval import lmeval
    from fope.utils import atomic_json

    tasks = lmeval.resolve_tasks(args.tasks.split(",") if args.tasks else None)
    limit = int(args.limit) if args.limit is not None and args.limit >= 1 else args.limit
    if args.data_dir is not None:  # a missing directory or file is said before the (slow) model load
        for task in tasks:
            if lmeval.is_longbench(task):
                lmeval.longbench_data_file(args.data_dir, task)
    results = lmeval.run(
        args.model,
        tasks,
        limit=limit,
        include_path=args.include_path,
        batch_size=args.batch_size,
        device=args.device,
        max_length=args.max_length,
        apply_chat_template=args.chat_template,
        trust_remote_code=args.trust_remote_code,
        data_dir=args.data_dir,
        bootstrap_iters=args.bootstrap_iters,
    )
    summary = lmeval.summary(results)
    print(lmeval.results_table(results))
    if summary["longbench"]:
        print("LongBench's scores (eval.py: x100, rounded; LongBench-E length buckets, rows in brackets):\n")
        print(lmeval.format_buckets(summary))
    if args.out:
        print(f"wrote {atomic_json(args.out, summary, indent=1)}", file=sys.stderr)
    return 0


def run_downstream(args) -> int:
    from fope.eval import downstream
    from fope.utils import atomic_json

    tables = [int(t) for t in args.tables.split(",") if t.strip()]
    limit = int(args.limit) if args.limit is not None and args.limit >= 1 else args.limit
    rep = downstream.run(
        args.model,
        tables=tables,
        tasks=args.tasks.split(",") if args.tasks else None,
        data_dir=args.data_dir,
        limit=limit,
        batch_size=args.batch_size,
        device=args.device,
        trust_remote_code=args.trust_remote_code,
        bootstrap_iters=args.bootstrap_iters,
    )
    print(downstream.results_table(rep))
    print(downstream.format_report(rep))
    if args.json:
        print(f"wrote {atomic_json(args.json, downstream.summary(rep), indent=1)}", file=sys.stderr)
    return 0
