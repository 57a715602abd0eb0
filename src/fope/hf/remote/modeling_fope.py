"""`FopeForCausalLM`: a Llama-family decoder (RMSNorm, SwiGLU, GQA, Llama weight names) with pluggable position
encodings: rope, fope (Fourier Position Embedding, Hua et al., ICML 2025), nope, alibi, kerple, fire.

Remote code (copied next to every saved model with its siblings ``functional.py``, ``scaling.py`` and ``options.py``,
copies of fope.pos.functional / scaling / options, which inside fope those imports resolve to; needs torch +
transformers, never ``fope``). All position math, every option default, FoPE's option checks and sizes and the
FoPE/KERPLE inits come from those three files, the code the native model runs; the classes below only hold the
parameters and read the HF config.

Shapes:
    B batch, T new tokens, S keys (cached + new), Hq query heads, Hk key/value heads, D head dim,
    F = D/2 rotary frequencies, Fin kept (unclipped) FoPE frequencies, Fout FoPE output columns.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.activations import ACT2FN
from transformers.cache_utils import Cache, DynamicCache
from transformers.modeling_outputs import BaseModelOutputWithPast, CausalLMOutputWithPast

try:  # transformers >= 5: init functions that respect the "already loaded" flags
    from transformers import initialization as hf_init
except ImportError:  # pragma: no cover - older transformers
    hf_init = nn.init

from .configuration_fope import FopeConfig
from .functional import (
    alibi_bias,
    alibi_slopes,
    angle_tables,
    apply_rotary_halves,
    fire_mlp,
    fire_normalized,
    fope_tables,
    init_coefficients,
    kerple_init_raw,
    kerple_log_bias,
    kerple_positive,
    rope_inv_freq,
    rotate_grouped,
    step_eye,
    whole_cycle_inv_freq,
)
from .options import check_fope_options, fope_sizes, hf_option_defaults
from .scaling import ALIASES as SCALING_ALIASES
from .scaling import SCALINGS, parse_scaling

# ----------------------------------------------------------------------------------------------------------------
# Frequencies from the HF config
# ----------------------------------------------------------------------------------------------------------------


def scaled_frequencies(config: FopeConfig, dim: int, seq_len: int | None = None) -> tuple[torch.Tensor, float]:
    """Frequencies (dim/2,) fp32 of the grid of size ``dim`` under ``config.rope_parameters``, and the attention
    factor multiplied into cos and sin.

    default, linear/pi, ntk, dynamic and yarn are fope.pos.scaling's transforms (the sibling file ``scaling.py``,
    the same code the native model runs; dynamic NTK uses S = max position + 1 of the call); other HF types
    (llama3, longrope, ... from converted checkpoints) use transformers' ``ROPE_INIT_FUNCTIONS`` (need dim == head_dim).
    """
    params = dict(config.rope_parameters)
    rope_type = params.get("rope_type", params.get("type", "default"))
    theta = float(params["rope_theta"])
    if rope_type in SCALINGS or rope_type in SCALING_ALIASES:
        params.pop("partial_rotary_factor", None)
        original = params.get("original_max_position_embeddings") or config.max_position_embeddings
        scaling = parse_scaling(params, train_len=int(original), theta=theta)
        # explicit CPU device: models are built under a meta-device context by from_pretrained
        return scaling(rope_inv_freq(dim, theta, device="cpu"), theta=theta, dim=dim, seq_len=seq_len)
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    if rope_type not in ROPE_INIT_FUNCTIONS:
        raise ValueError(
            f"unsupported rope_type {rope_type!r}; choose one of {sorted(SCALINGS)} or {sorted(ROPE_INIT_FUNCTIONS)}"
        )
    if dim != config.head_dim:
        raise ValueError(f"rope_type {rope_type!r} needs the frequency grid size {dim} to equal head_dim")
    inv_freq, attention_factor = ROPE_INIT_FUNCTIONS[rope_type](config, None)
    return inv_freq.float(), float(attention_factor)


def expand_heads(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """(B, Hk, ...) -> (B, Hk*n_rep, ...): query head h uses kv head h // n_rep (HF ``repeat_kv`` grouping)."""
    return x if n_rep == 1 else x.repeat_interleave(n_rep, dim=1)


# ----------------------------------------------------------------------------------------------------------------
# Position-encoding modules: rotate(q, k, positions) -> (q, k);
# bias(q_idx, k_idx, positions) -> (Hq, Tq, Tk) | (B, Hq, Tq, Tk) | None (cache indices, position ids (B, Tq))
# ----------------------------------------------------------------------------------------------------------------


def _check_options(kind: str, options: dict, allowed: dict) -> dict:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown {kind} option(s) {unknown}; {kind} takes {sorted(allowed)}")
    return {**allowed, **options}


class NoPosition(nn.Module):
    """NoPE: causal masking alone carries order. The base class: ``options`` = the config's pe_options over the
    kind's defaults (fope.pos's), unknown keys rejected."""

    KIND = "nope"

    def __init__(self, config: FopeConfig):
        super().__init__()
        self.options = _check_options(self.KIND, config.pe_options, hf_option_defaults(self.KIND))

    def rotate(self, q, k, positions):
        return q, k

    def bias(self, q_idx, k_idx, positions):
        return None


class RotaryPosition(NoPosition):
    """RoPE (Su et al.) as HF Llama: x*cos + rotate_half(x)*sin, cos/sin scaled by the attention factor.
    Option whole_cycles: RoPE-A (every frequency rounded up to whole cycles within pe_train_len)."""

    KIND = "rope"

    def __init__(self, config: FopeConfig):
        super().__init__(config)
        self.whole_cycles = self.options["whole_cycles"]
        if self.whole_cycles and (not config.pe_train_len or config.rope_parameters.get("rope_type") != "default"):
            raise ValueError("rope whole_cycles=True needs pe_train_len and rope_type 'default' (no scaling)")
        self.config = config

    def tables(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (B, T) -> cos, sin (B, 1, T, D/2) fp32."""
        inv_freq, factor = scaled_frequencies(self.config, self.config.head_dim, int(positions.max()) + 1)
        if self.whole_cycles:
            inv_freq = whole_cycle_inv_freq(inv_freq, self.config.pe_train_len)
        cos, sin = angle_tables(positions, inv_freq.to(positions.device))
        cos, sin = (cos * factor, sin * factor) if factor != 1.0 else (cos, sin)
        return cos[:, None], sin[:, None]

    def rotate(self, q, k, positions):
        with torch.autocast(device_type=q.device.type, enabled=False):
            cos, sin = self.tables(positions)
            return (
                apply_rotary_halves(q.float(), cos, sin).to(q.dtype),
                apply_rotary_halves(k.float(), cos, sin).to(k.dtype),
            )


class FourierPosition(NoPosition):
    """FoPE: each rotary pair becomes a fixed random mix of the kept frequencies (fope.pos.fope, docs/paper.md).

    Buffers ``cos_coef``/``sin_coef`` (Hc, Fin, Fout), Hc = Hk (or 1 with share_heads), are saved with the model
    and never trained. Options: fope.pos.options.FoPEOptions' names, defaults, checks and sizes (sigma, clip_floor,
    floor_ratio, out_dim, pad, init, normalize, freq_dim, share_heads).
    """

    KIND = "fope"

    def __init__(self, config: FopeConfig):
        super().__init__(config)
        opts = self.options
        check_fope_options(opts, train_len=config.pe_train_len)
        self.config = config
        self.head_dim = config.head_dim
        self.dim, self.kept, n_in, n_out = fope_sizes(
            head_dim=config.head_dim,
            theta=float(config.rope_parameters["rope_theta"]),
            train_len=config.pe_train_len,
            freq_dim=opts["freq_dim"],
            clip_floor=opts["clip_floor"],
            floor_ratio=opts["floor_ratio"],
            out_dim=opts["out_dim"],
            num_inv_freq=opts.get("num_inv_freq"),
        )
        shape = (1 if opts["share_heads"] else config.num_key_value_heads, n_in, n_out)
        self.register_buffer("cos_coef", step_eye(n_in, n_out, device="cpu").expand(shape).clone())
        self.register_buffer("sin_coef", step_eye(n_in, n_out, device="cpu").expand(shape).clone())

    def reset_coefficients(self) -> None:
        """fope.pos's init (the same draws for the same seed: sin first, the native shape: no head axis when shared)."""
        for coef in (self.sin_coef, self.cos_coef):
            shape = tuple(coef.shape[1:] if self.options["share_heads"] else coef.shape)
            value = init_coefficients(shape, init=self.options["init"], sigma=float(self.options["sigma"]))
            hf_init.copy_(coef, value.reshape(coef.shape))

    def tables(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """positions (B, T) -> cos, sin (B, Hc, T, D/2) fp32: the whole grid is scaled, then the clip mask of the
        unscaled grid keeps Fin frequencies."""
        inv_freq, factor = scaled_frequencies(self.config, self.dim, int(positions.max()) + 1)
        return fope_tables(
            positions,
            inv_freq[self.kept],
            cos_coef=self.cos_coef,
            sin_coef=self.sin_coef,
            half=self.head_dim // 2,
            pad=self.options["pad"],
            normalize=self.options["normalize"],
            scale=factor,
        )

    def rotate(self, q, k, positions):
        with torch.autocast(device_type=q.device.type, enabled=False):
            q_out, k_out = rotate_grouped(q, k, *self.tables(positions))
        return q_out.to(q.dtype), k_out.to(k.dtype)


class AlibiPosition(NoPosition):
    """ALiBi: bias[h, i, j] = -slope_h * |i - j|."""

    KIND = "alibi"

    def __init__(self, config: FopeConfig):
        super().__init__(config)
        self.n_heads = config.num_attention_heads

    def bias(self, q_idx, k_idx, positions):
        return alibi_bias(alibi_slopes(self.n_heads).to(q_idx.device), q_idx, k_idx)


class KerplePosition(NoPosition):
    """KERPLE-log (Chi et al. 2022): bias[h, i, j] = -r1_h * log(1 + r2_h * |i - j|), r = 0.01 + softplus(raw_r).

    Parameters ``raw_r1``, ``raw_r2`` (Hq,), learned. Option init: "uniform" (the authors' code) or "ones".
    """

    KIND = "kerple"

    def __init__(self, config: FopeConfig):
        super().__init__(config)
        if self.options["init"] not in ("uniform", "ones"):
            raise ValueError(f"kerple init must be 'uniform' or 'ones', got {self.options['init']!r}")
        self.raw_r1 = nn.Parameter(torch.zeros(config.num_attention_heads))
        self.raw_r2 = nn.Parameter(torch.zeros(config.num_attention_heads))

    def reset_parameters(self) -> None:
        for raw, value in zip((self.raw_r1, self.raw_r2), kerple_init_raw(self.raw_r1.shape[0], self.options["init"])):
            hf_init.copy_(raw, value)

    def bias(self, q_idx, k_idx, positions):
        return kerple_log_bias(kerple_positive(self.raw_r1), kerple_positive(self.raw_r2), q_idx, k_idx)


class FirePosition(NoPosition):
    """FIRE (Li et al. 2024): bias_h(i, j) = MLP(psi(|i - j|) / psi(max(L, i)))_h, psi(x) = log(|c x| + 1).

    Learned: c, threshold_scale (L = |threshold_scale| * threshold_init), mlp_in (1 -> width), mlp_out (width -> Hq).
    Options: mlp_width, c_init, threshold (None: pe_train_len), eps.
    """

    KIND = "fire"

    def __init__(self, config: FopeConfig):
        super().__init__(config)
        threshold = self.options["threshold"] or config.pe_train_len
        if not threshold:
            raise ValueError("fire needs a threshold (pe_options threshold or pe_train_len)")
        self.eps, self.threshold0 = float(self.options["eps"]), float(threshold)
        self.c = nn.Parameter(torch.tensor(float(self.options["c_init"])))
        self.threshold_scale = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("threshold_init", torch.tensor(float(threshold)))
        self.mlp_in = nn.Linear(1, int(self.options["mlp_width"]))
        self.mlp_out = nn.Linear(int(self.options["mlp_width"]), config.num_attention_heads)

    def reset_parameters(self) -> None:
        hf_init.constant_(self.c, float(self.options["c_init"]))
        hf_init.ones_(self.threshold_scale)
        hf_init.constant_(self.threshold_init, self.threshold0)
        for layer in (self.mlp_in, self.mlp_out):  # PyTorch's default Linear init
            bound_w = 1.0 / math.sqrt(layer.in_features)
            hf_init.uniform_(layer.weight, -bound_w, bound_w)
            hf_init.uniform_(layer.bias, -bound_w, bound_w)

    def bias(self, q_idx, k_idx, positions):
        """(B, Hq, Tq, Tk): distances |i - j| from the cache indices (their differences are the position ids'
        under left padding), normalised by the query's position id ``positions`` (B, Tq), not its cache index:
        FIRE divides by the absolute position, so this keeps a left-padded row equal to the row alone."""
        threshold = (self.threshold_scale.float() * self.threshold_init.float()).abs()
        x = fire_normalized(self.c, threshold, self.eps, q_idx[:, None] - k_idx[None, :], positions[..., None])
        return fire_mlp(x, self.mlp_in.weight[:, 0], self.mlp_in.bias, self.mlp_out.weight, self.mlp_out.bias)


POSITION_CLASSES = {
    cls.KIND: cls for cls in (NoPosition, RotaryPosition, FourierPosition, AlibiPosition, KerplePosition, FirePosition)
}


def build_position(config: FopeConfig) -> nn.Module:
    if config.pe not in POSITION_CLASSES:
        raise ValueError(f"unknown position encoding pe={config.pe!r}; choose one of {sorted(POSITION_CLASSES)}")
    return POSITION_CLASSES[config.pe](config)


# ----------------------------------------------------------------------------------------------------------------
# Decoder
# ----------------------------------------------------------------------------------------------------------------


class FopeRMSNorm(nn.Module):
    def __init__(self, hidden_size: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class FopeMLP(nn.Module):
    """SwiGLU: down(act(gate(x)) * up(x))."""

    def __init__(self, config: FopeConfig):
        super().__init__()
        h, i, b = config.hidden_size, config.intermediate_size, config.mlp_bias
        self.gate_proj = nn.Linear(h, i, bias=b)
        self.up_proj = nn.Linear(h, i, bias=b)
        self.down_proj = nn.Linear(i, h, bias=b)
        self.act_fn = ACT2FN[config.hidden_act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


class FopeAttention(nn.Module):
    """Grouped-query attention (torch SDPA) whose position encoding is ``self.pos_enc``."""

    def __init__(self, config: FopeConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.n_heads, self.n_kv = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = config.head_dim
        self.sliding_window = config.sliding_window
        h, d = config.hidden_size, config.head_dim
        self.q_proj = nn.Linear(h, self.n_heads * d, bias=config.qkv_bias)
        self.k_proj = nn.Linear(h, self.n_kv * d, bias=config.qkv_bias)
        self.v_proj = nn.Linear(h, self.n_kv * d, bias=config.qkv_bias)
        self.o_proj = nn.Linear(self.n_heads * d, h, bias=config.o_bias)
        if getattr(config, "qk_norm", False):  # Qwen3: RMSNorm of each q/k head before the position encoding
            self.q_norm = FopeRMSNorm(d, config.rms_norm_eps)
            self.k_norm = FopeRMSNorm(d, config.rms_norm_eps)
        self.pos_enc = build_position(config)

    def forward(
        self,
        x: torch.Tensor,
        positions: torch.Tensor,
        key_padding: torch.Tensor | None,
        cache: Cache | None,
    ) -> torch.Tensor:
        """x (B, T, h); positions (B, T); key_padding (B, S) bool, True = real token, or None."""
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)  # (B, Hq, T, D)
        k = self.k_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)  # (B, Hk, T, D)
        v = self.v_proj(x).view(b, t, self.n_kv, self.head_dim).transpose(1, 2)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = self.pos_enc.rotate(q, k, positions)
        past = 0
        if cache is not None:
            past = cache.get_seq_length(self.layer_idx)
            k, v = cache.update(k, v, self.layer_idx)  # (B, Hk, S, D)
        s = k.shape[2]
        rep = self.n_heads // self.n_kv
        k, v = expand_heads(k, rep), expand_heads(v, rep)  # (B, Hq, S, D)
        q_idx = torch.arange(past, past + t, device=x.device)
        k_idx = torch.arange(s, device=x.device)
        mask = self._mask(q_idx, k_idx, key_padding, q.dtype, positions)
        if mask is None:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, t, self.n_heads * self.head_dim))

    def _mask(self, q_idx, k_idx, key_padding, dtype, positions) -> torch.Tensor | None:
        """Additive (B|1, Hq|1, T, S) mask: causal + sliding window + padding + the encoding's bias; None if plain causal."""
        bias = self.pos_enc.bias(q_idx, k_idx, positions)  # (Hq, T, S) | (B, Hq, T, S) | None
        square = q_idx.numel() == k_idx.numel()
        if bias is None and key_padding is None and self.sliding_window is None and (square or q_idx.numel() == 1):
            return None
        allowed = k_idx[None, :] <= q_idx[:, None]  # (T, S)
        if self.sliding_window is not None:
            allowed = allowed & (q_idx[:, None] - k_idx[None, :] < self.sliding_window)
        allowed = allowed[None, None]  # (1, 1, T, S)
        if key_padding is not None:
            allowed = allowed & key_padding[:, None, None, :]  # (B, 1, T, S)
        base = (
            torch.zeros((), dtype=dtype, device=q_idx.device)
            if bias is None
            else (bias if bias.dim() == 4 else bias[None]).to(dtype)
        )
        return base.masked_fill(~allowed, torch.finfo(dtype).min)


class FopeDecoderLayer(nn.Module):
    def __init__(self, config: FopeConfig, layer_idx: int):
        super().__init__()
        self.self_attn = FopeAttention(config, layer_idx)
        self.mlp = FopeMLP(config)
        self.input_layernorm = FopeRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = FopeRMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, positions, key_padding, cache):
        x = x + self.self_attn(self.input_layernorm(x), positions, key_padding, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class FopePreTrainedModel(PreTrainedModel):
    config_class = FopeConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules: ClassVar[list[str]] = ["FopeDecoderLayer"]
    _supports_sdpa = True

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, FourierPosition):
            module.reset_coefficients()
        elif isinstance(module, (KerplePosition, FirePosition)):
            module.reset_parameters()
        elif isinstance(module, FopeRMSNorm):
            hf_init.ones_(module.weight)
        else:
            super()._init_weights(module)


class FopeModel(FopePreTrainedModel):
    def __init__(self, config: FopeConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList(FopeDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = FopeRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.gradient_checkpointing = False
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        use_cache: bool | None = None,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> BaseModelOutputWithPast:
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of input_ids or inputs_embeds")
        cache = cache if cache is not None else past_key_values
        if cache is not None and not isinstance(cache, Cache):
            raise ValueError(f"cache must be a transformers Cache (e.g. DynamicCache), got {type(cache).__name__}")
        use_cache = self.config.use_cache if use_cache is None else use_cache
        if use_cache and cache is None and not self.training:
            cache = DynamicCache()
        x = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, h)
        b, t = x.shape[:2]
        past = cache.get_seq_length() if cache is not None else 0
        key_padding = None
        if attention_mask is not None:
            if attention_mask.dim() != 2 or attention_mask.shape[1] != past + t:
                raise ValueError(
                    f"attention_mask must be (batch, past + new) = ({b}, {past + t}), got {tuple(attention_mask.shape)}"
                )
            if not bool(attention_mask.all()):
                key_padding = attention_mask.bool()
        if position_ids is None and key_padding is not None:  # padding: a row's positions count its real tokens
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:]
        elif position_ids is None:
            position_ids = torch.arange(past, past + t, device=x.device)[None].expand(b, t)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                x = self._gradient_checkpointing_func(layer.__call__, x, position_ids, key_padding, cache)
            else:
                x = layer(x, position_ids, key_padding, cache)
        return _output(BaseModelOutputWithPast, last_hidden_state=self.norm(x), cache=cache if use_cache else None)


def _output(cls, *, cache, **fields):
    """Build an HF output whatever the cache field is called in this transformers version."""
    name = "cache" if "cache" in cls.__dataclass_fields__ else "past_key_values"
    return cls(**fields, **{name: cache})


class FopeForCausalLM(FopePreTrainedModel, GenerationMixin):
    _tied_weights_keys: ClassVar[dict[str, str]] = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config: FopeConfig):
        super().__init__(config)
        self.model = FopeModel(config)
        self.vocab_size = config.vocab_size
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.embed_tokens

    def set_input_embeddings(self, value):
        self.model.embed_tokens = value

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache: Cache | None = None,
        inputs_embeds: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int = 0,
        past_key_values: Cache | None = None,
        **kwargs,
    ) -> CausalLMOutputWithPast:
        """Logits (B, T, V); with ``labels`` (B, T) also the mean next-token loss (label -100 = ignored)."""
        out = self.model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache if cache is not None else past_key_values,
            inputs_embeds=inputs_embeds,
            use_cache=use_cache,
        )
        hidden = out.last_hidden_state
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self.lm_head(hidden).float()
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1).to(logits.device),
                ignore_index=-100,
            )
        cache_out = getattr(out, "cache", None) if hasattr(out, "cache") else out.past_key_values
        return _output(CausalLMOutputWithPast, loss=loss, logits=logits, cache=cache_out)


__all__ = [
    "POSITION_CLASSES",
    "FopeConfig",
    "FopeForCausalLM",
    "FopeModel",
    "FopePreTrainedModel",
    "scaled_frequencies",
]
