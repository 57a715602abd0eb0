"""Named experiment presets: CPU-scale runs and the paper's whole pre-training grid.

CPU presets (``cpu-tiny``, ``cpu-small``, ``cpu-base``) train on the embedded ``books`` corpus with a BPE
tokenizer trained on it; their sizes were chosen from measured tokens/s on 2 CPU cores (docs/training.md).

Paper presets are generated from docs/paper.md §4.1-§4.3: ``{c4,books}-{512,1024}-{60M,180M,1.2B}-{pe}`` with
AdamW lr 6e-4 (0.9, 0.95, 1e-8, wd 0.1 on every parameter), 10k warm-up steps, cosine to 6e-5, grad clip 1.0,
524,288 tokens per step (1024 sequences at 512, 512 at 1024), the micro-batch of Table 3, bf16 autocast, seed
6198, FoPE sigma 0.3/0.4/0.6. The run length is one epoch of the paper's token budget (10B C4 tokens, 5.256B
Books tokens). ``books`` runs use ``pg19`` (Project Gutenberg, streamed by fope.data) and, like the paper, are
also validated on C4.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

from fope.model.config import PAPER_FOPE_SIGMA, get_preset
from fope.utils import did_you_mean

from .config import DataConfig, ExperimentConfig, TrainConfig, apply_overrides, check_keys, flatten, read_yaml

PAPER_SIZES = ("60M", "180M", "1.2B")
PAPER_LENGTHS = (512, 1024)
PAPER_CORPORA = {"c4": "c4", "books": "pg19"}  # preset prefix -> fope.data corpus
#: the encodings of the paper grid presets, named: a newly registered kind joins no preset by surprise
PAPER_PES = ("rope", "fope", "alibi", "nope", "kerple", "fire")
PAPER_TOKENS = {"c4": 10_000_000_000, "books": 5_256_000_000}  # one epoch (docs/paper.md §4.2)
PAPER_MICRO_BATCH = {
    ("60M", 512): 64,
    ("60M", 1024): 32,
    ("180M", 512): 32,
    ("180M", 1024): 16,
    ("1.2B", 512): 8,
    ("1.2B", 1024): 4,
}
PAPER_TOKENIZER = "allenai/gpt-neox-olmo-dolma-v1_5"
PAPER_TOKENS_PER_STEP = 524_288

# name -> (model preset, train overrides). Sized from measured single-core rates (tokens per CPU-second of a
# full training step, docs/training.md): ~1.2M tokens for cpu-tiny and cpu-small, ~0.8M for cpu-base, i.e.
# an estimated 3 / 10 / 20 minutes on 2 idle cores.
CPU_PRESETS: dict[str, tuple[str, dict]] = {  # (model preset[:vocab], train overrides)
    "cpu-tiny": (
        "cpu-tiny",
        dict(
            max_steps=300,
            warmup_steps=30,
            global_batch=16,
            micro_batch=16,
            lr=2e-3,
            eval_every=100,
            save_every=100,
            log_every=10,
        ),
    ),
    "cpu-small": (
        "cpu-small",
        dict(
            max_steps=300,
            warmup_steps=30,
            global_batch=8,
            micro_batch=8,
            lr=1e-3,
            eval_every=100,
            save_every=100,
            log_every=10,
        ),
    ),
    "cpu-base": (
        "cpu-base",
        dict(
            max_steps=200,
            warmup_steps=20,
            global_batch=8,
            micro_batch=8,
            lr=1e-3,
            eval_every=50,
            save_every=50,
            log_every=10,
        ),
    ),
    # one GPU, the paper's 60M shape with a 16,384 BPE trained on books (50.3M parameters): 400 steps x 64 x 512
    # = 13.1M tokens, the budget at which RoPE degrades beyond L (docs/reproduce.md); base of the gpu grid presets
    "gpu-60M": (
        "60M:16384",
        dict(
            max_steps=400,
            warmup_steps=40,
            global_batch=64,
            micro_batch=64,
            lr=1e-3,
            precision="bf16",
            eval_every=100,
            save_every=100,
            log_every=10,
        ),
    ),
}
CPU_FOPE_SIGMA = 0.3  # the smallest paper value (60M); CPU models have head dim 32-64


def pe_options_for(pe: str, *, sigma: float = CPU_FOPE_SIGMA) -> dict:
    """Default pe_options for a kind in our presets (FoPE gets the paper's sigma of that size)."""
    return {"sigma": sigma} if pe == "fope" else {}


def cpu_preset(name: str, pe: str = "fope") -> ExperimentConfig:
    model_name, train = CPU_PRESETS[name]
    model_name, _, vocab = model_name.partition(":")
    model = get_preset(model_name).replace(pe=pe, pe_options=pe_options_for(pe))
    if vocab:
        model = model.replace(vocab_size=int(vocab))
    data = DataConfig(corpus="books", tokenizer=f"train:{model.vocab_size}", eval_corpora=["wiki"])
    cfg = ExperimentConfig(model=model, data=data, train=TrainConfig(**train))
    cfg.validate()
    return cfg


def paper_preset(corpus: str, length: int, size: str, pe: str) -> ExperimentConfig:
    """The paper's pre-training setting (docs/paper.md §4.3) for one corpus x length x size x pe."""
    global_batch = PAPER_TOKENS_PER_STEP // length
    model = get_preset(size).replace(
        train_len=length, pe=pe, pe_options=pe_options_for(pe, sigma=PAPER_FOPE_SIGMA[size])
    )
    data = DataConfig(
        corpus=PAPER_CORPORA[corpus],
        tokenizer=PAPER_TOKENIZER,
        max_tokens=PAPER_TOKENS[corpus],
        eval_corpora=[] if corpus == "c4" else ["c4"],
    )
    train = TrainConfig(
        seed=6198,
        lr=6e-4,
        beta1=0.9,
        beta2=0.95,
        eps=1e-8,
        weight_decay=0.1,
        warmup_steps=10_000,
        max_steps=round(PAPER_TOKENS[corpus] / PAPER_TOKENS_PER_STEP),
        final_lr_ratio=0.1,
        grad_clip=1.0,
        global_batch=global_batch,
        micro_batch=PAPER_MICRO_BATCH[(size, length)],
        precision="bf16",
        log_every=10,
        eval_every=1000,
        eval_windows=256,
        save_every=1000,
    )
    cfg = ExperimentConfig(model=model, data=data, train=train)
    cfg.validate()
    return cfg


def _paper_names() -> dict[str, tuple]:
    return {
        f"{c}-{n}-{s}-{p}": (c, n, s, p)
        for c, n, s, p in itertools.product(PAPER_CORPORA, PAPER_LENGTHS, PAPER_SIZES, PAPER_PES)
    }


def list_presets() -> list[str]:
    """Every preset name: the CPU ones, then the paper grid."""
    return list(CPU_PRESETS) + list(_paper_names())


def load_preset(name: str) -> ExperimentConfig:
    """A fresh ExperimentConfig for a preset name (ValueError naming the closest one if unknown)."""
    if name in CPU_PRESETS:
        return cpu_preset(name)
    paper = _paper_names()
    if name in paper:
        return paper_preset(*paper[name])
    raise ValueError(
        f"unknown preset {name!r}{did_you_mean(name, list_presets(), cutoff=0.5)}; see `fope train --list-presets`"
    )


def load_config(source: str | Path | dict[str, Any]) -> ExperimentConfig:
    """An experiment from a YAML file (or its dict): a complete config (`ExperimentConfig.from_dict`), or a
    top-level ``preset: NAME`` whose preset the other sections override (e.g. configs/continual/*.yaml)."""
    d = read_yaml(source) if isinstance(source, (str, Path)) else source
    if not isinstance(d, dict) or "preset" not in d:
        if isinstance(source, (str, Path)):
            return ExperimentConfig.from_yaml(source)
        return ExperimentConfig.from_dict(d)
    rest = {k: v for k, v in d.items() if v is not None and k != "preset"}  # an empty YAML section reads as None
    try:
        check_keys(rest, ("model", "data", "train"), "")
        return apply_overrides(load_preset(d["preset"]), flatten(rest))
    except ValueError as e:
        raise ValueError(f"{source}: {e}" if isinstance(source, (str, Path)) else str(e)) from e


def with_pe(cfg: ExperimentConfig, pe: str) -> ExperimentConfig:
    """Switch a config's position encoding, resetting pe_options to our defaults for that kind."""
    sigma = cfg.model.pe_options.get("sigma", CPU_FOPE_SIGMA) if cfg.model.pe == "fope" else None
    if sigma is None:
        sigma = next(
            (s for size, s in PAPER_FOPE_SIGMA.items() if get_preset(size).d_model == cfg.model.d_model), CPU_FOPE_SIGMA
        )
    return dataclasses.replace(cfg, model=cfg.model.replace(pe=pe, pe_options=pe_options_for(pe, sigma=sigma)))


def presets_table() -> str:
    """Markdown table of the CPU presets and the paper grid (pasted into docs/training.md; a test keeps it
    in sync)."""
    rows = [
        "| preset | model (d_model / layers / heads / vocab) | seq_len | global batch (micro) | steps "
        "(warm-up) | tokens | lr | corpus / tokenizer |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def row(name: str, cfg: ExperimentConfig) -> str:
        m, t = cfg.model, cfg.train
        tokens = t.max_steps * t.global_batch * cfg.seq_len
        return (
            f"| `{name}` | {m.d_model} / {m.n_layers} / {m.n_heads} / {m.vocab_size} | {cfg.seq_len} | "
            f"{t.global_batch} ({t.micro_batch}) | {t.max_steps:,} ({t.warmup_steps:,}) | {tokens / 1e6:,.1f}M | "
            f"{t.lr:g} | {cfg.data.corpus} / `{cfg.data.tokenizer}` |"
        )

    rows += [row(name, load_preset(name)) for name in CPU_PRESETS]
    for corpus, length, size in itertools.product(PAPER_CORPORA, PAPER_LENGTHS, PAPER_SIZES):
        name = f"{corpus}-{length}-{size}-PE"
        rows.append(row(name, paper_preset(corpus, length, size, "rope")))
    return "\n".join(rows) + "\n"
