"""Tokenizers: train a byte-level BPE or load an existing one, behind one small wrapper.

The trained BPE splits digits into single tokens before the byte-level step, so any number
(a passkey such as ``31415``) encodes digit by digit and decodes back exactly, and no merge
depends on which numbers were frequent in the training text. Special tokens: ``<|endoftext|>``
(EOS, id 0) and ``<|pad|>`` (id 1).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from fope.utils import atomic_write, reading

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
SPECIAL_TOKENS = (EOS_TOKEN, PAD_TOKEN)
# EOS spellings tried, in order, when a loaded tokenizer does not say which token ends a document
EOS_CANDIDATES = (EOS_TOKEN, "<|end_of_text|>", "</s>", "<eos>", "<|im_end|>")


class Tokenizer:
    """A thin wrapper around a ``tokenizers.Tokenizer`` with the fields fope relies on.

    Attributes:
        eos_id: id of the document separator.
        pad_id: id of the padding token (None if the vocabulary has none).
        vocab_size: number of ids (``max id + 1``, including special tokens).
    """

    def __init__(self, backend, *, eos_id: int | None = None, pad_id: int | None = None):
        self.backend = backend
        self.eos_id = _find_eos(backend) if eos_id is None else int(eos_id)
        self.pad_id = backend.token_to_id(PAD_TOKEN) if pad_id is None else int(pad_id)
        self.vocab_size = int(backend.get_vocab_size(with_added_tokens=True))
        if not 0 <= self.eos_id < self.vocab_size:
            raise ValueError(f"eos_id {self.eos_id} outside the vocabulary of size {self.vocab_size}")

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (no special tokens added)."""
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text; parallel over texts in the Rust backend."""
        return [e.ids for e in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int], *, skip_special_tokens: bool = False) -> str:
        return self.backend.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def token_to_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    def to_str(self) -> str:
        """The tokenizer.json text."""
        return self.backend.to_str()

    def fingerprint(self) -> str:
        """sha256 of the tokenizer.json text plus the EOS id (identifies the token ids)."""
        return hashlib.sha256(f"{self.to_str()}|eos={self.eos_id}".encode()).hexdigest()

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``tokenizer.json`` (``path`` is the file, or a folder to put it in); return the file."""
        path = Path(path)
        if path.is_dir() or not path.suffix:
            path = path / "tokenizer.json"
        return atomic_write(path, self.to_str())

    def __len__(self) -> int:
        return self.vocab_size

    def __repr__(self) -> str:
        return f"Tokenizer(vocab_size={self.vocab_size}, eos_id={self.eos_id})"


def _find_eos(backend) -> int:
    for tok in EOS_CANDIDATES:
        idx = backend.token_to_id(tok)
        if idx is not None:
            return int(idx)
    raise ValueError(
        f"cannot tell the EOS token of this tokenizer (none of {EOS_CANDIDATES} is in "
        "its vocabulary); pass eos_id= explicitly"
    )


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, *, min_frequency: int = 2, show_progress: bool = False
) -> Tokenizer:
    """Train a byte-level BPE with single-digit pre-splitting on ``texts``.

    Args:
        texts: training documents (an iterator is consumed once).
        vocab_size: final vocabulary size including the 256 byte tokens and 2 special tokens.
        min_frequency: minimum pair count for a merge.
    """
    from tokenizers import Tokenizer as _Backend
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(
            f"vocab_size {vocab_size} is too small: a byte-level BPE needs at least {256 + len(SPECIAL_TOKENS)} ids"
        )
    backend = _Backend(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=show_progress,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    return Tokenizer(backend)


def _from_hf_dir(path: Path, eos_id: int | None) -> Tokenizer:
    """vocab.json + merges.txt (or any layout AutoTokenizer understands) through transformers."""
    try:
        from transformers import AutoTokenizer
    except ImportError as e:
        raise ImportError(
            f"{path} has no tokenizer.json; loading vocab.json + merges.txt needs transformers (pip install 'fope[hf]')"
        ) from e
    hf = AutoTokenizer.from_pretrained(str(path))
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(
            f"{path}: transformers loaded a slow tokenizer ({type(hf).__name__}); "
            "a fast (tokenizers-backed) one is required"
        )
    if eos_id is None and hf.eos_token_id is not None:
        eos_id = hf.eos_token_id
    return Tokenizer(backend, eos_id=eos_id)


def load_tokenizer(path_or_name: str | os.PathLike, *, eos_id: int | None = None) -> Tokenizer:
    """Load a tokenizer from a tokenizer.json, a folder, or a Hugging Face hub name.

    A folder is read from its ``tokenizer.json``; without one, ``vocab.json`` + ``merges.txt`` (or
    another layout) are loaded with transformers' ``AutoTokenizer``. A name that is not a path is
    looked up on the hub (needs internet). ``eos_id`` overrides EOS detection.
    """
    from tokenizers import Tokenizer as _Backend

    path = Path(path_or_name).expanduser()
    if path.is_dir() and (path / "tokenizer.json").is_file():
        path = path / "tokenizer.json"
    if path.is_file():
        with reading(path, "tokenizer", "replace it with a valid tokenizer.json (e.g. the one of the run's shards)"):
            backend = _Backend.from_file(str(path))
        return Tokenizer(backend, eos_id=eos_id)
    if path.is_dir():
        if any((path / f).is_file() for f in ("vocab.json", "tokenizer_config.json", "tokenizer.model")):
            return _from_hf_dir(path, eos_id)
        raise FileNotFoundError(f"no tokenizer.json (or vocab.json + merges.txt) in {path}")
    name = str(path_or_name)
    if name.startswith((".", "/", "~")) or name.endswith(".json") or name.count("/") > 1:
        raise FileNotFoundError(f"tokenizer path {name} does not exist")
    try:
        return Tokenizer(_Backend.from_pretrained(name), eos_id=eos_id)
    except Exception as e:  # the hub client raises many types (offline, 404, auth)
        raise FileNotFoundError(
            f"cannot load tokenizer {name!r}: not a local file or folder, and the hub "
            f"lookup failed ({type(e).__name__}: {e})"
        ) from e
