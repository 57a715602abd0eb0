"""Supervised fine-tuning of a (converted) HF causal LM on chat data: the paper's SmolLM recipe (docs/paper.md §4.7).

    fope hf finetune --model smollm2-fope --data chat.jsonl --out ft --seq-len 4096          # one epoch
    fope hf finetune --model smollm2-fope --data chat.jsonl --out ft --max-steps 50 --resume

Recipe (defaults): AdamW lr 3e-4 (betas 0.9/0.999, no weight decay), linear warm-up over the first 10% of the steps
then cosine to 0, one epoch, gradient clipping at 1.0, fp32. Conversations (JSONL ``{"messages": [...]}`` or a HF
dataset with a ``messages`` column) are rendered with the tokenizer's chat template, the loss put on the assistant
turns (``loss_on="assistant"``) or on every token (``"all"``), and packed into blocks of ``seq_len + 1`` tokens.

Training is fope.train's loop (`fope.train.loop.run`, the same schedule, checkpoints, metrics, signals and exact
resume as pre-training) with the model behind `HFForTraining` and the blocks behind `ChatBlocks`. OUT is a training
run directory whose ``model/`` is the fine-tuned Hugging Face directory (see docs/huggingface.md).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from fope.utils import atomic_write, doc_field, read_jsonl


@dataclass(frozen=True)
class FinetuneConfig:
    """Hyper-parameters of a fine-tuning run (`fope hf finetune` has a flag of the same name for each, help = doc)."""

    seq_len: int = doc_field(4096, "tokens per training block (each block is seq_len + 1 packed tokens)")
    batch_size: int = doc_field(1, "blocks per forward/backward")
    grad_accum: int = doc_field(1, "forward/backward passes per optimizer step")
    lr: float = doc_field(3e-4, "peak AdamW learning rate (betas 0.9/0.999)")
    warmup_ratio: float = doc_field(
        0.1, "share of the steps spent warming the learning rate up from 0 (then cosine to 0)"
    )
    weight_decay: float = doc_field(0.0, "AdamW decoupled weight decay")
    grad_clip: float = doc_field(1.0, "clip the global gradient L2 norm to this value (0 = off)")
    epochs: int = doc_field(1, "passes over the packed blocks")
    max_steps: int | None = doc_field(None, "stop the schedule after this many optimizer steps (None: the epochs)")
    max_examples: int | None = doc_field(None, "read only the first this many conversations (None: all)")
    loss_on: str = doc_field(
        "assistant",
        "which tokens carry loss: 'assistant' turns, or 'all' (plain text, e.g. a tokenizer without chat template)",
    )
    save_every: int = doc_field(100, "write OUT/checkpoint and OUT/model every this many steps (and at the end)")
    seed: int = doc_field(0, "seed of the data order and of the model's randomness")

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

    def train_config(self, blocks: int, device: str = "cpu"):
        """fope.train's TrainConfig for ``blocks`` packed blocks (steps: ``epochs`` passes, or ``max_steps``)."""
        from fope.train.config import TrainConfig

        per_step = self.batch_size * self.grad_accum
        steps = min(self.epochs * blocks // per_step, self.max_steps or self.epochs * blocks)
        if steps == 0:
            raise ValueError(
                f"{blocks} blocks of {self.seq_len} tokens with a loss token are fewer than one step of "
                f"{per_step} blocks"
            )
        return TrainConfig(
            seed=self.seed,
            lr=self.lr,
            beta2=0.999,
            weight_decay=self.weight_decay,
            max_steps=steps,
            warmup_steps=math.ceil(round(self.warmup_ratio * steps, 9)),
            final_lr_ratio=0.0,
            grad_clip=self.grad_clip,
            global_batch=per_step,
            micro_batch=self.batch_size,
            seq_len=self.seq_len,
            precision="fp32",
            device=device,
            log_every=1,
            eval_every=0,
            save_every=self.save_every,
        )


# ------------------------------------------------------------------------------------------------------------
# data


def read_conversations(data: str | Path, *, max_examples: int | None = None) -> list[list[dict]]:
    """Conversations (lists of {"role", "content"}) from a local JSONL file or a HF dataset name (network)."""
    path = Path(data)
    if path.suffix == ".jsonl" or path.is_file():
        rows = iter(read_jsonl(path, "chat data file"))
    else:
        from datasets import load_dataset

        rows = iter(load_dataset(str(data), split="train"))
    out = []
    for i, row in enumerate(rows):
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages
        ):
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
            raise ValueError(
                "the tokenizer has no chat template, so assistant turns cannot be found; use "
                "loss_on='all' (--loss-on all) to train on the plain text of the conversations"
            )
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


def pack(examples: Iterable[tuple[list[int], list[bool]]], block_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Concatenate (ids, mask) pairs and cut into blocks: ids (N, block_len), labels (N, block_len) with -100
    where no loss. The last partial block is dropped."""
    ids, labels = [], []
    for tok, mask in examples:
        ids += tok
        labels += [t if m else -100 for t, m in zip(tok, mask)]
    n = len(ids) // block_len
    if n == 0:
        raise ValueError(f"the data has {len(ids)} tokens, fewer than one block of {block_len} (seq_len + 1)")
    shape = (n, block_len)
    return torch.tensor(ids[: n * block_len]).view(shape), torch.tensor(labels[: n * block_len]).view(shape)


class ChatBlocks:
    """Packed blocks in the interface fope.train's loop reads (that of fope.data.TokenWindows): ``len()`` and
    ``batch(ids) -> (inputs, targets)``, inputs a block's first seq_len tokens, targets its last seq_len labels
    (-100: no loss). ``ids``, ``labels``: (N, seq_len + 1) from `pack`; blocks without a loss token are dropped."""

    def __init__(self, ids: torch.Tensor, labels: torch.Tensor) -> None:
        keep = (labels[:, 1:] != -100).any(dim=1)
        self.ids, self.labels = ids[keep].numpy(), labels[keep].numpy()

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, window_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.ids[window_ids, :-1], self.labels[window_ids, 1:]


class HFForTraining(torch.nn.Module):
    """A Hugging Face causal LM behind the interface of fope's native model: ``forward(input_ids) -> logits``.

    The HF model's submodules are this module's own, so the state dict has the HF names and loads strictly from
    the model.safetensors that `save` (``save_pretrained``) writes; tied weights (not saved twice) are filled in."""

    def __init__(self, hf: Any) -> None:
        super().__init__()
        if list(hf.parameters(recurse=False)) or list(hf.buffers(recurse=False)):
            raise ValueError(f"{type(hf).__name__} holds tensors of its own; HFForTraining expects them in submodules")
        for name, child in hf.named_children():
            self.add_module(name, child)
        object.__setattr__(self, "hf", hf)  # not a submodule: no "hf." prefix in the state dict

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=input_ids, use_cache=False).logits

    def train(self, mode: bool = True) -> HFForTraining:
        self.hf.train(mode)
        self.training = mode
        return self

    def load_state_dict(self, state: dict[str, torch.Tensor], strict: bool = True, assign: bool = False):
        state, own = dict(state), self.state_dict()
        for name, tensor in own.items():
            twins = [k for k, v in own.items() if k in state and v.data_ptr() == tensor.data_ptr()]
            if name not in state and twins:  # a tied weight, which HF saves once
                state[name] = state[twins[0]]
        return super().load_state_dict(state, strict=strict, assign=assign)

    def save(self, directory: str | Path, tokenizer: Any = None) -> None:
        """A Hugging Face model directory (fope.hf.io.save for FopeForCausalLM: remote code included)."""
        from transformers.utils import logging

        from .io import MODEL_TYPE, save

        shown = logging.is_progress_bar_enabled()
        logging.disable_progress_bar()  # "Writing model shards" at every checkpoint is noise
        try:
            if getattr(self.hf.config, "model_type", None) == MODEL_TYPE:
                save(self.hf, directory, tokenizer=tokenizer)
            else:
                self.hf.save_pretrained(directory)
                if tokenizer is not None:
                    tokenizer.save_pretrained(directory)
        finally:
            if shown:
                logging.enable_progress_bar()


# ------------------------------------------------------------------------------------------------------------
# the run

RESUME_HINT = "fope hf finetune ... --resume (the same options)"


class Interrupted(KeyboardInterrupt):
    """A fine-tune stopped by SIGINT / SIGTERM after writing its checkpoint (a KeyboardInterrupt, so whatever ran it
    stops too): ``fope`` prints the message and exits ``128 + signal`` (130 for Ctrl-C), the shell's convention."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.exit_code = 128 + self.signum


def finetune(
    model: Any,
    tokenizer: Any,
    data: str | Path,
    out_dir: str | Path,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    progress: bool = True,
    allow_config_change: bool = False,
    **options: Any,
) -> dict:
    """Fine-tune ``model`` in place, on the device it is on, into the run directory ``out_dir``; returns fope.train's
    summary (``step``, ``finished``, ``losses``, ...) plus ``blocks``.

    ``options`` are `FinetuneConfig` fields. ``stop_at`` stops after that many steps with a checkpoint (the schedule
    still spans the whole run). ``resume`` continues exactly, refusing settings (but ``save_every``) that differ from
    the checkpoint's unless ``allow_config_change``. Without a chat template, use loss_on="all" (plain text).
    A SIGINT or SIGTERM stops the run at the next micro-batch with a checkpoint (fope.train's loop) and then raises
    `Interrupted` (a KeyboardInterrupt): nothing that called this goes on with a half-trained model.
    """
    from fope.train import distributed as D
    from fope.train.checkpoint import find_checkpoint, verify_checkpoint
    from fope.train.data import TokenData
    from fope.train.loop import Job, check_same_run, open_run_dir, run, seed_everything
    from fope.train.optim import build_optimizer

    cfg = FinetuneConfig(**options)
    out = Path(out_dir)
    ckpt = find_checkpoint(out) if resume else None
    if ckpt is not None and not allow_config_change:  # a change would silently restart the schedule or data order
        verify_checkpoint(ckpt, ["config.yaml"])
        saved = {"finetune": (yaml.safe_load((ckpt / "config.yaml").read_text()) or {}).get("finetune")}
        check_same_run(
            saved,
            {"finetune": asdict(cfg)},
            ckpt / "config.yaml",
            may_change=["finetune.save_every"],
            advice="rerun with the saved values or pass --allow-config-change (restarts the schedule)",
        )
    device = next(model.parameters()).device.type
    with D.process_group(device) as info:
        ckpt = open_run_dir(out, info, resume=resume, stop_at=stop_at, hint=RESUME_HINT)
        seed_everything(cfg.seed)
        conversations = read_conversations(data, max_examples=cfg.max_examples)
        blocks = ChatBlocks(
            *pack((encode_conversation(tokenizer, m, loss_on=cfg.loss_on) for m in conversations), cfg.seq_len + 1)
        )
        t = cfg.train_config(len(blocks), device)
        if getattr(model.config, "max_position_embeddings", cfg.seq_len) < cfg.seq_len:
            model.config.max_position_embeddings = cfg.seq_len
        net = HFForTraining(model).to(info.device)
        job = Job(
            model=net,
            optimizer=build_optimizer(net, t),
            data=TokenData(blocks, {}, tokenizer),
            train=t,
            seq_len=cfg.seq_len,
            vocab_size=model.get_output_embeddings().weight.shape[0],
            config={"finetune": asdict(cfg), "data": str(data), "train": asdict(t)},
            save_model=HFForTraining.save,
            resume_hint=RESUME_HINT,
            progress=progress,
        )
        summary = run(job, out, info, ckpt=ckpt, stop_at=stop_at)
    model.eval()
    if summary.get("stopped") in ("SIGINT", "SIGTERM"):
        import signal

        raise Interrupted(
            f"fine-tuning stopped by {summary['stopped']} after step {summary['step']}; its checkpoint is kept "
            f"in {out} (resume: {RESUME_HINT})",
            signal.Signals[summary["stopped"]],
        )
    return {**summary, "blocks": len(blocks)}


# ------------------------------------------------------------------------------------------------------------
# offline stand-in data


def make_chat_data(
    out_path: str | Path,
    *,
    corpus: str = "wiki",
    n: int = 1000,
    split: str = "train",
    passage_chars: int = 1200,
    seed: int = 0,
) -> Path:
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
            rows.append(
                [
                    {"role": "user", "content": f"Write a short encyclopedia article about {title}."},
                    {"role": "assistant", "content": text.strip()},
                ]
            )
        else:
            for start in range(0, len(text) - passage_chars, passage_chars):
                passage = text[start : start + passage_chars]
                cut = passage.rfind(" ", 0, passage_chars // 2) + 1 or passage_chars // 2
                rows.append(
                    [
                        {"role": "user", "content": f"Continue this passage from {title}:\n\n{passage[:cut]}"},
                        {"role": "assistant", "content": passage[cut:]},
                    ]
                )
        if len(rows) >= 20 * n:
            break
    rng.shuffle(rows)
    return atomic_write(out_path, "".join(json.dumps({"messages": m}) + "\n" for m in rows[:n]))


__all__ = [
    "ChatBlocks",
    "FinetuneConfig",
    "HFForTraining",
    "Interrupted",
    "encode_conversation",
    "finetune",
    "make_chat_data",
    "pack",
    "read_conversations",
]
