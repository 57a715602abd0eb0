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

FoPE floor length (docs/paper.md §7.6): ``train_len`` sets N in the clip floor 2*pi/N. Default: the source's
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

from fope.pos.options import KINDS, hf_option_defaults
from fope.utils import did_you_mean, json_object

#: model_type -> (q/k/v bias attribute or True/False, o bias attribute or True/False)
SUPPORTED = ("llama", "mistral", "qwen2")  # plus fope_llama with pe="rope" (an exported native RoPE model)
#: the model_types `convert` reads (SUPPORTED and fope_llama), checked from config.json before the weights load
SOURCE_MODEL_TYPES = (*SUPPORTED, "fope_llama")

#: PE options the remote model understands, per kind (fope.pos.options.hf_option_defaults: the one definition
#: the remote model and fope.pos read; theta and scaling go to rope_parameters)
REMOTE_OPTIONS: dict[str, tuple[str, ...]] = {kind: tuple(hf_option_defaults(kind)) for kind in KINDS}

#: the FoPE setting that reduces exactly to RoPE (identity coefficients, all frequencies, full width)
ROPE_REDUCTION = {"sigma": 0.0, "clip_floor": False, "out_dim": "full"}

#: FoPE options recommended for converting a *pretrained* RoPE model (docs/huggingface.md, "Which FoPE options to
#: convert a pretrained RoPE model with"): every kept frequency stays on its own pair (identity + noise, no
#: step-eye reassignment) and the clipped pairs become true zero frequencies (cos 1, sin 0; no 45-degree rotation
#: and sqrt(2) scaling). Still FoPE: clip floor on, Fourier mixing with noise sigma (the release default 0.3).
CONVERT_PRESERVING = {"out_dim": "full", "pad": "zero"}

#: Named conversion recipes (``fope hf convert --preset NAME``): FoPE options plus ``floor_cycles`` (see
#: `floor_length`). Measured to 2x SmolLM2's context in docs/huggingface.md (benchmarks/hf_conversion_context.py).
#:   release       the authors' defaults (out_dim cap, pad one, floor N): for training from scratch; breaks a
#:                 pretrained model zero-shot
#:   preserving    out_dim full, pad zero, floor N (= CONVERT_PRESERVING): good up to ~N/8, costly at N
#:   keep-context  out_dim full, pad zero, sigma 0.15, floor at 1/16 of a cycle over N: clips only the frequencies
#:                 that turn less than 22.5 degrees over the whole trained context (SmolLM2: 4 of 32); measured
#:                 x1.03 at 8192 (sigma 0.3 costs x1.10 there: at the full context the noise dominates)
#:   noise-only    out_dim full, pad zero, no clip floor: RoPE + the Fourier noise (a fine-tune can move it to FoPE)
#:   rope-exact    ROPE_REDUCTION: the source's logits exactly (a FoPE module that starts as RoPE)
#:   engines       out_dim full, pad one, floor N: what the released engines serve (vLLM 0.33.0: square
#:                 coefficients, pad one; `fope hf export --format engines`); Intern-S1-Pro's FoPE on the source's
#:                 theta and context (fope.hf.engines.INTERN_S1_PRO). Like release, for training, not zero-shot use
CONVERT_PRESETS: dict[str, dict[str, Any]] = {
    "release": {},
    "preserving": dict(CONVERT_PRESERVING),
    "keep-context": {**CONVERT_PRESERVING, "floor_cycles": 1 / 16, "sigma": 0.15},
    "noise-only": {**CONVERT_PRESERVING, "clip_floor": False},
    "rope-exact": dict(ROPE_REDUCTION),
    "engines": {"out_dim": "full", "pad": "one"},
}


def floor_length(context: int, floor_cycles: float) -> int:
    """FoPE floor length N' that clips exactly the frequencies completing fewer than ``floor_cycles`` periods over
    ``context`` tokens: ω·context/(2π) < c  <=>  ω < 2π/(context/c), so N' = round(context / c).

    ``floor_cycles=1`` is the paper's floor (N' = context: clip what never completed one period)."""
    if isinstance(floor_cycles, bool) or not isinstance(floor_cycles, (int, float)) or not 0 < floor_cycles <= 1:
        raise ValueError(f"floor_cycles must be a number in (0, 1], got {floor_cycles!r}")
    return round(context / floor_cycles)


def preset_options(name: str) -> dict[str, Any]:
    """A copy of ``CONVERT_PRESETS[name]``; ValueError naming the preset and the choices."""
    if name not in CONVERT_PRESETS:
        raise ValueError(f"unknown conversion preset {name!r}; choose one of {list(CONVERT_PRESETS)}")
    return dict(CONVERT_PRESETS[name])


def source_context_length(config: Any) -> int:
    """The source model's pre-training context: rope_parameters' original_max_position_embeddings, else
    max_position_embeddings."""
    rope = getattr(config, "rope_parameters", None) or {}
    return int(rope.get("original_max_position_embeddings") or config.max_position_embeddings)


def fope_config_from_hf(config: Any, *, pe: str, train_len: int | None, pe_options: dict[str, Any]):
    """A `FopeConfig` with the source's shapes, norm eps, rope_parameters and special tokens."""
    from .remote.configuration_fope import FopeConfig

    model_type = getattr(config, "model_type", None)
    if model_type == "fope_llama":  # an exported native RoPE model (or an earlier conversion to rope)
        if config.pe != "rope":
            raise ValueError(f"cannot convert a FopeForCausalLM with pe={config.pe!r}: only pe='rope' sources")
        _check_remote_options(pe, pe_options)
        fields = config.to_dict()
        for key in ("model_type", "architectures", "auto_map", "transformers_version", "dtype", "torch_dtype"):
            fields.pop(key, None)
        fields.update(
            pe=pe, pe_options=copy.deepcopy(pe_options), pe_train_len=train_len or source_context_length(config)
        )
        return FopeConfig(**fields)
    if model_type not in SUPPORTED:
        raise ValueError(f"cannot convert model_type={model_type!r}: supported are {list(SUPPORTED)}")
    _check_remote_options(pe, pe_options)
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


def check_convert_options(
    pe: str, pe_options: dict[str, Any], *, train_len: Any = None, floor_cycles: Any = None
) -> None:
    """ValueError naming the value for a conversion setting out of range, checked before any model is loaded: the
    kind and its option names, ``train_len`` (a positive number of tokens), ``floor_cycles`` (in (0, 1]) and, for
    FoPE, every option's range (`fope.pos.options.check_fope_options`: sigma finite and >= 0, ...)."""
    from fope.pos.options import check_fope_options

    _check_remote_options(pe, pe_options)
    if train_len is not None and (isinstance(train_len, bool) or not isinstance(train_len, int) or train_len < 1):
        raise ValueError(f"train_len (--train-len) must be a positive number of tokens, got {train_len!r}")
    if floor_cycles is not None:
        floor_length(1, floor_cycles)  # ValueError naming it
    if pe == "fope":
        check_fope_options({**hf_option_defaults("fope"), **pe_options}, train_len=train_len or 1)


def _check_remote_options(pe: str, pe_options: dict[str, Any]) -> None:
    if pe not in REMOTE_OPTIONS:
        raise ValueError(f"unknown pe={pe!r}{did_you_mean(pe, KINDS)}; choose one of {list(KINDS)}")
    allowed = REMOTE_OPTIONS[pe]
    unknown = sorted(set(pe_options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown option(s) {unknown} for pe={pe!r}; it takes {list(allowed)}")


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


def convert(
    model: Any,
    pe: str = "fope",
    *,
    train_len: int | None = None,
    seed: int = 0,
    floor_cycles: float | None = None,
    rope_scaling: dict[str, Any] | None = None,
    **pe_options: Any,
):
    """A `FopeForCausalLM` with every weight of the HF causal LM ``model`` and the position encoding ``pe``.

    Args:
        model: a transformers LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM (any dtype).
        pe: "fope" | "rope" | "nope" | "alibi" | "kerple" | "fire" (bias kinds start from their own init).
        train_len: FoPE floor length N (default: the source's pre-training context; see the module docstring).
        floor_cycles: instead of ``train_len``: clip the frequencies completing fewer than this many periods over the
            source's context (`floor_length`; 1 = the default floor).
        rope_scaling: HF ``rope_parameters`` scaling for the new model (e.g. ``{"rope_type": "yarn", "factor": 2}``,
            see `parse_rope_scaling`); replaces the source's scaling; theta stays the source's.
        seed: seeds the FoPE coefficient noise (and KERPLE's init), so a conversion is reproducible.
        **pe_options: the encoding's options, e.g. ``sigma=0.3, out_dim="full"`` for fope (`REMOTE_OPTIONS`).
    Returns:
        The converted model in eval mode, on the source's device and dtype.
    Raises:
        ValueError naming the offending model type, option or weight.
    """
    from .remote.modeling_fope import FopeForCausalLM

    check_convert_options(pe, pe_options, train_len=train_len, floor_cycles=floor_cycles)
    if floor_cycles is not None:
        if train_len is not None:
            raise ValueError(f"give train_len={train_len} or floor_cycles={floor_cycles}, not both")
        train_len = floor_length(source_context_length(model.config), floor_cycles)
    cfg = fope_config_from_hf(model.config, pe=pe, train_len=train_len, pe_options=pe_options)
    if rope_scaling is not None:
        cfg.rope_parameters = scaled_rope_parameters(
            cfg.rope_parameters, rope_scaling, source_context_length(model.config)
        )
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


def parse_rope_scaling(spec: str | dict[str, Any] | None) -> dict[str, Any] | None:
    """``"yarn:2"`` / ``"linear:4"`` / ``"pi:2"`` / ``"dynamic:2"`` / ``"ntk:2"`` / ``"none"`` or a JSON/HF dict ->
    an HF scaling dict (``{"rope_type": "yarn", "factor": 2.0}``), None for "none"/None.
    ValueError naming the text when it is neither form."""
    if spec is None or isinstance(spec, dict):
        return None if spec is None else dict(spec)
    text = str(spec).strip()
    if text.lower() in ("none", "default", ""):
        return None
    if text.startswith("{"):
        return json_object(text, f"--rope-scaling {text!r}")
    kind, sep, factor = text.partition(":")
    kind = {"pi": "linear"}.get(kind.lower(), kind.lower())
    try:
        factor_value = float(factor)
    except ValueError:
        factor_value = float("nan")
    if not sep or kind not in ("linear", "yarn", "dynamic", "ntk") or not factor_value > 0:
        raise ValueError(
            f"--rope-scaling {text!r}: use TYPE:FACTOR with TYPE one of yarn, linear (pi), dynamic, "
            f"ntk and FACTOR > 0 (e.g. yarn:2), or a JSON dict like HF rope_parameters"
        )
    return {"rope_type": kind, "factor": factor_value}


def scaled_rope_parameters(rope: dict[str, Any], scaling: dict[str, Any], context: int) -> dict[str, Any]:
    """``rope`` (theta kept) with ``scaling``'s type and keys; yarn/dynamic get
    ``original_max_position_embeddings=context`` unless given (fope's remote model reads every type, ``ntk``
    included)."""
    from fope.pos.scaling import parse_scaling

    scaling = dict(scaling)
    theta = float(rope["rope_theta"])
    scaling.pop("rope_theta", None)
    parsed = parse_scaling(scaling, train_len=context, theta=theta)  # validates, names bad keys
    out = {
        "rope_type": parsed.rope_type,
        "rope_theta": theta,
        **{k: v for k, v in parsed.to_hf().items() if k != "rope_type"},
    }
    if parsed.rope_type in ("yarn", "dynamic"):
        out["original_max_position_embeddings"] = parsed.original_max_position_embeddings
    return out


def hf_rope_scaling(config: Any, scaling: dict[str, Any], *, native_ntk: bool = False) -> Any:
    """Set ``scaling`` on an HF config in place (theta kept, context = `source_context_length`); returns it.

    Static NTK has no HF rope type: unless ``native_ntk`` (fope's own model reads "ntk"), it becomes the default
    type with the NTK-aware theta θ·f^(d/(d−2)), which is the same frequencies."""
    rope = dict(getattr(config, "rope_parameters", None) or {})
    rope.setdefault("rope_theta", float(getattr(config, "rope_theta", 10000.0)))
    new = scaled_rope_parameters(rope, scaling, source_context_length(config))
    if new["rope_type"] == "ntk" and not native_ntk:
        from fope.pos.scaling import ntk_theta

        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        new = {"rope_type": "default", "rope_theta": ntk_theta(new["rope_theta"], head_dim, float(new["factor"]))}
    config.rope_parameters = new
    return config


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
    "CONVERT_PRESERVING",
    "CONVERT_PRESETS",
    "ROPE_REDUCTION",
    "SOURCE_MODEL_TYPES",
    "SUPPORTED",
    "check_convert_options",
    "convert",
    "floor_length",
    "fope_config_from_hf",
    "hf_rope_scaling",
    "load_weights",
    "parse_rope_scaling",
    "preset_options",
    "scaled_rope_parameters",
    "source_context_length",
]
