"""`fope train` in a subprocess whose micro-batches take DELAY seconds each (a stand-in for a long step).

    python signal_worker.py CONFIG.yaml OUT DELAY [extra fope train args]
Prints "micro-batch S.M" to stderr before each micro-batch (S = optimizer step, 1-based); the micro-batches of
step 2 onwards sleep DELAY seconds first.
"""

import sys
import time

import torch

torch.set_num_threads(1)

from fope.cli import main  # noqa: E402
from fope.train import loop  # noqa: E402

real = loop.compute_loss
calls = {"n": 0}
delay = float(sys.argv[3])
accum = int(sys.argv[4])


def slow_loss(model, x, y, **kw):
    step, micro = divmod(calls["n"], accum)
    calls["n"] += 1
    print(f"micro-batch {step + 1}.{micro}", file=sys.stderr, flush=True)
    if delay and step >= 1:
        time.sleep(delay)
    return real(model, x, y, **kw)


loop.compute_loss = slow_loss
sys.exit(main(["train", sys.argv[1], "--out", sys.argv[2], *sys.argv[5:]]))
