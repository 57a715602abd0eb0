"""Supervised fine-tuning of a (converted) HF causal LM on chat data: the paper's SmolLM recipe (docs/paper.md §4.7).

    fope hf finetune --model smollm2-fope --data chat.jsonl --out ft --seq-len 4096          # one epoch
    fope hf finetune --model smollm2-fope --data chat.jsonl --out ft --max-steps 50 --resume

Recipe (defaults): AdamW lr 3e-4 (betas 0.9/0.999, no weight decay), cosine decay to 0 with linear warmup over the
first 10% of the steps, one epoch, gradient clipping at 1.0, fp32 on CPU. The context is extended by packing into
``--seq-len`` blocks (the paper: 2k -> 4k); FoPE's floor length is fixed at conversion time (``--train-len``).

Data: a JSONL file whose lines are ``{"messages": [{"role": ..., "content": ...}, ...]}``, or (with network) a
Hugging Face dataset name with a ``messages`` column. Each conversation is rendered with the tokenizer's own chat
template; the loss is on the assistant turns only (``loss_on="assistant"``, default: tokens whose characters lie in
an assistant message's content and its end-of-turn marker) or on all tokens (``loss_on="all"``). Conversations are
concatenated and cut into blocks of ``seq_len`` tokens (packing; a block may span two conversations, without
cross-document masking, as in the alignment-handbook SFT recipe with packing).

Checkpoints: every ``save_every`` steps the model, optimizer, step and RNG state are written to ``OUT/checkpoint``
atomically (written to a temporary folder, then renamed); ``resume=True`` continues from it exactly (the data
order is a pure function of the seed). At the end OUT holds the fine-tuned model (HF directory, remote code
included for FopeForCausalLM), the tokenizer and ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable

import torch


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters (keyword-only CLI flags of the same names)."""

    seq_len: int = 4096
    batch_size: int = 1
    grad_accum: int = 1
    lr: float = 3e-4
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    epochs: int = 1
    max_steps: int | None = None
    max_examples: int | None = None
    loss_on: str = "assistant"
    save_every: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("seq_len", "batch_size", "grad_accum", "epochs", "save_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(f"max_steps must be positive, got {self.max_steps!r}")
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio!r}")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.loss_on not in ("assistant", "all"):
            raise ValueError(f"loss_on must be 'assistant' or 'all', got {self.loss_on!r}")


# ------------------------------------------------------------------------------------------------------------
# data


def read_conversations(data: str | Path, *, max_examples: int | None = None) -> list[list[dict]]:
    """Conversations (lists of {"role", "content"}) from a local JSONL file or a HF dataset name (network)."""
    path = Path(data)
    if path.suffix == ".jsonl" or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"chat data file {path} does not exist")
        rows = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    else:
        from datasets import load_dataset

        rows = iter(load_dataset(str(data), split="train"))
    out = []
    for i, row in enumerate(rows):
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not all(isinstance(m, dict) and {"role", "content"} <= set(m)
                                                     for m in messages):
            raise ValueError(f"{data}: example {i} has no 'messages' list of {{role, content}} dicts")
        out.append(messages)
        if max_examples is not None and len(out) >= max_examples:
            break
    if not out:
        raise ValueError(f"{data} holds no conversations")
    return out


def encode_conversation(tokenizer: Any, messages: list[dict], *, loss_on: str) -> tuple[list[int], list[bool]]:
    """Token ids of the chat-templated conversation and, per token, whether it carries loss.

    Assistant spans are found by rendering growing prefixes of the conversation (the template must render a
    prefix as a prefix of the whole) and mapping characters to tokens with the fast tokenizer's offsets.
    """
    if not getattr(tokenizer, "chat_template", None):
        if loss_on != "all":
            raise ValueError("the tokenizer has no chat template, so assistant turns cannot be found; use "
                             "loss_on='all' (--loss-on all) to train on the plain text of the conversations")
        # no template (e.g. a native fope export): the contents as plain text, one conversation per document
        text = "\n\n".join(m["content"] for m in messages) + (tokenizer.eos_token or "")
        ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
        return ids, [True] * len(ids)
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=loss_on == "assistant")
    ids = list(enc["input_ids"])
    if loss_on == "all":
        return ids, [True] * len(ids)
    spans, prev = [], 0
    for i, message in enumerate(messages):
        prefix = tokenizer.apply_chat_template(messages[: i + 1], tokenize=False)
        if not text.startswith(prefix):
            raise ValueError("the chat template does not render prefixes as prefixes; use loss_on='all'")
        if message["role"] == "assistant":
            start = prefix.rfind(message["content"], prev)
            spans.append((start if start >= 0 else prev, len(prefix)))
        prev = len(prefix)
    mask = [any(a <= s < b for a, b in spans) for s, _ in enc["offset_mapping"]]
    return ids, mask


def pack(examples: Iterable[tuple[list[int], list[bool]]], seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate (ids, mask) pairs and cut into blocks: input_ids (N, seq_len), labels (N, seq_len) with -100
    where no loss. The last partial block is dropped."""
    ids, labels = [], []
    for tok, mask in examples:
        ids += tok
        labels += [t if m else -100 for t, m in zip(tok, mask)]
    n = len(ids) // seq_len
    if n == 0:
        raise ValueError(f"the data has {len(ids)} tokens, fewer than one block of seq_len={seq_len}")
    shape = (n, seq_len)
    return torch.tensor(ids[: n * seq_len]).view(shape), torch.tensor(labels[: n * seq_len]).view(shape)


# ------------------------------------------------------------------------------------------------------------
# schedule and checkpoints


def lr_at(step: int, total: int, *, lr: float, warmup_ratio: float) -> float:
    """LR of the update made at 0-based ``step``: fope.train.optim.lr_at (update n = step + 1, linear warm-up over
    ceil(warmup_ratio * total) updates, cosine to 0 at update ``total``) — the pre-training schedule, one definition."""
    from fope.train.config import TrainConfig
    from fope.train.optim import lr_at as train_lr_at

    warmup = max(1, math.ceil(warmup_ratio * total)) if warmup_ratio > 0 else 0
    sched = TrainConfig(lr=lr, warmup_steps=warmup, max_steps=total, final_lr_ratio=0.0)
    return train_lr_at(step + 1, sched)


def save_checkpoint(out: Path, model: Any, optimizer: torch.optim.Optimizer, step: int, cfg: FinetuneConfig) -> None:
    """Atomically replace OUT/checkpoint with the current state (model, optimizer, step, RNG, config)."""
    from safetensors.torch import save_model

    tmp = out / "checkpoint.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_model(model, str(tmp / "model.safetensors"))  # handles tied (shared) tensors
    torch.save({"optimizer": optimizer.state_dict(), "rng": torch.get_rng_state(), "python_rng": random.getstate()},
               tmp / "state.pt")
    (tmp / "meta.json").write_text(json.dumps({"step": step, "config": asdict(cfg)}, indent=1))
    final = out / "checkpoint"
    old = out / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


#: settings that may change on resume without changing the run (everything else shapes the schedule or the data)
RESUMABLE_CHANGES = ("save_every",)


def check_resume_config(saved: dict, cfg: FinetuneConfig, where: Path, *, allow_change: bool = False) -> None:
    """ValueError naming the changed settings when ``cfg`` differs from the checkpoint's (the LR schedule and data
    order would silently restart), unless ``allow_change``."""
    now = asdict(cfg)
    changed = sorted(k for k in now if k not in RESUMABLE_CHANGES and k in saved and saved[k] != now[k])
    if changed and not allow_change:
        detail = ", ".join(f"{k}: {saved[k]!r} -> {now[k]!r}" for k in changed)
        raise ValueError(f"{where}: resume with changed settings ({detail}) would restart the schedule; rerun with "
                         f"the saved values or pass --allow-config-change")


def load_checkpoint(out: Path, model: Any, optimizer: torch.optim.Optimizer, cfg: FinetuneConfig | None = None, *,
                    allow_change: bool = False) -> int:
    """Restore the state saved by `save_checkpoint`; returns the step to continue from. With ``cfg``, refuses a
    changed configuration (`check_resume_config`)."""
    from safetensors.torch import load_model

    ckpt = out / "checkpoint"
    if not (ckpt / "meta.json").is_file() and (out / "checkpoint.old" / "meta.json").is_file():
        ckpt = out / "checkpoint.old"  # killed inside save_checkpoint's swap: the previous checkpoint is complete
    if not (ckpt / "meta.json").is_file():
        raise FileNotFoundError(f"no checkpoint to resume in {ckpt}")
    if cfg is not None:
        saved = json.loads((ckpt / "meta.json").read_text()).get("config", {})
        check_resume_config(saved, cfg, ckpt / "meta.json", allow_change=allow_change)
    load_model(model, str(ckpt / "model.safetensors"))  # strict: every weight of the run, nothing else
    state = torch.load(ckpt / "state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    random.setstate(state["python_rng"])
    return int(json.loads((ckpt / "meta.json").read_text())["step"])


# ------------------------------------------------------------------------------------------------------------
# the loop


def finetune(model: Any, tokenizer: Any, data: str | Path, out_dir: str | Path, *, resume: bool = False,
             stop_at: int | None = None, progress: bool = True, allow_config_change: bool = False,
             **options: Any) -> dict:
    """Fine-tune ``model`` in place on ``data`` and save it to ``out_dir``; returns a summary dict.

    ``options`` are `FinetuneConfig` fields (unknown names raise TypeError naming them). ``stop_at`` stops after
    that many steps with a checkpoint, as an interruption would (the schedule still spans the whole run).
    ``resume`` refuses settings that differ from the checkpoint's unless ``allow_config_change``. A tokenizer
    without a chat template (a native fope export) trains on the conversations' plain text with loss_on="all".
    """
    cfg = FinetuneConfig(**options)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    conversations = read_conversations(data, max_examples=cfg.max_examples)
    inputs, labels = pack((encode_conversation(tokenizer, m, loss_on=cfg.loss_on) for m in conversations), cfg.seq_len)
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(cfg.seed))
    per_step = cfg.batch_size * cfg.grad_accum
    usable = (len(inputs) // per_step) * per_step  # blocks used per epoch
    total = cfg.epochs * (len(inputs) // per_step)
    total = min(total, cfg.max_steps) if cfg.max_steps else total
    if total == 0:
        raise ValueError(f"{len(inputs)} blocks of {cfg.seq_len} tokens are fewer than one step of {per_step} blocks")
    if getattr(model.config, "max_position_embeddings", cfg.seq_len) < cfg.seq_len:
        model.config.max_position_embeddings = cfg.seq_len
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step = load_checkpoint(out, model, optimizer, cfg, allow_change=allow_config_change) if resume else 0
    model.train()
    if resume:  # records written after the checkpoint (a crash between saves) would otherwise repeat steps
        from fope.train.metrics import truncate_after

        truncate_after(out / "metrics.jsonl", step)
    metrics = (out / "metrics.jsonl").open("a" if resume else "w")
    t0, tokens = time.time(), 0
    bar = _progress(total, step, progress)
    end = total if stop_at is None else min(total, stop_at)
    while step < end:
        lr = lr_at(step, total, lr=cfg.lr, warmup_ratio=cfg.warmup_ratio)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = 0.0
        for micro in range(cfg.grad_accum):
            first = (step * per_step + micro * cfg.batch_size) % usable
            idx = order[first: first + cfg.batch_size]
            loss = model(input_ids=inputs[idx], labels=labels[idx], use_cache=False).loss / cfg.grad_accum
            loss.backward()
            loss_sum += float(loss.detach())
            tokens += idx.numel() * cfg.seq_len
        norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        record = {"step": step, "loss": loss_sum, "lr": lr, "grad_norm": float(norm),
                  "tokens_per_s": tokens / max(1e-9, time.time() - t0)}
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()
        bar.update(1)
        bar.set_postfix(loss=f"{loss_sum:.3f}", lr=f"{lr:.2e}")
        if step % cfg.save_every == 0 and step < total:
            save_checkpoint(out, model, optimizer, step, cfg)
    bar.close()
    metrics.close()
    model.eval()
    save_checkpoint(out, model, optimizer, step, cfg)
    if step == total:
        _save_model(model, tokenizer, out)
    summary = {"steps": step, "finished": step == total, "blocks": len(inputs), "seq_len": cfg.seq_len, "config": asdict(cfg), "out": str(out)}
    (out / "finetune.json").write_text(json.dumps(summary, indent=1))
    return summary


def _save_model(model: Any, tokenizer: Any, out: Path) -> None:
    from .io import MODEL_TYPE, save

    if getattr(model.config, "model_type", None) == MODEL_TYPE:
        save(model, out, tokenizer=tokenizer)
    else:
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)


def _progress(total: int, initial: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="finetune", unit="step", disable=not enabled)


# ------------------------------------------------------------------------------------------------------------
# offline stand-in data


def make_chat_data(out_path: str | Path, *, corpus: str = "wiki", n: int = 1000, split: str = "train",
                   passage_chars: int = 1200, seed: int = 0) -> Path:
    """Write a stand-in chat JSONL built from real text of a fope.data corpus (no instruction data is reachable
    offline). Documents with a title (wiki) become "Write a short encyclopedia article about <title>." with the
    real article as the answer; other documents are cut into passages, "Continue this passage: <first half>"
    with the real second half as the answer."""
    from fope.data import get_corpus

    rng = random.Random(seed)
    rows = []
    for name, text in get_corpus(corpus).named_docs(split):
        title = name.split("/", 1)[-1]
        if corpus == "wiki":
            rows.append([{"role": "user", "content": f"Write a short encyclopedia article about {title}."},
                         {"role": "assistant", "content": text.strip()}])
        else:
            for start in range(0, len(text) - passage_chars, passage_chars):
                passage = text[start: start + passage_chars]
                cut = passage.rfind(" ", 0, passage_chars // 2) + 1 or passage_chars // 2
                rows.append([{"role": "user", "content": f"Continue this passage from {title}:\n\n{passage[:cut]}"},
                             {"role": "assistant", "content": passage[cut:]}])
        if len(rows) >= 20 * n:
            break
    rng.shuffle(rows)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps({"messages": m}) + "\n" for m in rows[:n]))
    return out


__all__ = ["FinetuneConfig", "finetune", "read_conversations", "encode_conversation", "pack", "lr_at",
           "make_chat_data", "save_checkpoint", "load_checkpoint", "check_resume_config"]
