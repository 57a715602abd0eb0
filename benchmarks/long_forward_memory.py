"""Peak resident memory of one no-grad forward at long context (e.g. 16k / 32k tokens) on CPU.

Each (encoding, length) runs in a fresh subprocess so that peak RSS (getrusage ru_maxrss) is its own.

    .venv/bin/python benchmarks/long_forward_memory.py --preset cpu-small --pe rope alibi --lengths 16384 32768

Reported per run: RSS after building the model, peak RSS during the forward, the size of the (1, T, V) fp32
logits alone (a lower bound any full-logits forward pays), and the wall time.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def child(preset: str, pe: str, length: int, threads: int) -> dict:
    import torch

    import fope.model

    torch.set_num_threads(threads)
    model = fope.model.build(preset, pe=pe).eval()
    ids = torch.randint(0, model.config.vocab_size, (1, length))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    with torch.no_grad():
        logits = model(ids)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "preset": preset,
        "pe": pe,
        "tokens": length,
        "rss_before_mib": round(base),
        "peak_rss_mib": round(peak),
        "logits_mib": round(logits.numel() * 4 / 2**20),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--pe", nargs="+", default=["rope", "alibi"])
    parser.add_argument("--lengths", nargs="+", type=int, default=[16384, 32768])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("PE", "LENGTH", "PRESET"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        pe, length, preset = args.child
        print(json.dumps(child(preset, pe, int(length), args.threads)))
        return
    for pe in args.pe:
        for length in args.lengths:
            out = subprocess.run(
                [sys.executable, __file__, "--child", pe, str(length), args.preset, "--threads", str(args.threads)],
                capture_output=True,
                text=True,
                check=True,
            )
            print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
