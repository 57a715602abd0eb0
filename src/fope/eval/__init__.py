"""Evaluation: perplexity against length, passkey retrieval, plots (length generalisation); LongBench-E
(lmeval.py) and the paper's downstream Tables 4-6 (downstream.py) through lm-evaluation-harness.

    >>> from fope.eval import load_model, perplexity_by_length, passkey_eval
    >>> model = load_model("runs/cpu-small-fope")                 # fope model/run dir, HF dir or hub name
    >>> perplexity_by_length(model, tokens, [512, 1024, 2048])     # {512: ppl, ...}
    >>> passkey_eval(model, model.tokenizer, [512, 1024], trials=20, seed=0, mode="both")

Every model is read by the one loader (loader.py: native, run, HF directories, hub names, smollm2) and evaluated
through an adapter (adapters.py). Library functions return data; `fope eval ...` (cli.py) prints and saves JSON
(schema in results.py).
Plots (plots.py) import matplotlib lazily.
"""

from __future__ import annotations

from .adapters import FopeAdapter, HFAdapter, HFTokenizer, LMAdapter, as_adapter
from .loader import load_model
from .passkey import PasskeyTrial, garbage_for_target, passkey_eval, passkey_prompt
from .perplexity import (
    LengthResult,
    perplexity_by_length,
    perplexity_report,
    tokens_from_corpus,
    tokens_from_text_file,
    tokens_from_texts,
)
from .results import load_result, save_result

__all__ = [
    "FopeAdapter",
    "HFAdapter",
    "HFTokenizer",
    "LMAdapter",
    "LengthResult",
    "PasskeyTrial",
    "as_adapter",
    "garbage_for_target",
    "load_model",
    "load_result",
    "passkey_eval",
    "passkey_prompt",
    "perplexity_by_length",
    "perplexity_report",
    "save_result",
    "tokens_from_corpus",
    "tokens_from_text_file",
    "tokens_from_texts",
]
