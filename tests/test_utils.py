"""fope.utils: the cache root, the git provenance, documented fields and the one KEY=VALUE override spelling."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fope.utils import (
    atomic_json,
    cache_root,
    coerce,
    doc_field,
    field_docs,
    git_info,
    parse_overrides,
    parse_value,
    split_override,
)


def test_cache_root_is_the_argument_then_the_environment_then_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FOPE_CACHE", str(tmp_path / "env"))
    assert cache_root() == tmp_path / "env"
    assert cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.setenv("FOPE_CACHE", "")  # set but empty: the default, never the working directory
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_root() == tmp_path / "home" / ".cache" / "fope"
    monkeypatch.delenv("FOPE_CACHE")
    assert cache_root("~/c") == tmp_path / "home" / "c"


def test_every_cache_user_reads_the_one_root(monkeypatch, tmp_path):
    from fope.data.fetch import corpora_dir
    from fope.hf.smollm import cache_dir as smollm_dir
    from fope.train.config import DataConfig
    from fope.train.data import tokenizer_path

    monkeypatch.setenv("FOPE_CACHE", str(tmp_path))
    assert corpora_dir() == tmp_path / "corpora"
    assert smollm_dir() == tmp_path / "hf" / "smollm2-135m-instruct"
    assert tokenizer_path(DataConfig(corpus="books", tokenizer="train:512")).is_relative_to(tmp_path / "tokenizers")


def test_git_info_names_this_checkout():
    info = git_info()
    assert set(info) == {"commit", "dirty"}
    here = Path(__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    assert info["commit"] == head.stdout.strip() and isinstance(info["dirty"], bool)


def test_git_info_without_git_is_none(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert git_info() == {"commit": None, "dirty": None}


def test_split_override_one_spelling():
    assert split_override("train.max-steps = 300") == ("train.max_steps", "300")
    assert split_override("scaling={rope_type: yarn}") == ("scaling", "{rope_type: yarn}")
    assert parse_overrides(["a=1", "b.c=x", "a=2"]) == {"a": "2", "b.c": "x"}
    for bad in ("sigma", "=3", ""):
        with pytest.raises(ValueError, match=re.escape(f"override {bad!r} is not of the form KEY=VALUE")):
            split_override(bad)


@pytest.mark.parametrize(
    "text, value",
    [
        ("0.3", 0.3),
        ("1e-3", 0.001),
        ("32", 32),
        ("full", "full"),
        ("True", True),
        ("off", False),
        ("yes", True),
        ("none", None),
        ("~", None),
        ("[1, 2]", [1, 2]),
        ("{rope_type: yarn, factor: 2}", {"rope_type": "yarn", "factor": 2}),
        ('{"a": 1}', {"a": 1}),
        ("[unclosed", "[unclosed"),
    ],
)
def test_parse_value_of_an_untyped_option(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


@pytest.mark.parametrize(
    "text, tp, value",
    [
        ("on", bool, True),
        ("No", bool, False),
        ("1", bool, True),
        ("1e3", int, 1000),
        ("none", int | None, None),
        ("0,0.2", tuple[float, ...], (0.0, 0.2)),
        ("rope, fope", tuple[str, ...], ("rope", "fope")),
        ("[1, 2]", list[int], [1, 2]),
        ("{a: 1}", dict, {"a": 1}),
        ("null", dict | None, None),
    ],
)
def test_coerce_to_a_declared_type(text, tp, value):
    assert coerce(text, tp) == value


@pytest.mark.parametrize(
    "text, tp, name",
    [
        ("maybe", bool, "bool"),
        ("1.5", int, "int"),
        ("x", float, "float"),
        ("[1", list[int], "list"),
        ("a: [", dict, "dict"),
    ],
)
def test_coerce_names_the_key_and_the_text(text, tp, name):
    with pytest.raises(ValueError, match=re.escape(f"steps: cannot convert {text!r} to {name}")):
        coerce(text, tp, "steps")


def test_documented_fields():
    @dataclasses.dataclass
    class Options:
        size: int = doc_field(3, "how many")
        names: list = doc_field(["a"], "which ones")
        plain: str = "x"

    assert field_docs(Options) == {"size": (3, "how many"), "names": (["a"], "which ones"), "plain": ("x", "")}
    one, two = Options(), Options()
    one.names.append("b")
    assert two.names == ["a"], "a mutable default is copied per instance"


def test_atomic_json_writes_numpy_scalars_and_paths(tmp_path):
    atomic_json(tmp_path / "x.json", {"n": np.int64(3), "x": np.float32(0.5), "p": Path("a/b")}, indent=None)
    assert json.loads((tmp_path / "x.json").read_text()) == {"n": 3, "x": 0.5, "p": "a/b"}
    with pytest.raises(TypeError, match="cannot serialise object"):
        atomic_json(tmp_path / "y.json", {"o": object()})
    assert not (tmp_path / "y.json").exists()


# --------------------------------------------------------------------------- one writer, failed writes, SIGTERM
def test_directory_lock_is_reentrant_in_a_process_and_removed_after(tmp_path):
    from fope.utils import DirectoryInUse, directory_lock

    with directory_lock(tmp_path, what="run directory"):
        record = json.loads((tmp_path / ".lock").read_text())
        assert record["pid"] == __import__("os").getpid() and record["host"] and record["started"]
        with directory_lock(tmp_path):  # the same process: re-entrant
            pass
        assert (tmp_path / ".lock").exists()
        with (
            pytest.raises(DirectoryInUse, match="this grid is in use by pid"),
            directory_lock(tmp_path, what="grid", reentrant=False),
        ):
            pass
    assert not (tmp_path / ".lock").exists()


def test_write_problem_reads_torch_and_safetensors_reports(tmp_path):
    import errno

    from fope.utils import write_problem

    full = write_problem(
        RuntimeError("Error while serializing: I/O error: No space left on device (os error 28)"),
        tmp_path / "w.safetensors",
        "writing it",
    )
    assert full.cause == "disk_full" and str(full).startswith(f"{tmp_path / 'w.safetensors'}: no space left")
    torch_pos = write_problem(
        RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598"),
        tmp_path / "o.pt",
        "writing it",
    )
    assert torch_pos.cause in ("disk_full", "write_failed") and str(tmp_path / "o.pt") in str(torch_pos)
    os_err = write_problem(OSError(errno.ENOSPC, "No space left on device"), tmp_path / "m.jsonl", "appending")
    assert str(os_err).startswith(f"{tmp_path / 'm.jsonl'}: no space left on the device while appending")
    assert write_problem(ValueError("a bug, not a write"), tmp_path / "x", "writing it") is None


def test_atomic_dir_appears_whole_or_not_at_all(tmp_path):
    from fope.utils import atomic_dir

    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "a").write_text("1")
        (tmp / "sub").mkdir()
        (tmp / "sub" / "b").write_text("2")
    assert (tmp_path / "d" / "sub" / "b").read_text() == "2"
    (tmp_path / "d" / "keep").write_text("k")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path / "d") as tmp:
        (tmp / "a").write_text("new")
        raise RuntimeError("failed half-way")
    assert (tmp_path / "d" / "a").read_text() == "1" and not list(tmp_path.glob(".d.*"))
    with atomic_dir(tmp_path / "d") as tmp:
        (tmp / "a").write_text("new")
    assert (tmp_path / "d" / "a").read_text() == "new" and (tmp_path / "d" / "keep").read_text() == "k"


def test_sigterm_raises_terminated_once(tmp_path):
    import os
    import signal

    from fope.utils import Terminated, raise_on_sigterm

    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        assert raise_on_sigterm()
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(1000):  # delivered at the next bytecode
                pass
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # a second one ends the process at once
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_read_json_names_the_file_and_line_and_follows_the_missing_policy(tmp_path):
    from fope.utils import FileProblem, read_json

    path = tmp_path / "x.json"
    with pytest.raises(FileNotFoundError, match=r"x.json: result not found"):
        read_json(path, "result")  # required by default
    assert read_json(path, "result", missing=None) is None  # optional: the caller says what absence means
    path.write_text('{\n "a": 1,\n oops\n}')
    with pytest.raises(FileProblem, match=r"^.*x.json: corrupt or unreadable result \(not JSON at line 3: .*\)$"):
        read_json(path, "result", missing=None)  # damaged is never "missing"
    path.write_text('{"a": [1, 2]}')
    assert read_json(path) == {"a": [1, 2]}


def test_read_jsonl_names_the_file_and_line(tmp_path):
    from fope.utils import FileProblem, read_jsonl

    path = tmp_path / "x.jsonl"
    assert read_jsonl(path, missing=[]) == []
    path.write_text('{"a": 1}\n\n[2]\n{bad\n{"b": 3}\n')
    with pytest.raises(FileProblem, match=r"x.jsonl line 4: not JSON \(.*\) in this chat data file$"):
        read_jsonl(path, "chat data file")
    path.write_text('{"a": 1}\n[2]\n{"b": 3')  # a last line cut short by a crash
    with pytest.raises(FileProblem, match="line 3"):
        read_jsonl(path)
    assert read_jsonl(path, torn_tail=True) == [{"a": 1}, [2]]

    def objects_only(v):
        if not isinstance(v, dict):
            raise ValueError("not a JSON object")

    with pytest.raises(FileProblem, match=r"x.jsonl line 2: not a JSON object"):
        read_jsonl(path, torn_tail=True, check=objects_only)
