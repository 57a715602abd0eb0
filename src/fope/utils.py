"""The ground floor: helpers every package of fope may use, and that import nothing of fope.

Files: atomic writes and one-line file errors.

    atomic_write(path, "text" or b"bytes")       temp file in the same folder + fsync + rename + fsync folder
    atomic_json(path, obj, indent=2)             the same for JSON (numpy scalars and paths written as values)
    with atomic_path(path) as tmp: save(tmp)     the same for writers that want a path (safetensors, torch.save)
    atomic_copy(src, dst)                        a copy (never a hard link) that appears whole or not at all
    with atomic_dir(path) as tmp: write(tmp)     a whole directory that appears complete or not at all
    sha256_file(path)                            the hex sha256 of a file, read in blocks
    raise FileProblem(path, "is truncated", "rebuild it with ...")   one line: file, what is wrong, what to do
    with reading(path, "a checkpoint optimizer state", fix): torch.load(path)   any failure -> FileProblem
    check_writable(folder, need_bytes)          read-only folders and full disks, before the work starts
    write_problem(e, path, doing)               torch's / safetensors' / the OS's failed write -> one FileProblem line
    with directory_lock(folder): ...            one writer per directory: a second one fails at once naming the first
    raise_on_sigterm()                          SIGTERM raises Terminated, so cleanup runs (exit status 143)
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

import argparse
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
import time
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


class ArgumentValueError(ValueError, argparse.ArgumentTypeError):
    """A bad command-line value: argparse prints its message as is (an ArgumentTypeError), library callers catch a
    ValueError."""


def parse_lengths(text: str, option: str | None = None) -> list[int]:
    """ "256,512,1k,2k" -> [256, 512, 1024, 2048]: the one parser of every command's lengths (``k`` = 1024).
    ``option`` (e.g. "--lengths") prefixes the error; argparse names the option itself."""
    out = []
    where = f"{option}: " if option else ""
    for part in str(text).split(","):
        part = part.strip().lower()
        if not part:
            continue
        mult = 1024 if part.endswith("k") else 1
        try:
            value = int(part[:-1] if mult > 1 else part) * mult
        except ValueError:
            raise ArgumentValueError(f"{where}{part!r} is not an integer length (e.g. 512,1k,2k)") from None
        if value < 1:
            raise ArgumentValueError(f"{where}lengths must be positive, got {part!r}")
        out.append(value)
    if not out:
        raise ArgumentValueError(f"{where}no lengths in {text!r}")
    return out


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

    A ValueError, so ``fope`` prints it as a one-line error and exits 2. ``cause`` says what kind of problem it is
    when a caller needs to know (``"disk_full"``, ``"read_only"``, ``"write_failed"``; None otherwise).
    """

    def __init__(self, path: str | os.PathLike, problem: str, fix: str = "", *, cause: str | None = None) -> None:
        self.path, self.problem, self.fix, self.cause = str(path), problem, fix, cause
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


REQUIRED: Any = object()  # read_json / read_jsonl's ``missing`` default: the file must exist


def read_json(path: str | os.PathLike, what: str = "JSON file", *, missing: Any = REQUIRED, fix: str = "") -> Any:
    """The JSON value in ``path``: the one JSON reader.

    ``missing`` is the policy for an absent file: left out, the file is required (FileNotFoundError
    ``PATH: WHAT not found``); given (e.g. None or {}), it is returned instead. A file that exists but cannot be read
    or parsed is a one-line :class:`FileProblem` naming it and the line: ``PATH: corrupt or unreadable WHAT (not
    JSON at line N: reason)``.
    """
    path = Path(path)
    if missing is not REQUIRED and not path.exists():
        return missing
    with reading(path, what, fix):
        text = path.read_text()
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise FileProblem(path, f"corrupt or unreadable {what} (not JSON at line {e.lineno}: {e.msg})", fix) from None


def read_jsonl(
    path: str | os.PathLike,
    what: str = "JSONL file",
    *,
    missing: Any = REQUIRED,
    torn_tail: bool = False,
    check: Callable[[Any], None] | None = None,
    fix: str = "",
) -> list[Any]:
    """The JSON values of ``path``'s non-blank lines: the one JSONL reader.

    ``missing`` as for :func:`read_json`. A line that is not JSON is a one-line :class:`FileProblem` naming the file
    and the line (``PATH line N: not JSON (reason)``); with ``torn_tail`` a last line without its newline that does
    not parse (an append cut short by a crash) is left out instead. ``check`` may refuse a parsed value with a
    ValueError, named the same way.
    """
    path = Path(path)
    if missing is not REQUIRED and not path.exists():
        return missing
    with reading(path, what):
        text = path.read_text()
    lines = text.split("\n")
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            if check is not None:
                check(value)
        except ValueError as e:
            if torn_tail and n == len(lines):
                break
            reason = f"not JSON ({e.msg})" if isinstance(e, json.JSONDecodeError) else str(e).splitlines()[0][:80]
            raise FileProblem(f"{path} line {n}", f"{reason} in this {what}", fix) from None
        out.append(value)
    return out


def os_error_problem(e: OSError, path: str | os.PathLike, doing: str, *, exact: bool = False) -> FileProblem:
    """A FileProblem for an OSError while ``doing`` something with ``path`` (full disk, read-only, ...); it names
    ``e.filename`` when the error has one (a write or an fsync has none: then ``path``), or ``path`` with ``exact``."""
    where = path if exact else (e.filename or path)
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
        return FileProblem(
            where,
            f"no space left on the device while {doing}",
            "free space (or choose an output directory on another disk) and run again",
            cause="disk_full",
        )
    if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return FileProblem(
            where,
            f"cannot write here while {doing} ({os.strerror(e.errno)})",
            "choose a writable output directory",
            cause="read_only",
        )
    return FileProblem(where, f"{os.strerror(e.errno) if e.errno else e} while {doing}")


#: how the writers fope calls report a failed write when it is not an OSError: torch.save ("unexpected pos",
#: "file write failed", "basic_ios::clear") and safetensors ("I/O error: No space left on device (os error 28)")
_WRITE_FAILURE_WORDS = ("unexpected pos", "file write failed", "failed writing", "basic_ios", "i/o error", "ioerror")
_DISK_FULL_WORDS = ("no space left", "os error 28", "errno 28", "disk quota", "storagefull")


def write_problem(e: BaseException, path: str | os.PathLike, doing: str) -> FileProblem | None:
    """The one-line FileProblem naming ``path`` for a failed write (an OSError, or torch's / safetensors' own error
    for one: a full disk says so, with the free space), or None when ``e`` is not a write failure."""
    if isinstance(e, FileProblem):
        return e
    if isinstance(e, OSError):
        return os_error_problem(e, path, doing, exact=True)
    if not isinstance(e, Exception):
        return None
    text = str(e).lower()
    full = any(w in text for w in _DISK_FULL_WORDS)
    if not full and not any(w in text for w in _WRITE_FAILURE_WORDS):
        return None
    try:
        free = shutil.disk_usage(Path(path).parent if not Path(path).is_dir() else path).free
    except OSError:
        free = None
    room = f" ({free / 2**20:,.0f} MiB free)" if free is not None else ""
    if full or (free is not None and free < (16 << 20)):
        return FileProblem(
            path,
            f"no space left on the device while {doing}{room}",
            "free space (or choose an output directory on another disk) and run again",
            cause="disk_full",
        )
    return FileProblem(
        path,
        f"{doing} failed ({_first_line(e)}); the disk is probably full{room}",
        "free space and run again",
        cause="write_failed",
    )


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


def _failed_file(e: BaseException, final: Path, tmp: Any) -> Any:
    """The file to name for a failure while writing ``final``: ``final`` itself for a full disk or a read-only folder
    (an error of the copy's source names the source: not the file that could not be written), else the file the
    error names (a missing source, say), never the temporary name."""
    if not isinstance(e, OSError) or e.filename in (None, str(tmp), tmp):
        return final
    if e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG):
        return final
    return e.filename


def user_umask() -> int:
    """The process's umask (read without changing it where /proc says it; else set and restored at once)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path next to ``path``; after the block it is fsync'ed and renamed onto ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was; a failed write (full disk,
    read-only folder, or torch's / safetensors' report of one) becomes a one-line :class:`FileProblem` naming
    ``path`` (`write_problem`).
    """
    final = Path(path)
    tmp = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fs_event("create", final)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        os.close(fd)
        fs_event("write", tmp)
        yield tmp
        # the user's umask: mkstemp's 0600 (which some writers keep) would keep other users out whatever the umask
        os.chmod(tmp, 0o666 & ~user_umask())
        fsync_file(tmp)
        fs_event("rename", final)
        os.replace(tmp, final)
        fsync_dir(final.parent)
    except BaseException as e:
        problem = write_problem(e, _failed_file(e, final, tmp), "writing it")
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if problem is not None and problem is not e:
            raise problem from e
        raise


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


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty temporary folder next to ``path`` to write a whole directory into; after the block its files
    are fsync'ed and it appears as ``path`` at once (a new ``path``), or its files replace those of the existing
    ``path`` one rename each (other files there are kept). On any failure nothing of it is left: the temporary
    folder is removed and a failed write is a one-line :class:`FileProblem` naming the file (`write_problem`)."""
    final = Path(path)
    tmp: Path | None = None
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        os.chmod(tmp, 0o777 & ~user_umask())  # mkdtemp's 0700 would become the directory's mode
        fs_event("write", tmp)
        yield tmp
        files = sorted(f for f in tmp.rglob("*") if f.is_file())
        for f in files:
            fsync_file(f)
        if not final.exists():
            fs_event("rename", final)
            os.replace(tmp, final)
            fsync_dir(final.parent)
            return
        for f in files:
            target = final / f.relative_to(tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            fs_event("rename", target)
            os.replace(f, target)
        fsync_dir(final)
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException as e:
        problem = write_problem(e, _failed_file(e, final, tmp), "writing it")
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        if problem is not None and problem is not e:
            raise problem from e
        raise


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
        fd, probe = tempfile.mkstemp(prefix=".fope-write-test.", suffix=".tmp", dir=d)  # removed by remove_stale_temps
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
    """Delete the temporary files and folders (``.NAME.XXXX.tmp``) a killed atomic write left in ``directory``.

    Call only while nothing else writes there (e.g. when a run starts, holding its `directory_lock`).
    """
    d = Path(directory)
    if d.is_dir():
        for f in d.glob(".*.tmp"):
            if f.is_dir() and not f.is_symlink():
                shutil.rmtree(f, ignore_errors=True)
            elif f.is_file():
                with contextlib.suppress(OSError):
                    f.unlink()


# --------------------------------------------------------------------------- one writer per directory
LOCK_FILE = ".lock"
_HELD: dict[str, list[Any]] = {}  # real path of a locked directory -> [descriptor, depth, pid, pid file?]
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS, errno.EBADF)


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot, /proc/PID/stat field 22): with the boot id it tells a
    process from a later one that reuses its pid. None where /proc is missing or the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rsplit(")", 1)[1].split()[19])  # after "pid (comm)": state is field 3, starttime field 22
    except (IndexError, ValueError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    except OSError:
        return False
    return True


def lock_record() -> dict[str, Any]:
    """Who holds a lock: pid, host, boot id and process start (to tell pid reuse), start time, command line."""
    import socket
    import sys

    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "boot_id": _boot_id(),
        "process_start": process_start(os.getpid()),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": " ".join(os.path.basename(a) if i == 0 else a for i, a in enumerate(sys.argv))[:200],
    }


def holder_is_gone(record: dict[str, Any]) -> bool | None:
    """True when the process a lock record names is certainly not running (same host: the pid is dead, or was
    reused by a later process, or the machine rebooted since); None when it cannot be told (another host)."""
    import socket

    if record.get("host") != socket.gethostname():
        return None
    if record.get("boot_id") and _boot_id() and record["boot_id"] != _boot_id():
        return True
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0 or not _pid_alive(pid):
        return True
    start = record.get("process_start")
    now = process_start(pid)
    return bool(start is not None and now is not None and start != now)


def describe_holder(record: dict[str, Any] | None) -> str:
    """``pid 123 on host, started 2025-01-01T12:00:00+0000 (`fope train ...`)`` (what is known of it)."""
    if not record:
        return "another process (its record is empty: it is starting up)"
    text = f"pid {record.get('pid', '?')} on {record.get('host', '?')}, started {record.get('started', '?')}"
    return text + (f" (`{record['command']}`)" if record.get("command") else "")


def _read_record(fd: int) -> dict[str, Any] | None:
    for _ in range(5):  # the holder writes its record just after taking the lock: retry a half-written one
        try:
            raw = os.pread(fd, 65536, 0)
        except OSError:
            return None
        if not raw.strip():
            return None
        try:
            rec = json.loads(raw)
            return rec if isinstance(rec, dict) else None
        except ValueError:
            time.sleep(0.05)
    return None


def _write_record(fd: int, path: Path) -> None:
    fs_event("lock", path)
    data = json.dumps(lock_record()).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


class DirectoryInUse(FileProblem):
    """Another live process holds the directory's lock (a ValueError: one line, exit status 2)."""


def _in_use(directory: Path, what: str, record: dict[str, Any] | None, lock: Path) -> DirectoryInUse:
    return DirectoryInUse(
        directory,
        f"this {what} is in use by {describe_holder(record)}",
        f"wait for it to finish (or stop it), or choose another directory; the lock is {lock}",
    )


def _take_flock(d: Path, what: str, wait: bool) -> int:
    """The descriptor of ``d/.lock`` with an exclusive flock on it. The kernel drops a flock when its process ends,
    even by kill -9, so a lock is never stale; the record in the file only names the holder. The holder removes the
    file when it is done (a waiter that then holds a removed file's lock tries again on the new one)."""
    import fcntl
    import sys

    path = d / LOCK_FILE
    said = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                record = _read_record(fd)
                if not wait:
                    raise _in_use(d, what, record, path) from None
                if not said:
                    print(
                        f"fope: waiting for {describe_holder(record)}, which holds {path}", file=sys.stderr, flush=True
                    )
                    said = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            if current is None or not os.path.samestat(os.fstat(fd), current):  # released and removed meanwhile
                os.close(fd)
                continue
            previous = _read_record(fd)
            if previous is not None:
                print(
                    f"fope: {path}: taking over from {describe_holder(previous)}, which no longer holds it",
                    file=sys.stderr,
                    flush=True,
                )
            try:
                _write_record(fd, path)
            except BaseException:  # e.g. a full disk: leave no lock file behind (closed below)
                with contextlib.suppress(OSError):
                    path.unlink()
                raise
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise
        return fd


def _take_pidfile(d: Path, what: str, wait: bool) -> int:
    """Where the file system has no flock (some network and FUSE file systems): ``d/.lock.pid``, created atomically
    (hard link of a complete temp file), taken over only when `holder_is_gone` says its process is certainly dead."""
    import sys

    path = d / f"{LOCK_FILE}.pid"
    said = False
    while True:
        fd_tmp, tmp = tempfile.mkstemp(prefix=f".{LOCK_FILE}.", suffix=".tmp", dir=d)
        try:
            os.write(fd_tmp, json.dumps(lock_record()).encode())
            os.fsync(fd_tmp)
            os.close(fd_tmp)
            os.link(tmp, path)  # atomic, also on NFS: fails if the lock exists
            return os.open(path, os.O_RDONLY)
        except FileExistsError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        try:
            record = json.loads(path.read_text() or "null")
        except (OSError, ValueError):
            record = None
        gone = holder_is_gone(record) if isinstance(record, dict) else None
        if gone:
            print(f"fope: {path}: removing the stale lock of {describe_holder(record)}", file=sys.stderr, flush=True)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        if not wait:
            problem = _in_use(d, what, record if isinstance(record, dict) else None, path)
            if gone is None and isinstance(record, dict):
                problem = DirectoryInUse(
                    d,
                    f"this {what} is in use by {describe_holder(record)}",
                    f"if that process is no longer running there, delete {path}; otherwise wait or choose another "
                    "directory",
                )
            raise problem
        if not said:
            print(f"fope: waiting for {describe_holder(record)}, which holds {path}", file=sys.stderr, flush=True)
            said = True
        time.sleep(1.0)


def _release(d: Path, fd: int, pidfile: bool) -> None:
    path = d / (f"{LOCK_FILE}.pid" if pidfile else LOCK_FILE)
    try:
        if os.path.samestat(os.fstat(fd), os.stat(path)):
            path.unlink()  # still holding the flock: a waiter wakes on the removed file and tries again
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def directory_lock(
    directory: str | os.PathLike, *, what: str = "directory", wait: bool = False, reentrant: bool = True
) -> Iterator[None]:
    """Hold ``directory`` for this process: a second process (any host sharing the file system) fails at once with a
    one-line :class:`DirectoryInUse` naming the holder (pid, host, start time, command), or waits with ``wait``.

    Re-entrant within a process (``reentrant=False``: a second hold by this process fails too). A lock left by a killed process is taken over: the kernel's ``flock`` is released
    when its holder dies (even by ``kill -9``), and where the file system has no ``flock`` a pid file is taken over
    only when its process is certainly gone (same host, pid dead or reused, or a reboot since).
    """
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
        key = os.path.realpath(d)
    except OSError as e:
        raise os_error_problem(e, d, f"creating the {what}") from e
    if key in _HELD and _HELD[key][2] == os.getpid():
        if not reentrant:
            raise _in_use(d, what, _read_record(_HELD[key][0]), d / LOCK_FILE)
        _HELD[key][1] += 1
        try:
            yield
        finally:
            _HELD[key][1] -= 1
        return
    pidfile = False
    try:
        try:
            fd = _take_flock(d, what, wait)
        except OSError as e:
            if e.errno not in _NO_FLOCK:
                raise
            fd, pidfile = _take_pidfile(d, what, wait), True
    except OSError as e:
        raise os_error_problem(e, d / LOCK_FILE, f"locking the {what}") from e
    _HELD[key] = [fd, 1, os.getpid(), pidfile]
    try:
        yield
    finally:
        _HELD.pop(key, None)
        _release(d, fd, pidfile)


# --------------------------------------------------------------------------- stopping cleanly
class Terminated(KeyboardInterrupt):
    """SIGTERM as an exception (`raise_on_sigterm`), so that ``finally`` blocks remove temporary files as after
    Ctrl-C; ``fope`` then exits with status 143 (128 + SIGTERM)."""


_SIGTERM_OWNER: int | None = None  # the process that asked for Terminated (`raise_on_sigterm`)
_SIGTERM_QUIET: Callable[[], bool] | None = None  # when it says so, SIGTERM ends that process quietly


def _on_sigterm(signum: int, frame: Any) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    if os.getpid() != _SIGTERM_OWNER or (_SIGTERM_QUIET is not None and _SIGTERM_QUIET()):
        # a child that inherited the handler (a library's worker process, e.g. lm-eval's), or a process with
        # nothing to clean up: the default action, no traceback
        os.kill(os.getpid(), signal.SIGTERM)
        return
    raise Terminated("terminated (SIGTERM)")


def raise_on_sigterm(quiet: Callable[[], bool] | None = None) -> bool:
    """From now on the first SIGTERM raises :class:`Terminated` in the main thread instead of ending the process
    where it stands (the training loop's own handler still turns it into a checkpoint and a clean stop). True if
    installed (only from the main thread, and only over the default action).

    Only in this process: a child process that inherits the handler (a library's workers) ends by the signal as
    usual, without a traceback; so does this process while ``quiet()`` is true (e.g. an idle worker)."""
    import signal
    import threading

    global _SIGTERM_OWNER, _SIGTERM_QUIET

    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, _on_sigterm):
        return False
    _SIGTERM_OWNER, _SIGTERM_QUIET = os.getpid(), quiet
    signal.signal(signal.SIGTERM, _on_sigterm)
    return True


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
    "LOCK_FILE",
    "DirectoryInUse",
    "FileProblem",
    "Terminated",
    "add_field_flags",
    "atomic_copy",
    "atomic_dir",
    "atomic_json",
    "atomic_path",
    "atomic_write",
    "cache_root",
    "check_positive_int",
    "check_writable",
    "coerce",
    "describe_holder",
    "did_you_mean",
    "directory_lock",
    "doc_field",
    "field_docs",
    "fs_event",
    "fsync_dir",
    "fsync_file",
    "git_info",
    "holder_is_gone",
    "json_default",
    "json_object",
    "keep_freed_memory",
    "lock_record",
    "os_error_problem",
    "parse_overrides",
    "parse_value",
    "process_start",
    "raise_on_sigterm",
    "reading",
    "remove_stale_temps",
    "set_fs_hook",
    "sha256_file",
    "split_override",
    "write_problem",
]
