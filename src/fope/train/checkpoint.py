"""Atomic training checkpoints for exact resume.

Layout of a run directory ``OUT/``::

    OUT/checkpoint/model/          model directory (fope.model.save: model.safetensors, config.json, tokenizer)
    OUT/checkpoint/optimizer.pt    AdamW state_dict (loaded with torch.load(weights_only=True))
    OUT/checkpoint/state.pt        step, tokens, data position, RNG states (python, numpy, torch, cuda)
    OUT/checkpoint/config.yaml     the resolved ExperimentConfig
    OUT/checkpoint/state.json      human-readable step / tokens / time
    OUT/model/                     the latest weights + tokenizer (hard links to checkpoint/model when possible)

Atomicity: a checkpoint is written to ``checkpoint.tmp/`` (files fsync'ed), the old one renamed to
``checkpoint.prev/``, the new one renamed into place, then the old one removed. A crash at any point leaves
either ``checkpoint/`` or ``checkpoint.prev/`` complete; :func:`find_checkpoint` picks it up.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT = "checkpoint"


# --------------------------------------------------------------------------- RNG state
def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states as tensors / plain lists (safe for weights_only loading)."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- save / load
def save_checkpoint(out_dir: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    step: int, tokens: int, sequences: int, config_yaml: str, tokenizer: Any = None) -> Path:
    """Write OUT/checkpoint atomically and refresh OUT/model. Call on rank 0 only, with the unwrapped model."""
    from fope.model import save as save_model

    out = Path(out_dir)
    tmp, final, prev = out / f"{CHECKPOINT}.tmp", out / CHECKPOINT, out / f"{CHECKPOINT}.prev"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(model, tmp / "model", tokenizer=tokenizer)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save({"step": step, "tokens": tokens, "sequences": sequences, "rng": rng_state()}, tmp / "state.pt")
    (tmp / "config.yaml").write_text(config_yaml)
    (tmp / "state.json").write_text(json.dumps({"step": step, "tokens": tokens, "sequences": sequences,
                                                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}))
    _fsync_tree(tmp)
    if final.exists():
        if prev.exists():
            shutil.rmtree(prev)
        os.replace(final, prev)
    os.replace(tmp, final)
    _fsync_dir(out)
    if prev.exists():
        shutil.rmtree(prev)
    _publish_model(final / "model", out / "model")
    return final


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The complete checkpoint of a run directory (``checkpoint/``, else a surviving ``checkpoint.prev/``)."""
    out = Path(out_dir)
    for name in (CHECKPOINT, f"{CHECKPOINT}.prev"):
        p = out / name
        if (p / "state.pt").is_file() and (p / "optimizer.pt").is_file() and (p / "model").is_dir():
            return p
    return None


def load_checkpoint(ckpt: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None,
                    device: torch.device) -> dict[str, Any]:
    """Restore weights (and optimizer) in place; returns the state dict (step, tokens, sequences, rng)."""
    try:
        model.load_state_dict(load_weights(ckpt / "model", device), strict=True)
    except RuntimeError as e:
        raise ValueError(f"the checkpoint in {ckpt} does not fit the configured model (was the model config "
                         f"changed before resuming?): {str(e).splitlines()[0]} ...") from e
    if optimizer is not None:
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location=device, weights_only=True))
    return torch.load(ckpt / "state.pt", map_location="cpu", weights_only=True)


def load_weights(model_dir: Path, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """The state dict stored in a model directory (safetensors; never unpickles)."""
    from safetensors.torch import load_file

    from fope.model.io import WEIGHTS, resolve_dir

    return load_file(str(resolve_dir(model_dir) / WEIGHTS), device=str(device))


# --------------------------------------------------------------------------- helpers
def _publish_model(src: Path, dst: Path) -> None:
    """Replace ``dst`` by a copy of model directory ``src`` (hard links when the filesystem allows)."""
    tmp = dst.with_name(dst.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    for f in src.iterdir():
        try:
            os.link(f, tmp / f.name)
        except OSError:
            shutil.copy2(f, tmp / f.name)
    old = dst.with_name(dst.name + ".prev")
    if dst.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(dst, old)
    os.replace(tmp, dst)
    if old.exists():
        shutil.rmtree(old)


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with path.open("rb") as f:
                os.fsync(f.fileno())
    for d in [root, *[p for p in root.rglob("*") if p.is_dir()]]:
        _fsync_dir(d)


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
