"""CPU allocator setting: the same short `fope train` run with glibc's default malloc thresholds and with
`fope.utils.keep_freed_memory` (the CLI's default), as child processes, interleaved; prints the training
tokens/s (fope.train's own count), wall, user and system CPU time, minor page faults and peak RSS of each,
medians over the repeats, and one JSON line. Fails unless every run ends with the bit-identical final loss.

    python benchmarks/allocator.py --repeats 3 -- --preset cpu-tiny --pe rope model.train_len=256 \\
        train.max_steps=60 train.precision=bf16 data.tokenizer=train:2048 model.vocab_size=2048

Everything after ``--`` is passed to ``fope train`` (an ``--out`` in a temporary folder is added; evaluation and
checkpoints are switched off so only training is timed). Runs with ``OMP_NUM_THREADS=1`` unless set.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {"glibc-default": "0", "keep-freed": "1"}


def one_run(train_args: list[str], keep: str, *, losses: bool = False) -> dict:
    """One `fope train` child process; its tokens/s, final loss and resource use (and its logged losses)."""
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {
        **os.environ,
        "FOPE_KEEP_FREED_MEMORY": keep,
        "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    env.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "fope.cli",
            "train",
            *train_args,
            "train.eval_every=0",
            "train.save_every=1000000",
            "data.eval_corpora=[]",
            "--out",
            f"{tmp}/run",
        ]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        err = proc.stderr.read() if proc.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"fope train failed:\n{err[-2000:]}")
        summary = json.loads(Path(f"{tmp}/run/summary.json").read_text())
    return {
        "tokens_per_s": summary["tokens_per_s"],
        "final_loss": summary["final_loss"],
        "wall_s": wall,
        "user_s": ru.ru_utime,
        "sys_s": ru.ru_stime,
        "minor_faults": ru.ru_minflt,
        "max_rss_mib": ru.ru_maxrss / 1024,
        **({"losses": summary["losses"]} if losses else {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the arguments of `fope train`")
    a = ap.parse_args()
    train_args = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    if not train_args:
        ap.error("give the `fope train` arguments after --")
    names = list(VARIANTS)
    rows: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(a.repeats):
        for n in names[r % 2 :] + names[: r % 2]:  # rotate the order every repeat
            rows[n].append(one_run(train_args, VARIANTS[n]))
            print(
                f"repeat {r + 1}/{a.repeats} {n}: " + ", ".join(f"{k} {v:.2f}" for k, v in rows[n][-1].items()),
                file=sys.stderr,
                flush=True,
            )
    losses = {x["final_loss"] for n in names for x in rows[n]}
    if len(losses) != 1:  # the allocator must not change a single number
        raise SystemExit(f"final losses differ between runs: {sorted(losses)}")
    med = {n: {k: statistics.median(x[k] for x in rows[n]) for k in rows[n][0]} for n in names}
    base = med[names[0]]
    print(f"final loss {losses.pop()!r} in every run (bit-identical)")
    print(f"| variant | train tok/s | wall s | user s | sys s | minor faults | peak RSS MiB | tok/s / {names[0]} |")
    print("|---|---|---|---|---|---|---|---|")
    for n in names:
        m = med[n]
        print(
            f"| {n} | {m['tokens_per_s']:,.0f} | {m['wall_s']:.1f} | {m['user_s']:.1f} | {m['sys_s']:.1f} | "
            f"{m['minor_faults']:,.0f} | {m['max_rss_mib']:.0f} | {m['tokens_per_s'] / base['tokens_per_s']:.3f} |"
        )
    print(
        json.dumps(
            {
                "bench": "allocator",
                "train_args": train_args,
                "repeats": a.repeats,
                "median": med,
                "load": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
