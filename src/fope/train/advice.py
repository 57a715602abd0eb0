"""What to do after a NaN stop: the likeliest cause in the run's own config, and a command that works as printed.

The causes, checked in this order (the references are the presets' values):

    model.init_std      above 10x the presets' 0.02: activations overflow from the first step
    train.weight_decay  above 10x the presets' 0.1
    train.lr            above 10x the lr of the preset with the run's model shape (else of TrainConfig's default)
    train.grad_clip     0 (clipping off)
    otherwise           the lr, lowered tenfold

The command: with a checkpoint and a cause a resume may change (`fope.train.config.RESUME_RECOVERY`: lr, warm-up,
gradient clip) ``fope train --resume OUT KEY=VALUE``; without a checkpoint ``fope train OUT/config.yaml KEY=VALUE
--out OUT`` (the run starts again where it was); for a cause a resume may not change (the init, the weight decay)
with a checkpoint, the same config into a new directory. tests/reliability/test_advice.py runs each one.
"""

from __future__ import annotations

from pathlib import Path

from .config import RESUME_RECOVERY, ExperimentConfig, TrainConfig

#: a value this many times the preset's is "far above" it
FAR = 10.0
PRESET_INIT_STD = 0.02
PRESET_WEIGHT_DECAY = 0.1


def reference_lr(cfg: ExperimentConfig) -> tuple[float, str]:
    """(lr, whose) of the preset with the run's model shape (vocab, width, depth, heads), else TrainConfig's
    default."""
    from fope.model.config import MODEL_PRESETS

    from .presets import CPU_PRESETS, load_preset

    def shape(m):
        return (m.vocab_size, m.d_model, m.n_layers, m.n_heads)

    for name in CPU_PRESETS:
        preset = load_preset(name)
        if shape(preset.model) == shape(cfg.model):
            return preset.train.lr, f"the {name} preset's"
    for size in ("60M", "180M", "1.2B"):
        if shape(MODEL_PRESETS[size]) == shape(cfg.model):
            return TrainConfig().lr, f"the paper's {size} presets'"
    return TrainConfig().lr, "the default"


def _new_dir(out: Path) -> Path:
    n = 2
    while Path(f"{out}-{n}").exists():
        n += 1
    return Path(f"{out}-{n}")


#: a checkpoint whose loss is this many times the run's first loss is not worth resuming
FAR_LOSS = 2.0


def cannot_continue(out: Path, last_saved: int, failed_step: int | None, vocab_size: int | None = None) -> str | None:
    """Why the checkpoint of step ``last_saved`` cannot continue the run (None if it can): a recovery resume from it
    (a lowered lr) failed again at its first step, or its loss is far above the run's first loss (the weights are
    finite but already ruined), or no better than a uniform guess over ``vocab_size`` tokens (a dead model)."""
    import math

    from .metrics import read_metrics

    try:
        records = read_metrics(out)
    except ValueError:
        return None
    losses = [(r["step"], r["loss"]) for r in records if isinstance(r.get("loss"), (int, float))]

    def lowered_lr(r: dict) -> bool:
        old_new = (r.get("changed") or {}).get("train.lr")
        return isinstance(old_new, list) and len(old_new) == 2 and old_new[1] < old_new[0]

    recovered_here = any(r.get("event") == "resume" and r["step"] == last_saved and lowered_lr(r) for r in records)
    if recovered_here and failed_step == last_saved + 1:
        return f"a resume from it with a lower lr failed again at its first step (step {failed_step})"
    before = [loss for s, loss in losses if s <= last_saved]
    if losses and before and before[-1] > FAR_LOSS * losses[0][1]:
        return f"its loss {before[-1]:.4g} is far above the run's first loss {losses[0][1]:.4g}"
    if vocab_size and before and last_saved > 1 and before[-1] >= 0.999 * math.log(vocab_size):
        return f"its loss {before[-1]:.4g} is no better than a uniform guess (ln V = {math.log(vocab_size):.4g})"
    return None


def nan_advice(
    cfg: ExperimentConfig, out: Path, *, checkpoint: Path | None, last_saved: int, failed_step: int | None = None
) -> str:
    """``Likeliest cause: ...; <what to run>`` for a run of ``cfg`` in ``out`` that stopped on a NaN/inf at step
    ``failed_step``, whose last good checkpoint (step ``last_saved``) is ``checkpoint`` (None: none was written).
    A checkpoint that cannot continue the run (`cannot_continue`) is not advised: a fresh start is, said as such."""
    t, m = cfg.train, cfg.model
    lr_ref, whose = reference_lr(cfg)
    if m.init_std > FAR * PRESET_INIT_STD:
        cause, key, value = (
            f"model.init_std={m.init_std:g} is far above the presets' {PRESET_INIT_STD:g}",
            "model.init_std",
            PRESET_INIT_STD,
        )
    elif t.weight_decay > FAR * PRESET_WEIGHT_DECAY:
        cause, key, value = (
            f"train.weight_decay={t.weight_decay:g} is far above the presets' {PRESET_WEIGHT_DECAY:g}",
            "train.weight_decay",
            PRESET_WEIGHT_DECAY,
        )
    elif t.lr > FAR * lr_ref:
        cause, key, value = (f"train.lr={t.lr:g} is {t.lr / lr_ref:.3g}x {whose} {lr_ref:g}", "train.lr", lr_ref)
    elif t.grad_clip == 0:
        cause, key, value = ("gradient clipping is off (train.grad_clip=0)", "train.grad_clip", 1.0)
    else:
        cause, key, value = (
            f"nothing in the config stands out (train.lr={t.lr:g}, {whose} {lr_ref:g}); a lower lr usually helps, "
            "else check the data",
            "train.lr",
            float(f"{t.lr / 10:.3g}"),
        )
    setting = f"{key}={value:g}"
    config = out / "config.yaml"
    if checkpoint is None or last_saved == 0:
        return (
            f"No checkpoint was written yet. Likeliest cause: {cause}; start again with "
            f"`fope train {config} {setting} --out {out}`"
        )
    why_not = cannot_continue(out, last_saved, failed_step, m.vocab_size)
    if why_not is not None:
        return (
            f"The last checkpoint (step {last_saved}, {checkpoint}) cannot continue the run: {why_not}. Likeliest "
            f"cause: {cause}; start afresh in a new directory with `fope train {config} {setting} --out "
            f"{_new_dir(out)}` ({out} is kept)"
        )
    where = f"The last good checkpoint (step {last_saved}) is in {checkpoint}. Likeliest cause: {cause}; "
    if key in RESUME_RECOVERY:
        return where + f"resume from it with `fope train --resume {out} {setting}`"
    return (
        where + f"a resume cannot change {key}: train again into a new directory with "
        f"`fope train {config} {setting} --out {_new_dir(out)}` ({out} is kept)"
    )


__all__ = ["cannot_continue", "nan_advice", "reference_lr"]
