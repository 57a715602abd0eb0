"""Per-position perplexity of trained runs (8 chunks of 16L tokens of books validation, L = 128), bucketed by position.

python benchmarks/position_loss.py s800b32-rope s800b32-fope     # run names under /work/pilot/runs (edit the path)
"""

import sys

import numpy as np
import torch

from fope.eval import load_model
from fope.eval.perplexity import tokens_from_corpus

torch.set_num_threads(1)

for name in sys.argv[1:]:
    m = load_model(f"/work/pilot/runs/{name}")
    net = m.model if hasattr(m, "model") else m
    L = 128
    T = 16 * L
    s = tokens_from_corpus("books", m.tokenizer, split="val", max_tokens=T * 8 + 1)
    x = torch.as_tensor(np.asarray(s[: T * 8]), dtype=torch.long).view(8, T)
    with torch.no_grad():
        logits = net(x)
        nll = (
            torch.nn.functional.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1), reduction="none"
            )
            .view(8, T - 1)
            .mean(0)
        )
    b = [0, 128, 256, 512, 1024, 2047]
    print(name, [round(float(nll[b[i] : b[i + 1]].mean().exp()), 1) for i in range(len(b) - 1)])
