"""Synthetic key-retrieval documents: the documented CPU-scale passkey-teaching variant.

Models trained on a few million tokens never see a "remember this number, then recall it" pattern,
so at CPU scale the passkey test measures nothing. ``prepare_shards(..., retrieval_share=x)`` mixes
a share ``x`` (by tokens) of documents like the one below into the training split only::

    There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. ...
    <filler sentences>
    The pass key is 31415. Remember it. 31415 is the pass key.
    <filler sentences>
    What is the pass key? The pass key is 31415.

The frame is the passkey test's (docs/paper.md §4.5) so the task is learnt, but the filler is
different: sentences drawn from the training corpus itself (``filler_sentences``), or the fixed
``FALLBACK_SENTENCES``, and never the test's "The grass is green. The sky is blue. ..." sentences,
so the evaluation still measures retrieval through unseen filler. Keys are uniform in [1, 50000]
and the needle depth is uniform over sentence boundaries. Every document is shorter than the
training length (``retrieval_token_documents``), so a packed window can hold it whole.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence

TASK = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
    "I will quiz you about the important information there."
)
NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
QUESTION = "What is the pass key? The pass key is"
KEY_RANGE = (1, 50000)

# the passkey *test* filler (docs/paper.md §4.5): never used here
TEST_FILLER_SENTENCES = (
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
)

# neutral sentences used when a corpus gives too few usable ones (written for fope)
FALLBACK_SENTENCES = (
    "A narrow road winds between the low stone walls of the valley.",
    "The baker opens the shop before the first train leaves the station.",
    "Several old maps were kept in a wooden chest near the window.",
    "In the evening the harbour fills with small fishing boats.",
    "The library on the corner closes early during the winter months.",
    "A pair of herons stood motionless at the edge of the marsh.",
    "Most of the houses on this street were built of red brick.",
    "The committee met again to discuss the schedule for the spring.",
    "An old clock in the hallway chimes once every quarter of an hour.",
    "The path through the orchard is muddy after a night of rain.",
    "Travellers often stop at the inn to rest their horses.",
    "The teacher wrote a long list of words on the board.",
    "A cold wind came down from the hills and rattled the shutters.",
    "The market sells cheese, bread, apples and woollen blankets.",
    "Nobody remembered who had planted the row of tall poplars.",
    "The ferry crosses the lake twice a day when the weather is calm.",
    "Her notebook was full of sketches of birds and leaves.",
    "The bridge was repaired after the flood damaged its western arch.",
    "A quiet murmur of voices drifted up from the courtyard below.",
    "The workshop smelled of sawdust, oil and fresh paint.",
)

_SENTENCE = re.compile(r"[^.!?]*[.!?]")
_FORBIDDEN = re.compile(r"\d|pass ?key|<\|", re.IGNORECASE)


def _usable(sentence: str, *, min_chars: int, max_chars: int) -> bool:
    return (
        min_chars <= len(sentence) <= max_chars
        and sentence[0].isupper()
        and not _FORBIDDEN.search(sentence)
        and not any(t.lower().rstrip(".") in sentence.lower() for t in TEST_FILLER_SENTENCES)
    )


def split_sentences(text: str, *, min_chars: int = 30, max_chars: int = 240) -> list[str]:
    """Whitespace-normalised sentences of ``text`` usable as filler: no digits (the key is the only
    number in a document), no "pass key", no special tokens, none of the test filler."""
    flat = " ".join(text.split())
    out = []
    for m in _SENTENCE.finditer(flat):
        s = m.group(0).strip()
        if _usable(s, min_chars=min_chars, max_chars=max_chars):
            out.append(s)
    return out


class SentenceReservoir:
    """Seeded uniform sample (reservoir sampling) of up to ``size`` filler sentences from a stream of
    documents, so filler can be collected during the tokenisation pass at no extra read."""

    def __init__(self, *, size: int = 20000, seed: int = 0):
        self.size, self.rng, self.seen, self.sentences = size, random.Random(seed), 0, []

    def add(self, text: str) -> None:
        for s in split_sentences(text):
            self.seen += 1
            if len(self.sentences) < self.size:
                self.sentences.append(s)
            else:
                j = self.rng.randrange(self.seen)
                if j < self.size:
                    self.sentences[j] = s

    def result(self, *, min_sentences: int = 100) -> list[str]:
        """The sample, or ``FALLBACK_SENTENCES`` when fewer than ``min_sentences`` were found."""
        return list(self.sentences) if len(self.sentences) >= min_sentences else list(FALLBACK_SENTENCES)


def filler_sentences(docs: Iterable[str], *, size: int = 20000, seed: int = 0) -> list[str]:
    """Filler sentences sampled from ``docs`` (``FALLBACK_SENTENCES`` if they give too few)."""
    res = SentenceReservoir(size=size, seed=seed)
    for d in docs:
        res.add(d)
    return res.result()


def retrieval_document(*, key: int, prefix: Sequence[str], suffix: Sequence[str]) -> str:
    """The document text: task line, ``prefix`` filler, needle, ``suffix`` filler, question + answer."""
    if not KEY_RANGE[0] <= key <= KEY_RANGE[1]:
        raise ValueError(f"key {key} outside {KEY_RANGE}")
    return "\n".join([TASK, " ".join(prefix), NEEDLE.format(key=key), " ".join(suffix), f"{QUESTION} {key}."])


def sample_retrieval_document(rng: random.Random, sentences: Sequence[str], n_filler: int) -> tuple[str, int]:
    """A document with ``n_filler`` sentences drawn from ``sentences``, needle at a uniform
    sentence boundary, key uniform in ``KEY_RANGE``; returns (text, key)."""
    if not sentences:
        raise ValueError("no filler sentences")
    key = rng.randint(*KEY_RANGE)
    filler = [sentences[rng.randrange(len(sentences))] for _ in range(n_filler)]
    cut = rng.randint(0, n_filler)
    return retrieval_document(key=key, prefix=filler[:cut], suffix=filler[cut:]), key


def retrieval_token_documents(
    tokenizer, sentences: Sequence[str], *, n_tokens: int, max_len: int, seed: int = 0, batch: int = 128
) -> list[list[int]]:
    """Token ids of retrieval documents totalling at least ``n_tokens`` tokens (one EOS each counted).

    Each document has fewer than ``max_len`` tokens (without its EOS); target lengths are uniform
    between the frame's own length and ``max_len - 1``. Filler is trimmed one sentence at a time
    until a document fits.
    """
    rng = random.Random(seed)
    frame = len(tokenizer.encode(retrieval_document(key=KEY_RANGE[1], prefix=[], suffix=[])))
    if frame >= max_len:
        raise ValueError(
            f"train_len {max_len} is too short for a retrieval document (the frame alone has {frame} tokens)"
        )
    per_sentence = max(
        1.0, sum(len(x) for x in tokenizer.encode_batch(list(sentences[:200]))) / min(len(sentences), 200)
    )
    out: list[list[int]] = []
    total = 0
    while total < n_tokens:
        specs = []
        for _ in range(batch):
            target = rng.randint(frame, max_len - 1)
            specs.append(round((target - frame) / per_sentence))
        texts = [sample_retrieval_document(rng, sentences, n) for n in specs]
        encoded = tokenizer.encode_batch([t for t, _ in texts])
        for (text, _key), ids, n in zip(texts, encoded, specs):
            while len(ids) >= max_len:  # trim filler from the far end until it fits
                n -= 1
                text = _trim_one(text)
                ids = tokenizer.encode(text)
            out.append(ids)
            total += len(ids) + 1
            if total >= n_tokens:
                break
    return out


def _trim_one(text: str) -> str:
    """Drop one filler sentence (from the longer of the two filler lines)."""
    lines = text.split("\n")
    pre, post = lines[1], lines[3]
    i = 1 if len(pre) >= len(post) else 3
    sents = _SENTENCE.findall(lines[i])
    if not sents:
        raise ValueError("cannot shorten the retrieval document further")
    lines[i] = "".join(sents[:-1]).strip() if i == 1 else "".join(sents[1:]).strip()
    return "\n".join(lines)
