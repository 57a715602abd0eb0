"""FoPE in the serving engines' format: read it as fope's FoPE, write fope's FoPE in it.

vLLM, SGLang, lmdeploy and xtuner share one FoPE format (vLLM's ``FourierRotaryEmbedding``; Intern-S1-Pro):

* config.json ``rope_scaling`` (or ``rope_parameters``) carries ``fope_init_factor``, ``fope_sep_head`` and
  ``num_inv_freq``; FoPE is on when any of them is set (not null).
* kept frequencies: the first ``num_inv_freq`` of the grid θ^(−2i/head_dim), or, when null, those with
  ω > 2π / max_position_embeddings. n = how many.
* coefficients ``rotary_emb.cos_coef`` / ``rotary_emb.sin_coef``, square (num_kv_heads, n, n) (one (n, n) set for
  every head when ``fope_sep_head`` is false), either per layer (``model.layers.i.self_attn.rotary_emb.*``) or one
  model-level set shared by every layer (``model.rotary_emb.*``; Intern-S1-Pro: ``model.language_model.rotary_emb.*``).
* the head_dim/2 − n pairs left over are padded: vLLM 0.33.0 pads sin and cos with 1 (fope's ``pad="one"``, the
  authors' release); vLLM PR #55243 (for issue #55204; open when this was written) pads sin with 0 (fope's ``pad="zero"``).
* neox (rotate-half) layout; query head h uses kv head h // (H / Hkv); ``fope_init_factor`` only scales a fresh
  init (a loaded checkpoint ignores it).

That is fope's FoPE with ``out_dim="full"``, ``clip_floor=False``, ``num_inv_freq=n`` and
``share_heads = not fope_sep_head`` (tests/hf/test_hf_engines.py; vLLM's own layer: tests/serve/test_vllm_engines.py).

Reading (`fope.hf.io.load_engine`, used by `fope.hf.io.load`, so by every command that takes a model): Llama, Qwen2 and Qwen3
architectures load as a `FopeForCausalLM`. The pad to read with (`engine_pad`): an explicit choice (the ``pad``
argument, else the environment variable ``FOPE_ENGINE_PAD``) first, else the checkpoint's own record
(``rope_scaling.fope_pad``, written by fope), else ``"one"``, what the released engines serve.

Writing (`to_engines`, `save_engines`; ``fope hf export --format engines``: `fope.hf.export.export_engines`): a Llama / Qwen2 / Qwen3 checkpoint in this format, with
the pad recorded in ``rope_scaling.fope_pad`` and a ``fope`` metadata block in config.json; per-layer coefficients,
or one model-level set (``layout="model"``, Intern-S1-Pro's) when every layer's coefficients are equal.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path
from typing import Any

import torch

from fope.pos.functional import rope_inv_freq

#: the keys that make a rope_scaling / rope_parameters block the engines' FoPE
ENGINE_KEYS = ("fope_init_factor", "fope_sep_head", "num_inv_freq")
#: fope's record of the pad a model was trained with (config.json rope_scaling), read by fope and its vLLM plugin
PAD_KEY = "fope_pad"
#: environment variable choosing the pad every command reads an engine-format checkpoint with
PAD_ENV = "FOPE_ENGINE_PAD"
#: the pad of the released engines (vLLM 0.33.0, the authors' code)
DEFAULT_PAD = "one"
#: architectures read and written: model_type -> HF architecture class
ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}
#: keys a FoPE rope block may carry besides ENGINE_KEYS and PAD_KEY
_ROPE_KEYS = ("rope_type", "type", "rope_theta", "partial_rotary_factor")
#: model-level coefficient prefixes (Llama naming, Intern-S1-Pro's)
MODEL_LEVEL = ("model.rotary_emb.", "model.language_model.rotary_emb.", "language_model.model.rotary_emb.")
COEFS = ("cos_coef", "sin_coef")


#: Intern-S1-Pro's FoPE (its config.json): theta, context and the rope_scaling FoPE keys; 45 of 64 pairs kept at
#: head_dim 128
INTERN_S1_PRO = {
    "rope_theta": 5e6,
    "max_position_embeddings": 262144,
    "fope_init_factor": 0.5,
    "fope_sep_head": True,
    "num_inv_freq": None,
}


def intern_s1_pro_options() -> dict[str, Any]:
    """fope's FoPE options that equal Intern-S1-Pro's FoPE (``fope.pos.build("fope", head_dim=128, n_heads=...,
    train_len=INTERN_S1_PRO["max_position_embeddings"], **intern_s1_pro_options())``): its theta, the engines'
    square coefficients (out_dim "full"), one set per kv head, the released engines' pad, init gain 0.5."""
    return {
        "theta": INTERN_S1_PRO["rope_theta"],
        "sigma": INTERN_S1_PRO["fope_init_factor"],
        "out_dim": "full",
        "pad": DEFAULT_PAD,
        "share_heads": not INTERN_S1_PRO["fope_sep_head"],
        "clip_floor": True,
    }


def engine_block(config: dict[str, Any]) -> dict[str, Any] | None:
    """The config's FoPE block (``rope_scaling`` first, then ``rope_parameters``) when it has any of ENGINE_KEYS set
    (vLLM's rule), else None."""
    for where in ("rope_scaling", "rope_parameters"):
        block = config.get(where)
        if isinstance(block, dict) and any(block.get(k) is not None for k in ENGINE_KEYS):
            return block
    return None


def is_engine_config(config: dict[str, Any]) -> bool:
    return engine_block(config) is not None


def engine_pad(block: dict[str, Any], pad: str | None = None) -> str:
    """The pad to read with: ``pad``, else $FOPE_ENGINE_PAD, else the block's ``fope_pad`` record, else "one"."""
    chosen = pad or os.environ.get(PAD_ENV) or block.get(PAD_KEY) or DEFAULT_PAD
    if chosen not in ("one", "zero"):
        source = "pad" if pad else (PAD_ENV if os.environ.get(PAD_ENV) else f"rope_scaling.{PAD_KEY}")
        raise ValueError(f"FoPE pad {chosen!r} (from {source}) must be 'one' or 'zero'")
    return chosen


def _head_dim(config: dict[str, Any]) -> int:
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


def kept_count(*, head_dim: int, theta: float, max_position_embeddings: int, num_inv_freq: int | None) -> int:
    """n, the frequencies the engines keep: ``num_inv_freq``, or those of the grid with ω > 2π/max_positions."""
    if num_inv_freq is not None:
        return int(num_inv_freq)
    grid = rope_inv_freq(head_dim, theta)
    return int((grid > 2.0 * math.pi / max_position_embeddings).sum())


def engine_options(config: dict[str, Any], *, pad: str | None = None) -> dict[str, Any]:
    """fope's FoPE options (FopeConfig ``pe_options``) for an engine-format config; ValueError in one line naming a
    key, value or architecture fope cannot honour."""
    block = engine_block(config)
    if block is None:
        raise ValueError("config.json has no FoPE keys (rope_scaling fope_init_factor / fope_sep_head / num_inv_freq)")
    model_type = config.get("model_type")
    if model_type not in ARCHITECTURES:
        raise ValueError(
            f"FoPE checkpoint of model_type {model_type!r}: fope reads the engines' FoPE for "
            f"{', '.join(map(repr, ARCHITECTURES))} only"
        )
    unknown = sorted(set(block) - set(ENGINE_KEYS) - {PAD_KEY, *_ROPE_KEYS})
    if unknown:
        raise ValueError(f"FoPE rope_scaling key {unknown[0]!r} is not part of the engines' FoPE format; remove it")
    rope_type = block.get("rope_type", block.get("type", "default"))
    if rope_type != "default":
        raise ValueError(f"FoPE with rope_type {rope_type!r}: the engines' FoPE has no scaling (need 'default')")
    if float(block.get("partial_rotary_factor", 1.0)) != 1.0:
        raise ValueError(f"FoPE with partial_rotary_factor={block['partial_rotary_factor']}: fope needs 1.0")
    head_dim = _head_dim(config)
    n = block.get("num_inv_freq")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= head_dim // 2):
        raise ValueError(f"FoPE num_inv_freq={n!r} must be null or an int in [1, head_dim/2={head_dim // 2}]")
    sep = block.get("fope_sep_head")
    if sep is not None and not isinstance(sep, bool):
        raise ValueError(f"FoPE fope_sep_head={sep!r} must be true, false or null")
    factor = block.get("fope_init_factor")
    sigma = float(factor) if isinstance(factor, (int, float)) and not isinstance(factor, bool) else 0.0
    if not math.isfinite(sigma) or sigma < 0:
        raise ValueError(f"FoPE fope_init_factor={factor!r} must be a finite number >= 0")
    kept = kept_count(
        head_dim=head_dim,
        theta=float(block.get("rope_theta", config.get("rope_theta", 10000.0))),
        max_position_embeddings=int(config["max_position_embeddings"]),
        num_inv_freq=n,
    )
    if kept < 1:
        raise ValueError(f"FoPE keeps no frequency (head_dim={head_dim}, max_position_embeddings too small)")
    return {
        "sigma": sigma,  # an init scale only: the coefficients are loaded
        "clip_floor": False,
        "num_inv_freq": kept,
        "out_dim": "full",
        "pad": engine_pad(block, pad),
        "share_heads": not sep,
    }


#: config.json defaults (transformers' Llama) for keys a checkpoint leaves out
_DEFAULTS = {"hidden_act": "silu", "rms_norm_eps": 1e-6, "initializer_range": 0.02}


class _Config(dict):
    """An HF config.json dict read through attributes (missing -> the Llama default or None), for
    `fope.hf.convert.fope_config_from_hf`."""

    def __getattr__(self, name: str) -> Any:
        return self.get(name, _DEFAULTS.get(name))


def fope_config(config: dict[str, Any], *, pad: str | None = None):
    """The `FopeConfig` of an engine-format config.json dict."""
    from .convert import fope_config_from_hf

    options = engine_options(config, pad=pad)
    block = engine_block(config)
    theta = float(block.get("rope_theta", config.get("rope_theta", 10000.0)))
    source = _Config(config)
    source["rope_parameters"] = {"rope_type": "default", "rope_theta": theta}
    model_type = config["model_type"]
    if model_type == "qwen3":  # Llama attention (+ attention_bias) with q/k norms
        source["model_type"] = "llama"
    cfg = fope_config_from_hf(source, pe="fope", train_len=int(config["max_position_embeddings"]), pe_options=options)
    cfg.qk_norm = model_type == "qwen3"
    return cfg


def engine_state_to_fope(state: dict[str, torch.Tensor], cfg: Any) -> dict[str, torch.Tensor]:
    """The state dict of a `FopeForCausalLM` (``cfg``) from an engine-format one: per-layer or model-level
    coefficients become each layer's ``self_attn.pos_enc.*``; other ``rotary_emb`` buffers are dropped. ValueError
    naming the key and its shape when a coefficient is missing, doubled or of another shape."""
    out = {k: v for k, v in state.items() if "rotary_emb." not in k}
    n_layers, n_kv = cfg.num_hidden_layers, cfg.num_key_value_heads
    n = cfg.pe_options["num_inv_freq"]
    shared = cfg.pe_options["share_heads"]
    model_level = {c: [p + c for p in MODEL_LEVEL if p + c in state] for c in COEFS}
    per_layer = [k for k in state if ".self_attn.rotary_emb." in k and k.endswith(COEFS)]
    if any(model_level.values()) and per_layer:
        raise ValueError(f"FoPE coefficients both model-level and per layer ({per_layer[0]}); keep one layout")
    for coef in COEFS:
        if len(model_level[coef]) > 1:
            raise ValueError(f"FoPE coefficients twice at model level: {model_level[coef]}")
    want = ((1, n, n), (n, n)) if shared else ((n_kv, n, n),)
    for i in range(n_layers):
        for coef in COEFS:
            key = model_level[coef][0] if model_level[coef] else f"model.layers.{i}.self_attn.rotary_emb.{coef}"
            if key not in state:
                raise ValueError(f"FoPE coefficient {key} missing (need per layer or model.rotary_emb.{coef})")
            value = state[key]
            if tuple(value.shape) not in want:
                raise ValueError(
                    f"FoPE coefficient {key} has shape {tuple(value.shape)}; the config needs "
                    f"{' or '.join(map(str, want))} (num_kv_heads={n_kv}, n={n} kept frequencies, "
                    f"fope_sep_head={not shared})"
                )
            out[f"model.layers.{i}.self_attn.pos_enc.{coef}"] = value.reshape(-1, n, n).clone()
    return out


# ---------------------------------------------------------------------------------------------------------
# writing


def _architecture(cfg: Any) -> tuple[str, dict[str, Any]]:
    """(model_type, the config keys of its attention biases) for a FopeConfig; ValueError naming what no engine
    architecture expresses."""
    qkv, o = bool(cfg.qkv_bias), bool(cfg.o_bias)
    if getattr(cfg, "sliding_window", None) is not None:
        raise ValueError(f"sliding_window={cfg.sliding_window}: the engines' FoPE models have no sliding window")
    if getattr(cfg, "qk_norm", False):
        if qkv != o:
            raise ValueError(f"qkv_bias={qkv} with o_bias={o} and qk_norm: no Qwen3 layout has that")
        return "qwen3", {"attention_bias": qkv}
    if qkv and not o:
        return "qwen2", {}
    if qkv != o:
        raise ValueError(f"qkv_bias={qkv} with o_bias={o}: neither Llama nor Qwen2")
    return "llama", {"attention_bias": qkv, "mlp_bias": bool(cfg.mlp_bias)}


def engine_rope_block(cfg: Any, model: Any) -> dict[str, Any]:
    """The engines' rope_scaling block for a `FopeForCausalLM` config; ValueError naming the FoPE option the format
    cannot express."""
    if cfg.pe != "fope":
        raise ValueError(f"pe={cfg.pe!r}: only FoPE models go to the engines' FoPE format")
    rope = dict(cfg.rope_parameters)
    if rope.get("rope_type", "default") != "default" or set(rope) - {"rope_type", "rope_theta"}:
        raise ValueError(f"rope_parameters {rope}: the engines' FoPE format has no frequency scaling")
    opts = model.model.layers[0].self_attn.pos_enc.options
    pos = model.model.layers[0].self_attn.pos_enc
    n_in, n_out = pos.cos_coef.shape[-2:]
    if n_in != n_out:
        raise ValueError(
            f"out_dim={opts['out_dim']!r} mixes D_in={n_in} into D_out={n_out} pairs; the engines' coefficients are "
            "square: use out_dim='full'"
        )
    if opts["normalize"]:
        raise ValueError("normalize=True: the engines do not normalise the coefficients")
    if pos.dim != cfg.head_dim:
        raise ValueError(f"freq_dim={opts['freq_dim']}: the engines' grid is head_dim={cfg.head_dim}")
    kept = pos.kept.nonzero().flatten().tolist()
    if kept != list(range(len(kept))):
        raise ValueError(f"FoPE keeps grid frequencies {kept}, not the first n: the engines keep a prefix")
    theta = float(rope["rope_theta"])
    n = len(kept)
    null_ok = n == kept_count(
        head_dim=cfg.head_dim, theta=theta, max_position_embeddings=cfg.max_position_embeddings, num_inv_freq=None
    )
    return {
        "rope_type": "default",
        "rope_theta": theta,
        "fope_init_factor": float(opts["sigma"]),
        "fope_sep_head": not opts["share_heads"],
        "num_inv_freq": None if null_ok else n,
        PAD_KEY: opts["pad"],
    }


def to_engines(model: Any, *, layout: str = "layers") -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(config.json dict, state dict) of a `FopeForCausalLM` in the engines' format.

    layout: "layers" (one coefficient set per layer, ``model.layers.i.self_attn.rotary_emb.*``) or "model" (one
    model-level ``model.rotary_emb.*``, Intern-S1-Pro's layout; every layer's coefficients must be equal)."""
    if layout not in ("layers", "model"):
        raise ValueError(f"layout must be 'layers' or 'model', got {layout!r}")
    cfg = model.config
    model_type, bias = _architecture(cfg)
    block = engine_rope_block(cfg, model)
    config = {
        "architectures": [ARCHITECTURES[model_type]],
        "model_type": model_type,
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "num_key_value_heads": cfg.num_key_value_heads,
        "head_dim": cfg.head_dim,
        "hidden_act": cfg.hidden_act,
        "max_position_embeddings": cfg.max_position_embeddings,
        "initializer_range": cfg.initializer_range,
        "rms_norm_eps": cfg.rms_norm_eps,
        "tie_word_embeddings": bool(cfg.tie_word_embeddings),
        "rope_theta": block["rope_theta"],
        "rope_scaling": dict(block),
        "rope_parameters": dict(block),
        "bos_token_id": cfg.bos_token_id,
        "eos_token_id": cfg.eos_token_id,
        "pad_token_id": cfg.pad_token_id,
        "torch_dtype": "float32",
        **bias,
        "fope": {
            "format": "engines",
            "pad": block[PAD_KEY],
            "pe_options": copy.deepcopy(dict(cfg.pe_options)),
            "pe_train_len": cfg.pe_train_len,
            "note": "pad: the FoPE pad this model was trained with; vLLM 0.33.0 serves pad 'one' only",
        },
    }
    state: dict[str, torch.Tensor] = {}
    layers = {}
    for key, value in model.state_dict().items():
        if ".pos_enc." in key:
            layer, coef = key.split(".self_attn.pos_enc.")
            value = value[0] if block["fope_sep_head"] is False else value
            layers.setdefault(coef, []).append((layer, value))
            state[f"{layer}.self_attn.rotary_emb.{coef}"] = value.contiguous().clone()
        elif not (cfg.tie_word_embeddings and key == "lm_head.weight"):
            state[key] = value.contiguous().clone()
    if layout == "model":
        for coef, values in layers.items():
            first = values[0][1]
            for layer, value in values[1:]:
                if not torch.equal(value, first):
                    raise ValueError(f"layout='model' needs equal coefficients in every layer; {layer}.{coef} differs")
                del state[f"{layer}.self_attn.rotary_emb.{coef}"]
            del state[f"{values[0][0]}.self_attn.rotary_emb.{coef}"]
            state[f"model.rotary_emb.{coef}"] = first.contiguous().clone()
    return config, state


def save_engines(model: Any, out_dir: str | Path, *, tokenizer: Any = None, layout: str = "layers") -> Path:
    """Write ``model`` (a FopeForCausalLM) to ``out_dir`` in the engines' format (config.json, model.safetensors,
    generation_config.json, the tokenizer when given); returns the directory. Written whole or not at all."""
    from safetensors.torch import save_file

    from fope.utils import atomic_dir, atomic_json

    config, state = to_engines(model, layout=layout)
    with atomic_dir(out_dir) as tmp:
        save_file(state, str(Path(tmp) / "model.safetensors"), metadata={"format": "pt"})
        atomic_json(Path(tmp) / "config.json", config)
        generation = getattr(model, "generation_config", None)
        if generation is not None:
            generation.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
    return Path(out_dir)


__all__ = [
    "ARCHITECTURES",
    "DEFAULT_PAD",
    "ENGINE_KEYS",
    "INTERN_S1_PRO",
    "PAD_ENV",
    "PAD_KEY",
    "engine_block",
    "engine_options",
    "engine_pad",
    "engine_rope_block",
    "engine_state_to_fope",
    "fope_config",
    "intern_s1_pro_options",
    "is_engine_config",
    "kept_count",
    "save_engines",
    "to_engines",
]
