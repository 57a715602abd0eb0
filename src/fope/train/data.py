"""Training-side data: prepare the token shards (via fope.data, cached), open them as windows, batch them.

Windows are ``fope.data.TokenWindows``: contiguous non-overlapping runs of ``seq_len + 1`` tokens of the
concatenated stream (documents separated by EOS, no intra-document masking, as in OLMo); inputs are the first
``seq_len`` tokens, targets the last ``seq_len``. Synthetic retrieval documents (data.retrieval_share) are
placed at window starts by fope.data, which is why the windows must be cut exactly this way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fope.utils import atomic_path, cache_root, reading

from .config import DataConfig, ExperimentConfig
from .distributed import DistInfo, barrier


@dataclass
class TokenData:
    """Windows of one run: ``train``, ``val`` per corpus (key "" = the training corpus), the tokenizer."""

    train: Any  # fope.data.TokenWindows
    val: dict[str, Any]
    tokenizer: Any = None
    shard_dirs: dict[str, Path] = field(default_factory=dict)


def _key(*parts: Any) -> str:
    text = "|".join(str(p) for p in parts)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in str(parts[0]))[-40:]
    return f"{stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def tokenizer_path(data: DataConfig) -> Path | None:
    """Cache path of a ``train:VOCAB`` tokenizer (shared by every run with the same corpus and vocab)."""
    if not data.tokenizer.startswith("train:"):
        return None
    vocab = data.tokenizer.split(":", 1)[1]
    corpus = str(Path(data.corpus).resolve()) if Path(data.corpus).exists() else data.corpus
    return cache_root(data.cache_dir) / "tokenizers" / _key(corpus, f"bpe{vocab}") / "tokenizer.json"


def _resolve_tokenizer(data: DataConfig) -> Any:
    """Train (once, then cached) or load the configured tokenizer."""
    import fope.data

    path = tokenizer_path(data)
    if path is None:
        return fope.data.load_tokenizer(data.tokenizer)
    if not path.is_file():
        vocab_text = data.tokenizer.split(":", 1)[1]
        try:
            vocab = int(vocab_text)
        except ValueError:
            raise ValueError(
                f"data.tokenizer={data.tokenizer!r}: expected 'train:VOCAB' with an integer VOCAB"
            ) from None
        corpus = fope.data.get_corpus(data.corpus, cache=data.cache_dir)
        tok = fope.data.train_tokenizer(corpus.docs("train"), vocab)
        with atomic_path(path) as tmp:
            tok.save(str(tmp))
    with reading(path, "tokenizer", "delete it to have it trained again"):
        return fope.data.load_tokenizer(str(path))


def _shard_dir(data: DataConfig, corpus: str, *, train: bool, seq_len: int) -> Path:
    """Cache folder of one corpus's shards, keyed by everything that changes their content."""
    tok = str(tokenizer_path(data) or data.tokenizer)
    share = data.retrieval_share if train else 0.0
    retrieval = (share, data.seed, seq_len) if share > 0 else ()
    cap = (data.max_tokens,) if data.max_tokens is not None else ()
    return cache_root(data.cache_dir) / "shards" / _key(corpus, tok, "train+val" if train else "val", *cap, *retrieval)


def prepare_data(cfg: ExperimentConfig, info: DistInfo) -> TokenData:
    """Tokenize (rank 0, once; cached) and open the shards on every process."""
    import fope.data

    d = cfg.data
    if d.shard_dir is not None:  # ready-made shards: no preparation
        dirs = {"": Path(d.shard_dir)}
        tokenizer = _load_optional_tokenizer(d)
    else:
        dirs = {
            "": _shard_dir(d, d.corpus, train=True, seq_len=cfg.seq_len),
            **{name: _shard_dir(d, name, train=False, seq_len=cfg.seq_len) for name in d.eval_corpora},
        }
        if info.is_main:
            tokenizer = _resolve_tokenizer(d)
            for name, out in dirs.items():
                corpus = fope.data.get_corpus(name or d.corpus, cache=d.cache_dir)
                share = d.retrieval_share if name == "" else 0.0
                print(f"preparing token shards of {name or d.corpus!r} in {out}", flush=True)
                fope.data.prepare_shards(
                    corpus,
                    tokenizer,
                    out,
                    retrieval_share=share,
                    seed=d.seed,
                    train_len=cfg.seq_len,
                    splits=("train", "val") if name == "" else ("val",),
                    max_tokens=d.max_tokens,
                    log=lambda msg: print(f"  {msg}", flush=True),
                )
        barrier(info)
        if not info.is_main:
            tokenizer = _resolve_tokenizer(d)
    _check_vocab(cfg, tokenizer)
    train = fope.data.TokenWindows(_open(dirs[""] / "train.bin"), cfg.seq_len)
    val = {name: fope.data.TokenWindows(_open(path / "val.bin"), cfg.seq_len) for name, path in dirs.items()}
    return TokenData(train=train, val=val, tokenizer=tokenizer, shard_dirs=dirs)


def _load_optional_tokenizer(d: DataConfig) -> Any:
    import fope.data

    path = Path(d.shard_dir) / "tokenizer.json"
    if d.tokenizer.startswith("train:"):
        if not path.is_file():
            return None
        with reading(path, "tokenizer", "prepare the shards again with `fope data prepare`"):
            return fope.data.load_tokenizer(str(path))
    if Path(d.tokenizer).is_file():
        with reading(d.tokenizer, "tokenizer", "check data.tokenizer"):
            return fope.data.load_tokenizer(d.tokenizer)
    return fope.data.load_tokenizer(d.tokenizer)


def _open(path: Path) -> np.ndarray:
    import fope.data

    if not path.is_file():
        raise FileNotFoundError(
            f"token shard not found: {path} (prepare it with `fope data prepare` or unset "
            "data.shard_dir to let training prepare it)"
        )
    try:
        tokens = fope.data.load_tokens(path)
    except (ValueError, OSError) as e:
        raise ValueError(f"cannot read token shard {path}: {e}") from e
    from fope.data.shards import verify_split

    verify_split(path)  # sha256 against meta.json, once per file version (a stamp records the verification)
    if tokens.ndim != 1 or len(tokens) < 2:
        raise ValueError(f"token shard {path} is empty or not 1-D (shape {tokens.shape})")
    return tokens


def _check_vocab(cfg: ExperimentConfig, tokenizer: Any) -> None:
    size = getattr(tokenizer, "vocab_size", None)
    if size is not None and size > cfg.model.vocab_size:
        raise ValueError(
            f"tokenizer has {size} tokens but model.vocab_size={cfg.model.vocab_size}; "
            f"set model.vocab_size>={size} or a smaller data.tokenizer vocabulary"
        )


def get_batch(
    windows: Any, window_ids: np.ndarray, device: torch.device, vocab_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and targets ``(B, seq_len)`` long for the given window ids."""
    x, y = windows.batch(window_ids)  # (B, L) int64 each
    top = max(int(x.max(initial=0)), int(y.max(initial=0)))
    if top >= vocab_size:
        raise ValueError(
            f"token id {top} >= model.vocab_size={vocab_size}: the shards were made with a different tokenizer"
        )
    return torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)


def eval_window_ids(windows: Any, count: int) -> np.ndarray:
    """``count`` held-out windows spread evenly over a validation split (all of them if fewer)."""
    n = len(windows)
    if n == 0:
        raise ValueError(
            f"the validation split has {len(windows.tokens)} tokens, fewer than one window of {windows.seq_len + 1}"
        )
    return np.unique(np.linspace(0, n - 1, num=min(count, n)).round().astype(np.int64))
