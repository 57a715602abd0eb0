"""Save and load Hugging Face model directories of `FopeForCausalLM` (and plain HF causal LMs).

A saved directory holds config.json (with ``auto_map``), model.safetensors, generation_config.json, the tokenizer
files when given, and the two remote-code files ``configuration_fope.py`` / ``modeling_fope.py``, so that

    AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)

works on a machine that has transformers but not fope.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

REMOTE_DIR = Path(__file__).parent / "remote"
REMOTE_FILES = ("configuration_fope.py", "modeling_fope.py")
AUTO_MAP = {
    "AutoConfig": "configuration_fope.FopeConfig",
    "AutoModel": "modeling_fope.FopeModel",
    "AutoModelForCausalLM": "modeling_fope.FopeForCausalLM",
}
MODEL_TYPE = "fope_llama"


def save(model: Any, out_dir: str | Path, *, tokenizer: Any = None) -> Path:
    """Write ``model`` (a FopeForCausalLM) as a self-contained HF directory; returns the directory."""
    out = Path(out_dir)
    if getattr(model.config, "model_type", None) != MODEL_TYPE:
        raise ValueError(f"save expects a FopeForCausalLM (model_type {MODEL_TYPE!r}), got "
                         f"{getattr(model.config, 'model_type', type(model).__name__)!r}; convert it first")
    out.mkdir(parents=True, exist_ok=True)
    model.config.auto_map = dict(AUTO_MAP)
    model.save_pretrained(out)
    for name in REMOTE_FILES:
        shutil.copyfile(REMOTE_DIR / name, out / name)
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out


def is_fope_dir(path: str | Path) -> bool:
    """True if ``path`` is an HF directory of a FopeForCausalLM."""
    cfg = Path(path) / "config.json"
    return cfg.is_file() and json.loads(cfg.read_text()).get("model_type") == MODEL_TYPE


def load(path: str | Path, *, device: str = "cpu", dtype: Any = None) -> Any:
    """Load an HF model directory (eval mode): FopeForCausalLM dirs with fope's own classes (no remote code
    executed), any other causal LM with ``AutoModelForCausalLM``, and the name ``smollm2`` (see fope.hf.smollm)."""
    from .smollm import is_smollm2_name, load_smollm2

    if is_smollm2_name(str(path)):
        return load_smollm2(dtype=dtype).to(device).eval()
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a Hugging Face model directory (no config.json)")
    kwargs = {} if dtype is None else {"dtype": dtype}
    if is_fope_dir(path):
        from .remote.modeling_fope import FopeForCausalLM

        model = FopeForCausalLM.from_pretrained(path, **kwargs)
    else:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    return model.to(device).eval()


def register_auto_classes() -> None:
    """Register fope's own FopeConfig / FopeModel / FopeForCausalLM with transformers' Auto classes (idempotent).

    Afterwards ``AutoModelForCausalLM.from_pretrained(fope_dir)`` loads FoPE directories *without*
    ``trust_remote_code`` (transformers prefers the registered local classes; the directory's copy of the remote
    code is not executed). Used by `fope.eval.adapters.load_model`.
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

    from .remote.configuration_fope import FopeConfig
    from .remote.modeling_fope import FopeForCausalLM, FopeModel

    AutoConfig.register(MODEL_TYPE, FopeConfig, exist_ok=True)
    AutoModel.register(FopeConfig, FopeModel, exist_ok=True)
    AutoModelForCausalLM.register(FopeConfig, FopeForCausalLM, exist_ok=True)


def load_tokenizer(path: str | Path) -> Any:
    """The HF tokenizer saved with a model directory (or SmolLM2's, for the name ``smollm2``)."""
    from .smollm import is_smollm2_name, load_smollm2_tokenizer

    if is_smollm2_name(str(path)):
        return load_smollm2_tokenizer()
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


__all__ = ["save", "load", "load_tokenizer", "is_fope_dir", "register_auto_classes", "AUTO_MAP", "REMOTE_FILES"]
