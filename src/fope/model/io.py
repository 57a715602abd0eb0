"""Model directories: `model.safetensors` + `config.json` (+ optional `tokenizer.json`). Loading never unpickles.

>>> fope.model.save(model, "runs/x/model", tokenizer=tok)
>>> model = fope.model.load("runs/x")          # a training run directory works too (loads runs/x/model)
>>> fope.model.find_model_dir("runs/x")        # runs/x/model; None for anything that is not a fope model
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from fope.utils import FileProblem, atomic_path, reading

from .config import ModelConfig
from .lm import CausalLM

FORMAT = "fope"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TOKENIZER = "tokenizer.json"


def save(model: CausalLM, directory: str | os.PathLike, tokenizer: Any = None) -> Path:
    """Write `model` (and optionally a `tokenizers.Tokenizer`) as a model directory; returns its path.

    Every file is written to a temporary file in the same directory, fsync'ed and moved into place with
    os.replace, so a crash never leaves a half-written file under the final name. Parameters and persistent buffers
    are saved (FoPE's fixed coefficients included); non-persistent caches are rebuilt on load.
    """
    from safetensors.torch import save_file

    if not isinstance(model, CausalLM):
        raise ValueError(f"fope.model.save expects a fope CausalLM, got {type(model).__name__}")
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    state = {name: t.detach().contiguous().cpu() for name, t in model.state_dict().items()}
    _atomic(out / WEIGHTS, lambda tmp: save_file(state, tmp, metadata={"format": FORMAT}))
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fope_version": _fope_version(),
        **model.config.resolved().to_dict(),
    }
    _atomic(out / CONFIG, lambda tmp: Path(tmp).write_text(json.dumps(meta, indent=2) + "\n"))
    if tokenizer is not None:
        _atomic(out / TOKENIZER, lambda tmp: _save_tokenizer(tokenizer, tmp))
    return out


def load(path: str | os.PathLike, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> CausalLM:
    """Load a model directory (or a training run directory holding `model/`) in eval mode.

    Args:
        path: directory with model.safetensors + config.json, or its parent run directory.
        device: where to put the model.
        dtype: optional floating dtype for the weights; position-encoding parameters (e.g. FoPE
            coefficients) stay in fp32, since position encodings compute in fp32 anyway.
    Raises:
        FileNotFoundError if no model directory is found; ValueError on a foreign format or on
        missing/unexpected weights (listing them).
    """
    directory = resolve_dir(path)
    cfg = read_config(directory)
    model = CausalLM(cfg)
    state = read_state_dict(directory)
    _check_keys(model, state, directory)
    model.load_state_dict(state, strict=True)
    model.to(device)
    if dtype is not None:
        cast_except_pos(model, dtype)
    return model.eval()


def cast_except_pos(model: CausalLM, dtype: torch.dtype) -> CausalLM:
    """Cast floating parameters/buffers to dtype, except those of position encodings (kept exactly as they are)."""
    skip = {id(m) for block in model.blocks for m in block.attn.pos.modules()}
    for module in model.modules():
        if id(module) in skip:
            continue
        for p in module.parameters(recurse=False):
            if p.is_floating_point():
                p.data = p.data.to(dtype)
        for name, b in module.named_buffers(recurse=False):
            if b.is_floating_point():
                module._buffers[name] = b.to(dtype)
    return model


def read_state_dict(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The weights stored in a model directory (or a training run directory holding ``model/``) as a state dict on
    ``device`` (safetensors; never unpickles); a corrupt file raises a FileProblem naming it."""
    from safetensors.torch import load_file

    file = resolve_dir(path) / WEIGHTS
    with reading(file, "safetensors weights file", "re-export or re-train the model"):
        return load_file(str(file), device=str(device))


def find_model_dir(path: str | os.PathLike) -> Path | None:
    """The fope model directory at ``path``: ``path`` itself or, for a training run directory, ``path/model``, when
    its config.json says ``"format": "fope"``; None for anything else (a Hugging Face directory, a hub name, a
    missing path). The one test of "is this a native model?" (fope.eval's loader, fope.hf.export, the grid)."""
    for candidate in (Path(path), Path(path) / "model"):
        config = candidate / CONFIG
        if config.is_file():
            with reading(config, "model config", "re-export or re-train the model"):
                data = json.loads(config.read_text())
            if isinstance(data, dict) and data.get("format") == FORMAT:
                return candidate
    return None


def resolve_dir(path: str | os.PathLike) -> Path:
    """The model directory for `path` (itself, or `path/model` for a training run directory)."""
    p = Path(path)
    for candidate in (p, p / "model"):
        if (candidate / CONFIG).is_file() and (candidate / WEIGHTS).is_file():
            return candidate
    raise FileNotFoundError(
        f"no fope model directory at {str(p)!r} (expected {CONFIG} and {WEIGHTS} there or under {str(p / 'model')!r})"
    )


def read_config(directory: str | os.PathLike) -> ModelConfig:
    """The ModelConfig stored in a model directory's config.json (checks the format tag)."""
    path = Path(directory) / CONFIG
    with reading(path, "model config", "re-export or re-train the model"):
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    fmt = data.pop("format", None)
    if fmt != FORMAT:
        raise ValueError(
            f"{str(path)!r} has format {fmt!r}, expected {FORMAT!r} (is this a Hugging Face "
            "model? use fope.hf / fope.eval.adapters for those)"
        )
    version = data.pop("format_version", FORMAT_VERSION)
    if version > FORMAT_VERSION:
        raise ValueError(f"{str(path)!r} has format_version {version}, newer than this fope ({FORMAT_VERSION})")
    data.pop("fope_version", None)
    try:
        return ModelConfig.from_dict(data)
    except (ValueError, TypeError, KeyError) as e:
        raise FileProblem(
            path,
            f"invalid model config ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
            "re-export or re-train the model",
        ) from e


def _check_keys(model: CausalLM, state: dict[str, torch.Tensor], directory: Path) -> None:
    expected = set(model.state_dict())
    missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or unexpected:
        raise ValueError(
            f"weights in {str(directory / WEIGHTS)!r} do not match config.json: "
            f"missing {missing}, unexpected {unexpected}"
        )
    for name, ref in model.state_dict().items():
        if tuple(state[name].shape) != tuple(ref.shape):
            raise ValueError(
                f"weight {name!r} has shape {tuple(state[name].shape)}, config.json implies {tuple(ref.shape)}"
            )


def _atomic(final: Path, write) -> None:
    with atomic_path(final) as tmp:
        write(tmp)


def _save_tokenizer(tokenizer: Any, path: str) -> None:
    inner = getattr(tokenizer, "tokenizer", None)  # fope.data wrappers may hold a tokenizers.Tokenizer
    target = tokenizer if hasattr(tokenizer, "save") else inner
    if target is None or not hasattr(target, "save"):
        raise ValueError(f"cannot save tokenizer of type {type(tokenizer).__name__}: it has no .save(path)")
    target.save(path)


def _fope_version() -> str:
    import fope

    return getattr(fope, "__version__", "unknown")
