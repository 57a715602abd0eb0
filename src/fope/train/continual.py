"""Continual pre-training (docs/paper.md §4.6): start a run from another run's / model directory's weights.

The new model may have another ``train_len`` and another position encoding:
    RoPE-512 -> RoPE+YaRN-1024   pe_options.scaling={rope_type: yarn, ...}: every weight is copied
    RoPE-512 -> FoPE-1024        the FoPE coefficients are absent from the source: fresh init (seeded)
    FoPE-512 -> FoPE-1024        coefficient matrices grow (the floor 2pi/L moves): ``expand`` copies the old
                                 block into a fresh Xavier + step-eye matrix, ``zero`` into zeros (the official
                                 ``len_extra_fourier_expand`` true / false); a larger old matrix is truncated
    FoPE-512 -> RoPE/YaRN-1024   the source coefficients are dropped
Tensors owned by position-encoding modules may be missing, extra or resized; every other weight must match
exactly (a ValueError lists the offenders).
"""

from __future__ import annotations

from pathlib import Path

import torch

from fope.model import find_model_dir, read_state_dict, verify_weights
from fope.model.io import resolve_dir
from fope.utils import reading

from .checkpoint import find_checkpoint, verify_checkpoint
from .config import ExperimentConfig
from .distributed import DistInfo


def pe_prefixes(model: torch.nn.Module) -> tuple[str, ...]:
    """State-dict prefixes of the position-encoding modules of ``model``."""
    from fope.pos import PositionEncoding

    return tuple(f"{name}." for name, m in model.named_modules() if isinstance(m, PositionEncoding) and name)


def merge_state(model: torch.nn.Module, source: dict[str, torch.Tensor], mode: str) -> dict[str, list[str]]:
    """Load ``source`` into ``model`` with the rules of the module docstring; returns what happened per key."""
    from fope.pos.fope import resize_state_dict

    shapes = {k: tuple(v.shape) for k, v in source.items()}
    source = resize_state_dict(source, model, mode=mode)
    resized = {k for k, v in source.items() if tuple(v.shape) != shapes[k]}
    target = model.state_dict()
    prefixes = pe_prefixes(model)
    is_pe = lambda key: key.startswith(prefixes)  # noqa: E731
    report: dict[str, list[str]] = {"copied": [], "resized": [], "fresh": [], "dropped": []}
    bad = [k for k in target if k not in source and not is_pe(k)]
    bad += [k for k in source if k not in target and not is_pe(k)]
    bad += [
        f"{k} {tuple(source[k].shape)}->{tuple(v.shape)}"
        for k, v in target.items()
        if k in source and source[k].shape != v.shape
    ]
    if bad:
        raise ValueError(f"init_from: the source weights do not fit the new model: {bad[:6]}")
    merged = {}
    for key in target:
        if key not in source:
            report["fresh"].append(key)
        else:
            merged[key] = source[key]
            report["copied" if key not in resized else "resized"].append(key)
    report["dropped"] = [k for k in source if k not in target]
    model.load_state_dict(merged, strict=False)
    return report


def init_from_source(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, cfg: ExperimentConfig, info: DistInfo
) -> dict[str, list[str]]:
    """Apply ``train.init_from`` (and, with ``reset_optimizer=False``, the source run's AdamW moments)."""
    t = cfg.train
    src = Path(t.init_from)
    ckpt = find_checkpoint(src)
    if not t.reset_optimizer and ckpt is None:
        raise ValueError(
            f"train.reset_optimizer=false needs a training run with a checkpoint/ as "
            f"train.init_from, but {src} has none"
        )
    if ckpt is not None:  # the source's own checksums: a flipped bit is refused, not trained on
        model_files = [f"model/{f.name}" for f in sorted((ckpt / "model").iterdir())]
        verify_checkpoint(ckpt, model_files + ([] if t.reset_optimizer else ["optimizer.pt"]))
        model_dir = ckpt / "model"
    else:
        model_dir = resolve_dir(src)
        if find_model_dir(model_dir) is not None:
            verify_weights(model_dir)  # its config.json's weights_sha256
    report = merge_state(model, read_state_dict(model_dir, info.device), t.expand_fourier)
    if not t.reset_optimizer:
        path = ckpt / "optimizer.pt"
        with reading(path, "optimizer state of the train.init_from source", "use train.reset_optimizer=true"):
            state = torch.load(path, map_location=info.device, weights_only=True)
        try:
            optimizer.load_state_dict(state)
        except ValueError as e:
            raise ValueError(f"cannot reuse the optimizer state of {src}: {e} (set train.reset_optimizer=true)") from e
    if info.is_main:
        print(
            f"init_from {src}: {len(report['copied'])} tensors copied, {len(report['resized'])} resized "
            f"({t.expand_fourier}), {len(report['fresh'])} freshly initialised, {len(report['dropped'])} dropped",
            flush=True,
        )
    return report
