"""The ground floor: helpers every package of fope may use, and that import nothing of fope.

Files: atomic writes and one-line file errors.

    atomic_write(path, "text" or b"bytes")       temp file in the same folder + fsync + rename + fsync folder
    atomic_json(path, obj, indent=2)             the same for JSON (numpy scalars and paths written as values)
    with atomic_path(path) as tmp: save(tmp)     the same for writers that want a path (safetensors, torch.save)
    atomic_copy(src, dst)                        a copy (never a hard link) that appears whole or not at all
    sha256_file(path)                            the hex sha256 of a file, read in blocks
    raise FileProblem(path, "is truncated", "rebuild it with ...")   one line: file, what is wrong, what to do
    with reading(path, "a checkpoint optimizer state", fix): torch.load(path)   any failure -> FileProblem
    check_writable(folder, need_bytes)          read-only folders and full disks, before the work starts
    cache_root(cache=None)                      ``cache``, else $FOPE_CACHE, else ~/.cache/fope
    git_info()                                  {"commit", "dirty"} of the source tree fope runs from

Configuration: documented dataclass fields and KEY=VALUE overrides, one spelling everywhere (``fope train``,
``fope reproduce``, ``fope hf convert``): ``KEY=VALUE``, a ``-`` in KEY read as ``_``; booleans
true/false, yes/no, on/off (any case); none/null/~ for None; lists as ``a,b`` or ``[a, b]``; mappings as YAML.

    doc_field(default, "what it is")            a dataclass field carrying its documentation
    field_docs(cls)                             {field: (default, doc)} (CLI help and docs tables are built from it)
    add_field_flags(parser, cls)                one --flag per field: its doc the help, its type read by coerce
    parse_overrides(["a=1", "b.c=x"])           {"a": "1", "b.c": "x"}; a malformed item raises naming it
    coerce(text, type, key)                     text -> a value of a field's declared type (ValueError naming key)
    parse_value(text)                           text -> a value when no type is declared (pe options)

Small helpers:

    json_object(text, where)                    a JSON object or a one-line ValueError naming ``where``
    did_you_mean(name, choices)                 " (did you mean 'x'?)" for an unknown name, or ""
    check_positive_int(name, value)             ValueError "NAME must be a positive int, got VALUE" (bools refused)
    keep_freed_memory()                          glibc: stop handing freed tensor memory back to the OS (CPU speed)

A crash (even ``kill -9``) at any moment leaves either the old or the new content under the final name,
never a mix or an empty file. Every file-system step of these helpers (and of the checkpoint save) is
reported to an optional hook (:func:`set_fs_hook`) so tests can stop the process at each one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

_FS_HOOK: Callable[[str, str], None] | None = None


def set_fs_hook(hook: Callable[[str, str], None] | None) -> None:
    """Call ``hook(operation, path)`` before every file-system step of the atomic writers (tests only)."""
    global _FS_HOOK
    _FS_HOOK = hook


def fs_event(op: str, path: str | os.PathLike) -> None:
    """Report a file-system step to the hook (no-op without one)."""
    if _FS_HOOK is not None:
        _FS_HOOK(op, str(path))


# --------------------------------------------------------------------------- errors
def did_you_mean(name: object, choices: Iterable[str], *, cutoff: float = 0.6) -> str:
    """`` (did you mean 'x'?)`` naming the choice closest to ``name`` (difflib), or "" when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_positive_int(name: str, value: Any, *, or_none: bool = False) -> None:
    """ValueError ``NAME must be a positive int, got VALUE`` unless ``value`` is an int > 0 (not a bool), or None
    when ``or_none``."""
    if or_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive int{' or None' if or_none else ''}, got {value!r}")


def json_object(text: str, where: str) -> dict[str, Any]:
    """``text`` parsed as a JSON object; ValueError ``WHERE: not JSON (reason)`` or ``WHERE: expected a JSON
    object`` otherwise (``where``: the file and line, or the option, the text came from)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not JSON ({e.msg})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(value).__name__}")
    return value


class FileProblem(ValueError):
    """A file that cannot be used, as one line: ``PATH: what is wrong; what to do``.

    A ValueError, so ``fope`` prints it as a one-line error and exits 2.
    """

    def __init__(self, path: str | os.PathLike, problem: str, fix: str = "") -> None:
        self.path, self.problem, self.fix = str(path), problem, fix
        super().__init__(f"{self.path}: {problem}" + (f"; {fix}" if fix else ""))


def _first_line(e: BaseException) -> str:
    if "weights_only" in str(e):  # torch.load's advice to unpickle arbitrary code does not apply here
        return f"{type(e).__name__}: not a valid weights-only torch file"
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


@contextlib.contextmanager
def reading(path: str | os.PathLike, what: str, fix: str = "") -> Iterator[None]:
    """Turn any failure while reading ``path`` into a :class:`FileProblem` naming it.

    A missing file stays a FileNotFoundError (with the path); a FileProblem raised inside passes through.
    """
    try:
        yield
    except (FileProblem, KeyboardInterrupt):
        raise
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{path}: {what} not found" + (f"; {fix}" if fix else "")) from e
    except Exception as e:
        raise FileProblem(path, f"corrupt or unreadable {what} ({_first_line(e)})", fix) from e


def os_error_problem(e: OSError, path: str | os.PathLike, doing: str) -> FileProblem:
    """A FileProblem for an OSError while ``doing`` something with ``path`` (full disk, read-only, ...)."""
    where = e.filename or path
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
        return FileProblem(
            where,
            f"no space left on the device while {doing}",
            "free space (or choose an output directory on another disk) and run again",
        )
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return FileProblem(
            where, f"cannot write here while {doing} ({os.strerror(e.errno)})", "choose a writable output directory"
        )
    return FileProblem(where, f"{os.strerror(e.errno) if e.errno else e} while {doing}")


# --------------------------------------------------------------------------- atomic writes
def fsync_dir(directory: str | os.PathLike) -> None:
    fs_event("fsync_dir", directory)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: str | os.PathLike) -> None:
    fs_event("fsync", path)
    with open(path, "rb") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; after the block it is fsync'ed and renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fs_event("create", final)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        fs_event("write", tmp)
        yield tmp
        fsync_file(tmp)
        fs_event("rename", final)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(final.parent)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write ``data`` (text as UTF-8, or bytes) to ``path`` atomically; returns the path."""
    payload = data.encode() if isinstance(data, str) else data
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(payload)
    return Path(path)


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)``: numpy and torch scalars as their value, paths as strings."""
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


def atomic_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON (and a final newline) to ``path`` atomically; returns the path."""
    return atomic_write(path, json.dumps(obj, indent=indent, default=json_default) + "\n")


def atomic_copy(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy ``src`` to ``dst`` atomically (a real copy: the two never share storage)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)
    return Path(dst)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 22):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- where fope keeps things, what it runs
def cache_root(cache: str | os.PathLike | None = None) -> Path:
    """The fope cache root (corpora, tokenizers, token shards, the SmolLM2 checkpoint): ``cache`` when given,
    else ``$FOPE_CACHE``, else ``~/.cache/fope``; ``~`` is expanded."""
    return Path(cache or os.environ.get("FOPE_CACHE") or "~/.cache/fope").expanduser()


def git_info() -> dict[str, Any]:
    """``{"commit": sha | None, "dirty": bool | None}`` of the source tree fope is imported from (None outside a git
    checkout or without git)."""
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=False
        )
        st = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return {"commit": None, "dirty": None}
    if sha.returncode != 0:
        return {"commit": None, "dirty": None}
    return {"commit": sha.stdout.strip() or None, "dirty": bool(st.stdout.strip()) if st.returncode == 0 else None}


# --------------------------------------------------------------------------- documented fields, overrides
def doc_field(default: Any, doc: str) -> Any:
    """A dataclass field whose documentation travels with it (``metadata["doc"]``, read by :func:`field_docs`);
    a mutable default (list, dict) is copied per instance."""
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda d=default: type(d)(d), metadata={"doc": doc})
    return dataclasses.field(default=default, metadata={"doc": doc})


def field_docs(cls: type) -> dict[str, tuple[Any, str]]:
    """``{field: (default, doc)}`` of a dataclass whose fields are :func:`doc_field` (doc "" where there is none)."""
    out = {}
    for f in dataclasses.fields(cls):
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else (f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
        )
        out[f.name] = (default, f.metadata.get("doc", ""))
    return out


TRUE_WORDS = ("true", "yes", "on")
FALSE_WORDS = ("false", "no", "off")
NONE_WORDS = ("none", "null", "~")


def split_override(text: str) -> tuple[str, str]:
    """``"train.max-steps = 300"`` -> ``("train.max_steps", "300")``; ValueError naming ``text`` unless it is
    KEY=VALUE."""
    key, sep, value = str(text).partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {text!r} is not of the form KEY=VALUE (e.g. train.lr=3e-4 or sigma=0.3)")
    return key.strip().replace("-", "_"), value.strip()


def parse_overrides(items: Iterable[str]) -> dict[str, str]:
    """KEY=VALUE items -> ``{key: value text}`` in order (a key given twice keeps its last value)."""
    return dict(split_override(item) for item in items)


def parse_value(text: str) -> Any:
    """A value whose type no field declares (e.g. a position encoding's option): a boolean or None word, a JSON
    number or string, a YAML list or mapping (``[a, b]``, ``{rope_type: yarn, factor: 2}``), else the text."""
    t = str(text).strip()
    low = t.lower()
    if low in TRUE_WORDS or low in FALSE_WORDS:
        return low in TRUE_WORDS
    if low in NONE_WORDS:
        return None
    try:
        return json.loads(t)
    except json.JSONDecodeError:
        pass
    if t[:1] in ("[", "{"):
        import yaml

        try:
            return yaml.safe_load(t)
        except yaml.YAMLError:
            pass
    return t


def _origin(tp: Any) -> Any:
    return typing.get_origin(tp) or tp


def coerce(text: str, tp: Any, key: str = "value") -> Any:
    """Convert the string ``text`` to the type ``tp`` (a field annotation: bool, int, float, str, ``X | None``,
    ``list[X]``, ``tuple[X, ...]``, dict); ValueError ``KEY: cannot convert TEXT to TYPE``. Booleans also take 1/0."""
    import yaml

    args = typing.get_args(tp)
    if _origin(tp) in (typing.Union, types.UnionType):
        if text.strip().lower() in (*NONE_WORDS, "") and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(text, inner[0], key) if len(inner) == 1 else yaml.safe_load(text)
    try:
        if tp is bool:
            low = text.strip().lower()
            if low in (*TRUE_WORDS, "1"):
                return True
            if low in (*FALSE_WORDS, "0"):
                return False
            raise ValueError
        if tp is int:
            x = float(text)
            if not x.is_integer():
                raise ValueError
            return int(x)
        if tp is float:
            return float(text)
        if tp is str:
            return text
        if _origin(tp) in (list, tuple):
            v = yaml.safe_load(text) if text.strip().startswith("[") else [s for s in text.split(",") if s.strip()]
            if not isinstance(v, list):
                raise ValueError
            items = [coerce(str(x).strip(), args[0], key) for x in v] if args else v
            return items if _origin(tp) is list else tuple(items)
        if _origin(tp) is dict:
            v = yaml.safe_load(text) if text.strip() else {}
            if not isinstance(v, dict):
                raise ValueError
            return v
    except (ValueError, yaml.YAMLError):
        name = getattr(tp, "__name__", str(tp))
        raise ValueError(f"{key}: cannot convert {text!r} to {name}") from None
    return yaml.safe_load(text)


def add_field_flags(parser: Any, cls: type, *, defaults: bool = True) -> None:
    """One ``--field-name`` flag on the argparse ``parser`` per field of the dataclass ``cls``: its documentation is
    the help and its declared type reads the value (`coerce`). The flag's default is the field's, or with
    ``defaults=False`` None ("keep the preset's value")."""
    hints = typing.get_type_hints(cls)
    for name, (default, doc) in field_docs(cls).items():
        flag = f"--{name.replace('_', '-')}"

        def convert(text: str, tp: Any = hints[name], key: str = flag) -> Any:
            return coerce(text, tp, key)

        convert.__name__ = getattr(hints[name], "__name__", "value")  # argparse's "invalid int value: 'x'"
        parser.add_argument(
            flag,
            dest=name,
            type=convert,
            default=default if defaults else None,
            help=f"{doc} (default {default!r})" if defaults else f"{doc} (default: the preset's)",
        )


# --------------------------------------------------------------------------- pre-flight checks
def check_writable(directory: str | os.PathLike, need_bytes: int = 0, *, what: str = "output directory") -> None:
    """Raise a FileProblem now if ``directory`` cannot be written or its disk has under ``need_bytes`` free.

    Creates the directory (and parents); a probe file is written and removed.
    """
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
        fs_event("probe", d)
        fd, probe = tempfile.mkstemp(prefix=".fope-write-test.", dir=d)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise os_error_problem(e, d, f"checking that the {what} is writable") from e
    free = shutil.disk_usage(d).free
    if free < need_bytes:
        raise FileProblem(
            d,
            f"only {free / 2**20:,.0f} MiB free on its disk, the {what} needs about {need_bytes / 2**20:,.0f} MiB",
            "free space or choose another directory",
        )


def remove_stale_temps(directory: str | os.PathLike) -> None:
    """Delete the temporary files (``.NAME.XXXX.tmp``) a killed atomic write left in ``directory``.

    Call only while nothing else writes there (e.g. when a run starts).
    """
    d = Path(directory)
    if d.is_dir():
        for f in d.glob(".*.tmp"):
            if f.is_file():
                with contextlib.suppress(OSError):
                    f.unlink()


#: glibc ``mallopt`` parameters (malloc.h) and the value keep_freed_memory gives both: 1 GiB
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _KEEP_BYTES = -1, -3, 1 << 30


def keep_freed_memory() -> bool:
    """Let glibc's allocator keep freed blocks up to 1 GiB instead of returning them to the OS; True if applied.

    By default glibc serves every block above a (dynamic) 32 MiB-at-most threshold with its own ``mmap`` and
    unmaps it on free, so each training step of a small CPU model faults its logits and their gradients back
    in page by page. Measured on 2 cores (docs/performance.md, "CPU allocator"): a quarter of the process time
    was kernel time, and this call removes almost all of it. The cost: the process keeps its peak heap instead
    of shrinking after a large step. Called by the ``fope`` CLI and the grid's worker processes; a no-op where
    the C library is not glibc, and when ``FOPE_KEEP_FREED_MEMORY=0``.
    """
    if os.environ.get("FOPE_KEEP_FREED_MEMORY", "1") == "0":
        return False
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _KEEP_BYTES)) and bool(mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES))


__all__ = [
    "FileProblem",
    "add_field_flags",
    "atomic_copy",
    "atomic_json",
    "atomic_path",
    "atomic_write",
    "cache_root",
    "check_positive_int",
    "check_writable",
    "coerce",
    "did_you_mean",
    "doc_field",
    "field_docs",
    "fs_event",
    "fsync_dir",
    "fsync_file",
    "git_info",
    "json_default",
    "json_object",
    "keep_freed_memory",
    "os_error_problem",
    "parse_overrides",
    "parse_value",
    "reading",
    "remove_stale_temps",
    "set_fs_hook",
    "sha256_file",
    "split_override",
]
