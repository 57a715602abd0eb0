"""Training speed of each position encoding inside a finished `fope reproduce` grid: fope.train's tokens/s of
every main run (mean over seeds) and its ratio to RoPE's, from the grid's results.json.

    python benchmarks/grid_speed.py docs/results/cpu-quick/results.json

The runs of a grid run in parallel (``jobs``) on a shared machine, so the ratios carry that noise; the
interleaved single-process measurement is benchmarks/train_step.py.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path


def table(path: str) -> str:
    res = json.loads(Path(path).read_text())
    speed: dict[str, list[float]] = defaultdict(list)
    for name, info in res["runs"].items():
        parts = name.split("/")
        if parts[0] == "main" and info.get("tokens_per_s"):
            speed[parts[1]].append(float(info["tokens_per_s"]))
    if "rope" not in speed:
        raise SystemExit(f"{path}: no finished main RoPE run to compare with")
    rope = statistics.mean(speed["rope"])
    cfg = res["config"]
    out = [
        f"Grid `{res['preset']}` (commit `{res['commit'][:7]}`): L = {cfg['train_len']}, "
        f"{cfg['jobs']} runs at a time x {cfg['threads']} thread(s), {res['machine'].get('cpu', '')}".rstrip(", "),
        "",
        "| PE | runs | train tok/s | tok/s vs RoPE | step time vs RoPE |",
        "|---|---|---|---|---|",
    ]
    for pe, xs in speed.items():
        m = statistics.mean(xs)
        out.append(f"| {pe} | {len(xs)} | {m:,.0f} | {m / rope:.3f} | {rope / m:.3f} |")
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    print(table(sys.argv[1]))
