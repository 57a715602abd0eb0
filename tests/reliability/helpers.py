"""Shared helpers of the reliability suite: the fope.train test experiment, forked runs killed mid-way, and
comparisons of a recovered run directory with an uninterrupted one."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "_fope_train_helpers", Path(__file__).parents[1] / "train" / "helpers.py"
)
_train_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_train_helpers)
tiny_experiment = _train_helpers.tiny_experiment
write_shards = _train_helpers.write_shards
losses = _train_helpers.losses

KILLED = 137  # the exit status a child uses for "killed here" (os._exit: no cleanup, no finally, like kill -9)


def in_child(fn: Callable[[], object], *, crash_at: int | None = None, events: Path | None = None) -> int:
    """Run ``fn`` in a forked child; return its exit status (0 ok, 1 exception, KILLED when stopped).

    ``crash_at=N`` ends the child with os._exit just before its N-th file-system step (1-based); ``events``
    receives one ``op path`` line per step seen (for counting them).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # child
        code = 1
        try:
            from fope.utils import set_fs_hook

            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            if events is None:
                os.dup2(devnull, 2)
            log = open(events, "w") if events is not None else None  # noqa: SIM115
            seen = 0

            def hook(op: str, path: str) -> None:
                nonlocal seen
                seen += 1
                if log is not None:
                    log.write(f"{op} {path}\n")
                    log.flush()
                if seen == crash_at:
                    os._exit(KILLED)

            set_fs_hook(hook)
            fn()
            code = 0
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def records(out: Path) -> list[dict]:
    """metrics.jsonl without the timing field (which differs between runs)."""
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "tokens_per_s"} for line in lines if line.strip()]


def assert_same_run(out: Path, ref: Path) -> None:
    """``out`` ended exactly like the uninterrupted ``ref``: full metrics history, weights, optimizer, summary."""
    import torch

    assert records(out) == records(ref)
    assert (out / "model" / "model.safetensors").read_bytes() == (ref / "model" / "model.safetensors").read_bytes()
    assert (out / "checkpoint" / "model" / "model.safetensors").read_bytes() == (
        ref / "checkpoint" / "model" / "model.safetensors"
    ).read_bytes()
    a = torch.load(out / "checkpoint" / "optimizer.pt", weights_only=True)
    b = torch.load(ref / "checkpoint" / "optimizer.pt", weights_only=True)
    for (ka, sa), (kb, sb) in zip(sorted(a["state"].items()), sorted(b["state"].items())):
        assert ka == kb
        for name in sa:
            assert torch.equal(sa[name], sb[name]), (ka, name)
    sa, sb = (json.loads((d / "summary.json").read_text()) for d in (out, ref))
    for key in ("step", "finished", "first_loss", "final_loss", "final_val_loss", "losses", "tokens"):
        assert sa[key] == sb[key], key
    assert not (out / "checkpoint.tmp").exists() and not (out / "checkpoint.prev").exists()
    assert os.stat(out / "model" / "model.safetensors").st_nlink == 1  # a copy, never a hard link


def one_line_error(capsys, argv: list, *names, code: int = 2) -> str:
    """Run `fope ARGV`; assert it exits ``code`` with exactly one stderr line (progress bars aside), no traceback,
    naming every one of ``names``; return that line."""
    from fope.cli import main

    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    lines = [ln for ln in err.splitlines() if ln.strip() and "step/s" not in ln and "%|" not in ln]
    assert rc == code, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for name in names:
        assert str(name) in lines[0], lines[0]
    return lines[0]
