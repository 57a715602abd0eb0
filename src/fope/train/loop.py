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
    4. clip the gradient norm (a NaN/inf norm stops the run like a NaN loss), AdamW update
    5. rank 0: metrics.jsonl line, validation loss, atomic checkpoint (its weights verified finite), as scheduled
    6. stop after step `stop_at` or on SIGINT/SIGTERM, with a checkpoint to resume from; a signal that arrives
       inside a step is honoured at the next micro-batch boundary (the unfinished step is dropped)
Data order depends only on (seed, step), so a resumed run sees exactly the batches the uninterrupted run
would have seen and, on the same machine, produces bit-identical losses.

`run` trains a `Job` (model, optimizer, token windows, TrainConfig): `train` builds one for a native model,
`fope.hf.finetune` for a Hugging Face model on packed chat data (same schedule, checkpoints, metrics, resume).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

import fope.model
from fope.data import WindowOrder
from fope.utils import (
    FileProblem,
    atomic_json,
    atomic_write,
    cache_root,
    check_writable,
    directory_lock,
    os_error_problem,
    read_json,
    remove_stale_temps,
)

from . import distributed as D
from .checkpoint import (
    CHECKPOINT,
    METRICS,
    find_checkpoint,
    load_checkpoint,
    model_is_published,
    publish_model,
    read_checkpoint_config,
    read_state_json,
    rng_state,
    save_checkpoint,
    set_rng_state,
    tidy,
)
from .config import RESUME_MAY_CHANGE, RESUME_RECOVERY, ExperimentConfig, TrainConfig, config_diff, flatten
from .continual import init_from_source
from .data import TokenData, get_batch, prepare_data
from .evaluate import token_loss, validation_losses
from .metrics import MetricLogger, read_metrics
from .optim import build_optimizer, lr_at, set_lr
from .signals import StopRequest
from .versions import checkpoint_info, code_version, describe, probe_changed, probe_loss


class NonFiniteLossError(FloatingPointError):
    """The loss, the gradient or the parameters became NaN or infinite; the last good checkpoint was kept."""


def train(
    cfg: ExperimentConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    stop_at: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``cfg`` into ``out_dir`` and return a summary (see :func:`_summary`).

    ``resume`` continues from ``out_dir/checkpoint``; ``stop_at=M`` ends the process after step M with a
    checkpoint; ``progress=False`` hides the progress bar. A finished run is returned as is (idempotent). A run directory whose checkpoint was written
    with a different config (other than the keys in ``RESUME_MAY_CHANGE``, and for an unfinished run the recovery
    keys ``RESUME_RECOVERY``) is refused, naming the keys. The run directory is locked for the whole call
    (`fope.utils.directory_lock`): a second writer fails at once, naming this process.
    """
    out = Path(out_dir)
    cfg.validate()
    with run_lock(out):
        ckpt = find_checkpoint(out)
        if ckpt is not None:
            finished = saved_summary(out, cfg) is not None
            may_change = RESUME_MAY_CHANGE if finished else RESUME_MAY_CHANGE + RESUME_RECOVERY
            check_same_run(
                read_checkpoint_config(ckpt).to_dict(),
                cfg.to_dict(),
                ckpt / "config.yaml",
                may_change=may_change,
                advice=(
                    f"a resumed run may only change {', '.join(RESUME_MAY_CHANGE)}"
                    + ("" if finished else f" and, to recover from a NaN stop, {', '.join(RESUME_RECOVERY)}")
                    + " (use another --out for a new run)"
                ),
            )
        done = finished_summary(out, cfg)
        if done is not None:
            return done
        with D.process_group(cfg.train.device) as info:
            return _train(cfg, out, info, resume=resume, stop_at=stop_at, progress=progress)


def run_lock(out: Path) -> contextlib.AbstractContextManager:
    """The lock of a run directory, held by the process that writes it (rank 0 under torchrun: the other ranks
    write nothing there)."""
    if D.env_rank() != 0:
        return contextlib.nullcontext()
    return directory_lock(out, what="run directory")


def check_same_run(saved: dict, now: dict, where: Path, *, may_change: Iterable[str], advice: str) -> None:
    """Raise ValueError naming every key (outside ``may_change``) where the config ``now`` differs from ``saved``,
    the one in the checkpoint file ``where`` (OUT/checkpoint/config.yaml) of the run it would resume."""
    diff = config_diff(saved, now, ignore=may_change)
    if diff:
        shown = [f"{k} {a!r} -> {b!r}" for k, (a, b) in list(diff.items())[:6]]
        more = f" and {len(diff) - 6} more" if len(diff) > 6 else ""
        raise ValueError(
            f"{where.parent.parent} was trained with another config ({where}): {', '.join(shown)}{more}; {advice}"
        )


@dataclass
class Job:
    """What `run` trains. ``model``: input ids (B, T) -> logits (B, T, V), its state dict loading strictly from the
    weights ``save_model(model, directory, tokenizer=...)`` writes. ``data.train``: ``len()`` and ``batch(ids) ->
    (inputs, targets)``, target -100 = no loss; ``data.val``: validation windows by name. ``config``: config.yaml."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    data: TokenData
    train: TrainConfig
    seq_len: int
    vocab_size: int
    config: dict[str, Any]
    save_model: Callable[..., Any] = fope.model.save
    resume_hint: str = "fope train --resume OUT"
    progress: bool = True  # the tqdm bar (rank 0)
    #: (last good checkpoint or None, its step) -> what to do after a NaN stop (default: lower the lr and resume)
    #: (last good checkpoint or None, its step, the step that failed) -> what to do after a NaN stop
    advise: Callable[[Path | None, int, int], str] | None = None


def _train(
    cfg: ExperimentConfig, out: Path, info: D.DistInfo, *, resume: bool, stop_at: int | None, progress: bool = True
) -> dict:
    t, hint = cfg.train, f"fope train --resume {out}"
    ckpt = open_run_dir(out, info, resume=resume, stop_at=stop_at, hint=hint)
    seed_everything(t.seed)
    try:
        data = prepare_data(cfg, info)
    except OSError as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise os_error_problem(e, cache_root(cfg.data.cache_dir), "preparing the token shards") from e
    check_split_lengths(cfg, data)
    model = fope.model.build(cfg.model).to(info.device)
    optimizer = build_optimizer(model, t)
    if ckpt is None and t.init_from:
        init_from_source(model, optimizer, cfg, info)

    def advise(checkpoint: Path | None, last_saved: int, failed_step: int) -> str:
        from .advice import nan_advice

        return nan_advice(cfg, out, checkpoint=checkpoint, last_saved=last_saved, failed_step=failed_step)

    job = Job(
        model=model,
        optimizer=optimizer,
        data=data,
        train=t,
        seq_len=cfg.seq_len,
        vocab_size=cfg.model.vocab_size,
        config=cfg.to_dict(),
        resume_hint=hint,
        progress=progress,
        advise=advise,
    )
    return run(job, out, info, ckpt=ckpt, stop_at=stop_at)


def open_run_dir(out: Path, info: D.DistInfo, *, resume: bool, stop_at: int | None, hint: str) -> Path | None:
    """The checkpoint to resume from (None for a fresh run), after checking that ``resume`` fits ``out``; removes
    the temporary files a kill during an atomic write left. Runs before any expensive set-up."""
    ckpt = find_checkpoint(out)
    if ckpt is not None and not resume:
        raise ValueError(
            f"{out} already holds a training run; continue it with `{hint}` (or resume=True), "
            "or choose another output directory"
        )
    if resume and ckpt is None:
        raise FileNotFoundError(f"nothing to resume in {out}: no complete checkpoint/ there")
    if stop_at is not None and stop_at < 1:
        raise ValueError(f"stop_at must be >= 1, got {stop_at}")
    if info.is_main:
        with directory_lock(out, what="run directory"):  # nobody else writes here: its temp files are leftovers
            check_writable(out, what="run directory")  # read-only: fail now, not after the data preparation
            for d in (out, out / "model", out / CHECKPOINT):
                remove_stale_temps(d)  # left by a kill during an atomic write
    return ckpt


def run(job: Job, out: Path, info: D.DistInfo, *, ckpt: Path | None, stop_at: int | None) -> dict:
    """Train ``job`` into ``out`` from the checkpoint ``ckpt`` (None: from step 0); returns `_summary`. Rank 0 holds
    the run directory's lock throughout (`fope.utils.directory_lock`)."""
    with directory_lock(out, what="run directory") if info.is_main else contextlib.nullcontext():
        try:
            return _run(job, out, info, ckpt=ckpt, stop_at=stop_at)
        except FileProblem as e:
            if e.cause not in ("disk_full", "write_failed") or "resume" in e.fix:
                raise
            last = find_checkpoint(out)
            fix = (
                f"the checkpoint in {last} is intact; free space and resume with `{job.resume_hint}`"
                if last is not None
                else "free space and run the same command again"
            )
            raise FileProblem(e.path, e.problem, fix, cause=e.cause) from e


def _run(job: Job, out: Path, info: D.DistInfo, *, ckpt: Path | None, stop_at: int | None) -> dict:
    t, L, model, optimizer = job.train, job.seq_len, job.model, job.optimizer
    accum = D.grad_accum_steps(t.global_batch, t.micro_batch, info.world_size)
    config_yaml = yaml.safe_dump(job.config, sort_keys=False, default_flow_style=None)
    step = 0
    if ckpt is not None:
        state = load_checkpoint(ckpt, model=model, optimizer=optimizer, device=info.device)
        step = int(state["step"])
        set_rng_state(state["rng"])
        if step > t.max_steps:
            raise ValueError(
                f"train.max_steps={t.max_steps} is below the step of the checkpoint in {ckpt} "
                f"({step}); a schedule can be extended, not cut below what was trained"
            )
        if stop_at is not None and stop_at <= step and step < t.max_steps:
            raise ValueError(
                f"--stop-at {stop_at} is not after the checkpoint's step {step} in {ckpt}: nothing would be trained"
            )
    resumed = _resume_report(job, out, ckpt, step, info) if ckpt is not None and info.is_main else {}
    if info.is_main:
        tidy(out, ckpt)
        if ckpt is not None:
            publish_model(out, ckpt)  # OUT/model may lag behind after a kill between the checkpoint and its copy
        check_writable(out, checkpoint_bytes(model, out), what="run directory (for a checkpoint)")
        atomic_write(out / "config.yaml", config_yaml)
    net = torch.nn.parallel.DistributedDataParallel(model) if info.distributed else model
    if t.compile:
        net = torch.compile(net)
    data = job.data
    order = WindowOrder(len(data.train), t.seed)
    autocast = autocast_context(t.precision, info.device)
    chunk = t.loss_chunk
    logger = (
        MetricLogger(
            out,
            backends=t.metrics,
            run_name=out.name,
            config=job.config,
            wandb_project=t.wandb_project,
            resume_step=step,
            history=ckpt / METRICS if ckpt is not None else None,
        )
        if info.is_main
        else None
    )
    if logger is not None and resumed:
        logger.log({"step": step, "event": "resume", **resumed})
    params = [p for p in model.parameters() if p.requires_grad]
    tokens_per_step = t.global_batch * L

    def save(at: int) -> None:
        bad = non_finite_parameters(model)  # every rank holds the same weights: all raise together
        if bad:
            raise NonFiniteLossError(
                f"parameter {bad} is not finite after step {at}; not saving it. " + _last_good(job, out, last_saved, at)
            )
        if info.is_main:
            if logger is not None:
                logger.sync()
            probe = probe_loss(model, job.vocab_size, L, info.device)
            save_checkpoint(
                out,
                model=model,
                optimizer=optimizer,
                step=at,
                tokens=at * tokens_per_step,
                sequences=at * t.global_batch,
                config_yaml=config_yaml,
                tokenizer=data.tokenizer,
                save_model=job.save_model,
                metrics=logger.path if logger is not None else None,
                info=checkpoint_info(probe),
                resume_hint=job.resume_hint,
            )
        D.barrier(info)

    def evaluate() -> dict[str, float]:
        return validation_losses(
            model,
            data.val,
            windows=t.eval_windows,
            batch=t.micro_batch,
            vocab_size=job.vocab_size,
            info=info,
            autocast=autocast,
            loss_chunk=chunk,
        )

    # -- the loop -------------------------------------------------------------------------------------------
    bar = tqdm(
        total=t.max_steps, initial=step, disable=not (info.is_main and job.progress), unit="step", dynamic_ncols=True
    )
    train_time, steps_timed, stopped, last_saved = 0.0, 0, None, step
    model.train()
    with StopRequest() as stop, _closing(bar, logger):
        while step < t.max_steps:
            tic = time.perf_counter()
            lr = lr_at(step + 1, t)  # 1
            set_lr(optimizer, lr)
            rng_at_start = rng_state() if accum > 1 else None
            loss_sum = torch.zeros((), device=info.device)
            abandoned = False
            for micro in range(accum):  # 2
                start = D.micro_batch_start(
                    step, micro, global_batch=t.global_batch, micro_batch=t.micro_batch, info=info
                )
                x, y = get_batch(data.train, order.window_ids(start, t.micro_batch), info.device, job.vocab_size)
                sync = net.no_sync() if info.distributed and micro < accum - 1 else contextlib.nullcontext()
                with sync:
                    with autocast:
                        loss = compute_loss(net, x, y, loss_chunk=chunk)
                    (loss / accum).backward()
                loss_sum += loss.detach()
                if micro < accum - 1 and D.any_process(stop.requested, info):  # a signal inside a long step
                    abandoned = True
                    break
            if abandoned:  # drop the unfinished step; the checkpoint holds the last completed one
                optimizer.zero_grad(set_to_none=True)
                set_rng_state(rng_at_start)
                stopped = stop.name or "signal"
                if step > last_saved:
                    save(step)
                    last_saved = step
                break
            loss_value = float(D.all_reduce_sum(loss_sum, info)) / (accum * info.world_size)  # 3
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(
                    f"loss is {loss_value} at step {step + 1} (lr {lr:.3g}); stopped before "
                    "the update. " + _last_good(job, out, last_saved, step + 1)
                )
            max_norm = t.grad_clip if t.grad_clip > 0 else math.inf  # 4
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
            if not math.isfinite(grad_norm):
                raise NonFiniteLossError(
                    f"gradient norm is {grad_norm} at step {step + 1} (lr {lr:.3g}, loss "
                    f"{loss_value:.4g}); stopped before the update. " + _last_good(job, out, last_saved, step + 1)
                )
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            train_time += time.perf_counter() - tic
            steps_timed += 1

            record = {}  # 5
            if step % t.log_every == 0 or step == t.max_steps:
                tok_s = steps_timed * tokens_per_step / max(train_time, 1e-9)
                record.update(
                    loss=loss_value, lr=lr, tokens=step * tokens_per_step, tokens_per_s=tok_s, grad_norm=grad_norm
                )
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
    summary = _summary(
        job,
        out,
        step=step,
        stopped=stopped,
        tokens_per_s=steps_timed * tokens_per_step / max(train_time, 1e-9) if steps_timed else None,
    )
    summary["precision"] = resolve_precision(t.precision, info.device)  # what `auto` chose on this machine
    if info.is_main:
        if summary["finished"]:
            write_summary(out, summary)
            final, uniform = summary.get("final_loss"), math.log(job.vocab_size)
            if final is not None and final >= uniform:
                print(
                    f"fope: warning: the run ended with loss {final:.4g}, no better than a uniform guess over its "
                    f"{job.vocab_size} tokens (ln V = {uniform:.4g}): the model learned nothing; start afresh with "
                    "a lower train.lr (or check the data)",
                    file=sys.stderr,
                    flush=True,
                )
        if stopped:
            print(
                f"fope: stopped after step {step} ({stopped}); checkpoint saved. Resume with: {job.resume_hint}",
                flush=True,
            )
    return summary


def _last_good(job: Job, out: Path, last_saved: int, failed_step: int) -> str:
    """The advice of a NaN stop, naming a checkpoint only if one exists (they are verified finite when saved): the
    job's own (`fope.train.advice` for `fope train`: the likeliest cause and a command that works), else generic."""
    ckpt = find_checkpoint(out)
    if job.advise is not None:
        return job.advise(ckpt if last_saved > 0 else None, last_saved, failed_step)
    if ckpt is None or last_saved == 0:
        return "No checkpoint was written yet: lower train.lr or check the data, then start again"
    return (
        f"The last good checkpoint (step {last_saved}) is in {ckpt}: lower train.lr or check the data, then "
        f"resume with `{job.resume_hint}`"
    )


def _resume_report(job: Job, out: Path, ckpt: Path, step: int, info: D.DistInfo) -> dict[str, Any]:
    """Say in one line each what differs from the checkpoint this run resumes: settings the resume changed (e.g. a
    NaN recovery's lr), and a loss-changing upgrade of the code (`fope.train.versions`); returns them for the
    metrics.jsonl event record ({} when nothing differs)."""
    import sys

    report: dict[str, Any] = {}
    saved_yaml = yaml.safe_load((ckpt / "config.yaml").read_text()) or {}  # verified by load_checkpoint
    changed = config_diff(saved_yaml, job.config)
    if changed:
        report["changed"] = {k: [a, b] for k, (a, b) in changed.items()}
    saved_keys = set(flatten(saved_yaml))  # a field the saved config lacks was said when it was read
    shown = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items() if k in saved_keys)
    if shown:
        print(
            f"fope: resuming {out} at step {step} with {shown} (recorded in {out / 'metrics.jsonl'} and "
            f"{out / 'config.yaml'})",
            file=sys.stderr,
            flush=True,
        )
    state = read_state_json(ckpt)
    now = probe_loss(job.model, job.vocab_size, job.seq_len, info.device)
    if probe_changed(state.get("probe_loss"), now):
        report["loss_changed"] = {"probe_loss": [state["probe_loss"], now], "code": [state.get("code"), code_version()]}
        print(
            f"fope: loss-changing upgrade: the weights of {ckpt} give probe loss {now:.6g} with this "
            f"{describe(code_version())}, {state['probe_loss']:.6g} with {describe(state.get('code'))} that wrote "
            f"them; the run goes on, but its losses before and after step {step} come from different code "
            "(recorded in metrics.jsonl)",
            file=sys.stderr,
            flush=True,
        )
    return report


def non_finite_parameters(model: torch.nn.Module) -> str | None:
    """Name of the first parameter holding a NaN or infinity (None when all are finite)."""
    for name, p in model.named_parameters():
        if p.is_floating_point() and not bool(torch.isfinite(p).all()):
            return name
    return None


def checkpoint_bytes(model: torch.nn.Module, out: Path | None = None) -> int:
    """Free disk space a run needs for its checkpoint saves, with 10% headroom.

    The peak is a save beside the previous checkpoint: the old checkpoint (weights W + AdamW moments M), the new one
    being written in checkpoint.tmp/ (W + M), and OUT/model (W): 3W + 2M; the copy into OUT/model (W more) comes
    after the old checkpoint is removed. What ``out`` already holds of it (OUT/checkpoint, OUT/model) is counted as
    used already.
    """
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    moments = sum(2 * p.numel() * 4 for p in model.parameters() if p.requires_grad)
    held = 0
    if out is not None:
        for d in (out / CHECKPOINT, out / "model"):
            if d.is_dir():
                held += sum(f.stat().st_size for f in d.rglob("*") if f.is_file())
    return max(int(1.1 * (3 * weights + 2 * moments)) - held, 0) + (1 << 20)


def check_split_lengths(cfg: ExperimentConfig, data: Any) -> None:
    """Fail before training when a split is shorter than one window of seq_len + 1 tokens."""
    need = cfg.seq_len + 1
    splits = [("train", "", data.train)] + [("val", name, w) for name, w in data.val.items()]
    for split, name, windows in splits:
        if len(windows) == 0:
            folder = data.shard_dirs.get(name, "")
            raise FileProblem(
                Path(folder) / f"{split}.bin",
                f"the {split} split of {name or cfg.data.corpus!r} has {len(windows.tokens)} tokens, "
                f"fewer than one window of seq_len + 1 = {need}",
                "use a shorter train.seq_len or a corpus with more text",
            )


@contextlib.contextmanager
def _closing(bar: Any, logger: MetricLogger | None):
    """Close the progress bar and the metric files however the loop ends (finished, stopped, error)."""
    try:
        yield
    finally:
        bar.close()
        if logger is not None:
            logger.close()


def compute_loss(
    model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, *, loss_chunk: int = 0
) -> torch.Tensor:
    """Training loss of one micro-batch (a module-level function so tests can inject failures)."""
    return token_loss(model, inputs, targets, loss_chunk=loss_chunk)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bf16 natively (AVX-512 BF16 or AMX BF16). There bf16 autocast trains the CPU presets
    faster than fp32 (docs/performance.md); elsewhere PyTorch emulates bf16 and autocast can be slower."""
    caps = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 autocast on CUDA and on CPUs with native bf16, fp32 elsewhere."""
    if precision != "auto":
        return precision
    if device.type == "cuda" or (device.type == "cpu" and native_bf16_cpu()):
        return "bf16"
    return "fp32"


def autocast_context(precision: str, device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast for ``bf16`` (and ``auto`` where :func:`resolve_precision` picks bf16); nothing for fp32.
    Reusable as a context manager."""
    if resolve_precision(precision, device) == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _summary(job: Job, out: Path, *, step: int, stopped: str | None, tokens_per_s: float | None) -> dict:
    """The run's summary; ``tokens_per_s`` None (no step ran in this process: a summary rebuilt by a resume) takes
    the last speed the metrics recorded."""
    records = read_metrics(out)
    if tokens_per_s is None:
        speeds = [r["tokens_per_s"] for r in records if isinstance(r.get("tokens_per_s"), (int, float))]
        tokens_per_s = speeds[-1] if speeds else None
    losses = [(r["step"], r["loss"]) for r in records if "loss" in r]
    vals = [r["val_loss"] for r in records if "val_loss" in r]
    t = job.train
    return {
        "out_dir": str(out),
        "model_dir": str(out / "model"),
        "step": step,
        "max_steps": t.max_steps,
        "finished": step >= t.max_steps,
        "stopped": stopped,
        "first_loss": losses[0][1] if losses else None,
        "final_loss": losses[-1][1] if losses else None,
        "final_val_loss": vals[-1] if vals else None,
        "losses": losses,
        "tokens": step * t.global_batch * job.seq_len,
        "tokens_per_s": tokens_per_s,
    }


SUMMARY_DIGEST = "sha256"  # summary.json's record of its own content (the other fields' canonical JSON)


def _digest(summary: dict) -> str:
    import hashlib

    body = json.dumps({k: v for k, v in summary.items() if k != SUMMARY_DIGEST}, sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def write_summary(out: Path, summary: dict) -> None:
    """OUT/summary.json with the sha256 of its content, verified when it is read (`saved_summary`)."""
    clean = json.loads(json.dumps(summary, default=str))
    atomic_json(Path(out) / "summary.json", {**clean, SUMMARY_DIGEST: _digest(clean)})


def saved_summary(out: Path, cfg: ExperimentConfig | None = None) -> dict | None:
    """OUT/summary.json of a finished run (None if absent, unreadable, or for another schedule length). One whose
    content differs from the sha256 it was written with (edited) is a FileProblem naming it."""
    path = Path(out) / "summary.json"
    if not path.is_file():
        return None
    try:
        summary = read_json(path, "run summary")
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict):
        return None
    recorded = summary.pop(SUMMARY_DIGEST, None)
    if recorded is not None and recorded != _digest(summary):
        raise FileProblem(
            path,
            "edited or corrupt: its content differs from the sha256 it was written with",
            f"delete it: `fope train --resume {Path(out)}` rebuilds it from the checkpoint",
        )
    if cfg is not None and summary.get("max_steps") != cfg.train.max_steps:
        return None
    return summary


def finished_summary(out: Path, cfg: ExperimentConfig | None = None) -> dict | None:
    """The saved summary of a finished run in ``out`` (None if unfinished or the schedule was extended).

    A summary.json that cannot be read is treated as absent (resuming the run rebuilds it from the
    checkpoint); an ``OUT/model`` whose files differ in content from the checkpoint's (missing, incomplete, a
    flipped byte) is rebuilt from the checkpoint first, saying so; a summary copied with its run directory is
    corrected to name this directory.
    """
    import sys

    out = Path(out)
    summary = saved_summary(out, cfg)
    if summary is None:
        return None
    ckpt = find_checkpoint(out)
    if ckpt is not None and not model_is_published(out, ckpt):
        if (out / "model").is_dir():
            print(f"fope: {out / 'model'} differs from {ckpt / 'model'}; restoring it", file=sys.stderr, flush=True)
        publish_model(out, ckpt)
    here = {"out_dir": str(out), "model_dir": str(out / "model")}
    if any(summary.get(k) != v for k, v in here.items()):  # a copy of a run directory: name this one
        summary.update(here)
        write_summary(out, summary)
    return summary
