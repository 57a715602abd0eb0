"""FoPE: Fourier Position Embedding (Hua et al., ICML 2025), faithful to the authors' released ``FourierEmbedding``.

Defaults reproduce the release (docs/paper.md §3.3; configs ``ce-fourier/*``):

1. frequency grid ω_i = θ^(−2i/dim), i < dim/2, with dim = freq_dim if freq_dim > head_dim else head_dim;
2. clip floor: every ω_i < 2π/train_len (strict <) is zeroed and dropped -> D_in kept frequencies;
3. D_out = min(D_in, head_dim // 4) mixed pairs; the other head_dim/2 − D_out pairs are zero-frequency pairs;
4. fixed (not trained, but saved in the state_dict) coefficients ``sin_coef`` / ``cos_coef`` of shape
   (n_kv_heads, D_in, D_out), init step-eye + PyTorch ``xavier_normal_`` noise with gain σ on the 3-D tensor,
   i.e. std σ·sqrt(2 / (D_out·(D_in + H))) — far below σ;
5. per position t: S_j(t) = Σ_k sin(tω_k)·sin_coef[h,k,j], C_j(t) = Σ_k cos(tω_k)·cos_coef[h,k,j];
6. zero-frequency pairs padded with 1 for BOTH sin and cos; duplicated for the rotate-half layout;
7. x' = x⊙C + rotate_half(x)⊙S, in fp32 (autocast off), for q and k; the tables C, S are built in fp32 with
   autocast off too, whatever autocast the caller is under.

The reduction to RoPE: ``build("fope", ..., sigma=0.0, clip_floor=False, out_dim="full")`` equals
``build("rope", ...)`` exactly (also with the same ``scaling``); tested.

Options: `fope.pos.options.FoPEOptions` (every field documented there; docs/position-encodings.md for the
paper-vs-release ambiguities each one covers). Their checks and the sizes D_in, D_out are
`fope.pos.options.check_fope_options` / `fope_sizes`, shared with the Hugging Face remote model.

Tables: the mixed, padded cos/sin tables (H, L, D/2) of each layer live in the model's TableCache, keyed by the
layer and device and versioned by the coefficient tensors (so ``load_state_dict`` or an optimizer step rebuilds
them), grown on demand; each forward is a row lookup. Computed directly from the positions instead (same math):
under torch.compile, for learnable coefficients with gradients enabled, and with dynamic NTK beyond the original
length (only the rows of the call's own positions, so decoding a token costs O(1) table work).
Every function here returns cos before sin, like RoPE.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import torch
from torch import nn

from . import functional as PF
from .base import (
    PositionEncoding,
    check_heads,
    check_rotary_inputs,
    gather_rows,
    parse_options,
    position_end,
    tensor_version,
)
from .functional import init_coefficients
from .options import FoPEOptions, check_fope_options, fope_sizes
from .registry import register
from .rope import check_head_dim, check_theta
from .scaling import parse_scaling


@register("fope")
class FoPE(PositionEncoding):
    """Fourier Position Embedding (per layer: build one per attention layer).

    Attributes:
        inv_freq: (D_in,) kept frequencies (after the clip, then scaling).
        sin_coef, cos_coef: (H_kv, D_in, D_out) or (D_in, D_out) with share_heads; buffers, or Parameters when
            learnable. Saved in the state_dict either way.
        d_in, d_out, dim: sizes; kept: (dim/2,) bool mask of grid frequencies kept by the clip.
        attention_scaling: multiplied into the sin/cos tables (YaRN temperature; 1.0 otherwise).
    """

    Options = FoPEOptions

    rotary = True

    def __init__(self, *, head_dim: int, n_heads: int, train_len: int | None = None, **options: Any):
        super().__init__()
        opts = parse_options(FoPEOptions, "fope", options)
        check_head_dim("fope", head_dim)
        check_fope_options({f.name: getattr(opts, f.name) for f in fields(opts)}, train_len=train_len)
        self.opts = opts
        self.head_dim, self.n_heads, self.train_len = head_dim, n_heads, train_len
        self.n_kv_heads = check_heads("fope", n_heads, opts.n_kv_heads)
        self.theta = check_theta("fope", opts.theta)
        self.scaling = parse_scaling(opts.scaling, train_len=train_len, theta=self.theta)
        self.dim, self.kept, self.d_in, self.d_out = fope_sizes(
            head_dim=head_dim,
            theta=self.theta,
            train_len=train_len,
            freq_dim=opts.freq_dim,
            clip_floor=opts.clip_floor,
            floor_ratio=opts.floor_ratio,
            out_dim=opts.out_dim,
            num_inv_freq=opts.num_inv_freq,
        )
        self._inv_freq, self.attention_scaling = self._frequencies(None)

        heads = () if opts.share_heads else (self.n_kv_heads,)
        shape = (*heads, self.d_in, self.d_out)
        sin_coef = init_coefficients(shape, init=opts.init, sigma=float(opts.sigma))
        cos_coef = init_coefficients(shape, init=opts.init, sigma=float(opts.sigma))
        if opts.learnable:
            self.sin_coef = nn.Parameter(sin_coef)
            self.cos_coef = nn.Parameter(cos_coef)
        else:
            self.register_buffer("sin_coef", sin_coef)
            self.register_buffer("cos_coef", cos_coef)

    # -- frequencies -------------------------------------------------------------------------------------

    @property
    def inv_freq(self) -> torch.Tensor:
        return self._inv_freq

    def _frequencies(self, seq_len: int | None) -> tuple[torch.Tensor, float]:
        """Scale the whole grid (the transforms are defined on grid indices), then keep the clipped-in ones."""
        grid = PF.rope_inv_freq(self.dim, self.theta)
        scaled, attention_scaling = self.scaling(grid, theta=self.theta, dim=self.dim, seq_len=seq_len)
        return scaled[self.kept], attention_scaling

    def _dynamic(self, end: int | None) -> bool:
        """True when dynamic NTK applies to a call whose largest position + 1 is ``end``."""
        return bool(self.scaling.dynamic and end is not None and end > self.scaling.original_max_position_embeddings)

    # -- tables ------------------------------------------------------------------------------------------

    def mixed_tables(self, positions: torch.Tensor, inv_freq: torch.Tensor, scale: float):
        """Mixed and padded cos, sin from scratch, fp32: (H, T, D/2) for (T,) positions, (B, H, T, D/2) for (B, T)
        (H = 1 with share_heads), attention scaling included. Autocast off, whatever the caller's: the tables are
        fp32 (the Fourier mix is a matmul, which autocast would run in bf16)."""
        with torch.autocast(device_type=positions.device.type, enabled=False):
            return PF.fope_tables(
                positions,
                inv_freq,
                cos_coef=self.cos_coef,
                sin_coef=self.sin_coef,
                half=self.head_dim // 2,
                pad=self.opts.pad,
                normalize=self.opts.normalize,
                scale=scale,
            )

    def half_tables(self, positions: torch.Tensor, device: torch.device | None = None, end: int | None = None):
        """cos, sin for these positions: (H, T, D/2) for (T,) positions, (B, H, T, D/2) for (B, T).

        ``end``: the positions' maximum + 1 when the caller knows it (saves a device sync).
        """
        device = positions.device if device is None else device
        positions = positions.to(device)
        if self.scaling.dynamic:
            end = position_end(positions, end)
        if self._dynamic(end):  # frequencies depend on the length: the call's own rows only
            return self.mixed_tables(positions, *self._frequencies(end))
        if torch.compiler.is_compiling() or (self.sin_coef.requires_grad and torch.is_grad_enabled()):
            return self.mixed_tables(positions, self._inv_freq, self.attention_scaling)  # traceable/differentiable
        version = (
            tensor_version(self.sin_coef),
            tensor_version(self.cos_coef),
            self.sin_coef.data_ptr(),
            self.cos_coef.data_ptr(),
            self.sin_coef.dtype,
        )
        cos_t, sin_t = self.tables.get(
            ("fope", id(self), str(device)),
            max(position_end(positions, end), self.train_len or 0),
            lambda n: self.mixed_tables(torch.arange(n, device=device), self._inv_freq, self.attention_scaling),
            version,
        )
        return gather_rows(cos_t, positions), gather_rows(sin_t, positions)

    # -- the hook ----------------------------------------------------------------------------------------

    def rotate(
        self, q: torch.Tensor, k: torch.Tensor, positions: torch.Tensor, end: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """q (B, Hq, T, D), k (B, Hk, T, D), positions (T,) or (B, T) -> rotated (q, k) in their input dtypes.

        Query head h uses the coefficients of kv head h // (Hq // Hk).
        """
        check_rotary_inputs("fope", q, k, positions, self.head_dim)
        n_coef = 1 if self.opts.share_heads else self.n_kv_heads
        if n_coef != 1 and k.shape[1] != n_coef:
            raise ValueError(f"fope: k has {k.shape[1]} heads but the coefficients are for n_kv_heads={n_coef}")
        cos_t, sin_t = self.half_tables(positions, q.device, end)  # (…, H_c, T, D/2)
        with torch.autocast(device_type=q.device.type, enabled=False):
            q_out, k_out = PF.rotate_grouped(q, k, cos_t, sin_t)
        return q_out.to(q.dtype), k_out.to(k.dtype)

    def extra_repr(self) -> str:
        o = self.opts
        scaling = "" if self.scaling.rope_type == "default" else f", scaling={self.scaling.to_hf()}"
        return (
            f"head_dim={self.head_dim}, D_in={self.d_in}, D_out={self.d_out}, sigma={o.sigma}, init={o.init}, "
            f"pad={o.pad}, clip_floor={o.clip_floor}"
            f"{'' if o.floor_ratio == 1.0 else f', floor_ratio={o.floor_ratio}'}, learnable={o.learnable}{scaling}"
        )


# ---------------------------------------------------------------------------------------------------------
# continual training: coefficient expansion on checkpoint load (docs/paper.md §3.7)


def resize_coefficients(old: torch.Tensor, module: FoPE, *, mode: str = "expand") -> torch.Tensor:
    """Fit a checkpoint's coefficient tensor to ``module``'s (larger or smaller) shape, as the release does on load.

    The old block is copied into the top-left corner of
      mode="expand": a fresh init of the new shape (module's init and σ: Xavier + step-eye), the ``x+fope`` configs;
      mode="zero":   zeros (new rows/columns are zero), the ``x+yarn`` FoPE config.
    An old tensor larger along an axis is truncated.

    Args:
        old: (H, D_in_old, D_out_old) or (D_in_old, D_out_old).
    Returns:
        a tensor of the module's coefficient shape (H, D_in, D_out) / (D_in, D_out), in the module's dtype.
    """
    if mode not in ("expand", "zero"):
        raise ValueError(f"mode must be 'expand' or 'zero', got {mode!r}")
    shape = tuple(module.sin_coef.shape)
    if old.dim() != len(shape) or (old.dim() == 3 and old.shape[0] != shape[0]):
        raise ValueError(f"cannot resize coefficients of shape {tuple(old.shape)} to {shape} (heads/rank differ)")
    if mode == "expand":
        new = init_coefficients(shape, init=module.opts.init, sigma=float(module.opts.sigma))
    else:
        new = torch.zeros(shape, dtype=torch.float32)
    rows, cols = min(old.shape[-2], shape[-2]), min(old.shape[-1], shape[-1])
    new[..., :rows, :cols] = old[..., :rows, :cols].to(torch.float32)
    return new.to(device=module.sin_coef.device, dtype=module.sin_coef.dtype)


def resize_state_dict(state_dict: Mapping[str, torch.Tensor], model: nn.Module, *, mode: str = "expand") -> dict:
    """Copy of ``state_dict`` whose FoPE coefficients are resized to ``model``'s FoPE modules (see
    :func:`resize_coefficients`). Keys absent from the state dict (RoPE -> FoPE) are left absent, so a
    ``load_state_dict(..., strict=False)`` keeps the model's fresh FoPE init."""
    out = dict(state_dict)
    for name, module in model.named_modules():
        if not isinstance(module, FoPE):
            continue
        for attr in ("sin_coef", "cos_coef"):
            key = f"{name}.{attr}" if name else attr
            if key in out and tuple(out[key].shape) != tuple(getattr(module, attr).shape):
                out[key] = resize_coefficients(out[key], module, mode=mode)
    return out
