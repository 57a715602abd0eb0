"""A `fope train` preset as it ships now against the same preset as it shipped before the CPU speed work (glibc's
default malloc thresholds, fp32), as child processes, interleaved: training tokens/s (fope.train's own count),
the ratio, and both loss curves (max |difference| over the logged steps).

    python benchmarks/preset_speed.py --repeats 3 -- --preset cpu-tiny --pe rope train.max_steps=100
    python benchmarks/preset_speed.py --repeats 3 -- --preset cpu-small --pe rope train.max_steps=60

"before": FOPE_KEEP_FREED_MEMORY=0 and train.precision=fp32. "now": the defaults (freed memory kept,
train.precision=auto, which is bf16 autocast on a CPU with native bf16). "now, loss in chunks": also
train.loss_chunk=N (``--loss-chunk``, the output layer and loss in chunks recomputed in backward). Everything after ``--`` goes to
``fope train``; runs with ``OMP_NUM_THREADS=1`` unless set. Prints a Markdown table and one JSON line.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
from pathlib import Path


def _allocator():
    spec = importlib.util.spec_from_file_location("allocator", Path(__file__).with_name("allocator.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--loss-chunk", type=int, default=256, help="train.loss_chunk of the third variant")
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the arguments of `fope train`")
    a = ap.parse_args()
    train_args = a.train_args[1:] if a.train_args[:1] == ["--"] else a.train_args
    if not train_args:
        ap.error("give the `fope train` arguments after --")
    import torch

    from fope.train.loop import resolve_precision

    one_run = _allocator().one_run
    variants = {
        "before": (train_args + ["train.precision=fp32"], "0"),
        "now": (train_args, "1"),
        "now, loss in chunks": (train_args + [f"train.loss_chunk={a.loss_chunk}"], "1"),
    }
    names = list(variants)
    rows: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(a.repeats):
        for n in names[r % len(names) :] + names[: r % len(names)]:  # rotate the order every repeat
            args, keep = variants[n]
            rows[n].append(one_run(args, keep, losses=True))
            print(
                f"repeat {r + 1}/{a.repeats} {n}: {rows[n][-1]['tokens_per_s']:,.0f} tok/s, final loss "
                f"{rows[n][-1]['final_loss']:.4f}",
                file=sys.stderr,
                flush=True,
            )
    med = {n: statistics.median(x["tokens_per_s"] for x in rows[n]) for n in names}
    curves = {n: dict((int(s), float(v)) for s, v in rows[n][0]["losses"]) for n in names}
    common = sorted(set(curves["before"]) & set(curves["now"]))  # now vs before
    diffs = [curves["now"][s] - curves["before"][s] for s in common]
    now_precision = resolve_precision("auto", torch.device("cpu"))
    print(f"| variant | precision | train tok/s (median of {a.repeats}) | final loss | tok/s / before |")
    print("|---|---|---|---|---|")
    for n in names:
        prec = "fp32" if n == "before" else f"auto = {now_precision}"
        prec += f", loss in chunks of {a.loss_chunk}" if n == "now, loss in chunks" else ", whole logits"
        print(f"| {n} | {prec} | {med[n]:,.0f} | {rows[n][0]['final_loss']:.4f} | {med[n] / med['before']:.3f} |")
    print(
        f"\nloss curves over {len(common)} logged steps: max |now - before| {max(map(abs, diffs)):.4f}, "
        f"mean {statistics.fmean(diffs):+.4f}"
    )
    print(
        json.dumps(
            {
                "bench": "preset_speed",
                "train_args": train_args,
                "repeats": a.repeats,
                "now_precision": now_precision,
                "median_tokens_per_s": med,
                "final_loss": {n: rows[n][0]["final_loss"] for n in names},
                "max_abs_loss_diff": max(map(abs, diffs)),
                "load": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
