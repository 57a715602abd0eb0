"""The one model loader: every command that evaluates or analyses a model (fope eval, fope analyze, fope reproduce,
the experiments) reads it through `load_model`, which returns it wrapped in its adapter, with its tokenizer.

    >>> load_model("runs/cpu-small-fope")          # a native model directory or training run directory (its model/)
    >>> load_model("hf/smollm2-fope")              # a Hugging Face directory (FoPE ones load with fope's own classes)
    >>> load_model("smollm2")                      # the embedded SmolLM2-135M-Instruct (fope.hf.smollm)
    >>> load_model("HuggingFaceTB/SmolLM2-135M")   # a hub name (the network, or the hub's local cache)

Which is which: `fope.model.find_model_dir` says whether a path is native (config.json with ``"format": "fope"``,
in the directory or its ``model/``); anything else is the Hugging Face format, found by `fope.hf.io.resolve` (the one
path-or-hub-name rule, ``smollm2`` included) and loaded by `fope.hf.io.load`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .adapters import FopeAdapter, HFAdapter, HFTokenizer

#: ``dtype=`` names of `load_model` (Hugging Face models; None: fp32)
DTYPES = {None: torch.float32, "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_device(device: str | torch.device) -> torch.device:
    """The torch device ``device`` names, when this machine has it; otherwise ValueError in one line naming it
    (an unknown device name, ``cuda`` without CUDA or a GPU index that is not there, ``mps`` without MPS)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise ValueError(f"unknown device {str(device)!r} ({first}); use cpu, cuda, cuda:N or mps") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this torch has no CUDA" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise ValueError(f"device {str(device)!r}: CUDA is not available here ({why}); use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(device)!r}: there are {torch.cuda.device_count()} CUDA device(s), numbered from 0"
            )
        return dev
    backend = getattr(torch, dev.type, None) if dev.type != "mps" else torch.backends.mps
    if backend is None or not callable(getattr(backend, "is_available", None)) or not backend.is_available():
        raise ValueError(f"device {str(device)!r}: not available on this machine; use --device cpu")
    return dev


def load_model(
    path_or_name: str | Path,
    *,
    device: str = "cpu",
    dtype: str | None = None,
    trust_remote_code: bool = False,
    rope_scaling: str | dict | None = None,
    model_types: tuple[str, ...] | None = None,
) -> FopeAdapter | HFAdapter:
    """Load a fope model directory, a fope run directory, or a Hugging Face model (directory, hub name, or
    ``smollm2``: the offline SmolLM2-135M-Instruct of fope.hf.smollm).

    Args:
        path_or_name: a directory, or a hub name such as `HuggingFaceTB/SmolLM2-135M` (needs network).
        device: torch device string.
        dtype: Hugging Face models only: "float32" (default), "bfloat16" or "float16".
        trust_remote_code: passed to `transformers` (not needed for fope.hf's `FopeForCausalLM` directories,
            which load with fope's own classes).
        rope_scaling: Hugging Face models only: "yarn:2", "linear:2", "dynamic:2", "ntk:2" or an HF
            rope_parameters dict, set on the config before loading (fope.hf.convert.parse_rope_scaling).
        model_types: Hugging Face models only: refuse any other model_type, from config.json, before a weight loads.

    Returns:
        an adapter whose `.model` is the model (eval mode) and whose `.tokenizer` is the tokenizer stored with it,
        or None when there is none.
    """
    from fope.model import find_model_dir

    check_device(device)
    model_dir = find_model_dir(path_or_name)
    if model_dir is not None:
        return _load_native(model_dir, str(path_or_name), device=device, dtype=dtype, rope_scaling=rope_scaling)
    if dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from float32, bfloat16, float16")
    from fope.hf.io import resolve

    source = resolve(path_or_name)  # FileNotFoundError for a local path that does not exist
    try:
        return _load_hf(
            source,
            device=device,
            dtype=DTYPES[dtype],
            trust_remote_code=trust_remote_code,
            rope_scaling=rope_scaling,
            model_types=model_types,
        )
    except ValueError as e:
        if "trust_remote_code" not in str(e) or trust_remote_code:
            raise
        raise ValueError(
            f"model {str(path_or_name)!r} ships its own Python code (auto_map in config.json), which "
            "runs only with --trust-remote-code: read that code first, then opt in"
        ) from e
    except OSError as e:  # offline, unknown repo, connection refused: one line, not the hub client's traceback
        if isinstance(source, Path):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise FileNotFoundError(
            f"model {str(path_or_name)!r} is not a local directory, and loading it from the "
            f"Hugging Face Hub failed ({first})"
        ) from e


def load_hf_model(
    path_or_name: str | Path, *, device: str = "cpu", model_types: tuple[str, ...] | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) of a Hugging Face model as transformers objects, read by `load_model`: for the code that
    converts or fine-tunes them (fope.reproduce.extend, fope.reproduce.recovery). ValueError naming the model when
    it is a native fope model (export it first: fope.hf.export.hf_dir) or has no tokenizer saved with it."""
    loaded = load_model(path_or_name, device=device, model_types=model_types)
    if not isinstance(loaded, HFAdapter):
        raise ValueError(
            f"model {str(path_or_name)!r} is a native fope model; this needs a Hugging Face model "
            "(export it with `fope hf export` first)"
        )
    if loaded.tokenizer is None:
        raise ValueError(f"model {str(path_or_name)!r} has no tokenizer saved with it; save one beside the model")
    return loaded.model, loaded.tokenizer.tok


def _load_native(
    model_dir: Path, name: str, *, device: str, dtype: str | None, rope_scaling: str | dict | None
) -> FopeAdapter:
    import fope.model

    tok_file = model_dir / "tokenizer.json"
    tok = load_tokenizer_file(tok_file) if tok_file.is_file() else None
    if dtype is not None:
        raise ValueError(f"dtype={dtype!r} applies to Hugging Face models only (fope models evaluate in fp32)")
    if rope_scaling is not None:
        raise ValueError(
            f"rope_scaling={rope_scaling!r} applies to Hugging Face models; for {name} set the "
            "scaling in its config, or export it (fope hf export) first"
        )
    return FopeAdapter(fope.model.load(model_dir, device=device), name=name, tokenizer=tok)


def load_tokenizer_file(path: str | Path) -> Any:
    """A tokenizer from a fope `tokenizer.json` (through `fope.data.load_tokenizer`)."""
    from fope.data import load_tokenizer
    from fope.utils import reading

    with reading(path, "tokenizer", "re-export the model with its tokenizer, or pass --tokenizer"):
        return load_tokenizer(str(path))


def _load_hf(
    source: str | Path,
    *,
    device: str,
    dtype: torch.dtype,
    trust_remote_code: bool,
    rope_scaling: str | dict | None,
    model_types: tuple[str, ...] | None = None,
) -> HFAdapter:
    from fope.hf.io import load, load_tokenizer

    model = load(
        source,
        device=device,
        dtype=dtype,
        rope_scaling=rope_scaling,
        trust_remote_code=trust_remote_code,
        model_types=model_types,
    )
    try:
        tok = HFTokenizer(load_tokenizer(source, trust_remote_code=trust_remote_code))
    except (OSError, ValueError):  # a model directory saved without its tokenizer
        tok = None
    return HFAdapter(model, name=str(source), tokenizer=tok)


__all__ = ["DTYPES", "check_device", "load_hf_model", "load_model", "load_tokenizer_file"]
