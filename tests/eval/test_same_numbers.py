"""Same inputs, same numbers: an evaluation of a saved model gives, bit for bit, the numbers it gives in a fresh
process, whatever ran before it in the process (evaluations at other lengths, an evaluation under bf16 autocast of
the same model object), for every position-encoding kind."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import torch

import fope.model
import fope.pos
from fope.eval.perplexity import perplexity_by_length

LENGTHS = [24, 48]  # within and beyond the training length (32)

_SCRIPT = """
import json, sys
import numpy as np
import fope.model
from fope.eval.perplexity import perplexity_by_length
tokens = np.load(sys.argv[1])
out = {}
for d in sys.argv[2:]:
    out[d] = {str(k): v for k, v in perplexity_by_length(fope.model.load(d), tokens, [24, 48], progress=False).items()}
print(json.dumps(out))
"""


def test_evaluation_in_a_fresh_process_equals_one_after_other_evaluations(tmp_path):
    tokens = np.random.default_rng(0).integers(0, 64, 400).astype(np.int64)
    np.save(tmp_path / "tokens.npy", tokens)
    dirs = []
    for kind in fope.pos.KINDS:
        torch.manual_seed(0)
        model = fope.model.build(
            {"vocab_size": 64, "d_model": 32, "n_layers": 1, "n_heads": 2, "train_len": 32}, pe=kind
        )
        dirs.append(str(fope.model.save(model, tmp_path / kind)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    fresh = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(tmp_path / "tokens.npy"), *dirs],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    fresh = json.loads(fresh.stdout)
    for d in dirs:
        model = fope.model.load(d)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # another evaluation first, under bf16 autocast ...
            perplexity_by_length(model, tokens, [64], progress=False)
        perplexity_by_length(model, tokens, [16, 64], progress=False)  # ... and at other lengths
        later = perplexity_by_length(model, tokens, LENGTHS, progress=False)
        assert {str(k): v for k, v in later.items()} == fresh[d], d
