"""Real `fope` processes for the drills: start them, read their one-line errors, wait for a line."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

SRC = Path(__file__).parents[2] / "src"
HERE = Path(__file__).parent


def env(**extra: str) -> dict:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
        **extra,
    }


def start(*args: str, stderr: Path | None = None, script: Path | None = None) -> subprocess.Popen:
    """``fope ARGS`` (or ``python SCRIPT ARGS``) in a new process; its stderr goes to ``stderr`` when given."""
    cmd = [sys.executable, str(script), *args] if script else [sys.executable, "-m", "fope.cli", *args]
    err = open(stderr, "w") if stderr is not None else subprocess.PIPE  # noqa: SIM115 (the child keeps its copy)
    try:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env(), text=True)
    finally:
        if stderr is not None:
            err.close()


def fope(*args: str, timeout: float = 300) -> tuple[int, list[str]]:
    """Run ``fope ARGS`` to the end: (exit status, the non-empty stderr lines that are not progress bars)."""
    proc = subprocess.run(
        [sys.executable, "-m", "fope.cli", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env(),
        text=True,
        timeout=timeout,
    )
    return proc.returncode, error_lines(proc.stderr)


def error_lines(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.strip() and "%|" not in ln and "step/s" not in ln]


def wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not path.exists() or text not in path.read_text():
        assert proc.poll() is None, path.read_text()[-2000:] if path.exists() else "no output"
        assert time.monotonic() < end, f"no {text!r} in {path} in time"
        time.sleep(0.02)


def alive(pid: int) -> bool:
    """Running, and not a zombie waiting for its parent."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """Every descendant process of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(p.name)] = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
    out, todo = [], [pid]
    while todo:
        parent = todo.pop()
        kids = [c for c, pp in parents.items() if pp == parent]
        out += kids
        todo += kids
    return out
