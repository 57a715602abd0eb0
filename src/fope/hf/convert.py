"""Convert a Hugging Face Llama-family causal LM from RoPE to any fope position encoding, keeping every weight.

    >>> from transformers import AutoModelForCausalLM
    >>> import fope.hf
    >>> src = AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M")
    >>> model = fope.hf.convert(src, pe="fope", sigma=0.3)          # FopeForCausalLM, same weights
    >>> fope.hf.save(model, "smollm2-fope", tokenizer=tok)          # loadable with trust_remote_code=True

Supported sources (model_type): llama (also SmolLM/SmolLM2), mistral, qwen2 (q/k/v biases kept; sliding-window
layers rejected). The source's theta, head_dim, GQA and ``rope_parameters`` (scaling) are carried over, so
``convert(src, pe="rope")`` and FoPE in its RoPE-reduction setting (``sigma=0.0, clip_floor=False, out_dim="full"``)
give the source's logits exactly (tests/hf/test_convert.py).

FoPE floor length (FOPE-SPEC section 6.6): ``train_len`` sets N in the clip floor 2*pi/N. Default: the source's
pre-training context (``rope_parameters["original_max_position_embeddings"]`` if present, else
``max_position_embeddings``), i.e. the frequencies that never completed a period during pre-training are clipped.
The authors' code instead uses the *new* (fine-tuning) length; pass ``train_len=4096`` to follow it.

Options: the default is the authors' release (``out_dim="cap"``, ``pad="one"``), which zero-shot moves the kept
frequencies onto other pairs and breaks a pretrained model. For conversions use ``**CONVERT_PRESERVING``
(``out_dim="full", pad="zero"``): still FoPE (clip floor + Fourier mixing), measured to cost SmolLM2 a few percent
of perplexity instead of ~45x (docs/huggingface.md, benchmarks/hf_conversion_options.py).

    >>> model = fope.hf.convert(src, pe="fope", sigma=0.3, **fope.hf.CONVERT_PRESERVING)
"""

from __future__ import annotations

import copy
from typing import Any

import torch

#: model_type -> (q/k/v bias attribute or True/False, o bias attribute or True/False)
SUPPORTED = ("llama", "mistral", "qwen2")

#: PE options the remote model understands, per kind (see remote/modeling_fope.py)
REMOTE_OPTIONS = {
    "nope": (),
    "rope": (),
    "alibi": (),
    "kerple": ("init",),
    "fire": ("mlp_width", "c_init", "threshold", "eps"),
    "fope": ("sigma", "clip_floor", "out_dim", "pad", "init", "normalize", "freq_dim", "share_heads"),
}

#: the FoPE setting that reduces exactly to RoPE (identity coefficients, all frequencies, full width)
ROPE_REDUCTION = {"sigma": 0.0, "clip_floor": False, "out_dim": "full"}

#: FoPE options recommended for converting a *pretrained* RoPE model (docs/huggingface.md, "Which FoPE options to
#: convert a pretrained RoPE model with"): every kept frequency stays on its own pair (identity + noise, no
#: step-eye reassignment) and the clipped pairs become true zero frequencies (cos 1, sin 0; no 45-degree rotation
#: and sqrt(2) scaling). Still FoPE: clip floor on, Fourier mixing with noise sigma (the release default 0.3).
CONVERT_PRESERVING = {"out_dim": "full", "pad": "zero"}


def source_context_length(config: Any) -> int:
    """The source model's pre-training context: rope_parameters' original_max_position_embeddings, else
    max_position_embeddings."""
    rope = getattr(config, "rope_parameters", None) or {}
    return int(rope.get("original_max_position_embeddings") or config.max_position_embeddings)


def fope_config_from_hf(config: Any, *, pe: str, train_len: int | None, pe_options: dict[str, Any]):
    """A `FopeConfig` with the source's shapes, norm eps, rope_parameters and special tokens."""
    from .remote.configuration_fope import PE_KINDS, FopeConfig

    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED:
        raise ValueError(f"cannot convert model_type={model_type!r}: supported are {list(SUPPORTED)}")
    if pe not in PE_KINDS:
        raise ValueError(f"unknown pe={pe!r}; choose one of {list(PE_KINDS)}")
    unknown = sorted(set(pe_options) - set(REMOTE_OPTIONS[pe]))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for pe={pe!r}; it takes {list(REMOTE_OPTIONS[pe])}")
    rope = dict(getattr(config, "rope_parameters", None) or {})
    if "rope_theta" not in rope:
        rope["rope_theta"] = float(getattr(config, "rope_theta", 10000.0))
    rope.setdefault("rope_type", "default")
    if float(rope.get("partial_rotary_factor", 1.0)) != 1.0:
        raise ValueError(f"partial_rotary_factor={rope['partial_rotary_factor']} is not supported (need 1.0)")
    qkv_bias, o_bias, sliding = _biases_and_window(config, model_type)
    n_heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_heads
    train_len = train_len or source_context_length(config)  # FoPE floor / FIRE threshold; unused by other kinds
    return FopeConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=n_heads,
        num_key_value_heads=getattr(config, "num_key_value_heads", None) or n_heads,
        head_dim=head_dim,
        hidden_act=config.hidden_act,
        max_position_embeddings=config.max_position_embeddings,
        initializer_range=getattr(config, "initializer_range", 0.02),
        rms_norm_eps=config.rms_norm_eps,
        tie_word_embeddings=bool(getattr(config, "tie_word_embeddings", False)),
        rope_parameters=rope,
        qkv_bias=qkv_bias,
        o_bias=o_bias,
        mlp_bias=bool(getattr(config, "mlp_bias", False)),
        sliding_window=sliding,
        pe=pe,
        pe_options=copy.deepcopy(pe_options),
        pe_train_len=train_len,
        pad_token_id=config.pad_token_id,
        bos_token_id=config.bos_token_id,
        eos_token_id=config.eos_token_id,
    )


def _biases_and_window(config: Any, model_type: str) -> tuple[bool, bool, int | None]:
    if model_type == "llama":
        bias = bool(getattr(config, "attention_bias", False))
        return bias, bias, None
    if model_type == "mistral":
        return False, False, getattr(config, "sliding_window", None)
    # qwen2: biases on q/k/v only; sliding windows apply to some layers only, which we do not model
    if getattr(config, "use_sliding_window", False):
        raise ValueError("qwen2 with use_sliding_window=True is not supported (per-layer windows)")
    return True, False, None


def convert(model: Any, pe: str = "fope", *, train_len: int | None = None, seed: int = 0, **pe_options: Any):
    """A `FopeForCausalLM` with every weight of the HF causal LM ``model`` and the position encoding ``pe``.

    Args:
        model: a transformers LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM (any dtype).
        pe: "fope" | "rope" | "nope" | "alibi" | "kerple" | "fire" (bias kinds start from their own init).
        train_len: FoPE floor length N (default: the source's pre-training context; see the module docstring).
        seed: seeds the FoPE coefficient noise (and KERPLE's init), so a conversion is reproducible.
        **pe_options: the encoding's options, e.g. ``sigma=0.3, out_dim="quarter"`` for fope.
    Returns:
        The converted model in eval mode, on the source's device and dtype.
    Raises:
        ValueError naming the offending model type, option or weight.
    """
    from .remote.modeling_fope import FopeForCausalLM

    cfg = fope_config_from_hf(model.config, pe=pe, train_len=train_len, pe_options=pe_options)
    param = next(model.parameters())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new = FopeForCausalLM(cfg)
    new.to(dtype=param.dtype, device=param.device)
    source = {k: v for k, v in model.state_dict().items() if not k.endswith("rotary_emb.inv_freq")}
    if cfg.tie_word_embeddings:
        source.pop("lm_head.weight", None)
    load_weights(new, source)
    if cfg.tie_word_embeddings:
        new.tie_weights()
    copy_generation_config(model, new)
    return new.eval()


def load_weights(model: Any, state: dict[str, torch.Tensor]) -> None:
    """Load ``state`` into ``model``: every source weight must be used, and only position-encoding state
    (``*.pos_enc.*``) and a tied lm_head may be missing. Raises ValueError naming the offending keys."""
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = {"lm_head.weight"} if model.config.tie_word_embeddings else set()
    missing = [k for k in missing if ".pos_enc." not in k and k not in tied]
    if missing or unexpected:
        raise ValueError(f"weight names do not match: missing {missing[:8]}, unexpected {list(unexpected)[:8]}")


def copy_generation_config(src: Any, dst: Any) -> None:
    gen = getattr(src, "generation_config", None)
    if gen is not None:
        dst.generation_config = copy.deepcopy(gen)


__all__ = [
    "convert", "fope_config_from_hf", "load_weights", "source_context_length", "ROPE_REDUCTION", "CONVERT_PRESERVING",
    "SUPPORTED",
]
