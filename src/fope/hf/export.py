"""Export a native fope model (``fope.model.CausalLM`` / a model directory) to the Hugging Face format.

    >>> fope.hf.export("runs/cpu-small-fope/model", "hf/cpu-small-fope")     # or: fope hf export --model ... --out ...

The result is a `FopeForCausalLM` directory (remote code inside) whose logits equal the native model's
(tests/hf/test_export.py compares them with the same `native_to_hf` this module uses). Weight mapping:

    embed.weight                      -> model.embed_tokens.weight
    blocks.i.attn_norm / ff_norm      -> model.layers.i.input_layernorm / post_attention_layernorm
    blocks.i.attn.att_proj (q|k|v)    -> model.layers.i.self_attn.{q,k,v}_proj      (rows split Hq*D | Hk*D | Hk*D)
    blocks.i.attn.attn_out            -> model.layers.i.self_attn.o_proj
    blocks.i.mlp.ff_proj (up|gate)    -> model.layers.i.mlp.{up,gate}_proj           (rows split in halves)
    blocks.i.mlp.ff_out               -> model.layers.i.mlp.down_proj
    blocks.i.attn.pos.<buffer>        -> model.layers.i.self_attn.pos_enc.<buffer>   (FoPE coefficients, KERPLE r1/r2)
    norm / lm_head                    -> model.norm / lm_head

Learnable FoPE coefficients become fixed buffers in the HF model (their values are kept).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch


def rope_parameters_from_native(pe_options: dict[str, Any], train_len: int) -> dict[str, Any]:
    """HF ``rope_parameters`` for a native rope/fope encoding (theta + its ``scaling`` dict)."""
    scaling = dict(pe_options.get("scaling") or {})
    if "type" in scaling:
        scaling.setdefault("rope_type", scaling.pop("type"))
    rope = {"rope_type": scaling.pop("rope_type", "default"), "rope_theta": float(pe_options.get("theta", 10000.0))}
    if "rope_theta" in scaling and float(scaling.pop("rope_theta")) != rope["rope_theta"]:
        raise ValueError("scaling rope_theta differs from theta")
    rope.update(scaling)
    if rope["rope_type"] in ("yarn", "dynamic"):
        rope.setdefault("original_max_position_embeddings", train_len)
    return rope


def hf_config_from_native(cfg: Any):
    """A `FopeConfig` describing the native ``ModelConfig`` ``cfg``."""
    from fope.pos.options import HF_ELSEWHERE
    from fope.pos.options import KINDS as REMOTE_KINDS

    from .remote.configuration_fope import FopeConfig

    if cfg.pe not in REMOTE_KINDS:  # a kind registered beyond fope's own: no remote code carries its math
        raise ValueError(
            f"cannot export pe={cfg.pe!r} to the Hugging Face format: its remote code carries {list(REMOTE_KINDS)} only"
        )
    cfg = cfg.resolved()
    if getattr(cfg, "qk_norm", False):
        raise ValueError("cannot export qk_norm=True: the HF model has no QK norm")
    options = copy.deepcopy(dict(cfg.pe_options))
    rope = rope_parameters_from_native(options, cfg.train_len)
    for key in HF_ELSEWHERE:  # theta/scaling are in rope; n_kv_heads is the shape; learnable values are kept
        options.pop(key, None)
    return FopeConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.mlp_hidden,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.head_dim,
        hidden_act="silu",
        max_position_embeddings=cfg.train_len,
        initializer_range=cfg.init_std,
        rms_norm_eps=cfg.norm_eps,
        tie_word_embeddings=False,
        rope_parameters=rope,
        pe=cfg.pe,
        pe_options=options,
        pe_train_len=cfg.train_len,
    )


def native_state_to_hf(state: dict[str, torch.Tensor], cfg: Any) -> dict[str, torch.Tensor]:
    """Rename/split a native state dict into HF Llama names (see the module docstring)."""
    cfg = cfg.resolved()
    q_rows, kv_rows = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    out = {
        "model.embed_tokens.weight": state["embed.weight"],
        "model.norm.weight": state["norm.weight"],
        "lm_head.weight": state["lm_head.weight"],
    }
    for i in range(cfg.n_layers):
        src, dst = f"blocks.{i}.", f"model.layers.{i}."
        q, k, v = state[src + "attn.att_proj.weight"].split((q_rows, kv_rows, kv_rows), dim=0)
        up, gate = state[src + "mlp.ff_proj.weight"].chunk(2, dim=0)
        out.update(
            {
                dst + "input_layernorm.weight": state[src + "attn_norm.weight"],
                dst + "post_attention_layernorm.weight": state[src + "ff_norm.weight"],
                dst + "self_attn.q_proj.weight": q,
                dst + "self_attn.k_proj.weight": k,
                dst + "self_attn.v_proj.weight": v,
                dst + "self_attn.o_proj.weight": state[src + "attn.attn_out.weight"],
                dst + "mlp.up_proj.weight": up,
                dst + "mlp.gate_proj.weight": gate,
                dst + "mlp.down_proj.weight": state[src + "mlp.ff_out.weight"],
            }
        )
        for key, value in state.items():
            if key.startswith(src + "attn.pos."):
                name = key[len(src + "attn.pos.") :]
                out[dst + "self_attn.pos_enc." + name] = value[None] if value.dim() == 2 and "coef" in name else value
    known = {"embed.weight", "norm.weight", "lm_head.weight"}
    leftover = [k for k in state if k not in known and not k.startswith("blocks.")]
    if leftover:
        raise ValueError(f"native weights without an HF name: {leftover[:8]}")
    return out


def native_to_hf(model: Any):
    """A `FopeForCausalLM` (eval, fp32) with the weights and position encoding of the native ``CausalLM``."""
    from .convert import load_weights
    from .remote.modeling_fope import FopeForCausalLM

    hf_cfg = hf_config_from_native(model.config)
    hf_model = FopeForCausalLM(hf_cfg)
    state = {k: v.detach().float() for k, v in model.state_dict().items()}
    hf_state = native_state_to_hf(state, model.config)
    expected = set(hf_model.state_dict())
    unexpected = sorted(set(hf_state) - expected)
    missing = sorted(expected - set(hf_state))
    if unexpected or missing:
        raise ValueError(f"export mismatch: unexpected {unexpected[:8]}, missing {missing[:8]}")
    load_weights(hf_model, hf_state)
    return hf_model.eval()


def hf_dir(model: str | Path, export_to: str | Path) -> str | Path:
    """An HF directory or hub name for any model: a native fope model or run directory is exported to ``export_to``
    first (`export`), anything else is `fope.hf.io.resolve`'s answer; whatever HF code (lm-eval, transformers) can
    load."""
    from fope.model import find_model_dir

    from .io import resolve

    native = find_model_dir(model)
    return export(native, export_to) if native is not None else resolve(model)


def export(native: str | Path | Any, out_dir: str | Path) -> Path:
    """Write the native model (a directory, run directory or ``CausalLM``) as an HF directory at ``out_dir``;
    the native ``tokenizer.json``, if present, is saved as a ``PreTrainedTokenizerFast``.

    Everything is written to a temporary folder first (`fope.utils.atomic_dir`): a full disk or any other failure
    leaves no half-written ``out_dir`` (one line naming the file), and an existing one keeps its old files."""
    from fope.utils import atomic_dir

    from .io import save

    tokenizer = None
    if isinstance(native, (str, Path)):
        import fope.model

        model_dir = Path(native).expanduser()
        if not model_dir.is_dir():
            raise FileNotFoundError(f"no such directory: {native}")
        model = fope.model.load(model_dir)
        tokenizer = native_tokenizer(model_dir)
    else:
        model = native
    hf = native_to_hf(model)
    with atomic_dir(out_dir) as tmp:
        save(hf, tmp, tokenizer=tokenizer)
    return Path(out_dir)


def export_engines(model: str | Path, out_dir: str | Path, *, layout: str = "layers") -> Path:
    """``fope hf export --format engines``: a native fope model (directory or run directory) or an HF FoPE directory
    (a FopeForCausalLM, e.g. from ``fope hf convert``) written in the engines' format, with its tokenizer."""
    from fope.model import find_model_dir

    from .engines import save_engines
    from .io import load, load_tokenizer

    native = find_model_dir(model)
    if native is not None:
        import fope.model

        hf, tokenizer = native_to_hf(fope.model.load(native)), native_tokenizer(native)
    else:
        hf = load(model)
        if type(hf).__name__ != "FopeForCausalLM":
            raise ValueError(f"model {str(model)!r} is not a fope FoPE model; convert it first (fope hf convert)")
        try:
            tokenizer = load_tokenizer(model)
        except (OSError, ValueError):
            tokenizer = None
    return save_engines(hf, out_dir, tokenizer=tokenizer, layout=layout)


def _run_tokenizer(model_dir: Path) -> Path | None:
    """tokenizer.json of the training run ``model_dir`` (its config.yaml's ``data.tokenizer``); a model directory's
    parent is not read (export reads only what it exports)."""
    for run in (model_dir,):
        if (run / "config.yaml").is_file():
            from fope.train.config import ExperimentConfig
            from fope.train.data import tokenizer_path

            data = ExperimentConfig.from_yaml(run / "config.yaml").data
            path = tokenizer_path(data)
            if path is None and data.tokenizer.endswith(".json"):
                path = Path(data.tokenizer)
            return path
    return None


def native_tokenizer(model_dir: Path) -> Any:
    """The native directory's ``tokenizer.json`` (or, for a training run directory, the tokenizer its config.yaml
    names) as a transformers fast tokenizer, or None."""
    # lazily: the run's config.yaml is read only when the model directory has no tokenizer.json of its own
    sources = (lambda: model_dir / "tokenizer.json", lambda: model_dir / "model" / "tokenizer.json")
    for candidate in (source() for source in (*sources, lambda: _run_tokenizer(model_dir))):
        if candidate is None:
            continue
        if candidate.is_file():
            from transformers import PreTrainedTokenizerFast

            from fope.utils import reading

            with reading(
                candidate, "tokenizer", "replace it with a valid tokenizer.json, or remove it to export without"
            ):
                tok = PreTrainedTokenizerFast(tokenizer_file=str(candidate))
            for eos in ("<|endoftext|>", "</s>", "<eos>", "<|eos|>"):
                if tok.convert_tokens_to_ids(eos) is not None and tok.convert_tokens_to_ids(eos) != tok.unk_token_id:
                    tok.eos_token = eos
                    break
            return tok
    return None


__all__ = [
    "export",
    "export_engines",
    "hf_config_from_native",
    "hf_dir",
    "native_state_to_hf",
    "native_to_hf",
    "rope_parameters_from_native",
]
