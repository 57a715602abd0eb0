"""Packed token shards: tokenise a corpus once into flat memmaps, then cut windows from them.

Layout of a shard folder::

    OUT/train.bin, OUT/val.bin   flat token ids, uint16 if the vocabulary has < 65536 ids else uint32,
                                 every document followed by EOS (OLMo's packed format)
    OUT/meta.json                inputs (tokenizer sha256, corpus fingerprint, options), dtype,
                                 per-split token / document counts and sha256
    OUT/tokenizer.json           the tokenizer that produced the ids

``prepare_shards`` skips the work when ``meta.json`` records the same inputs and the files have the
recorded sizes; any changed input rebuilds. Files are written to temporaries and moved into place,
and ``meta.json`` is written last, so an interrupted run is redone, never half-used.

Windows (``TokenWindows``) are contiguous, non-overlapping runs of ``seq_len + 1`` tokens: inputs
are the first ``seq_len``, targets the last ``seq_len`` (OLMo's instances, with the one extra
token so every position has a target).

Shape legend: N tokens in a split, W windows, L = seq_len.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from fope.data.corpora import SPLITS, Corpus, TokenCorpus, open_token_file
from fope.data.synthetic import SentenceReservoir, retrieval_token_documents
from fope.utils import (
    FileProblem,
    atomic_json,
    atomic_path,
    directory_lock,
    fsync_dir,
    fsync_file,
    read_json,
    remove_stale_temps,
    sha256_file,
)

SHARD_FORMAT = 1
META = "meta.json"
_BATCH_CHARS = 4_000_000  # characters per encode_batch call
_BATCH_DOCS = 2048


def shard_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65536), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


# --------------------------------------------------------------------------- tokenisation


def _doc_batches(docs: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    chars = 0
    for d in docs:
        batch.append(d)
        chars += len(d)
        if chars >= _BATCH_CHARS or len(batch) >= _BATCH_DOCS:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def _write_text_split(
    corpus: Corpus,
    split: str,
    tokenizer,
    f,
    dtype: np.dtype,
    *,
    max_tokens: int | None,
    on_doc: Callable[[str], None] | None,
) -> tuple[int, int]:
    """Encode ``split`` in parallel batches, appending ``ids + [EOS]`` per document; (tokens, docs)."""
    from tqdm.auto import tqdm

    n_tok = n_doc = 0
    bar = tqdm(
        desc=f"tokenising {corpus.name}/{split}",
        unit=" docs",
        total=_doc_count(corpus, split),
        mininterval=2.0,
        leave=False,
    )
    for batch in _doc_batches(corpus.docs(split)):
        bar.update(len(batch))
        if on_doc is not None:
            for d in batch:
                on_doc(d)
        encoded = tokenizer.encode_batch(batch)
        flat = np.concatenate([np.asarray(ids + [tokenizer.eos_id], dtype=np.int64) for ids in encoded])
        if max_tokens is not None and n_tok + len(flat) > max_tokens:
            flat = flat[: max_tokens - n_tok]
        flat.astype(dtype).tofile(f)
        n_tok += len(flat)
        n_doc += len(batch)
        if max_tokens is not None and n_tok >= max_tokens:
            break
    bar.close()
    return n_tok, n_doc


def _doc_count(corpus: Corpus, split: str) -> int | None:
    """Documents in ``split`` when the corpus knows it cheaply (the bar's total), else None."""
    try:
        n = corpus.n_docs(split)  # type: ignore[attr-defined]
    except (AttributeError, TypeError, NotImplementedError):
        return None
    return int(n) if n is not None else None


def _write_token_split(
    corpus: TokenCorpus, split: str, f, dtype: np.dtype, vocab_size: int | None, *, max_tokens: int | None
) -> tuple[int, int]:
    """Copy pre-tokenised arrays (checking ids against the vocabulary); (tokens, 0)."""
    n_tok = 0
    for arr in corpus.tokens(split):
        if max_tokens is not None:
            arr = arr[: max_tokens - n_tok]
        if len(arr) and vocab_size is not None and int(arr.max()) >= vocab_size:
            raise ValueError(
                f"corpus {corpus.name!r} has token id {int(arr.max())} >= tokenizer vocab_size "
                f"{vocab_size}: wrong tokenizer for these token files?"
            )
        np.asarray(arr).astype(dtype).tofile(f)
        n_tok += len(arr)
        if max_tokens is not None and n_tok >= max_tokens:
            break
    return n_tok, 0


# --------------------------------------------------------------------------- retrieval mixing


def mix_retrieval(
    corpus_tokens: np.ndarray, docs: Sequence[Sequence[int]], *, window: int, eos_id: int, seed: int, f
) -> None:
    """Write ``corpus_tokens`` with each synthetic doc at the start of its own window.

    The output is cut into windows of ``window`` tokens; ``len(docs)`` windows chosen by a seeded
    draw begin with one synthetic document + EOS and are completed with the next corpus tokens;
    every other window is corpus tokens only. So every synthetic document lies whole inside one
    window of ``TokenWindows(tokens, window - 1)``, and the corpus stream keeps its order.
    """
    n_syn = sum(len(d) + 1 for d in docs)
    total = len(corpus_tokens) + n_syn
    n_windows = total // window
    if len(docs) > n_windows:
        raise ValueError(f"{len(docs)} retrieval documents do not fit in {n_windows} windows; lower retrieval_share")
    slots = np.sort(np.random.default_rng(seed).choice(n_windows, size=len(docs), replace=False))
    pos = 0  # next corpus token
    prev = 0  # next window to write
    dtype = np.dtype(f"u{corpus_tokens.dtype.itemsize}")
    for slot, doc in zip(slots.tolist(), docs):
        take = (slot - prev) * window
        corpus_tokens[pos : pos + take].tofile(f)
        pos += take
        fill = window - len(doc) - 1
        np.asarray([*doc, eos_id], dtype=dtype).tofile(f)
        corpus_tokens[pos : pos + fill].tofile(f)
        pos += fill
        prev = slot + 1
    corpus_tokens[pos:].tofile(f)


# --------------------------------------------------------------------------- prepare


def _inputs(corpus: Corpus, tokenizer, splits, retrieval_share, seed, train_len, max_tokens) -> dict:
    return {
        "format": SHARD_FORMAT,
        "corpus": corpus.name,
        "corpus_fingerprint": corpus.fingerprint(),
        "tokenizer_sha256": None if tokenizer is None else tokenizer.fingerprint(),
        "splits": list(splits),
        "retrieval_share": float(retrieval_share),
        "seed": int(seed) if retrieval_share > 0 else None,
        "train_len": int(train_len) if retrieval_share > 0 else None,
        "max_tokens": max_tokens,
    }


def read_meta(out_dir: str | os.PathLike) -> dict | None:
    """The shard folder's meta.json (None when there is none); FileProblem names a corrupt one."""
    path = Path(out_dir) / META
    if not path.is_file():
        return None
    fix = f"delete {Path(out_dir)} to have it rebuilt (or run `fope data prepare` again)"
    meta = read_json(path, "shard metadata", fix=fix)
    try:
        np.dtype(meta["dtype"])
        for info in meta["splits"].values():
            if not isinstance(info["file"], str) or not isinstance(info["tokens"], int):
                raise TypeError("file must be a string and tokens an integer")
    except (KeyError, TypeError, AttributeError) as e:
        raise FileProblem(path, f"corrupt shard metadata (missing or malformed entry: {e})", fix) from e
    return meta


STAMP = ".verified.json"


def verify_split(path: str | os.PathLike) -> None:
    """Check a shard file against the sha256 in its folder's meta.json, once per version of the file.

    A successful check is recorded in ``.verified.json`` (size, mtime, inode and hash of each file), so
    later runs only ``stat`` the file; any rewrite of the file changes its mtime and is hashed again.
    Files without a recorded sha256 (raw token files) pass. Raises FileProblem naming a corrupt file.
    """
    path = Path(path)
    meta = read_meta(path.parent)
    info = None if meta is None else next((i for i in meta["splits"].values() if i["file"] == path.name), None)
    if info is None or not info.get("sha256"):
        return
    st = path.stat()
    key = [st.st_size, st.st_mtime_ns, st.st_ino, info["sha256"]]
    stamp_path = path.parent / STAMP
    try:
        stamps = read_json(stamp_path, "shard stamps", missing={})  # a cache: damaged means hashed again
        if not isinstance(stamps, dict):
            stamps = {}
    except (OSError, ValueError):
        stamps = {}
    if stamps.get(path.name) == key:
        return
    if sha256_file(path) != info["sha256"]:
        raise FileProblem(
            path,
            f"corrupt token shard: its sha256 differs from the one in {META}",
            f"delete {path.parent} to have it rebuilt (or run `fope data prepare` again)",
        )
    stamps[path.name] = key
    with contextlib.suppress(OSError):  # a read-only shard folder: verify again next time
        atomic_json(stamp_path, stamps, indent=None)


def is_up_to_date(out_dir: str | os.PathLike, inputs: dict) -> bool:
    """True when ``out_dir/meta.json`` has ``inputs`` and every split file has its recorded size."""
    try:
        meta = read_meta(out_dir)
    except FileProblem:  # a damaged cache entry is rebuilt
        return False
    if meta is None or meta.get("inputs") != inputs:
        return False
    item = np.dtype(meta["dtype"]).itemsize
    for info in meta["splits"].values():
        path = Path(out_dir) / info["file"]
        if not path.is_file() or path.stat().st_size != info["tokens"] * item:
            return False
    return True


def _atomic_json(path: Path, obj: dict) -> None:
    atomic_json(path, obj, indent=1)


def prepare_shards(
    corpus: Corpus,
    tokenizer,
    out_dir: str | os.PathLike,
    *,
    splits: Sequence[str] = SPLITS,
    retrieval_share: float = 0.0,
    seed: int = 0,
    train_len: int | None = None,
    max_tokens: int | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Tokenise ``corpus`` once into ``out_dir/{split}.bin`` + ``meta.json``; return the metadata.

    Args:
        corpus: a ``Corpus`` (text, encoded in parallel batches) or a ``TokenCorpus`` (copied;
            ``tokenizer`` may then be None).
        tokenizer: a ``fope.data.Tokenizer`` (its ``eos_id`` separates documents).
        out_dir: shard folder (created).
        splits: which splits to write.
        retrieval_share: share (by tokens) of the *train* split made of synthetic key-retrieval
            documents (``fope.data.synthetic``); 0 disables. Needs ``train_len``.
        seed: seed of the retrieval documents and of their window positions.
        train_len: training sequence length; every retrieval document is shorter, and each one is
            placed at the start of a ``train_len + 1``-token window.
        max_tokens: cap on tokens per split (None: everything; for streaming hub corpora).
        log: progress callback.

    Returns:
        The ``meta.json`` content: ``inputs``, ``dtype``, ``vocab_size``, ``eos_id`` and
        ``splits[split] = {file, tokens, documents, synthetic_tokens, synthetic_documents, sha256}``.
    """
    log = log or (lambda msg: None)
    splits = tuple(splits)
    bad = [s for s in splits if s not in SPLITS]
    if bad or not splits:
        raise ValueError(f"unknown split(s) {bad or splits}; expected a subset of {SPLITS}")
    if not 0.0 <= retrieval_share < 1.0:
        raise ValueError(f"retrieval_share must be in [0, 1), got {retrieval_share}")
    if retrieval_share > 0 and (train_len is None or train_len < 2):
        raise ValueError(
            f"retrieval_share={retrieval_share} needs train_len (the training sequence length), got {train_len}"
        )
    if tokenizer is None and (not corpus.tokenized or retrieval_share > 0):
        raise ValueError(f"corpus {corpus.name!r} needs a tokenizer")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be positive, got {max_tokens}")
    out = Path(out_dir)
    inputs = _inputs(corpus, tokenizer, splits, retrieval_share, seed, train_len, max_tokens)
    if is_up_to_date(out, inputs):
        log(f"{out}: up to date")
        return read_meta(out)
    with directory_lock(out, what="token shard folder", wait=True):  # two runs sharing the cache: one tokenises
        if is_up_to_date(out, inputs):
            log(f"{out}: up to date")
            return read_meta(out)
        remove_stale_temps(out)  # a killed preparation's temp folder (corpus.bin): nobody else writes here now
        return _prepare(corpus, tokenizer, out, splits, inputs, log)


def _prepare(corpus: Corpus, tokenizer, out: Path, splits: tuple[str, ...], inputs: dict, log) -> dict:
    (out / META).unlink(missing_ok=True)  # a half-finished rebuild must never look up to date
    vocab_size = getattr(tokenizer, "vocab_size", None)
    dtype = shard_dtype(vocab_size) if vocab_size is not None else np.dtype(np.uint32)
    meta = {
        "inputs": inputs,
        "dtype": dtype.name,
        "vocab_size": vocab_size,
        "eos_id": getattr(tokenizer, "eos_id", None),
        "splits": {},
    }
    for split in splits:
        t0 = time.perf_counter()
        meta["splits"][split] = _prepare_split(corpus, tokenizer, out, split, dtype, inputs, log=log)
        info = meta["splits"][split]
        log(f"{split}: {info['tokens']:,} tokens, {info['documents']:,} documents ({time.perf_counter() - t0:.1f} s)")
    if tokenizer is not None:
        with atomic_path(out / "tokenizer.json") as tmp:
            tokenizer.save(tmp)
    meta["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    _atomic_json(out / META, meta)
    return meta


def _prepare_split(corpus: Corpus, tokenizer, out: Path, split: str, dtype: np.dtype, inputs: dict, *, log) -> dict:
    final = out / f"{split}.bin"
    share = inputs["retrieval_share"] if split == "train" else 0.0
    reservoir = SentenceReservoir(seed=inputs["seed"] or 0) if share > 0 else None
    with tempfile.TemporaryDirectory(dir=out, prefix=f".{split}-", suffix=".tmp") as tmpdir:  # removed on a stop
        raw = Path(tmpdir) / "corpus.bin"
        with open(raw, "wb") as f:
            if corpus.tokenized:
                n_tok, n_doc = _write_token_split(
                    corpus, split, f, dtype, getattr(tokenizer, "vocab_size", None), max_tokens=inputs["max_tokens"]
                )
            else:
                n_tok, n_doc = _write_text_split(
                    corpus,
                    split,
                    tokenizer,
                    f,
                    dtype,
                    max_tokens=inputs["max_tokens"],
                    on_doc=reservoir.add if reservoir else None,
                )
        if n_tok == 0:
            raise ValueError(f"corpus {corpus.name!r} has no {split} documents")
        info = {
            "file": final.name,
            "tokens": n_tok,
            "documents": n_doc,
            "synthetic_tokens": 0,
            "synthetic_documents": 0,
        }
        if share > 0:
            sentences = reservoir.result()  # the fixed fallback set for token corpora
            want = round(share * n_tok / (1.0 - share))
            docs = retrieval_token_documents(
                tokenizer, sentences, n_tokens=want, max_len=inputs["train_len"], seed=inputs["seed"]
            )
            mixed = Path(tmpdir) / "mixed.bin"
            with open(mixed, "wb") as f:
                mix_retrieval(
                    np.memmap(raw, dtype=dtype, mode="r"),
                    docs,
                    window=inputs["train_len"] + 1,
                    eos_id=tokenizer.eos_id,
                    seed=inputs["seed"],
                    f=f,
                )
            raw = mixed
            n_syn = sum(len(d) + 1 for d in docs)
            info.update(
                tokens=n_tok + n_syn,
                synthetic_tokens=n_syn,
                synthetic_documents=len(docs),
                filler_sentences=len(sentences),
            )
            log(
                f"{split}: {len(docs):,} retrieval documents, {n_syn:,} tokens "
                f"({n_syn / (n_tok + n_syn):.1%} of the split)"
            )
        info["sha256"] = sha256_file(raw)
        fsync_file(raw)
        os.replace(raw, final)
        fsync_dir(out)
    return info


# --------------------------------------------------------------------------- reading


def load_tokens(path: str | os.PathLike, *, split: str = "train", dtype: str | None = None) -> np.ndarray:
    """A read-only 1-D memmap of a shard.

    ``path`` is a ``.bin`` shard (dtype and size checked against the ``meta.json`` beside it),
    a shard folder (then ``split`` picks the file), or a ``.npy``/raw token file (``dtype`` or the
    numpy header says the type). Raises FileNotFoundError for a missing file and ValueError for a
    file whose size does not match its metadata.
    """
    path = Path(path)
    if path.is_dir():
        path = path / f"{split}.bin"
    if not path.is_file():
        raise FileNotFoundError(f"token shard {path} does not exist (prepare it with `fope data prepare`)")
    meta = read_meta(path.parent)
    info = None
    if meta is not None:
        info = next((i for i in meta["splits"].values() if i["file"] == path.name), None)
    if info is None:
        return open_token_file(path, dtype=dtype or "uint16")
    item = np.dtype(meta["dtype"]).itemsize
    size = path.stat().st_size
    if size != info["tokens"] * item:
        raise ValueError(
            f"corrupt token shard {path}: {size} bytes, but {META} records {info['tokens']} "
            f"{meta['dtype']} tokens ({info['tokens'] * item} bytes); run `fope data prepare` again"
        )
    return np.memmap(path, dtype=meta["dtype"], mode="r")


def verify_shards(out_dir: str | os.PathLike) -> None:
    """Re-hash every split file against ``meta.json``; raise ValueError naming a corrupt file."""
    meta = read_meta(out_dir)
    if meta is None:
        raise FileNotFoundError(f"no {META} in {out_dir}")
    for info in meta["splits"].values():
        path = Path(out_dir) / info["file"]
        load_tokens(path)
        if sha256_file(path) != info["sha256"]:
            raise ValueError(f"corrupt token shard {path}: sha256 differs from {META}")


class TokenWindows:
    """Contiguous non-overlapping windows of ``seq_len + 1`` tokens over a 1-D token array.

    Window ``i`` is ``tokens[start + i*(L+1) : start + (i+1)*(L+1)]``; ``inputs = w[:-1]``,
    ``targets = w[1:]``. The incomplete tail is dropped.

    Args:
        tokens: (N,) integer array (a shard memmap).
        seq_len: L, the model's input length.
        start: offset of the first window.
    """

    def __init__(self, tokens: np.ndarray, seq_len: int, *, start: int = 0):
        if seq_len < 1:
            raise ValueError(f"seq_len must be >= 1, got {seq_len}")
        if not 0 <= start <= len(tokens):
            raise ValueError(f"start {start} outside [0, {len(tokens)}]")
        self.tokens, self.seq_len, self.start = tokens, int(seq_len), int(start)

    def __len__(self) -> int:
        return (len(self.tokens) - self.start) // (self.seq_len + 1)

    def __getitem__(self, i: int) -> np.ndarray:
        """(L+1,) int64 window ``i``."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"window {i} out of range for {n} windows")
        i %= n
        a = self.start + i * (self.seq_len + 1)
        return np.asarray(self.tokens[a : a + self.seq_len + 1], dtype=np.int64)

    def batch(self, indices: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets), each (B, L) int64, for window ``indices``."""
        w = np.stack([self[i] for i in indices])  # (B, L+1)
        return w[:, :-1], w[:, 1:]

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self[i]


class WindowOrder:
    """The order training visits its ``n_windows`` windows (`TokenWindows`, or fine-tuning blocks): a fresh
    permutation per epoch, seeded by (seed, epoch), so the order depends on nothing but the seed and the position
    (fope.train.distributed shards the positions over processes and micro-batches)."""

    def __init__(self, n_windows: int, seed: int) -> None:
        if n_windows <= 0:
            raise ValueError(f"no training windows (n_windows={n_windows}); is the training split too short?")
        self.n, self.seed = n_windows, seed
        self._epoch, self._perm = -1, np.empty(0, dtype=np.int64)

    def _permutation(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
        return self._perm

    def window_ids(self, start: int, count: int) -> np.ndarray:
        """Window ids at global positions ``start .. start+count-1`` of the (endless) visiting order."""
        pos = np.arange(start, start + count, dtype=np.int64)
        return np.array([self._permutation(int(p // self.n))[p % self.n] for p in pos], dtype=np.int64)


def shard_summary(out_dir: str | os.PathLike) -> dict:
    """meta.json plus derived numbers for ``fope data info``."""
    meta = read_meta(out_dir)
    if meta is None:
        raise FileNotFoundError(f"{out_dir} is not a shard folder (no {META})")
    for info in meta["splits"].values():
        load_tokens(Path(out_dir) / info["file"])
    return meta


def held_out_chunks(n_tokens: int, lengths: Iterable[int]) -> dict[int, int]:
    """Number of non-overlapping chunks of each length that ``n_tokens`` tokens give."""
    return {int(L): n_tokens // int(L) for L in lengths}


__all__ = [
    "TokenWindows",
    "held_out_chunks",
    "is_up_to_date",
    "load_tokens",
    "mix_retrieval",
    "prepare_shards",
    "read_meta",
    "shard_dtype",
    "shard_summary",
    "verify_shards",
]
