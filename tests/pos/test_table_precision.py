"""Same inputs, same numbers: every position table is built in fp32 with autocast off, whatever autocast the
first caller was under (issue: a bf16-autocast first call used to store bf16 FoPE tables, so which caller came
first decided every later number, and a resumed bf16 run was not the run it resumed)."""

from __future__ import annotations

import pytest
import torch

import fope.pos
from fope.pos.base import no_autocast

HEAD_DIM, N_HEADS, TRAIN_LEN, T = 32, 4, 64, 96

#: (kind, options): every kind, FoPE also on its direct (uncached) paths and with scaling.
CASES = [
    ("nope", {}),
    ("rope", {}),
    ("rope", {"scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": TRAIN_LEN}}),
    ("fope", {}),
    ("fope", {"n_kv_heads": 2}),
    ("fope", {"share_heads": True, "out_dim": "full", "pad": "zero"}),
    ("fope", {"scaling": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": TRAIN_LEN}}),
    ("fope", {"scaling": {"rope_type": "dynamic", "factor": 2.0, "original_max_position_embeddings": TRAIN_LEN}}),
    ("fope", {"learnable": True}),
    ("alibi", {}),
    ("kerple", {}),
    ("fire", {}),
]


def _build(kind: str, options: dict) -> fope.pos.PositionEncoding:
    torch.manual_seed(0)
    return fope.pos.build(kind, head_dim=HEAD_DIM, n_heads=N_HEADS, train_len=TRAIN_LEN, **options)


def _outputs(pe: fope.pos.PositionEncoding, *, grad: bool = False) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    n_kv = getattr(pe, "n_kv_heads", N_HEADS)
    q = torch.randn(2, N_HEADS, T, HEAD_DIM, generator=g)
    k = torch.randn(2, n_kv, T, HEAD_DIM, generator=g)
    pos = torch.arange(T)
    with torch.set_grad_enabled(grad):
        q_out, k_out = pe.rotate(q, k, pos, end=T)
        bias = pe.attn_bias(pos, pos)
    out = [q_out.detach(), k_out.detach()]
    return out if bias is None else [*out, bias.detach()]


def _entries(pe: fope.pos.PositionEncoding) -> list[torch.Tensor]:
    return [t for _, (_, tables) in sorted(pe.tables._entries.items(), key=str) for t in tables]


@pytest.mark.parametrize(("kind", "options"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_a_first_call_under_bf16_autocast_leaves_no_trace(kind, options, grad):
    first = _build(kind, options)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _outputs(first, grad=grad)  # the first caller: bf16 autocast
    after = _outputs(first, grad=grad)  # then a caller without autocast
    fresh = _outputs(_build(kind, options), grad=grad)  # a fresh module, no autocast ever
    assert len(after) == len(fresh)
    for a, b in zip(after, fresh, strict=True):
        assert a.dtype == b.dtype
        assert torch.equal(a, b), f"{kind}: max diff {(a.float() - b.float()).abs().max().item():.3g}"
    for table in _entries(first):
        assert table.dtype == torch.float32, f"{kind}: a cached table is {table.dtype}"
    fresh_tables = _build(kind, options)
    _outputs(fresh_tables, grad=grad)
    for a, b in zip(_entries(first), _entries(fresh_tables), strict=True):
        n = min(a.shape[-2], b.shape[-2])
        assert torch.equal(a[..., :n, :], b[..., :n, :])


@pytest.mark.parametrize(("kind", "options"), CASES, ids=[f"{k}-{i}" for i, (k, _) in enumerate(CASES)])
def test_autocast_outputs_use_the_fp32_tables(kind, options):
    """Under autocast the rotation still runs in fp32 on fp32 tables: the rotated q, k (and biases) equal the ones
    computed without autocast, bit for bit (the rotation is documented as fp32 with autocast off)."""
    pe = _build(kind, options)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = _outputs(pe)
    plain = _outputs(_build(kind, options))
    for a, b in zip(under, plain, strict=True):
        assert torch.equal(a.float(), b.float()), f"{kind}: max diff {(a.float() - b.float()).abs().max().item():.3g}"


def test_no_autocast_switches_off_only_what_is_on_and_restores_it():
    assert not torch.is_autocast_enabled("cpu")
    with no_autocast():
        assert not torch.is_autocast_enabled("cpu")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with no_autocast():
            assert not torch.is_autocast_enabled("cpu")
        assert torch.is_autocast_enabled("cpu")


def test_bf16_coefficients_still_give_fp32_tables():
    """A model cast to bf16 (its buffers too) still builds fp32 tables from its (bf16-rounded) coefficients."""
    pe = _build("fope", {}).to(torch.bfloat16)
    cos, sin = pe.half_tables(torch.arange(8))
    assert cos.dtype == sin.dtype == torch.float32
