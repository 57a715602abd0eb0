"""Model directories: `model.safetensors` + `config.json` (+ optional `tokenizer.json`). Loading never unpickles.

config.json records the sha256 of model.safetensors (``weights_sha256``, format_version 2): `load` verifies it, so a
flipped byte is refused naming the file; and it checks the config against the weights file's header before building
anything, so a damaged config (``vocab_size`` of 10^12, a NaN ``norm_eps``, ``[1]``) is one line naming it.

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

from fope.utils import FileProblem, atomic_path, read_json, reading, sha256_file

from .config import ModelConfig
from .lm import CausalLM

FORMAT = "fope"
FORMAT_VERSION = 2  # 2: config.json records weights_sha256 (1 did not; such directories load unverified)
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
    digest: list[str] = []

    def write_weights(tmp: str) -> None:
        save_file(state, tmp, metadata={"format": FORMAT})
        digest.append(sha256_file(tmp))

    _atomic(out / WEIGHTS, write_weights)
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "fope_version": _fope_version(),
        "weights_sha256": digest[0],
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
    verify_run_files(directory)  # config.json and tokenizer.json too, when a run's checkpoint records them
    cfg = read_config(directory)
    check_config_fits_weights(directory, cfg)  # before building: a damaged size must not allocate terabytes
    verify_weights(directory)
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
                data = read_json(config, "model config", fix="re-export or re-train the model")
                if not isinstance(data, dict):  # damaged for every format (fope's and Hugging Face's)
                    raise ValueError(f"expected a JSON object (a model config), got a JSON {type(data).__name__}")
            if data.get("format") == FORMAT:
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
        data = read_json(path, "model config", fix="re-export or re-train the model")
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object (a model config), got a JSON {type(data).__name__}")
    fmt = data.pop("format", None)
    if fmt != FORMAT:
        raise ValueError(
            f"{str(path)!r} has format {fmt!r}, expected {FORMAT!r} (is this a Hugging Face "
            "model? use fope.hf / fope.eval.adapters for those)"
        )
    version = data.pop("format_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FileProblem(
            path, f"format_version must be a positive integer, got {version!r}", "re-export or re-train the model"
        )
    if version > FORMAT_VERSION:
        raise FileProblem(
            path,
            f"format_version {version} is newer than this fope reads ({FORMAT_VERSION})",
            "load it with the (newer) fope that wrote it",
        )
    data.pop("fope_version", None)
    data.pop("weights_sha256", None)
    try:
        return ModelConfig.from_dict(data)
    except (ValueError, TypeError, KeyError) as e:
        raise FileProblem(
            path,
            f"invalid model config ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
            "re-export or re-train the model",
        ) from e


def _fix(directory: Path) -> str:
    run = directory.parent
    if directory.name == "model" and (run / "checkpoint").is_dir():
        return f"`fope train --resume {run}` restores it from the run's checkpoint"
    return "re-export or re-train the model"


def verify_run_files(directory: str | os.PathLike) -> None:
    """Check every file of a training run's model directory (``OUT/model`` or ``OUT/checkpoint/model``) that the run's
    checkpoint records in its checksums.json (config.json, tokenizer.json; the weights are checked by
    `verify_weights`) by content; a FileProblem naming the file when one was edited or damaged. Other model
    directories: nothing recorded, nothing to check."""
    d = Path(directory)
    if d.name != "model":
        return
    sums_file = next(
        (p for p in (d.parent / "checkpoint" / "checksums.json", d.parent / "checksums.json") if p.is_file()), None
    )
    if sums_file is None:
        return
    sums = read_json(sums_file, "checkpoint checksum list")
    if not isinstance(sums, dict):
        return  # a damaged list is said where the checkpoint is loaded (fope.train.checkpoint)
    for f in sorted(d.iterdir()):
        recorded = sums.get(f"model/{f.name}")
        if f.name == WEIGHTS or not isinstance(recorded, str) or not f.is_file():
            continue
        with reading(f, "model file", _fix(d)):
            actual = sha256_file(f)
        if actual != recorded:
            raise FileProblem(f, f"edited or corrupt: its sha256 differs from the one recorded in {sums_file}", _fix(d))


def weights_digest(directory: str | os.PathLike) -> str | None:
    """The sha256 of model.safetensors recorded in a model directory's config.json (None before format_version 2)."""
    path = Path(directory) / CONFIG
    data = read_json(path, "model config", fix="re-export or re-train the model")
    digest = data.get("weights_sha256") if isinstance(data, dict) else None
    version = data.get("format_version", 1) if isinstance(data, dict) else 1
    if isinstance(version, int) and version >= 2 and not isinstance(digest, str):
        raise FileProblem(path, "has no weights_sha256 (format_version 2 records it)", _fix(Path(directory)))
    return digest


def verify_weights(directory: str | os.PathLike) -> None:
    """Check model.safetensors against the sha256 its config.json records (content, not size or time); a FileProblem
    naming the file when they differ. Directories written before format_version 2 pass unchecked."""
    d = Path(directory)
    digest = weights_digest(d)
    if digest is None:
        return
    file = d / WEIGHTS
    with reading(file, "safetensors weights file", _fix(d)):
        actual = sha256_file(file)
    if actual != digest:
        raise FileProblem(file, "corrupt: its sha256 differs from the one recorded in config.json", _fix(d))


def weight_shapes(directory: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a model directory's model.safetensors, read from its header only."""
    from safetensors import safe_open

    file = Path(directory) / WEIGHTS
    with reading(file, "safetensors weights file", _fix(Path(directory))), safe_open(str(file), "pt") as f:
        return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)


def check_config_fits_weights(directory: str | os.PathLike, cfg: ModelConfig) -> None:
    """FileProblem naming config.json when the model it describes (built on the meta device: no memory) has other
    tensors or shapes than model.safetensors holds, e.g. an edited vocab_size or n_layers."""
    d = Path(directory)
    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in CausalLM(cfg).state_dict().items()}
    stored = weight_shapes(d)
    missing, unexpected = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unexpected:
        raise FileProblem(
            d / CONFIG,
            f"does not describe the weights in {WEIGHTS}: missing {missing[:8]}, unexpected {unexpected[:8]}",
            _fix(d),
        )
    for name, shape in expected.items():
        if stored[name] != shape:
            raise FileProblem(
                d / CONFIG, f"weight {name!r} has shape {stored[name]}, config.json implies {shape}", _fix(d)
            )


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
