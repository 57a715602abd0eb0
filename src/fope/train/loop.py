"""The training loop: AdamW, warm-up + cosine, gradient accumulation, DDP, bf16 autocast, exact resume.

    fope train --preset cpu-tiny --pe fope --out runs/tiny              # one process (CPU or one GPU)
    fope train --resume runs/tiny                                       # finish an interrupted run
    torchrun --nproc_per_node 4 -m fope.cli train --preset c4-512-60M-fope --out runs/c4-512-60M-fope

Per optimizer step s (0-based; update number s+1):
    1. lr = warm-up/cosine schedule (optim.lr_at)
    2. A micro-batches per process (global_batch = micro_batch * A * world_size), loss / A backpropagated,
       DDP all-reduces gradients on the last one only
    3. the step's loss (mean over all global_batch sequences) is all-reduced; a NaN/inf stops the run
       before the update, leaving the last checkpoint untouched
    4. clip the gradient norm, AdamW update
    5. rank 0: metrics.jsonl line, validation loss, atomic checkpoint, as scheduled
    6. stop after step `stop_at` or on SIGINT/SIGTERM, with a checkpoint to resume from
Data order depends only on (seed, step), so a resumed run sees exactly the batches the uninterrupted run
would have seen and, on the same machine, produces bit-identical losses.
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

import fope.model

from . import distributed as D
from .checkpoint import find_checkpoint, load_checkpoint, save_checkpoint, set_rng_state
from .config import ExperimentConfig
from .continual import init_from_source
from .data import get_batch, prepare_data
from .evaluate import token_loss, validation_losses
from .metrics import MetricLogger, read_metrics
from .optim import build_optimizer, lr_at, set_lr
from .signals import StopRequest


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the last good checkpoint was kept."""


def train(cfg: ExperimentConfig, out_dir: str | Path, *, resume: bool = False,
          stop_at: int | None = None) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir`` and return a summary (see :func:`_summary`).

    ``resume`` continues from ``out_dir/checkpoint``; ``stop_at=M`` ends the process after step M with a
    checkpoint. A finished run is returned as is (idempotent).
    """
    out = Path(out_dir)
    done = finished_summary(out, cfg)
    if done is not None:
        return done
    cfg.validate()
    started_group = not (torch.distributed.is_available() and torch.distributed.is_initialized())
    info = D.init(cfg.train.device)
    try:
        return _train(cfg, out, info, resume=resume, stop_at=stop_at)
    finally:
        if started_group:
            D.shutdown()


def _train(cfg: ExperimentConfig, out: Path, info: D.DistInfo, *, resume: bool, stop_at: int | None) -> dict:
    t, L = cfg.train, cfg.seq_len
    accum = D.grad_accum_steps(t.global_batch, t.micro_batch, info.world_size)
    ckpt = find_checkpoint(out)
    if ckpt is not None and not resume:
        raise ValueError(f"{out} already holds a training run; continue it with `fope train --resume {out}` "
                         "(or resume=True), or choose another output directory")
    if resume and ckpt is None:
        raise FileNotFoundError(f"nothing to resume in {out}: no complete checkpoint/ there")
    if stop_at is not None and stop_at < 1:
        raise ValueError(f"stop_at must be >= 1, got {stop_at}")

    # -- set-up: seeds, data, model, optimizer, (resumed) state ---------------------------------------------
    seed_everything(t.seed)
    data = prepare_data(cfg, info)
    model = fope.model.build(cfg.model).to(info.device)
    optimizer = build_optimizer(model, t)
    step = 0
    if resume:
        state = load_checkpoint(ckpt, model=model, optimizer=optimizer, device=info.device)
        step = int(state["step"])
        set_rng_state(state["rng"])
    elif t.init_from:
        init_from_source(model, optimizer, cfg, info)
    if info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.to_yaml(out / "config.yaml")
    net = torch.nn.parallel.DistributedDataParallel(model) if info.distributed else model
    if t.compile:
        net = torch.compile(net)
    order = D.WindowOrder(len(data.train), t.seed)
    autocast = autocast_context(t.precision, info.device)
    logger = MetricLogger(out, backends=t.metrics, run_name=out.name, config=cfg.to_dict(),
                          wandb_project=t.wandb_project, resume_step=step) if info.is_main else None
    params = [p for p in model.parameters() if p.requires_grad]
    tokens_per_step = t.global_batch * L

    def save(at: int) -> None:
        if info.is_main:
            save_checkpoint(out, model=model, optimizer=optimizer, step=at, tokens=at * tokens_per_step,
                            sequences=at * t.global_batch, config_yaml=cfg.to_yaml(), tokenizer=data.tokenizer)
        D.barrier(info)

    def evaluate() -> dict[str, float]:
        return validation_losses(model, data.val, windows=t.eval_windows, batch=t.micro_batch,
                                 vocab_size=cfg.model.vocab_size, info=info, autocast=autocast)

    # -- the loop -------------------------------------------------------------------------------------------
    bar = tqdm(total=t.max_steps, initial=step, disable=not info.is_main, unit="step", dynamic_ncols=True)
    train_time, steps_timed, stopped, last_saved = 0.0, 0, None, step
    model.train()
    with StopRequest() as stop, _closing(bar, logger):
        while step < t.max_steps:
            tic = time.perf_counter()
            lr = lr_at(step + 1, t)  # 1
            set_lr(optimizer, lr)
            loss_sum = torch.zeros((), device=info.device)
            for micro in range(accum):  # 2
                start = D.micro_batch_start(step, micro, global_batch=t.global_batch, micro_batch=t.micro_batch,
                                            info=info)
                x, y = get_batch(data.train, order.window_ids(start, t.micro_batch), info.device,
                                 cfg.model.vocab_size)
                sync = net.no_sync() if info.distributed and micro < accum - 1 else contextlib.nullcontext()
                with sync:
                    with autocast:
                        loss = compute_loss(net, x, y)
                    (loss / accum).backward()
                loss_sum += loss.detach()
            loss_value = float(D.all_reduce_sum(loss_sum, info)) / (accum * info.world_size)  # 3
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(
                    f"loss is {loss_value} at step {step + 1} (lr {lr:.3g}); stopped before the update. The last "
                    f"good checkpoint (step {last_saved}) is in {out / 'checkpoint'}: lower train.lr or check "
                    "the data, then resume")
            max_norm = t.grad_clip if t.grad_clip > 0 else math.inf  # 4
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            train_time += time.perf_counter() - tic
            steps_timed += 1

            record = {}  # 5
            if step % t.log_every == 0 or step == t.max_steps:
                tok_s = steps_timed * tokens_per_step / max(train_time, 1e-9)
                record.update(loss=loss_value, lr=lr, tokens=step * tokens_per_step, tokens_per_s=tok_s,
                              grad_norm=grad_norm)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:,.0f}")
            if (t.eval_every and step % t.eval_every == 0) or step == t.max_steps:
                record.update(evaluate())
            if record and logger is not None:
                logger.log({"step": step, **record})
            bar.update(1)
            stop_now = D.any_process(stop.requested, info)  # 6
            if (stop_now or step == stop_at) and step < t.max_steps:
                stopped = (stop.name or "signal") if stop_now else "stop_at"
            if step % t.save_every == 0 or step == t.max_steps or stopped:
                save(step)
                last_saved = step
            if stopped:
                break
    summary = _summary(cfg, out, step=step, stopped=stopped,
                       tokens_per_s=steps_timed * tokens_per_step / max(train_time, 1e-9))
    if info.is_main:
        if summary["finished"]:
            (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if stopped:
            print(f"fope train: stopped after step {step} ({stopped}); checkpoint saved. "
                  f"Resume with: fope train --resume {out}", flush=True)
    return summary


@contextlib.contextmanager
def _closing(bar: Any, logger: MetricLogger | None):
    """Close the progress bar and the metric files however the loop ends (finished, stopped, error)."""
    try:
        yield
    finally:
        bar.close()
        if logger is not None:
            logger.close()


def compute_loss(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Training loss of one micro-batch (a module-level function so tests can inject failures)."""
    return token_loss(model, inputs, targets)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``bf16`` (and ``auto`` on CUDA); nothing for fp32. Reusable as a context manager."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _summary(cfg: ExperimentConfig, out: Path, *, step: int, stopped: str | None, tokens_per_s: float) -> dict:
    records = read_metrics(out)
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    return {"out_dir": str(out), "model_dir": str(out / "model"), "step": step, "max_steps": cfg.train.max_steps,
            "finished": step >= cfg.train.max_steps, "stopped": stopped,
            "first_loss": losses[0][1] if losses else None, "final_loss": losses[-1][1] if losses else None,
            "final_val_loss": vals[-1] if vals else None, "losses": losses,
            "tokens": step * cfg.train.global_batch * cfg.seq_len, "tokens_per_s": tokens_per_s}


def finished_summary(out: Path, cfg: ExperimentConfig | None = None) -> dict | None:
    """The saved summary of a finished run in ``out`` (None if unfinished or the schedule was extended)."""
    path = Path(out) / "summary.json"
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    if cfg is not None and summary.get("max_steps") != cfg.train.max_steps:
        return None
    return summary
