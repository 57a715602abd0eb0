"""Configuration of `FopeForCausalLM`: a Llama-family decoder whose attention takes any fope position encoding.

Self-contained remote code: this file is copied next to every saved model (``auto_map`` in config.json), so that
``AutoModelForCausalLM.from_pretrained(dir, trust_remote_code=True)`` works with only ``transformers`` installed.
It must never import ``fope``.

``qk_norm``: an RMSNorm on each query and key head before the position encoding (Qwen3's q_norm / k_norm).

Position encoding fields (everything else has the Llama meaning and name):
    pe            "rope" | "fope" | "nope" | "alibi" | "kerple" | "fire"
    pe_options    the encoding's own options, named and defaulted as in fope.pos (options.hf_option_defaults: fope:
                  sigma, clip_floor, floor_ratio, out_dim, pad, init, normalize, freq_dim, share_heads;
                  rope: whole_cycles; kerple: init; fire: mlp_width, c_init, threshold, eps).
                  Unknown keys are rejected when the model is built, naming the key.
    pe_train_len  FoPE's floor length N: frequencies below 2*pi/N are clipped to zero; FIRE's threshold; RoPE-A's L.
    rope_parameters  the HF dict (``rope_type``, ``rope_theta``, scaling keys) used by rope and fope frequencies.
"""

from __future__ import annotations

from typing import ClassVar

from transformers import PretrainedConfig

from .options import KINDS as PE_KINDS  # the kinds of fope.pos (the sibling file is fope.pos.options)


class FopeConfig(PretrainedConfig):
    model_type = "fope_llama"
    keys_to_ignore_at_inference: ClassVar[list[str]] = ["past_key_values", "cache"]

    def __init__(
        self,
        vocab_size: int = 32000,
        hidden_size: int = 576,
        intermediate_size: int = 1536,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 8,
        num_key_value_heads: int | None = None,
        head_dim: int | None = None,
        hidden_act: str = "silu",
        max_position_embeddings: int = 2048,
        initializer_range: float = 0.02,
        rms_norm_eps: float = 1e-6,
        use_cache: bool = True,
        tie_word_embeddings: bool = False,
        rope_parameters: dict | None = None,
        qkv_bias: bool = False,
        o_bias: bool = False,
        mlp_bias: bool = False,
        sliding_window: int | None = None,
        qk_norm: bool = False,
        pe: str = "fope",
        pe_options: dict | None = None,
        pe_train_len: int | None = None,
        pad_token_id: int | None = None,
        bos_token_id: int | None = None,
        eos_token_id: int | list[int] | None = None,
        **kwargs,
    ):
        if pe not in PE_KINDS:
            raise ValueError(f"unknown position encoding pe={pe!r}; choose one of {list(PE_KINDS)}")
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_key_value_heads or num_attention_heads
        self.head_dim = head_dim or hidden_size // num_attention_heads
        if num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads={num_attention_heads} is not a multiple of "
                f"num_key_value_heads={self.num_key_value_heads}"
            )
        if self.head_dim % 2:
            raise ValueError(f"head_dim must be even, got {self.head_dim}")
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.use_cache = use_cache
        rope_parameters = dict(rope_parameters or {"rope_type": "default", "rope_theta": 10000.0})
        rope_parameters.setdefault("rope_type", "default")
        rope_parameters.setdefault("rope_theta", 10000.0)
        self.rope_parameters = rope_parameters
        self.qkv_bias = qkv_bias
        self.o_bias = o_bias
        self.mlp_bias = mlp_bias
        self.sliding_window = sliding_window
        self.qk_norm = qk_norm
        self.pe = pe
        self.pe_options = dict(pe_options or {})
        self.pe_train_len = pe_train_len
        super().__init__(
            pad_token_id=pad_token_id,
            bos_token_id=bos_token_id,
            eos_token_id=eos_token_id,
            tie_word_embeddings=tie_word_embeddings,
            **kwargs,
        )
        # PretrainedConfig may have normalised rope_parameters; keep ours (a plain dict with rope_theta inside)
        if not isinstance(getattr(self, "rope_parameters", None), dict):
            self.rope_parameters = rope_parameters
        self.tie_word_embeddings = tie_word_embeddings


__all__ = ["PE_KINDS", "FopeConfig"]
