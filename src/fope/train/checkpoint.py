"""Atomic training checkpoints for exact resume.

Layout of a run directory ``OUT/``::

    OUT/checkpoint/model/          model directory (fope.model.save's; a Hugging Face one for fope.hf.finetune)
    OUT/checkpoint/optimizer.pt    AdamW state_dict (loaded with torch.load(weights_only=True))
    OUT/checkpoint/state.pt        step, tokens, data position, RNG states (python, numpy, torch, cuda)
    OUT/checkpoint/config.yaml     the resolved ExperimentConfig
    OUT/checkpoint/state.json      human-readable step / tokens / time, the code version (fope version, git commit),
                                   the config schema and the probe loss (`fope.train.versions`)
    OUT/checkpoint/metrics.jsonl   a copy of OUT/metrics.jsonl up to this step (restores an emptied or edited one)
    OUT/checkpoint/checksums.json  sha256 of every file above, verified when the checkpoint is loaded; state.pt
                                   says that it exists, so deleting it cannot switch the verification off
    OUT/model/                     a copy of checkpoint/model (never a hard link), each file replaced atomically

Atomicity: a checkpoint is written to ``checkpoint.tmp/`` (files fsync'ed), the old one renamed to
``checkpoint.prev/``, the new one renamed into place, then the old one removed. A crash at any point leaves
either ``checkpoint/`` or ``checkpoint.prev/`` complete; :func:`find_checkpoint` picks it up. ``OUT/model``
is refreshed file by file (temp + fsync + rename), so it is never missing once it exists, and it is rebuilt
from the checkpoint when it is (:func:`publish_model`). See docs/reliability.md.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fope.model import read_state_dict
from fope.utils import (
    FileProblem,
    atomic_copy,
    atomic_json,
    atomic_path,
    atomic_write,
    fs_event,
    fsync_dir,
    os_error_problem,
    read_json,
    reading,
    sha256_file,
    write_problem,
)

CHECKPOINT = "checkpoint"
CHECKSUMS = "checksums.json"
METRICS = "metrics.jsonl"


# --------------------------------------------------------------------------- RNG state
def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) RNG states as tensors / plain lists (safe for weights_only loading)."""
    py = random.getstate()
    np_state = np.random.get_state()
    state = {
        "python": {"version": py[0], "state": list(py[1]), "gauss": py[2]},
        "numpy": {
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        ("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------- save / load
def save_checkpoint(
    out_dir: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    tokens: int,
    sequences: int,
    config_yaml: str,
    tokenizer: Any = None,
    rng: dict[str, Any] | None = None,
    save_model: Callable[..., Any] | None = None,
    metrics: Path | None = None,
    info: dict[str, Any] | None = None,
    resume_hint: str | None = None,
) -> Path:
    """Write OUT/checkpoint atomically and refresh OUT/model. Call on rank 0 only, with the unwrapped model.

    ``rng`` overrides the saved RNG states (default: the current ones); ``save_model(model, directory,
    tokenizer=...)`` writes the model directory (default: fope.model.save); ``metrics`` (OUT/metrics.jsonl) is
    copied into the checkpoint; ``info`` (code version, config schema, probe loss) goes into state.json. A full
    disk or a read-only folder raises a one-line :class:`~fope.utils.FileProblem` naming the file; the previous
    checkpoint is then left intact and the partial ``checkpoint.tmp/`` removed.
    """
    from fope.model import save as save_native

    out = Path(out_dir)
    tmp, final, prev = out / f"{CHECKPOINT}.tmp", out / CHECKPOINT, out / f"{CHECKPOINT}.prev"
    doing = f"writing the checkpoint of step {step}"
    try:
        if tmp.exists():
            fs_event("rmtree", tmp)
            shutil.rmtree(tmp)
        fs_event("mkdir", tmp)
        tmp.mkdir(parents=True)
        (save_model or save_native)(model, tmp / "model", tokenizer=tokenizer)
        with atomic_path(tmp / "optimizer.pt") as p:
            torch.save(optimizer.state_dict(), p)
        with atomic_path(tmp / "state.pt") as p:
            torch.save(
                {
                    "step": step,
                    "tokens": tokens,
                    "sequences": sequences,
                    "rng": rng or rng_state(),
                    "checksummed": True,  # checksums.json must exist (verify_checkpoint)
                },
                p,
            )
        atomic_write(tmp / "config.yaml", config_yaml)
        if metrics is not None and metrics.is_file():
            atomic_copy(metrics, tmp / METRICS)
        atomic_json(
            tmp / "state.json",
            {
                "step": step,
                "tokens": tokens,
                "sequences": sequences,
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                **(info or {}),
            },
        )
        atomic_json(
            tmp / CHECKSUMS,
            {
                str(f.relative_to(tmp)): sha256_file(f)
                for f in sorted(tmp.rglob("*"))
                if f.is_file() and not f.name.startswith(".")
            },
        )
        fsync_dir(tmp / "model")
        fsync_dir(tmp)
    except Exception as e:
        where = e.filename if isinstance(e, OSError) and e.filename else tmp
        problem = write_problem(e, where, doing)  # atomic_path's one-line FileProblem names the file
        shutil.rmtree(tmp, ignore_errors=True)
        if problem is None:
            raise
        intact = find_checkpoint(out)
        fix = (
            f"the previous checkpoint in {intact} is intact; free space and resume with "
            f"`{resume_hint or f'fope train --resume {out}'}`"
            if intact
            else "free space and run again"
        )
        if problem.cause == "disk_full":
            text = f"no space left on the device while {doing}"
        elif problem.cause == "write_failed":
            cause = e.__cause__ if isinstance(e, FileProblem) and e.__cause__ is not None else e
            free = shutil.disk_usage(out).free
            text = (
                f"{doing} failed ({str(cause).strip().splitlines()[-1][:120]}); the disk is probably "
                f"full ({free / 2**20:,.0f} MiB free)"
            )
        else:
            text = f"{problem.problem} ({doing})"
        raise FileProblem(problem.path, text, fix, cause=problem.cause) from e
    if final.exists():
        if _complete(final):
            if prev.exists():
                fs_event("rmtree", prev)
                shutil.rmtree(prev)
            fs_event("rename", prev)
            os.replace(final, prev)
        else:  # a damaged checkpoint/ (the run resumed from checkpoint.prev, which must survive until the swap)
            fs_event("rmtree", final)
            shutil.rmtree(final)
    fs_event("rename", final)
    os.replace(tmp, final)
    fsync_dir(out)
    if prev.exists():
        fs_event("rmtree", prev)
        shutil.rmtree(prev)
    publish_model(out)
    return final


def publish_model(out_dir: str | Path, ckpt: Path | None = None) -> Path:
    """Make ``OUT/model`` a copy of the checkpoint's model directory, one atomic file replacement at a time.

    The files never share storage with the checkpoint (no hard links), ``OUT/model`` never goes missing once
    it exists, and each of its files is always complete. Within one run only the weights change between
    checkpoints (config, tokenizer and remote code are the run's), so the directory is always consistent.
    """
    out = Path(out_dir)
    src = (ckpt or out / CHECKPOINT) / "model"
    dst = out / "model"
    try:
        dst.mkdir(exist_ok=True)
        for f in sorted(src.iterdir()):  # fope.model.save's files, or a Hugging Face directory's
            atomic_copy(f, dst / f.name)
    except OSError as e:
        raise os_error_problem(e, dst, "copying the checkpoint's model to it") from e
    for stale in (out / "model.tmp", out / "model.prev"):  # left by fope versions that swapped directories
        shutil.rmtree(stale, ignore_errors=True)
    return dst


def model_is_published(out_dir: str | Path, ckpt: Path) -> bool:
    """True when ``OUT/model`` holds a copy of every model file of the checkpoint, by content: each file's sha256
    equals the one the checkpoint's checksums.json records (size and time would miss a flipped byte)."""
    dst, src = Path(out_dir) / "model", ckpt / "model"
    sums = _checksums(ckpt) or {}
    for f in src.iterdir() if src.is_dir() else ():
        copy = dst / f.name
        if not copy.is_file() or copy.stat().st_size != f.stat().st_size:
            return False
        expected = sums.get(f"model/{f.name}") or sha256_file(f)
        if sha256_file(copy) != expected:
            return False
    return True


def _complete(p: Path) -> bool:
    return (p / "state.pt").is_file() and (p / "optimizer.pt").is_file() and (p / "model").is_dir()


def find_checkpoint(out_dir: str | Path) -> Path | None:
    """The complete checkpoint of a run directory (``checkpoint/``, else a surviving ``checkpoint.prev/``)."""
    out = Path(out_dir)
    for name in (CHECKPOINT, f"{CHECKPOINT}.prev"):
        p = out / name
        if _complete(p):
            return p
    return None


def tidy(out_dir: str | Path, loaded: Path | None) -> None:
    """Remove what an interrupted save left behind, once the checkpoint ``loaded`` was read successfully:
    ``checkpoint.tmp/`` always, ``checkpoint.prev/`` when ``checkpoint/`` itself was loaded."""
    out = Path(out_dir)
    shutil.rmtree(out / f"{CHECKPOINT}.tmp", ignore_errors=True)
    if loaded is None or loaded.name == CHECKPOINT:
        shutil.rmtree(out / f"{CHECKPOINT}.prev", ignore_errors=True)


def _fix(ckpt: Path) -> str:
    prev = ckpt.with_name(f"{CHECKPOINT}.prev")
    if ckpt.name == CHECKPOINT and prev.is_dir():
        return f"move it aside (the complete {prev} is then used) and resume"
    run = ckpt.parent
    return (
        "the checkpoint cannot be used: restore it from a backup, or train the run again in a new directory "
        f"(`fope train {run / 'config.yaml'} --out {run}-again`); {run} is left as it is"
    )


def _checksums(ckpt: Path) -> dict[str, str] | None:
    """The checkpoint's checksums.json (None if it has none); a damaged one is a FileProblem."""
    path = ckpt / CHECKSUMS
    if not path.is_file():
        return None
    with reading(path, "checkpoint checksum list", _fix(ckpt)):
        sums = read_json(path, "checkpoint checksum list", fix=_fix(ckpt))
        if not isinstance(sums, dict) or not all(isinstance(v, str) for v in sums.values()):
            raise ValueError("not a JSON object of file -> sha256")
    return sums


def _says_checksummed(ckpt: Path) -> bool:
    """Whether state.pt says the checkpoint was written with a checksums.json (every checkpoint since fope 0.x)."""
    path = ckpt / "state.pt"
    with reading(path, "training state", _fix(ckpt)):
        state = torch.load(path, map_location="cpu", weights_only=True)
    return bool(isinstance(state, dict) and state.get("checksummed"))


def verify_checkpoint(ckpt: Path, files: list[str] | None = None) -> None:
    """Check ``files`` (default: all) of a checkpoint against its checksums.json; FileProblem names the file.

    A checksums.json that is missing although state.pt says it was written is an error (deleting it does not
    switch the verification off); only checkpoints written before checksums existed pass unchecked.
    """
    sums = _checksums(ckpt)
    if sums is None:
        if _says_checksummed(ckpt):
            raise FileProblem(
                ckpt / CHECKSUMS,
                "missing: the checkpoint cannot be verified without it (state.pt says it was written)",
                _fix(ckpt),
            )
        return
    for name, digest in sums.items():
        if files is not None and name not in files:
            continue
        f = ckpt / name
        if not f.is_file():
            raise FileProblem(f, "missing from the checkpoint (listed in checksums.json)", _fix(ckpt))
        if sha256_file(f) != digest:
            raise FileProblem(f, "corrupt: its sha256 differs from the one recorded in checksums.json", _fix(ckpt))
    if files is None:
        unlisted = [
            str(f.relative_to(ckpt))
            for f in sorted(ckpt.rglob("*"))
            if f.is_file()
            and not f.name.startswith(".")
            and f.name != CHECKSUMS
            and str(f.relative_to(ckpt)) not in sums
        ]
        if unlisted:
            raise FileProblem(ckpt / unlisted[0], "not listed in checksums.json (added after the save?)", _fix(ckpt))


def read_state_json(ckpt: Path) -> dict[str, Any]:
    """A checkpoint's state.json (step, time, code version, config schema, probe loss; checksum-verified), or {}
    for a checkpoint written before it existed."""
    path = ckpt / "state.json"
    if not path.is_file():
        return {}
    verify_checkpoint(ckpt, ["state.json"])
    with reading(path, "checkpoint state", _fix(ckpt)):
        state = read_json(path, "checkpoint state", fix=_fix(ckpt))
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
    return state


def read_checkpoint_config(ckpt: Path):
    """The ExperimentConfig stored in a checkpoint (checksum-verified; across code versions as
    `fope.train.versions.config_from_checkpoint` says)."""
    from .versions import config_from_checkpoint

    verify_checkpoint(ckpt, ["config.yaml"])
    verified = _checksums(ckpt) is not None
    state = read_state_json(ckpt)
    path = ckpt / "config.yaml"
    with reading(path, "checkpoint config", _fix(ckpt)):
        return config_from_checkpoint(path, state, verified=verified)


def load_checkpoint(
    ckpt: Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None, device: torch.device
) -> dict[str, Any]:
    """Restore weights (and optimizer) in place; returns the state dict (step, tokens, sequences, rng).

    Every file is verified against checksums.json first; a corrupt or unreadable file raises a one-line
    FileProblem naming it.
    """
    verify_checkpoint(ckpt)
    weights = read_state_dict(ckpt / "model", device)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as e:
        raise ValueError(
            f"the checkpoint in {ckpt} does not fit the configured model (was the model config "
            f"changed before resuming?): {str(e).splitlines()[0]} ..."
        ) from e
    del weights
    if optimizer is not None:
        path = ckpt / "optimizer.pt"
        with reading(path, "optimizer state", _fix(ckpt)):
            optimizer.load_state_dict(torch.load(path, map_location=device, weights_only=True))
    path = ckpt / "state.pt"
    with reading(path, "training state", _fix(ckpt)):
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing = [k for k in ("step", "rng") if k not in state]
        if missing:
            raise KeyError(f"no {missing}")
    return state
