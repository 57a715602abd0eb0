"""The `fope` command line: a thin dispatcher.

Each sub-command lives next to the code it drives and exposes ``register(subparsers)``, which adds
its parser and sets ``func`` (called with the parsed namespace, returns an exit code or None).
Modules are imported lazily so that `fope --help` stays fast and optional extras stay optional.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# sub-command -> module that defines register(subparsers)
COMMANDS: dict[str, str] = {
    "data": "fope.data.cli",
    "train": "fope.train.cli",
    "eval": "fope.eval.cli",
    "reproduce": "fope.reproduce.cli",
    "hf": "fope.hf.cli",
    "analyze": "fope.analysis.cli",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fope", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            sub.add_parser(name, help=f"(see `fope {name} --help`)")
            continue
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # import only the module of the requested command (keeps start-up fast)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    if not argv:
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    if not hasattr(args, "func"):
        parser.parse_args([args.command, "--help"])
        return 2
    try:
        rc = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, KeyError, TypeError) as e:  # user errors: one clear line
        if "FOPE_DEBUG" in __import__("os").environ:
            raise
        print(f"fope {args.command}: error: {e}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
