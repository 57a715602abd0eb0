"""Tiny tokenizer and stand-in language models for the evaluation tests (no downloads)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from fope.eval import passkey as pk

LINES = [
    pk.TASK,
    pk.GARBAGE,
    pk.QUESTION,
    "The pass key is 12345. Remember it. 12345 is the pass key.",
    "0 1 2 3 4 5 6 7 8 9 10 42 123 4567 50000 98765 31415 27182",
    "Once upon a time there was a small model that could not read very far.",
    "It rained all day, and the river rose over the old stone bridge.",
]


class Tok:
    """encode/decode/eos_id/vocab_size over a byte-level BPE `tokenizers.Tokenizer` (the fope.data contract)."""

    def __init__(self, tk):
        self.tk = tk
        self.eos_id = tk.token_to_id("<eos>")
        self.vocab_size = tk.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tk.encode(text).ids

    def decode(self, ids) -> str:
        return self.tk.decode(list(ids))

    def save(self, path: str) -> None:
        self.tk.save(path)


def train_tiny_tokenizer(vocab_size: int = 600) -> Tok:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<eos>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tk.train_from_iterator(LINES * 3, trainer=trainer)
    return Tok(tk)


@pytest.fixture(scope="session")
def tok() -> Tok:
    return train_tiny_tokenizer()


class ListCache:
    """Stand-in KV cache: the token ids seen so far (with the fope KVCache's `length`)."""

    def __init__(self):
        self.ids: list[list[int]] = []

    @property
    def length(self) -> int:
        return len(self.ids[0]) if self.ids else 0


class StandIn(nn.Module):
    """Base of the stand-ins: forward(ids (B, T), cache=None) -> (B, T, V) from `logits_for(full_row, t)`."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.calls = 0

    def new_cache(self) -> ListCache:
        return ListCache()

    def forward(self, ids: torch.Tensor, cache: ListCache | None = None) -> torch.Tensor:
        self.calls += 1
        rows = ids.tolist()
        start = 0
        if cache is not None:
            start = cache.length
            cache.ids = (
                [old + new for old, new in zip(cache.ids, rows, strict=True)] if cache.ids else [list(r) for r in rows]
            )
            full = cache.ids
        else:
            full = rows
        out = torch.zeros(ids.shape[0], ids.shape[1], self.vocab_size)
        for b, row in enumerate(full):
            for i in range(ids.shape[1]):
                out[b, i] = self.logits_for(row, start + i)
        return out

    def logits_for(self, row: list[int], t: int) -> torch.Tensor:  # next-token logits after row[: t + 1]
        return torch.zeros(self.vocab_size)


class UniformLM(StandIn):
    """All logits zero: perplexity is exactly the vocabulary size."""

    def forward(self, ids: torch.Tensor, cache: ListCache | None = None) -> torch.Tensor:
        if cache is not None:
            super().forward(ids, cache)
        return torch.zeros(ids.shape[0], ids.shape[1], self.vocab_size)


class CumMeanLM(nn.Module):
    """Causal and context-dependent: logits_t = W · mean(E[ids[:t+1]]) + U · E[ids[t]]."""

    def __init__(self, vocab_size: int, dim: int = 8):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.vocab_size = vocab_size
        self.emb = nn.Parameter(torch.randn(vocab_size, dim, generator=g))
        self.w = nn.Parameter(torch.randn(dim, vocab_size, generator=g))
        self.u = nn.Parameter(torch.randn(dim, vocab_size, generator=g))

    def new_cache(self):
        return {"sum": None, "length": 0}

    def forward(self, ids: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        e = self.emb[ids]  # (B, T, d)
        csum = e.cumsum(1)
        start = 0
        if cache is not None:
            start = cache["length"]
            if cache["sum"] is not None:
                csum = csum + cache["sum"][:, None]
            cache["sum"], cache["length"] = csum[:, -1], start + ids.shape[1]
        count = torch.arange(start + 1, start + ids.shape[1] + 1, dtype=e.dtype)[None, :, None]
        return (csum / count) @ self.w + e @ self.u


class KeyCopyLM(StandIn):
    """Reads the pass key from its input and emits it after the question, then EOS.

    Next-token logits: 20 + len(text) for every token whose text continues " {key}." correctly (longest
    first), so teacher-forced scoring of the true key is high and any distractor hits a -inf-like token.
    Only the last `window` positions of each call are computed (earlier logits are never used).
    """

    window = 16

    @staticmethod
    def answer(key: str) -> str:
        """The digits the model emits for the key it read (the key itself; subclasses change it)."""
        return key

    def __init__(self, tok: Tok):
        super().__init__(tok.vocab_size)
        self.tok = tok
        self.texts = [tok.decode([i]) for i in range(tok.vocab_size)]

    def forward(self, ids: torch.Tensor, cache: ListCache | None = None) -> torch.Tensor:
        self._n_new = ids.shape[1]
        self._total = (cache.length if cache is not None else 0) + ids.shape[1]
        return super().forward(ids, cache)

    def logits_for(self, row: list[int], t: int) -> torch.Tensor:
        out = torch.zeros(self.vocab_size)
        if t < self._total - self.window:
            return out
        text = self.tok.decode(row[: t + 1])
        m = re.search(r"The pass key is ([0-9]+)\.", text)
        q = text.rfind(pk.QUESTION)
        if m is None or q < 0:
            return out
        gen, target = text[q + len(pk.QUESTION) :], f" {self.answer(m.group(1))}."
        if gen == target:
            out[self.tok.eos_id] = 20.0
        elif target.startswith(gen):
            rest = target[len(gen) :]
            for i, s in enumerate(self.texts):
                if s and rest.startswith(s):
                    out[i] = 20.0 + len(s)
        return out


class ReversedKeyLM(KeyCopyLM):
    """Finds the key but emits its digits in reverse order (a model that retrieves without copying in order)."""

    @staticmethod
    def answer(key: str) -> str:
        return key[::-1]


class FailingLM(StandIn):
    def forward(self, ids, cache=None):
        raise RuntimeError("boom: simulated out of memory")


class NaNLM(StandIn):
    def forward(self, ids, cache=None):
        return torch.full((ids.shape[0], ids.shape[1], self.vocab_size), float("nan"))
