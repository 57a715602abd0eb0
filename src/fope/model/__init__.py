"""OLMo-style causal LM with a pluggable position encoding, size presets, KV cache and safetensors I/O.

>>> model = fope.model.build("cpu-small", pe="fope")              # preset + encoding
>>> model = fope.model.build("60M", pe="alibi", train_len=1024)    # any ModelConfig field as override
>>> logits = model(ids)                                            # (B, T) -> (B, T, V) fp32
>>> cache = model.new_cache(); model(prompt, cache=cache); model(next_ids, cache=cache)
>>> fope.model.save(model, "out/model", tokenizer=tok); model = fope.model.load("out")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .cache import KVCache
from .config import MODEL_PRESETS, PAPER_FOPE_SIGMA, ModelConfig, get_preset
from .io import find_model_dir, load, read_config, read_state_dict, save, verify_weights
from .lm import CausalLM


def build(preset_or_config: str | ModelConfig | Mapping[str, Any], pe: str | None = None, **overrides: Any) -> CausalLM:
    """Build a freshly initialised `CausalLM`.

    Args:
        preset_or_config: a name in MODEL_PRESETS, a ModelConfig, or a dict of ModelConfig fields.
        pe: position-encoding kind (shortcut for the `pe` override).
        **overrides: ModelConfig fields to change (`pe_options` included; it replaces the whole dict).
    With a paper preset (`60M`, `180M`, `1.2B`) and pe="fope", the paper's sigma for that size is used
    unless pe_options sets it.
    """
    cfg = resolve_config(preset_or_config, pe=pe, **overrides)
    return CausalLM(cfg)


def resolve_config(
    preset_or_config: str | ModelConfig | Mapping[str, Any], pe: str | None = None, **overrides: Any
) -> ModelConfig:
    """The ModelConfig `build` would use (same arguments)."""
    if isinstance(preset_or_config, str):
        cfg = get_preset(preset_or_config)
    elif isinstance(preset_or_config, ModelConfig):
        cfg = preset_or_config
    elif isinstance(preset_or_config, Mapping):
        cfg = ModelConfig.from_dict(preset_or_config)
    else:
        raise ValueError(f"expected a preset name, ModelConfig or dict, got {type(preset_or_config).__name__}")
    if pe is not None:
        overrides["pe"] = pe
    cfg = cfg.replace(**overrides)
    if (
        isinstance(preset_or_config, str)
        and preset_or_config in PAPER_FOPE_SIGMA
        and cfg.pe == "fope"
        and "sigma" not in cfg.pe_options
    ):
        cfg = cfg.replace(pe_options={**cfg.pe_options, "sigma": PAPER_FOPE_SIGMA[preset_or_config]})
    return cfg


__all__ = [
    "MODEL_PRESETS",
    "PAPER_FOPE_SIGMA",
    "CausalLM",
    "KVCache",
    "ModelConfig",
    "build",
    "find_model_dir",
    "get_preset",
    "load",
    "read_config",
    "read_state_dict",
    "resolve_config",
    "save",
    "verify_weights",
]
