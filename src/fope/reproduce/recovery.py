"""The conversion experiment: how much perplexity RoPE -> FoPE conversion costs a pretrained model, and how much
a short fine-tune recovers (same evaluation tokens throughout).

    fope recovery --model smollm2 --out runs/smollm2-recovery --steps 60 --seq-len 512

Steps: (1) perplexity of the source at several lengths on held-out text (default: ``wiki`` val); (2) convert
(``pe``/options as `fope.hf.convert`), perplexity again; (3) fine-tune the converted model with `fope.hf.finetune`
on stand-in chat data built from the corpus' *train* split (`make_chat_data`); (4) perplexity again. Writes
``OUT/recovery.json`` with ``settings`` and ``by_length`` ({stage: {length: ppl}}).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fope.utils import atomic_json


def perplexities(model: Any, tokens: Any, lengths: Sequence[int], *, max_chunks: int) -> dict[int, float]:
    """{length: ppl} with fope.eval's chunked perplexity on an HF model."""
    import torch

    from fope.eval import perplexity_by_length
    from fope.eval.adapters import HFAdapter

    with torch.no_grad():
        return perplexity_by_length(
            HFAdapter(model.eval()), tokens, list(lengths), max_chunks=max_chunks, progress=False
        )


def recovery(
    model_name: str,
    out_dir: str | Path,
    *,
    pe: str = "fope",
    pe_options: dict | None = None,
    train_len: int | None = None,
    lengths: Sequence[int] = (256, 512, 1024, 2048),
    data: str = "wiki",
    max_chunks: int = 4,
    steps: int = 60,
    seq_len: int = 512,
    n_examples: int = 2000,
    lr: float = 3e-4,
    log=print,
) -> dict:
    """Run the experiment (see the module docstring); returns the saved dict."""
    from fope.eval.adapters import HFTokenizer
    from fope.eval.loader import load_hf_model
    from fope.eval.perplexity import tokens_from_corpus
    from fope.hf.convert import convert
    from fope.hf.finetune import finetune, make_chat_data
    from fope.hf.io import save
    from fope.train.checkpoint import find_checkpoint

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source, tok = load_hf_model(model_name)
    max_tokens = max(lengths) * max_chunks + 1
    tokens = tokens_from_corpus(data, HFTokenizer(tok), split="val", max_tokens=max_tokens)
    result: dict[str, Any] = {
        "settings": {
            "model": str(model_name),
            "pe": pe,
            "pe_options": pe_options or {},
            "train_len": train_len,
            "data": data,
            "split": "val",
            "eval_tokens": len(tokens),
            "max_chunks": max_chunks,
            "finetune": {"steps": steps, "seq_len": seq_len, "lr": lr, "examples": n_examples},
        },
        "by_length": {},
        "seconds": {},
    }

    def stage(name: str, model: Any) -> None:
        t0 = time.time()
        result["by_length"][name] = perplexities(model, tokens, lengths, max_chunks=max_chunks)
        result["seconds"][name] = round(time.time() - t0, 1)
        log(f"{name}: {result['by_length'][name]}")
        atomic_json(out / "recovery.json", result, indent=1)

    stage("source", source)
    converted = convert(source, pe=pe, train_len=train_len, **(pe_options or {}))
    del source
    result["settings"]["pe_train_len"] = converted.config.pe_train_len
    stage("converted", converted)
    save(converted, out / "converted", tokenizer=tok)
    chat = make_chat_data(out / "chat.jsonl", corpus=data, n=n_examples, split="train")
    t0 = time.time()
    finetune(
        converted,
        tok,
        chat,
        out / "finetuned",
        max_steps=steps,
        seq_len=seq_len,
        lr=lr,
        save_every=max(1, steps // 2),
        resume=find_checkpoint(out / "finetuned") is not None,
    )
    result["seconds"]["finetune"] = round(time.time() - t0, 1)
    stage("finetuned", converted)
    return result


__all__ = ["perplexities", "recovery"]
