"""The `fope` command line: a thin dispatcher.

Each sub-command lives next to the code it drives and exposes a ``register(subparsers)`` function, which adds
its parser and sets ``func`` (called with the parsed namespace, returns an exit code or None).
Modules are imported lazily so that `fope --help` stays fast and optional extras stay optional.
Renamed commands keep working under their old names (`RENAMED`), after a one-line note on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# sub-command -> "module" whose register(subparsers) adds it, or "module:function" for another function's name
COMMANDS: dict[str, str] = {
    "data": "fope.data.cli",
    "train": "fope.train.cli",
    "eval": "fope.eval.cli",
    "reproduce": "fope.reproduce.cli",
    "extend": "fope.reproduce.cli:register_extend",
    "recovery": "fope.reproduce.cli:register_recovery",
    "hf": "fope.hf.cli",
    "analyze": "fope.analysis.cli",
}

#: old command words -> the new ones (the old ones still run, after a note on stderr)
RENAMED: dict[tuple[str, ...], tuple[str, ...]] = {
    ("hf", "longbench"): ("eval", "longbench"),
    ("hf", "extend"): ("extend",),
    ("hf", "recovery"): ("recovery",),
}


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (``fope train: error: ...; see `fope train --help```) instead of the usage."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {' '.join(message.split())} (see `{self.prog} --help`)\n")


#: the positional key=value list of each command that has one: items after an option are added to it
_ITEMS = ("items", "overrides", "options")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = Parser(prog="fope", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, target in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=f"(see `fope {name} --help`)")
            continue
        module, _, function = target.partition(":")
        getattr(importlib.import_module(module), function or "register")(sub)
    return parser


def renamed(argv: list[str]) -> list[str]:
    """``argv`` with an old command name replaced by its new one (`RENAMED`), saying so on stderr."""
    for old, new in RENAMED.items():
        if tuple(argv[: len(old)]) == old:
            print(
                f"fope: `fope {' '.join(old)}` is now `fope {' '.join(new)}`; the old name is deprecated",
                file=sys.stderr,
            )
            return [*new, *argv[len(old) :]]
    return argv


#: commands that write one run directory, and the options naming it: the directory is locked before the (seconds
#: long) imports, so of two commands started together on one directory the first one started wins
EARLY_LOCK: dict[tuple[str, ...], tuple[str, ...]] = {("train",): ("--resume", "--out"), ("hf", "finetune"): ("--out",)}
_NO_WRITE = ("--dry-run", "--list-presets", "-h", "--help")

_interrupted = False


def _early_lock(argv: list[str]):
    """`fope.utils.directory_lock` on the run directory ``argv`` names (see `EARLY_LOCK`), or a null context."""
    import contextlib
    from pathlib import Path

    from fope.utils import directory_lock

    if int(os.environ.get("RANK", 0)) != 0 or any(a in _NO_WRITE for a in argv):
        return contextlib.nullcontext()
    for words, options in EARLY_LOCK.items():
        if tuple(argv[: len(words)]) != words:
            continue
        for i, arg in enumerate(argv):
            for option in options:
                value = argv[i + 1] if arg == option and i + 1 < len(argv) else None
                value = arg.split("=", 1)[1] if arg.startswith(option + "=") else value
                if value and not value.startswith("-") and (option != "--resume" or Path(value).is_dir()):
                    return directory_lock(value, what="run directory")
    return contextlib.nullcontext()


def _on_sigint(signum, frame) -> None:
    global _interrupted
    _interrupted = True
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import signal
    import threading

    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        signal.signal(signal.SIGINT, _on_sigint)  # remembers the interrupt (see below)
    from fope.utils import Terminated, keep_freed_memory, raise_on_sigterm

    keep_freed_memory()  # CPU training: no page faults on every step's large tensors
    raise_on_sigterm()  # SIGTERM outside the training loop: cleanup runs (temp files removed), exit status 143
    try:
        return _main(argv)
    except BaseException as e:  # Ctrl-C during start-up or outside a training loop: no traceback
        if isinstance(e, Terminated):
            print("terminated", file=sys.stderr)
            return 143
        # an import cut short by Ctrl-C can fail later with another error (e.g. a RecursionError in numpy)
        if isinstance(e, KeyboardInterrupt) or (_interrupted and not isinstance(e, SystemExit)):
            # a run stopped with its checkpoint (fope.hf.finetune.Interrupted) says where, and exits 128 + signal
            detail = str(e) if isinstance(e, KeyboardInterrupt) else ""
            print(f"interrupted: {detail}" if detail else "interrupted", file=sys.stderr)
            return int(getattr(e, "exit_code", 130))
        raise


def _main(argv: list[str] | None) -> int:
    argv = renamed(list(sys.argv[1:] if argv is None else argv))
    try:
        lock = _early_lock(argv)
        lock.__enter__()
    except ValueError as e:  # the run directory is in use: one line naming the holder
        if "FOPE_DEBUG" in os.environ:
            raise
        print(f"fope {argv[0]}: error: {e}", file=sys.stderr)
        return 2
    try:
        return _dispatch(argv)
    finally:
        lock.__exit__(None, None, None)


def _dispatch(argv: list[str]) -> int:
    # import only the module of the requested command (keeps start-up fast)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    if not argv:
        parser.print_help()
        return 0
    args, extra = parser.parse_known_args(argv)
    listed = next((name for name in _ITEMS if isinstance(getattr(args, name, None), list)), None)
    if extra and listed and all("=" in e and not e.startswith("-") for e in extra):
        getattr(args, listed).extend(extra)  # `KEY=VALUE --opt X KEY=VALUE`: overrides on both sides of an option
    elif extra:
        print(f"fope {args.command}: error: unrecognized arguments: {' '.join(extra)}", file=sys.stderr)
        return 2
    if not hasattr(args, "func"):
        parser.parse_args([args.command, "--help"])
        return 2
    debug = "FOPE_DEBUG" in os.environ
    try:
        rc = args.func(args)
    except (ValueError, FileNotFoundError, KeyError, TypeError) as e:  # user errors: one clear line
        if debug:
            raise
        print(f"fope {args.command}: error: {' '.join(str(e).split(chr(10)))}", file=sys.stderr)  # one line
        return 2
    except OSError as e:  # full disk, read-only directory, ...: one line naming the file
        if debug:
            raise
        from fope.utils import os_error_problem

        if e.filename:
            problem = str(os_error_problem(e, e.filename, "running the command"))
        elif e.errno:  # a write or an fsync names no file; the writers fope calls name theirs (this is a fallback)
            problem = f"{os.strerror(e.errno)} (no file named by the operating system)"
        else:  # no file to name (a library's connection or lookup error): its own first line
            problem = (str(e).strip().splitlines() or [type(e).__name__])[0]
        print(f"fope {args.command}: error: {problem}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
