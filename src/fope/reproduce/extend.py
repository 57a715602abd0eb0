"""Context extension, FoPE against the field: from one RoPE checkpoint, fine-tune at ``factor`` x its context with
(a) FoPE, (b) YaRN, (c) PI (linear), (d) no change, on the same data for the same steps; then perplexity up to
4x the original context and passkey retrieval, one table and one figure.

    fope extend --model runs/tiny-rope --out runs/extend-cpu --preset cpu       # minutes on 2 CPU cores
    fope extend --model smollm2 --out runs/extend-smollm2 --preset gpu --device cuda

The model is an HF RoPE causal LM (directory, hub name, ``smollm2``) or a native fope RoPE model / run directory
(exported first, `fope.hf.export.hf_dir`; loaded by `fope.eval.loader.load_model`). Every method starts from the
same weights (`fope.hf.convert`): ``none`` is the RoPE model itself,
``yarn`` / ``pi`` set HF's own scaling (``factor``, original context = the source's), ``fope`` converts with
``fope_preset`` and the floor at the new length (the authors' choice for fine-tuning). Fine-tuning is
`fope.hf.finetune` on plain text (``loss_on="all"``) from the corpus' train split (`make_chat_data` documents);
evaluation reads the corpus' val split, the same tokens for every method. Writes ``OUT/extend.json``,
``OUT/extend.md`` and ``OUT/extend.png``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from fope.utils import atomic_path, atomic_write, doc_field

METHODS = ("fope", "yarn", "pi", "none")


@dataclass(frozen=True)
class ExtendPreset:
    """Settings of one comparison (`fope extend` flags of the same names override them)."""

    factor: int = doc_field(2, "the new context as a multiple of the source's (the fine-tuning length)")
    steps: int = doc_field(40, "fine-tuning steps of every method")
    lr: float = doc_field(3e-4, "peak fine-tuning learning rate (fope.hf.finetune's schedule)")
    batch_size: int = doc_field(1, "sequences of the new length per fine-tuning step")
    n_examples: int = doc_field(400, "plain-text training documents cut from the corpus' train split")
    corpus: str = doc_field("books", "fope.data corpus: train split for fine-tuning, val split for the evaluation")
    eval_multiples: tuple[float, ...] = doc_field(
        (0.5, 1, 2, 4), "evaluated lengths, as multiples of the source's context"
    )
    max_chunks: int = doc_field(2, "perplexity chunks of the longest length (the token budget of every length)")
    passkey_trials: int = doc_field(10, "passkey trials per length (likelihood scoring)")
    fope_preset: str = doc_field("preserving", "conversion preset of the fope method (fope.hf.convert.CONVERT_PRESETS)")
    seed: int = doc_field(0, "seed of the conversion, the data and the fine-tuning")


#: cpu: a cpu-tiny RoPE model (context 256: `fope train --preset cpu-tiny --pe rope`), minutes on 2 cores.
#: gpu: SmolLM2-135M (context 8192 -> 16384), ~1.6M fine-tuning tokens per method; run with --device cuda.
EXTEND_PRESETS = {
    "cpu": ExtendPreset(),
    "gpu": ExtendPreset(steps=100, lr=1e-4, n_examples=4000, corpus="wiki", max_chunks=4, passkey_trials=20),
}


def method_options(method: str, *, factor: int, context: int, fope_preset: str) -> dict[str, Any]:
    """`fope.hf.convert` arguments of one method."""
    from fope.hf.convert import preset_options

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


def extend(
    model_name: str | Path,
    out_dir: str | Path,
    *,
    methods: Sequence[str] = METHODS,
    preset: str = "cpu",
    device: str = "cpu",
    log=print,
    **overrides: Any,
) -> dict:
    """Run the comparison (module docstring); returns the saved dict."""
    import torch

    from fope.eval.adapters import HFAdapter, HFTokenizer
    from fope.eval.loader import check_device, load_hf_model
    from fope.eval.passkey import passkey_eval
    from fope.eval.perplexity import tokens_from_corpus
    from fope.hf.convert import SOURCE_MODEL_TYPES, convert, source_context_length
    from fope.hf.export import hf_dir
    from fope.hf.finetune import finetune, make_chat_data
    from fope.train.checkpoint import find_checkpoint

    from .recovery import perplexities

    if preset not in EXTEND_PRESETS:
        raise ValueError(f"unknown extend preset {preset!r}; choose from {list(EXTEND_PRESETS)}")
    cfg = replace(EXTEND_PRESETS[preset], **overrides)
    for m in methods:
        if m not in METHODS:
            raise ValueError(f"unknown extension method {m!r}; choose from {list(METHODS)}")
    check_device(device)
    out = Path(out_dir)
    hf_source = hf_dir(model_name, out / "source-hf")  # a missing model fails here, before OUT is made
    out.mkdir(parents=True, exist_ok=True)
    source, tok = load_hf_model(hf_source, model_types=SOURCE_MODEL_TYPES)  # a model convert cannot read: refused
    context = source_context_length(source.config)
    new_len = cfg.factor * context
    lengths = sorted({max(16, int(m * context)) for m in cfg.eval_multiples})
    tokens = tokens_from_corpus(cfg.corpus, HFTokenizer(tok), split="val", max_tokens=max(lengths) * cfg.max_chunks + 1)
    chat = make_chat_data(out / "train.jsonl", corpus=cfg.corpus, n=cfg.n_examples, split="train", seed=cfg.seed)
    result: dict[str, Any] = {
        "settings": {
            "model": str(model_name),
            "preset": preset,
            **asdict(cfg),
            "context": context,
            "new_len": new_len,
            "lengths": lengths,
            "eval_tokens": len(tokens),
        },
        "methods": {},
    }
    for method in methods:
        t0 = time.time()
        options = method_options(method, factor=cfg.factor, context=context, fope_preset=cfg.fope_preset)
        model = convert(source, seed=cfg.seed, **options).to(device)
        summary = finetune(
            model,
            tok,
            chat,
            out / method,
            max_steps=cfg.steps,
            seq_len=new_len,
            lr=cfg.lr,
            batch_size=cfg.batch_size,
            loss_on="all",
            save_every=cfg.steps,
            seed=cfg.seed,
            progress=False,
            resume=find_checkpoint(out / method) is not None,
        )
        model.eval()
        with torch.no_grad():
            ppl = perplexities(model, tokens, lengths, max_chunks=cfg.max_chunks)
            pk = {}
            for length in lengths:  # a length shorter than the passkey prompt itself is reported as None
                try:
                    one = passkey_eval(
                        HFAdapter(model),
                        HFTokenizer(tok),
                        [length],
                        trials=cfg.passkey_trials,
                        seed=cfg.seed,
                        mode="likelihood",
                        progress=False,
                    )
                    pk[str(length)] = 100.0 * float(one["by_length"][length])
                except ValueError as e:
                    if "too short" not in str(e):
                        raise
                    pk[str(length)] = None
        result["methods"][method] = {
            "convert": {k: v for k, v in options.items()},
            "ppl": {str(k): v for k, v in ppl.items()},
            "passkey": pk,
            "final_loss": summary["final_loss"],
            "steps": summary["step"],
            "seconds": round(time.time() - t0, 1),
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
    head = (
        "| method | "
        + " | ".join(f"ppl @ {n}" for n in lengths)
        + " | "
        + " | ".join(f"passkey @ {n}" for n in lengths)
        + " |"
    )
    lines = [
        f"Context extension {s['context']} -> {s['new_len']} ({s['steps']} steps, model {s['model']})",
        "",
        head,
        "|---|" + "---|" * (2 * len(lengths)),
    ]
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


__all__ = ["EXTEND_PRESETS", "METHODS", "ExtendPreset", "extend", "format_table", "method_options", "plot"]
