"""Context extension, FoPE against the field: from one RoPE checkpoint, fine-tune at ``factor`` x its context with
(a) FoPE, (b) YaRN, (c) PI (linear), (d) no change, on the same data for the same steps; then perplexity up to
4x the original context and passkey retrieval, one table and one figure.

    fope hf extend --model runs/tiny-rope --out runs/extend-cpu --preset cpu       # minutes on 2 CPU cores
    fope hf extend --model smollm2 --out runs/extend-smollm2 --preset gpu --device cuda

The model is an HF RoPE causal LM (directory, hub name, ``smollm2``) or a native fope RoPE model / run directory
(exported first). Every method starts from the same weights (`fope.hf.convert`): ``none`` is the RoPE model itself,
``yarn`` / ``pi`` set HF's own scaling (``factor``, original context = the source's), ``fope`` converts with
``fope_preset`` and the floor at the new length (the authors' choice for fine-tuning). Fine-tuning is
`fope.hf.finetune` on plain text (``loss_on="all"``) from the corpus' train split (`make_chat_data` documents);
evaluation reads the corpus' val split, the same tokens for every method. Writes ``OUT/extend.json``,
``OUT/extend.md`` and ``OUT/extend.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from fope.utils import atomic_path, atomic_write

METHODS = ("fope", "yarn", "pi", "none")


@dataclass(frozen=True)
class ExtendPreset:
    """Settings of one comparison (CLI flags of the same names override them)."""

    factor: int = 2
    steps: int = 40
    lr: float = 3e-4
    batch_size: int = 1
    n_examples: int = 400
    corpus: str = "books"
    eval_multiples: tuple[float, ...] = (0.5, 1, 2, 4)  # x the source's context
    max_chunks: int = 2
    passkey_trials: int = 10
    fope_preset: str = "preserving"
    seed: int = 0


#: cpu: a cpu-tiny RoPE model (context 256: `fope train --preset cpu-tiny --pe rope`), minutes on 2 cores.
#: gpu: SmolLM2-135M (context 8192 -> 16384), ~1.6M fine-tuning tokens per method; run with --device cuda.
PRESETS = {
    "cpu": ExtendPreset(),
    "gpu": ExtendPreset(steps=100, lr=1e-4, n_examples=4000, corpus="wiki", max_chunks=4, passkey_trials=20),
}


def method_options(method: str, *, factor: int, context: int, fope_preset: str) -> dict[str, Any]:
    """`fope.hf.convert` arguments of one method."""
    from .convert import preset_options

    if method == "none":
        return {"pe": "rope"}
    if method == "yarn":
        return {"pe": "rope", "rope_scaling": {"rope_type": "yarn", "factor": float(factor)}}
    if method == "pi":
        return {"pe": "rope", "rope_scaling": {"rope_type": "linear", "factor": float(factor)}}
    if method == "fope":
        options = preset_options(fope_preset)
        if "floor_cycles" not in options:
            options["train_len"] = factor * context
        return {"pe": "fope", **options}
    raise ValueError(f"unknown extension method {method!r}; choose from {list(METHODS)}")


def extend(model_name: str | Path, out_dir: str | Path, *, methods: Sequence[str] = METHODS, preset: str = "cpu",
           device: str = "cpu", log=print, **overrides: Any) -> dict:
    """Run the comparison (module docstring); returns the saved dict."""
    import torch

    from fope.eval.adapters import HFAdapter, HFTokenizer
    from fope.eval.passkey import passkey_eval
    from fope.eval.perplexity import tokens_from_corpus
    from fope.train.checkpoint import find_checkpoint

    from .convert import convert, source_context_length
    from .finetune import finetune, make_chat_data
    from .io import hf_dir, load, load_tokenizer
    from .recovery import perplexities

    if preset not in PRESETS:
        raise ValueError(f"unknown extend preset {preset!r}; choose from {list(PRESETS)}")
    cfg = replace(PRESETS[preset], **overrides)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown extension method {m!r}; choose from {list(METHODS)}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    source_dir = hf_dir(model_name, out / "source-hf")
    source = load(source_dir)
    tok = load_tokenizer(source_dir)
    context = source_context_length(source.config)
    new_len = cfg.factor * context
    lengths = sorted({max(16, int(m * context)) for m in cfg.eval_multiples})
    tokens = tokens_from_corpus(cfg.corpus, HFTokenizer(tok), split="val", max_tokens=max(lengths) * cfg.max_chunks + 1)
    chat = make_chat_data(out / "train.jsonl", corpus=cfg.corpus, n=cfg.n_examples, split="train", seed=cfg.seed)
    result: dict[str, Any] = {"settings": {"model": str(model_name), "preset": preset, **asdict(cfg),
                                           "context": context, "new_len": new_len, "lengths": lengths,
                                           "eval_tokens": int(len(tokens))}, "methods": {}}
    for method in methods:
        t0 = time.time()
        options = method_options(method, factor=cfg.factor, context=context, fope_preset=cfg.fope_preset)
        model = convert(source, seed=cfg.seed, **options).to(device)
        summary = finetune(model, tok, chat, out / method, max_steps=cfg.steps, seq_len=new_len, lr=cfg.lr,
                           batch_size=cfg.batch_size, loss_on="all", save_every=cfg.steps, seed=cfg.seed,
                           progress=False, resume=find_checkpoint(out / method) is not None)
        model.eval()
        with torch.no_grad():
            ppl = perplexities(model, tokens, lengths, max_chunks=cfg.max_chunks)
            pk = {}
            for length in lengths:  # a length shorter than the passkey prompt itself is reported as None
                try:
                    one = passkey_eval(HFAdapter(model), HFTokenizer(tok), [length], trials=cfg.passkey_trials,
                                       seed=cfg.seed, mode="likelihood", progress=False)
                    pk[str(length)] = 100.0 * float(one["by_length"][length])
                except ValueError as e:
                    if "too short" not in str(e):
                        raise
                    pk[str(length)] = None
        result["methods"][method] = {
            "convert": {k: v for k, v in options.items()}, "ppl": {str(k): v for k, v in ppl.items()},
            "passkey": pk, "final_loss": summary["final_loss"],
            "steps": summary["step"], "seconds": round(time.time() - t0, 1),
        }
        log(f"{method}: ppl {result['methods'][method]['ppl']} passkey {result['methods'][method]['passkey']}")
        atomic_write(out / "extend.json", json.dumps(result, indent=1, default=str))
        del model
    atomic_write(out / "extend.md", format_table(result))
    plot(result, out / "extend.png")
    return result


def format_table(result: dict) -> str:
    """Markdown: perplexity per length and passkey per length, one row per method."""
    s = result["settings"]
    lengths = [str(n) for n in s["lengths"]]
    head = "| method | " + " | ".join(f"ppl @ {n}" for n in lengths) + " | " + \
        " | ".join(f"passkey @ {n}" for n in lengths) + " |"
    lines = [f"Context extension {s['context']} -> {s['new_len']} ({s['steps']} steps, model {s['model']})", "",
             head, "|---|" + "---|" * (2 * len(lengths))]
    for method, row in result["methods"].items():
        ppl = " | ".join(f"{row['ppl'][n]:.2f}" for n in lengths)
        pk = " | ".join("–" if row["passkey"].get(n) is None else f"{row['passkey'][n]:.0f}" for n in lengths)
        lines.append(f"| {method} | {ppl} | {pk} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: str | Path) -> Path:
    """Perplexity against length per method (log y), the original and new context marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["settings"]
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for method, row in result["methods"].items():
        xs = [int(n) for n in row["ppl"]]
        ax.plot(xs, [row["ppl"][str(n)] for n in xs], marker="o", label=method)
    for x, name in ((s["context"], "original"), (s["new_len"], "fine-tuned")):
        ax.axvline(x, color="grey", linestyle=":", linewidth=1)
        ax.text(x, ax.get_ylim()[1], name, fontsize=7, ha="right", va="top", rotation=90)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("evaluation length (tokens)")
    ax.set_ylabel("perplexity")
    ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return Path(path)


__all__ = ["extend", "ExtendPreset", "PRESETS", "METHODS", "method_options", "format_table", "plot"]
