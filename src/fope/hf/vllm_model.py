"""The vLLM side of fope's out-of-tree model plugin (fope.hf.vllm_plugin registers it): serve a fope FoPE model (``fope hf export --format engines``) through vLLM, with
vLLM's own ``FourierRotaryEmbedding``, one per layer.

Registered through the ``vllm.general_plugins`` entry point (pyproject.toml), so installing fope in vLLM's
environment is enough; then

    vllm serve DIR --hf-overrides '{"architectures": ["FopeLlamaForCausalLM"]}'

(the export names the plain ``LlamaForCausalLM``, which the other engines read; vLLM's own Llama ignores FoPE).

* Per layer: vLLM's only FoPE model (Intern-S1-Pro) shares one coefficient set across layers (``get_rope`` caches one
  object per argument tuple); fope's models draw one per layer, so each attention layer here builds its own
  `FourierRotaryEmbedding` (and calls its ``forward_native``, the only FoPE forward vLLM has). A model-level set
  (``model.rotary_emb.*``) is loaded into every layer.
* The pad: the export records the pad the model was trained with (``rope_scaling.fope_pad``). `vllm_pad` measures
  what the installed vLLM pads with (0.33.0: sin = cos = 1, "one"; with PR #55243: sin 0, "zero"), and a
  model whose record differs is refused in one line naming both (`check_pad`): served with the other pad, fope's
  docs measure x15-16 perplexity on SmolLM2.
* `SharedHeadFourier`: vLLM 0.33.0 crashes with ``fope_sep_head=false`` (an einsum of a 2-D pattern on its 3-D
  parameter); this subclass builds the tables from the single (n, n) set. `ZeroPadFourier`: PR #55243's pad (sin 0) on
  0.33.0, for the parity test until a release has it.

This module imports vLLM at import time: only vLLM's environment (scripts/setup_engines.sh) imports it.
ARCHITECTURE lives in fope.hf.vllm_plugin.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Iterable
from typing import Any

import torch
from vllm.model_executor.layers.rotary_embedding.fope import FourierRotaryEmbedding
from vllm.model_executor.models.llama import LlamaAttention, LlamaDecoderLayer, LlamaForCausalLM

from .engines import PAD_KEY, engine_block


class NativeFourier(FourierRotaryEmbedding):
    """vLLM's FourierRotaryEmbedding whose forward is its ``forward_native`` (the CUDA path of the base class is
    plain RoPE's kernel, which knows no per-head tables; Intern-S1-Pro calls forward_native explicitly too)."""

    def forward(self, *args: Any, **kwargs: Any):
        return self.forward_native(*args, **kwargs)


class SharedHeadFourier(NativeFourier):
    """``fope_sep_head=false`` on vLLM 0.33.0: one (n, n) coefficient set for every head (0.33.0 allocates
    (num_kv_heads, n, n) and its einsum "tD, Dd" fails on it). The set is loaded from (n, n) or (1, n, n) into
    every head's slot, so vLLM's own sep-head tables equal the shared ones."""

    def __init__(
        self,
        head_size: int,
        rotary_dim: int,
        max_position_embeddings: int,
        base: float,
        is_neox_style: bool,
        dtype: torch.dtype,
        init_cache: bool,
        num_key_value_heads: int,
        num_inv_freq: int | None,
        fope_sep_head: bool,
        fope_init_factor: float,
    ):
        super().__init__(
            head_size,
            rotary_dim,
            max_position_embeddings,
            base,
            is_neox_style,
            dtype,
            init_cache,
            num_key_value_heads=num_key_value_heads,
            num_inv_freq=num_inv_freq,
            fope_sep_head=True,  # every head's slot holds the one shared set
            fope_init_factor=fope_init_factor,
        )

    def weight_loader(self, param: torch.nn.Parameter, loaded_weight: torch.Tensor):
        param.data.copy_(loaded_weight.reshape(-1, *param.shape[-2:]).expand_as(param))


class ZeroPadFourier(NativeFourier):
    """vLLM PR #55243's pad: the padded pairs are true zero frequencies, cos 1 and sin 0."""

    def _compute_cos_sin_cache(self) -> torch.Tensor:
        cache = super()._compute_cos_sin_cache()
        half, n = self.head_size // 2, self.inv_freq.shape[-1]
        sin = cache[..., 2 * half :]
        sin[..., n:half] = 0.0
        sin[..., half + n :] = 0.0
        return cache


def fourier_class(*, pad: str, sep_head: bool) -> type[FourierRotaryEmbedding]:
    if pad == "zero" and vllm_pad() == "one":
        base = ZeroPadFourier
        return type("SharedHeadZeroPadFourier", (SharedHeadFourier, ZeroPadFourier), {}) if not sep_head else base
    return NativeFourier if sep_head else SharedHeadFourier


@functools.lru_cache(maxsize=1)
def vllm_pad() -> str:
    """What the installed vLLM pads FoPE's unmixed pairs with: "one" (sin = cos = 1, 0.33.0) or "zero" (sin 0),
    measured on a 1-frequency layer."""
    from vllm.config import VllmConfig, get_current_vllm_config_or_none, set_current_vllm_config

    context = set_current_vllm_config(VllmConfig()) if get_current_vllm_config_or_none() is None else None
    if context is not None:
        with context:
            return vllm_pad.__wrapped__()
    layer = FourierRotaryEmbedding(8, 8, 4, 10000.0, True, torch.float32, False, 1, 1, True, 1.0)
    layer.cos_coef.data.zero_()
    layer.sin_coef.data.zero_()
    sin = layer._compute_cos_sin_cache()[..., 8:]  # (positions, heads, cos 8 | sin 8)
    return "one" if float(sin[0, 0, 1]) == 1.0 else "zero"


def check_pad(config: Any) -> str:
    """The model's recorded pad when the installed vLLM serves it, else ValueError in one line naming both."""
    block = engine_block(_dict(config)) or {}
    recorded = block.get(PAD_KEY, "one")  # no record: the authors' pad, what the engines' releases assume
    served = vllm_pad()
    if recorded != served and not (recorded == "zero" and served == "one" and _zero_pad_ok()):
        raise ValueError(
            f"FoPE pad mismatch: the model was trained with pad {recorded!r} (rope_scaling.{PAD_KEY}) but vLLM "
            f"{importlib.metadata.version('vllm')} pads with {served!r}; serve it with a vLLM that pads {recorded!r}"
        )
    return recorded


def _zero_pad_ok() -> bool:
    """Serve pad-zero models on a pad-one vLLM through ZeroPadFourier (off: refuse, the release's behaviour)."""
    import os

    return os.environ.get("FOPE_VLLM_ZERO_PAD") == "1"


def _dict(config: Any) -> dict[str, Any]:
    if isinstance(config, dict):
        return config
    return {k: getattr(config, k, None) for k in ("rope_scaling", "rope_parameters")}


class FopeLlamaAttention(LlamaAttention):
    """Llama attention whose rotary embedding is its own FourierRotaryEmbedding (not get_rope's shared one)."""

    def _init_rotary_emb(self, config: Any, quant_config: Any) -> None:
        block = engine_block(_dict(config))
        if block is None:
            raise ValueError("FopeLlamaForCausalLM needs FoPE keys in rope_scaling (fope hf export --format engines)")
        pad = check_pad(config)
        sep = bool(block.get("fope_sep_head"))
        cls = fourier_class(pad=pad, sep_head=sep)
        self.rotary_emb = cls(
            self.head_dim,
            self.head_dim,
            self.max_position_embeddings,
            float(block.get("rope_theta", getattr(config, "rope_theta", 10000.0))),
            True,
            torch.get_default_dtype(),
            False,
            num_key_value_heads=self.num_kv_heads,
            num_inv_freq=block.get("num_inv_freq"),
            fope_sep_head=sep,
            fope_init_factor=float(block.get("fope_init_factor") or 0.0),
        )


class FopeLlamaForCausalLM(LlamaForCausalLM):
    """vLLM's Llama with fope's FoPE per layer; model-level coefficients are loaded into every layer."""

    def __init__(self, *, vllm_config: Any, prefix: str = ""):
        layer = functools.partial(LlamaDecoderLayer, attn_layer_type=FopeLlamaAttention)
        super().__init__(vllm_config=vllm_config, prefix=prefix, layer_type=layer)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        n_layers = self.config.num_hidden_layers

        def spread():
            for name, tensor in weights:
                if name.startswith("model.rotary_emb."):
                    coef = name.rsplit(".", 1)[1]
                    for i in range(n_layers):
                        yield f"model.layers.{i}.self_attn.rotary_emb.{coef}", tensor
                else:
                    yield name, tensor

        return super().load_weights(spread())


__all__ = [
    "FopeLlamaAttention",
    "FopeLlamaForCausalLM",
    "NativeFourier",
    "SharedHeadFourier",
    "ZeroPadFourier",
    "check_pad",
    "fourier_class",
    "vllm_pad",
]
