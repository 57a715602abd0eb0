"""`ModelConfig`: the shape of an OLMo-style decoder, plus the named size presets.

The presets `60M`, `180M` and `1.2B` are the paper's (docs/paper.md §4.1, Table 3). The CPU presets are ours,
sized so that a 2-core machine can train them; `cpu-small` and `cpu-base` keep the paper's 60M head dim (64)
and training length (512), so FoPE clips exactly the same 16 of 32 frequencies there as in the 60M runs.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fope.utils import check_positive_int, did_you_mean


@dataclass
class ModelConfig:
    """Shape and initialisation of a `CausalLM`.

    Attributes:
        vocab_size: number of embedding rows (and logits).
        d_model: residual width.
        n_layers: number of transformer blocks.
        n_heads: query heads.
        n_kv_heads: key/value heads for grouped-query attention (None: same as n_heads; see `resolved`).
        head_dim: per-head width (None: d_model // n_heads, which must then divide evenly).
        mlp_ratio: OLMo sizing of the SwiGLU MLP: ff_proj maps d -> mlp_ratio*d, split into two halves.
        mlp_hidden: explicit width of each SwiGLU half (HF `intermediate_size`); overrides mlp_ratio
            (None: mlp_ratio * d_model // 2).
        norm_eps: RMSNorm epsilon.
        init_std: std of the truncated-normal init of every linear and embedding weight.
        init_cutoff: truncation of that init, in units of init_std (weights lie in ±cutoff·std).
        train_len: training context length; FoPE's floor frequency 2π/train_len is derived from it.
        pe: position-encoding kind (one of `fope.pos.KINDS`).
        pe_options: keyword options of that kind (e.g. `{"sigma": 0.3}` for fope, `{"theta": 10000}`).
        qk_norm: normalise every query and key head vector to zero mean and unit variance (a LayerNorm over
            head_dim without affine weights, eps norm_eps) before the position encoding rotates it (the paper's
            Table 2 "QK Norm").
    """

    vocab_size: int
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int | None = None
    head_dim: int | None = None
    mlp_ratio: int = 8
    mlp_hidden: int | None = None
    norm_eps: float = 1e-6
    init_std: float = 0.02
    init_cutoff: float = 3.0
    train_len: int = 512
    pe: str = "rope"
    pe_options: dict[str, Any] = field(default_factory=dict)
    qk_norm: bool = False

    def __post_init__(self) -> None:
        self.validate()

    # -- derived sizes -------------------------------------------------------------------------
    def _derived(self) -> tuple[int, int, int]:
        """(n_kv_heads, head_dim, mlp_hidden) with None filled in (see `resolved`)."""
        return (
            self.n_heads if self.n_kv_heads is None else self.n_kv_heads,
            self.d_model // self.n_heads if self.head_dim is None else self.head_dim,
            self.mlp_ratio * self.d_model // 2 if self.mlp_hidden is None else self.mlp_hidden,
        )

    def num_params(self, *, embeddings: int = 2) -> int:
        """Trainable parameters of the model this config builds, counted analytically.

        embeddings=2 counts the input embedding and the untied LM head; embeddings=1 gives the paper's
        convention (non-embedding parameters + one vocab x d matrix, docs/paper.md §4.1).
        """
        (Hk, D, hidden), C, Hq = self._derived(), self.d_model, self.n_heads
        attn = C * (Hq + 2 * Hk) * D + Hq * D * C
        mlp = 3 * C * hidden
        return embeddings * self.vocab_size * C + self.n_layers * (attn + mlp + 2 * C) + C

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the offending value if the configuration is inconsistent."""
        for name in ("vocab_size", "d_model", "n_layers", "n_heads", "train_len"):
            check_positive_int(name, getattr(self, name))
        for name in ("n_kv_heads", "head_dim", "mlp_hidden"):
            if getattr(self, name) is not None:
                check_positive_int(name, getattr(self, name))
        if self.mlp_hidden is None:
            check_positive_int("mlp_ratio", self.mlp_ratio)
            if (self.mlp_ratio * self.d_model) % 2:
                raise ValueError(
                    f"mlp_ratio * d_model must be even, got mlp_ratio={self.mlp_ratio}, d_model={self.d_model}"
                )
        if self.head_dim is None and self.d_model % self.n_heads:
            raise ValueError(
                f"d_model={self.d_model} is not divisible by n_heads={self.n_heads} "
                "(set head_dim explicitly or change one of them)"
            )
        kv_heads, head_dim, _ = self._derived()
        if self.n_heads % kv_heads:
            raise ValueError(f"n_heads={self.n_heads} is not divisible by n_kv_heads={self.n_kv_heads}")
        if head_dim % 2:
            raise ValueError(f"head_dim={head_dim} must be even (rotary encodings rotate pairs)")
        for name in ("norm_eps", "init_std", "init_cutoff"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not isinstance(self.qk_norm, bool):
            raise ValueError(f"qk_norm must be true or false, got {self.qk_norm!r}")
        from fope.pos import KINDS  # every registered kind (fope.pos.register, entry points)

        if self.pe not in KINDS:
            raise ValueError(f"unknown pe {self.pe!r}{did_you_mean(self.pe, KINDS)}; choose one of {sorted(KINDS)}")
        if not isinstance(self.pe_options, Mapping):
            raise ValueError(f"pe_options must be a dict, got {self.pe_options!r}")
        for key in ("head_dim", "n_heads", "train_len", "n_kv_heads"):
            if key in self.pe_options:
                raise ValueError(f"pe_options must not contain {key!r}: it is taken from the model config")

    # -- (de)serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON dict of the fields as stored (None stays None; see `resolved`)."""
        return {f.name: copy.deepcopy(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        """Inverse of `to_dict`; unknown keys raise a ValueError naming the closest field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"ModelConfig.from_dict needs a mapping, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = [k for k in data if k not in names]
        if unknown:
            key = unknown[0]
            raise ValueError(f"unknown ModelConfig field {key!r}{did_you_mean(key, names)}")
        return cls(**copy.deepcopy(dict(data)))

    def resolved(self) -> ModelConfig:
        """A copy with n_kv_heads, head_dim and mlp_hidden filled in (None -> n_heads, d_model // n_heads,
        mlp_ratio * d_model // 2): the sizes of the model this config builds, and what a model directory saves.
        ``cfg.resolved().head_dim`` is the head width whether or not the config sets it."""
        kv_heads, head_dim, mlp_hidden = self._derived()
        return dataclasses.replace(
            self,
            n_kv_heads=kv_heads,
            head_dim=head_dim,
            mlp_hidden=mlp_hidden,
            pe_options=copy.deepcopy(dict(self.pe_options)),
        )

    def replace(self, **overrides: Any) -> ModelConfig:
        """A validated copy with some fields changed (unknown names raise, naming the closest field)."""
        data = self.to_dict()
        names = list(data)
        for key in overrides:
            if key not in names:
                raise ValueError(f"unknown ModelConfig field {key!r}{did_you_mean(key, names)}")
        data.update(copy.deepcopy(overrides))
        return ModelConfig.from_dict(data)


# Named sizes. The paper's models use the GPT-NeoX vocabulary (50280 padded to 50304) and FoPE sigma
# 0.3 / 0.4 / 0.6 (Table 3); sigma is a pe_option, so pass it when choosing pe="fope" (the 60M default
# of fope.pos is used otherwise).
MODEL_PRESETS: dict[str, ModelConfig] = {
    # ours: CPU scale (parameter counts in docs/model.md, measured by tests/model/test_config.py)
    "cpu-tiny": ModelConfig(vocab_size=4096, d_model=96, n_layers=2, n_heads=3, train_len=256),
    "cpu-small": ModelConfig(vocab_size=8192, d_model=192, n_layers=4, n_heads=3, train_len=512),
    "cpu-base": ModelConfig(vocab_size=16384, d_model=320, n_layers=6, n_heads=5, train_len=512),
    # the paper's (docs/paper.md §4.1)
    "60M": ModelConfig(vocab_size=50304, d_model=512, n_layers=8, n_heads=8, train_len=512),
    "180M": ModelConfig(vocab_size=50304, d_model=1024, n_layers=8, n_heads=8, train_len=512),
    "1.2B": ModelConfig(vocab_size=50304, d_model=2048, n_layers=16, n_heads=16, train_len=512),
}

#: FoPE coefficient-noise gain used by the paper per size (Table 3); pass as pe_options={"sigma": ...}.
PAPER_FOPE_SIGMA: dict[str, float] = {"60M": 0.3, "180M": 0.4, "1.2B": 0.6}


def get_preset(name: str) -> ModelConfig:
    """A fresh copy of a named preset (ValueError naming the closest name if unknown)."""
    if name not in MODEL_PRESETS:
        raise ValueError(
            f"unknown model preset {name!r}{did_you_mean(name, MODEL_PRESETS)}; choose one of {sorted(MODEL_PRESETS)}"
        )
    return MODEL_PRESETS[name].replace()
