"""Pure math of the position encodings: frequencies, rotations, Fourier mixing, bias kernels, inits.

No state, no parameters: modules in fope.pos own buffers/parameters and call these functions; tests call them
directly. Depends on ``math`` and ``torch`` only: the Hugging Face remote model ships this file as a sibling
(fope/hf/remote/functional.py) and imports it relatively, so the exported model runs the same code. Every kind's
options live in the sibling ``options.py``.

Shape legend:
    D   head dim (even), D/2 rotary pairs; pair j is (x[j], x[j + D/2]) ("rotate-half", GPT-NeoX layout)
    F   number of frequencies (D/2 for RoPE; D_in kept frequencies for FoPE)
    H   heads (of the coefficient tensors: kv heads), L table length, T tokens
    D_in / D_out  FoPE coefficient input (kept frequencies) / output (mixed pairs) sizes
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------------------
# frequencies


def rope_inv_freq(dim: int, theta: float, device: torch.device | str | None = None) -> torch.Tensor:
    """RoPE inverse frequencies ω_i = θ^(−2i/dim), i = 0 .. dim/2−1, fp32 (dim/2,).

    Computed exactly like Hugging Face's default init (1 / θ^(arange(0, dim, 2) / dim)), so tables built from it
    are bit-identical to transformers' own.
    """
    exponents = torch.arange(0, dim, 2, dtype=torch.int64, device=device).to(torch.float32) / dim
    return 1.0 / (theta**exponents)


def clip_floor_keep(inv_freq: torch.Tensor, train_len: int, ratio: float = 1.0) -> torch.Tensor:
    """Boolean mask (F,) of frequencies kept by FoPE's clip floor: ω ≥ 2π/train_len · ratio.

    Frequencies *strictly* below the floor are clipped to zero (the release's comparison is strict <,
    so a frequency equal to the floor is kept).
    """
    floor = 2.0 * math.pi / train_len * ratio
    return ~(inv_freq < floor)


def whole_cycle_inv_freq(inv_freq: torch.Tensor, length: int) -> torch.Tensor:
    """RoPE-A frequencies: each ω rounded up to the next whole number of cycles within ``length`` tokens.

    ω ← (2π/L)·⌈ωL/2π⌉ (the authors' ``rope_clamp_to_linear`` with mode ``ceil``); computed in float64 so that a
    frequency already completing k whole cycles stays at k. Every result completes an integer number >= 1 of cycles.
    """
    cycles = torch.ceil(inv_freq.double() * length / (2 * math.pi) - 1e-9).clamp_min(1)
    return (cycles * (2 * math.pi / length)).to(inv_freq.dtype)


# ---------------------------------------------------------------------------------------------------------
# rotary application


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(…, D) -> (…, D): [x1, x2] -> [−x2, x1] (halves of the last axis)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x·cos + rotate_half(x)·sin (the official forward sign); cos/sin broadcast against x (…, D)."""
    return x * cos + rotate_half(x) * sin


def apply_rotary_halves(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Same result as :func:`apply_rotary` with the duplicated tables, from half-width tables.

    Args:
        x: (…, D); cos, sin: (…, D/2) broadcasting against x's leading axes.
    Returns:
        (…, D) = [x1·cos − x2·sin, x2·cos + x1·sin] (bit-identical to x·[cos, cos] + rotate_half(x)·[sin, sin]).
    """
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


def angle_tables(positions: torch.Tensor, inv_freq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin of position·frequency, fp32.

    Args:
        positions: (…,) integer or float positions.
        inv_freq: (F,) frequencies.
    Returns:
        cos, sin: (…, F) each (not duplicated).
    """
    angles = positions.to(torch.float32)[..., None] * inv_freq.to(torch.float32)
    return angles.cos(), angles.sin()


def rope_tables(
    positions: torch.Tensor, inv_freq: torch.Tensor, attention_scaling: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE cos/sin tables in the rotate-half layout (like HF's rotary embedding forward).

    Args:
        positions: (…,) positions; inv_freq: (D/2,).
    Returns:
        cos, sin: (…, D) fp32, each [t·ω, t·ω] duplicated, times ``attention_scaling``.
    """
    cos, sin = angle_tables(positions, inv_freq)
    cos, sin = torch.cat((cos, cos), dim=-1), torch.cat((sin, sin), dim=-1)
    if attention_scaling != 1.0:
        cos, sin = cos * attention_scaling, sin * attention_scaling
    return cos, sin


# ---------------------------------------------------------------------------------------------------------
# FoPE


FOPE_INITS = ("eye_xavier_norm", "eye_xavier_uniform", "eye", "eye_norm", "xavier_norm", "xavier_uniform")


def step_eye(
    d_in: int, d_out: int, *, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
) -> torch.Tensor:
    """The release's "step-eye" (d_in, d_out): entry (i·s, i) = 1 with s = ceil(d_in/d_out), for i·s < d_in.

    Equals the identity when d_in == d_out. With d_in > d_out some columns may get no 1 ("dead" columns).
    ``device``: pass "cpu" under a meta-device context (Hugging Face's from_pretrained).
    """
    if d_in <= 0 or d_out <= 0:
        raise ValueError(f"step_eye needs positive sizes, got d_in={d_in}, d_out={d_out}")
    step = math.ceil(d_in / d_out)
    eye = torch.zeros(d_in, d_out, dtype=dtype, device=device)
    cols = torch.arange(d_out, device=device)
    cols = cols[cols * step < d_in]
    eye[cols * step, cols] = 1.0
    return eye


def init_coefficients(shape: tuple[int, ...], *, init: str, sigma: float, generator=None) -> torch.Tensor:
    """A fresh FoPE coefficient tensor (H, D_in, D_out) or (D_in, D_out), fp32 on the CPU, initialised as the
    release does (``init`` one of FOPE_INITS). Xavier inits are PyTorch's on the full tensor (for 3-D:
    fan_in = D_in·D_out, fan_out = H·D_out)."""
    coef = torch.zeros(shape, dtype=torch.float32, device="cpu")
    if init in ("eye_xavier_norm", "xavier_norm"):
        nn.init.xavier_normal_(coef, gain=sigma, generator=generator)
    elif init in ("eye_xavier_uniform", "xavier_uniform"):
        nn.init.xavier_uniform_(coef, gain=sigma, generator=generator)
    elif init == "eye_norm":
        nn.init.normal_(coef, 0.0, sigma, generator=generator)
    elif init != "eye":
        raise ValueError(f"unknown init {init!r}; choose one of {list(FOPE_INITS)}")
    if init.startswith("eye"):
        coef += step_eye(shape[-2], shape[-1], device="cpu")
    return coef


def fourier_mix(
    cos_basis: torch.Tensor,
    sin_basis: torch.Tensor,
    *,
    cos_coef: torch.Tensor,
    sin_coef: torch.Tensor,
    normalize: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix the kept frequencies' cos/sin into D_out Fourier-series columns, in fp32.

    C[h, t, j] = Σ_k cos(t ω_k)·cos_coef[h, k, j] and S likewise with sin.

    Args:
        cos_basis, sin_basis: (T, D_in) cos/sin of t·ω_k for the kept frequencies (or (…, 1, T, D_in): leading
            axes broadcast with the coefficients' head axis, as in torch.matmul).
        cos_coef, sin_coef: (H, D_in, D_out) per head, or (D_in, D_out) shared (then H = 1 in the output).
        normalize: divide every coefficient column by its sum over the input axis first (the paper's
            pseudo-code; NOT the release). Columns summing to ~0 blow up.
    Returns:
        C, S: (H, T, D_out) fp32 (for (…, 1, T, D_in) bases: (…, H, T, D_out)).
    """
    cos_coef, sin_coef = cos_coef.to(torch.float32), sin_coef.to(torch.float32)
    if cos_coef.dim() == 2:
        cos_coef, sin_coef = cos_coef[None], sin_coef[None]
    if normalize:
        cos_coef = cos_coef / cos_coef.sum(dim=-2, keepdim=True)
        sin_coef = sin_coef / sin_coef.sum(dim=-2, keepdim=True)
    cos_mixed = torch.matmul(cos_basis.to(torch.float32), cos_coef)  # (T, D_in) @ (H, D_in, D_out) -> (H, T, D_out)
    sin_mixed = torch.matmul(sin_basis.to(torch.float32), sin_coef)
    return cos_mixed, sin_mixed


def pad_pairs(
    cos_mixed: torch.Tensor, sin_mixed: torch.Tensor, *, half: int, pad: str = "one"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad the mixed tables from D_out to D/2 = ``half`` pairs (the zero-frequency pairs come last).

    pad="one": both cos and sin padded with 1 (the release; a padded pair becomes a fixed √2-scale, 45° rotation,
    contributing 2·q·k). pad="zero": a true zero frequency, cos = 1 and sin = 0.
    Duplicate the result (or use :func:`apply_rotary_halves`) for the rotate-half layout.

    Args:
        cos_mixed, sin_mixed: (…, D_out).
    Returns:
        cos, sin: (…, D/2).
    """
    if pad not in ("one", "zero"):
        raise ValueError(f"pad must be 'one' or 'zero', got {pad!r}")
    n_pad = half - cos_mixed.shape[-1]
    if n_pad < 0:
        raise ValueError(f"D_out={cos_mixed.shape[-1]} exceeds the {half} rotary pairs")
    if n_pad:
        shape = (*cos_mixed.shape[:-1], n_pad)
        sin_fill = 1.0 if pad == "one" else 0.0
        cos_mixed = torch.cat((cos_mixed, cos_mixed.new_full(shape, 1.0)), dim=-1)
        sin_mixed = torch.cat((sin_mixed, sin_mixed.new_full(shape, sin_fill)), dim=-1)
    return cos_mixed, sin_mixed


def fope_tables(
    positions: torch.Tensor,
    inv_freq: torch.Tensor,
    *,
    cos_coef: torch.Tensor,
    sin_coef: torch.Tensor,
    half: int,
    pad: str = "one",
    normalize: bool = False,
    scale: float = 1.0,
):
    """FoPE's mixed and padded cos, sin tables, fp32, attention scaling ``scale`` included.

    Args:
        positions: (T,) or (B, T); inv_freq: (D_in,) kept frequencies; coefficients as in :func:`fourier_mix`.
    Returns:
        cos, sin: (H, T, D/2) for (T,) positions, (B, H, T, D/2) for (B, T) (H = 1 for shared coefficients).
    """
    cos_b, sin_b = angle_tables(positions, inv_freq.to(positions.device))  # (…, D_in)
    cos_b, sin_b = cos_b.unsqueeze(-3), sin_b.unsqueeze(-3)  # (…, 1, T, D_in): broadcast over heads (after B)
    cos_m, sin_m = fourier_mix(cos_b, sin_b, cos_coef=cos_coef, sin_coef=sin_coef, normalize=normalize)
    cos_t, sin_t = pad_pairs(cos_m, sin_m, half=half, pad=pad)  # (…, H, T, D/2)
    if scale != 1.0:
        cos_t, sin_t = cos_t * scale, sin_t * scale
    return cos_t, sin_t


def rotate_grouped(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate q and k with per-head half tables in fp32 (FoPE): query head h uses table h // (Hq / Hc).

    Args:
        q: (B, Hq, T, D); k: (B, Hk, T, D); cos, sin: (Hc, T, D/2) or (B, Hc, T, D/2), Hc = Hk or 1.
    Returns:
        (q, k) rotated, fp32.
    """
    k_out = apply_rotary_halves(k.float(), cos, sin)
    n_coef = cos.shape[-3]
    qg = q.float().unflatten(1, (n_coef, q.shape[1] // n_coef))  # (B, Hc, g, T, D)
    q_out = apply_rotary_halves(qg, cos.unsqueeze(-3), sin.unsqueeze(-3)).flatten(1, 2)
    return q_out, k_out


# ---------------------------------------------------------------------------------------------------------
# additive biases


def relative_distance(q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
    """(Tq,), (Tk,) -> (Tq, Tk) fp32 i − j (query minus key position; ≥ 0 where causal attention looks)."""
    return q_positions.to(torch.float32)[:, None] - k_positions.to(torch.float32)[None, :]


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi head slopes (Press et al. 2022), fp32 (n_heads,).

    For H a power of two: m_h = 2^(−8h/H), h = 1..H. Otherwise take the H' = 2^⌊log2 H⌋ slopes and add the first
    H − H' of the 2H' slopes at odd h (1, 3, 5, …), i.e. those that interleave between the H' ones.
    """
    if n_heads <= 0:
        raise ValueError(f"n_heads must be positive, got {n_heads}")

    def geometric(n: int) -> list[float]:
        return [2.0 ** (-8.0 * h / n) for h in range(1, n + 1)]

    closest = 2 ** math.floor(math.log2(n_heads))
    slopes = geometric(closest)
    if closest != n_heads:
        slopes += geometric(2 * closest)[0::2][: n_heads - closest]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(slopes: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor) -> torch.Tensor:
    """ALiBi bias −m_h·|i − j|: (H,), (Tq,), (Tk,) -> (H, Tq, Tk) fp32."""
    dist = relative_distance(q_positions, k_positions).abs()
    return -slopes.to(torch.float32)[:, None, None] * dist


def kerple_log_bias(
    r1: torch.Tensor, r2: torch.Tensor, q_positions: torch.Tensor, k_positions: torch.Tensor
) -> torch.Tensor:
    """KERPLE logarithmic kernel bias −r1_h·log(1 + r2_h·|i − j|): (H,), (H,), (Tq,), (Tk,) -> (H, Tq, Tk)."""
    dist = relative_distance(q_positions, k_positions).abs()
    return -r1[:, None, None] * torch.log1p(r2[:, None, None] * dist)


KERPLE_EPS = 0.01  # r = KERPLE_EPS + softplus(raw) (the authors clamp r at 0.01)


def kerple_positive(raw: torch.Tensor) -> torch.Tensor:
    """KERPLE's positive r1 or r2 from its raw parameter: 0.01 + softplus(raw), fp32."""
    return KERPLE_EPS + F.softplus(raw.float())


def kerple_init_raw(n_heads: int, init: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw (r1, r2) parameters (n_heads,) each: init "uniform" (the authors' r1 ~ U(0, 2), r2 ~ U(0, 1), floored at
    2·eps so softplus⁻¹ stays finite) or "ones"."""
    if init == "uniform":
        r1, r2 = torch.rand(n_heads, device="cpu") * 2, torch.rand(n_heads, device="cpu")
    elif init == "ones":
        r1, r2 = torch.ones(n_heads, device="cpu"), torch.ones(n_heads, device="cpu")
    else:
        raise ValueError(f"kerple: init must be 'uniform' or 'ones', got {init!r}")

    def inverse_softplus(r: torch.Tensor) -> torch.Tensor:
        y = r.clamp(min=2 * KERPLE_EPS) - KERPLE_EPS
        return y + torch.log(-torch.expm1(-y))

    return inverse_softplus(r1), inverse_softplus(r2)


def fire_psi(c: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """FIRE's ψ(x) = log(|c·x| + 1), fp32."""
    return torch.log(torch.abs(c.float() * x.to(torch.float32)) + 1)


def fire_normalized(
    c: torch.Tensor, threshold: torch.Tensor, eps: float, distance: torch.Tensor, query_position: torch.Tensor
) -> torch.Tensor:
    """FIRE's input ψ(|i − j|) / (ψ(max(L, i)) + eps), elementwise over broadcasting tensors of distances i − j and
    absolute query positions i (``threshold`` L: the learned |L_scale|·L_0)."""
    norm = fire_psi(c, torch.maximum(query_position.to(torch.float32), threshold.float())) + eps
    return fire_psi(c, distance.to(torch.float32).abs()) / norm


def fire_mlp(
    x: torch.Tensor, w_in: torch.Tensor, b_in: torch.Tensor, w_out: torch.Tensor, b_out: torch.Tensor
) -> torch.Tensor:
    """FIRE's MLP 1 → width → H (ReLU) on every entry of x (…, Tq, Tk) -> (…, H, Tq, Tk) fp32.

    w_in, b_in: (width,) (the first layer's weight column and bias); w_out: (H, width); b_out: (H,).
    """
    hidden = torch.relu(x[..., None] * w_in.float() + b_in.float())  # (…, Tq, Tk, width)
    return torch.einsum("...qkw,hw->...hqk", hidden, w_out.float()) + b_out.float()[:, None, None]
