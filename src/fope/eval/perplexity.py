"""Perplexity against evaluation length (docs/paper.md §4.4).

Shapes: N tokens in the stream, L evaluation length, S stride, B batch, V vocabulary.

Two protocols over one 1-D token stream (documents joined with EOS, e.g. a `val.bin` memmap):

* ``chunks`` (the paper's, OLMo `chunk_size`): non-overlapping chunks of exactly L tokens, `drop_last`.
  Each chunk predicts its tokens 1..L-1 from the tokens before them in the chunk (L-1 predictions per
  chunk); the result is exp(mean token cross-entropy over all predictions of all chunks).
* ``sliding`` (YaRN / HF "perplexity of fixed-length models"): windows of L tokens starting every S
  tokens (only windows that fit entirely); the first window scores its tokens 1..L-1, every later window
  scores only its last S tokens, so every token is scored exactly once, with between L-S and L-1 tokens
  of context. With S = L this is exactly ``chunks``.

Comparable lengths: by default every length reads the same token budget: the stream is cut to a multiple
of the largest length (or to `max_tokens`, or to `max_chunks` chunks of the largest length, both rounded
down to a multiple of it). With power-of-two lengths every length then scores the same tokens
(minus the first token of each chunk), so differences between lengths come from the context only.

Memory: the adapter's `sum_nll` scores a batch; for fope models the LM head runs on slices of 2048
positions, so (B, L, V) logits never exist (for Hugging Face models they do, once per batch: 1 GiB for
L = 32768, V = 8192, B = 1). Everything runs under `torch.no_grad` (no autograd graph is kept).
Use batch_size=1 at long lengths.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fope.eval.adapters import LMAdapter, as_adapter

MODES = ("chunks", "sliding")


@dataclass(frozen=True)
class LengthResult:
    """Perplexity at one evaluation length."""

    length: int
    ppl: float
    mean_ce: float  # nats per predicted token
    n_tokens: int  # predicted (scored) tokens
    n_windows: int  # forwards of L tokens (chunks or windows)

    def to_dict(self) -> dict:
        return asdict(self)


def perplexity_by_length(
    model: LMAdapter, tokens: np.ndarray | torch.Tensor, lengths: Sequence[int], **options: Any
) -> dict[int, float]:
    """Perplexity at each length: `{length: ppl}`; ``options`` are `perplexity_report`'s keywords (mode, batch_size,
    max_chunks, max_tokens, stride, progress)."""
    return {length: r.ppl for length, r in perplexity_report(model, tokens, lengths, **options).items()}


def perplexity_report(
    model: LMAdapter,
    tokens: np.ndarray | torch.Tensor,
    lengths: Sequence[int],
    *,
    mode: str = "chunks",
    batch_size: int = 1,
    max_chunks: int | None = None,
    max_tokens: int | None = None,
    stride: int | None = None,
    progress: bool = True,
) -> dict[int, LengthResult]:
    """Perplexity, mean cross-entropy and token counts at each length.

    Args:
        model: an `LMAdapter` (see `fope.eval.adapters`), a fope `CausalLM` or a `transformers` model.
        tokens: (N,) token ids (numpy memmap, array or tensor).
        lengths: evaluation lengths L (each >= 2).
        mode: "chunks" or "sliding" (module docstring).
        batch_size: windows per forward.
        max_chunks: token budget = this many chunks of the largest length (same tokens for every length).
        max_tokens: token budget in tokens (rounded down to a multiple of the largest length).
        stride: sliding mode only: S (default L // 2; S = L reproduces chunks).
        progress: show a tqdm bar per length (stderr).

    Returns:
        `{L: LengthResult}` in the order of `lengths`.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if mode == "chunks" and stride is not None:
        raise ValueError(f"stride={stride} applies to mode='sliding' only")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    lengths = _check_lengths(lengths)
    model = as_adapter(model)
    stream = _as_stream(tokens, model.vocab_size)
    budget = token_budget(len(stream), lengths, max_chunks=max_chunks, max_tokens=max_tokens)
    stream = stream[:budget]
    results = {}
    for length in lengths:
        s = length if mode == "chunks" else (length // 2 if stride is None else stride)
        if not 1 <= s <= length:
            raise ValueError(f"stride must be in [1, L={length}], got {s}")
        results[length] = _score_length(model, stream, length, s, batch_size=batch_size, progress=progress)
    return results


def token_budget(
    n: int, lengths: Sequence[int], *, max_chunks: int | None = None, max_tokens: int | None = None
) -> int:
    """Tokens every length reads: a multiple of max(lengths), at most `n` (module docstring)."""
    longest = max(lengths)
    if max_chunks is not None and max_tokens is not None:
        raise ValueError("give max_chunks or max_tokens, not both")
    if max_chunks is not None:
        if max_chunks < 1:
            raise ValueError(f"max_chunks must be >= 1, got {max_chunks}")
        n = min(n, max_chunks * longest)
    if max_tokens is not None:
        if max_tokens < longest:
            raise ValueError(f"max_tokens={max_tokens} is smaller than the largest length {longest}")
        n = min(n, max_tokens)
    budget = (n // longest) * longest
    if budget == 0:
        raise ValueError(f"the token stream has {n} tokens, fewer than the largest length {longest}")
    return budget


def windows(n: int, length: int, stride: int) -> Iterator[tuple[int, int]]:
    """(start, first scored offset) of each window of `length` tokens over a stream of `n` tokens.

    The window covers tokens [start, start+length); targets at offsets [first, length) are scored, each
    predicted from the window's tokens before it. The first window scores offsets 1..L-1, later ones their
    last min(S, L-1) tokens (a token with no context in its window is never scored), so no token is
    scored twice and, with S < L, every token after the first is scored exactly once.
    """
    start = 0
    while start + length <= n:
        yield start, (1 if start == 0 else max(1, length - stride))
        start += stride


def _score_length(
    model: LMAdapter, stream: torch.Tensor, length: int, stride: int, *, batch_size: int, progress: bool
) -> LengthResult:
    from tqdm.auto import tqdm

    wins = list(windows(len(stream), length, stride))
    nll, count = 0.0, 0
    bar = tqdm(total=len(wins), desc=f"ppl L={length}", unit="win", disable=not progress, leave=False)
    for b in range(0, len(wins), batch_size):
        batch = wins[b : b + batch_size]
        ids = torch.stack([stream[s : s + length] for s, _ in batch])  # (B, L)
        firsts = [first for _, first in batch]
        nll += sum(model.sum_nll(ids.to(model.device), firsts))
        count += sum(length - f for f in firsts)
        bar.update(len(batch))
    bar.close()
    mean_ce = nll / count
    if math.isnan(mean_ce):
        raise FloatingPointError(f"the model produced NaN logits at length {length}")
    ppl = math.exp(mean_ce) if mean_ce < 709 else math.inf
    return LengthResult(length=length, ppl=ppl, mean_ce=mean_ce, n_tokens=count, n_windows=len(wins))


def _check_lengths(lengths: Sequence[int]) -> list[int]:
    out = [int(x) for x in lengths]
    if not out:
        raise ValueError("no lengths given")
    bad = [x for x in out if x < 2]
    if bad:
        raise ValueError(f"evaluation lengths must be >= 2, got {bad}")
    if len(set(out)) != len(out):
        raise ValueError(f"duplicate lengths in {out}")
    return out


def _as_stream(tokens: np.ndarray | torch.Tensor, vocab_size: int) -> torch.Tensor:
    """(N,) long tensor; raises on a non-1-D stream or ids outside the vocabulary."""
    t = tokens if isinstance(tokens, torch.Tensor) else torch.from_numpy(np.asarray(tokens).astype(np.int64))
    if t.ndim != 1:
        raise ValueError(f"tokens must be a 1-D stream, got shape {tuple(t.shape)}")
    t = t.long()
    if len(t) and (int(t.min()) < 0 or int(t.max()) >= vocab_size):
        raise ValueError(
            f"token ids span [{int(t.min())}, {int(t.max())}], outside the model's vocabulary of {vocab_size}"
        )
    return t


# ----------------------------------------------------------------------------------------------------
# building a token stream


def tokens_from_texts(texts: Sequence[str] | Iterator[str], tokenizer, *, max_tokens: int | None = None) -> np.ndarray:
    """Encode documents and join them with the tokenizer's EOS: (N,) int64 (EOS after each document).

    Stops once `max_tokens` tokens are collected (the stream is cut there).
    """
    eos = getattr(tokenizer, "eos_id", None)
    if eos is None:
        raise ValueError("the tokenizer has no eos_id; documents cannot be joined")
    parts: list[np.ndarray] = []
    n = 0
    for text in texts:
        ids = np.asarray([*tokenizer.encode(text), eos], dtype=np.int64)
        parts.append(ids)
        n += len(ids)
        if max_tokens is not None and n >= max_tokens:
            break
    if not parts:
        raise ValueError("no documents to tokenize")
    stream = np.concatenate(parts)
    return stream[:max_tokens] if max_tokens is not None else stream


def tokens_from_text_file(path: str | Path, tokenizer, *, max_tokens: int | None = None) -> np.ndarray:
    """The whole UTF-8 text file as one document (followed by EOS): (N,) int64."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    return tokens_from_texts([path.read_text(encoding="utf-8")], tokenizer, max_tokens=max_tokens)


def tokens_from_corpus(name: str, tokenizer, *, split: str = "val", max_tokens: int | None = None) -> np.ndarray:
    """The `split` of a `fope.data` corpus (name or path) as one stream: (N,) int64.

    Text corpora are encoded and joined with EOS; pre-tokenised corpora (token files) are concatenated.
    """
    from fope.data import get_corpus

    corpus = get_corpus(name)
    if corpus.tokenized:
        return _concat_arrays(corpus.tokens(split), max_tokens, source=f"corpus {name!r} split {split!r}")
    if tokenizer is None:
        raise ValueError(
            f"corpus {name!r} is text: give a tokenizer (--tokenizer, or a model directory with tokenizer.json)"
        )
    return tokens_from_texts(corpus.docs(split), tokenizer, max_tokens=max_tokens)


def _concat_arrays(arrays, max_tokens: int | None, *, source: str) -> np.ndarray:
    parts, n = [], 0
    for a in arrays:
        parts.append(np.asarray(a[: None if max_tokens is None else max_tokens - n], dtype=np.int64))
        n += len(parts[-1])
        if max_tokens is not None and n >= max_tokens:
            break
    if not parts:
        raise ValueError(f"{source} holds no tokens")
    return np.concatenate(parts)


def load_eval_tokens(
    data: str | Path, tokenizer=None, *, split: str = "val", max_tokens: int | None = None
) -> np.ndarray:
    """Resolve the `--data` argument of `fope eval ppl` to a 1-D token stream.

    * a shard folder of `fope data prepare` (holds meta.json or {split}.bin): its `{split}.bin` memmap
    * a `.bin` / `.npy` token file: that memmap
    * a `.txt` file: the whole file as one document (needs `tokenizer`)
    * anything else: a `fope.data` corpus name or path, split `split` (text corpora need `tokenizer`)
    """
    from fope.data import load_tokens

    path = Path(data).expanduser()
    if path.is_dir() and ((path / "meta.json").is_file() or (path / f"{split}.bin").is_file()):
        toks = load_tokens(path, split=split)
    elif path.is_file() and path.suffix in (".bin", ".npy"):
        toks = load_tokens(path)
    elif path.is_file() and path.suffix == ".txt":
        if tokenizer is None:
            raise ValueError(
                f"{path} is text: give a tokenizer (--tokenizer, or a model directory with tokenizer.json)"
            )
        return tokens_from_text_file(path, tokenizer, max_tokens=max_tokens)
    else:
        return tokens_from_corpus(str(data), tokenizer, split=split, max_tokens=max_tokens)
    return toks if max_tokens is None else toks[:max_tokens]
