"""Decoding work per token does not grow with the context already cached (position-encoding side).

Counted, not timed: which table rows and bias rows the encodings compute while generating token by token.
"""

from __future__ import annotations

import pytest
import torch

import fope.model
import fope.pos.functional as PF
from fope.pos import fope as fope_module
from fope.pos import rope as rope_module

from .helpers import tiny_config

DYNAMIC = {"rope_type": "dynamic", "factor": 2.0}


def decode(model, prompt: int, new: int, on_step=None):
    cache = model.new_cache()
    ids = torch.randint(0, 97, (1, prompt))
    with torch.no_grad():
        model(ids, cache=cache)
        for step in range(new):
            if on_step:
                on_step(step)
            model(torch.randint(0, 97, (1, 1)), cache=cache)


@pytest.mark.parametrize("kind", ["rope", "fope"])
def test_dynamic_ntk_decoding_computes_only_the_new_rows(kind, monkeypatch):
    """Dynamic NTK beyond the original length: each generated token computes its own table row per layer,
    never a table of the whole length (which made generation O(L^2))."""
    model = fope.model.build(tiny_config(pe=kind, pe_options={"scaling": DYNAMIC})).eval()
    rows, decoding = [], []
    real = PF.angle_tables
    module = rope_module if kind == "rope" else fope_module

    def spy(positions, inv_freq):
        if decoding:
            rows.append(positions.numel())
        return real(positions, inv_freq)

    monkeypatch.setattr(module.PF, "angle_tables", spy)
    decode(model, prompt=40, new=30, on_step=lambda s: decoding.append(s))  # train_len 16: all beyond it
    assert rows == [1] * (30 * model.config.n_layers)


@pytest.mark.parametrize("kind", ["rope", "fope"])
def test_static_tables_grow_amortised_while_decoding(kind, monkeypatch):
    """Static tables are row lookups; growing past their end doubles them, so rows built per token are O(1)."""
    model = fope.model.build(tiny_config(pe=kind)).eval()
    built, decoding = [], []
    real = PF.angle_tables
    module = rope_module if kind == "rope" else fope_module

    def spy(positions, inv_freq):
        if decoding:
            built.append(positions.numel())
        return real(positions, inv_freq)

    monkeypatch.setattr(module.PF, "angle_tables", spy)
    decode(model, prompt=20, new=200, on_step=lambda s: decoding.append(s))
    per_table = 1 if kind == "rope" else model.config.n_layers  # rope: one table shared by every layer
    assert len(built) == 4 * per_table  # 20 -> 40 -> 80 -> 160 -> 320 rows: four rebuilds for 200 tokens
    assert sum(built) == (40 + 80 + 160 + 320) * per_table  # < 3 rows per generated token


def test_model_shares_one_table_cache_across_layers():
    model = fope.model.build(tiny_config(pe="rope", n_layers=3)).eval()
    assert all(block.attn.pos.tables is model.tables for block in model.blocks)
    with torch.no_grad():
        model(torch.randint(0, 97, (1, 8)))
    assert len(model.tables) == 1  # one RoPE table for all three layers


@pytest.mark.parametrize("kind", ["alibi", "kerple", "fire"])
def test_bias_decoding_computes_one_bias_row_per_layer_and_token(kind, monkeypatch):
    """A generated token gets the bias of its own row against the cached keys only: (H, 1, Tk)."""
    model = fope.model.build(tiny_config(pe=kind)).eval()
    shapes, decoding = [], []
    cls = type(model.blocks[0].attn.pos)
    real = cls.attn_bias

    def spy(self, q_positions, k_positions):
        out = real(self, q_positions, k_positions)
        if decoding:
            shapes.append(tuple(out.shape))
        return out

    monkeypatch.setattr(cls, "attn_bias", spy)
    decode(model, prompt=30, new=5, on_step=lambda s: decoding.append(s))
    H = model.config.n_heads
    want = [(H, 1, 30 + s + 1) for s in range(5) for _ in range(model.config.n_layers)]
    assert shapes == want


def test_positions_end_is_passed_so_layers_never_read_positions_back(monkeypatch):
    """The model computes the positions' end once per forward; no encoding calls positions.max()."""
    model = fope.model.build(tiny_config(pe="fope", pe_options={"scaling": DYNAMIC})).eval()
    calls = []
    real = torch.Tensor.max

    def spy(self, *a, **kw):
        calls.append(self.shape)
        return real(self, *a, **kw)

    monkeypatch.setattr(torch.Tensor, "max", spy)
    decode(model, prompt=20, new=3)
    assert calls == []


def test_kerple_decoding_looks_its_bias_up_in_a_growing_distance_table(monkeypatch):
    """Without gradients KERPLE's bias per distance is cached: generating tokens recomputes it only when the table
    doubles, and the logits equal those computed with the formula (gradients enabled)."""
    from fope.pos import kerple as kerple_module

    model = fope.model.build(tiny_config(pe="kerple")).eval()
    ids = torch.randint(0, 97, (1, 70))
    want = model(ids).detach()  # grad enabled: the formula path
    built = []
    real = kerple_module.PF.kerple_log_bias

    def spy(r1, r2, q, k):
        built.append(q.numel() * k.numel())
        return real(r1, r2, q, k)

    monkeypatch.setattr(kerple_module.PF, "kerple_log_bias", spy)
    cache = model.new_cache()
    with torch.no_grad():
        outs = [model(ids[:, :30], cache=cache)] + [model(ids[:, i : i + 1], cache=cache) for i in range(30, 70)]
    torch.testing.assert_close(torch.cat(outs, dim=1), want)
    # prefill builds 30 distances per layer; decoding to 70 doubles twice (60, 120): 3 builds per layer in all
    assert built == [30] * 2 + [60] * 2 + [120] * 2


def test_fire_decoding_looks_psi_up_in_a_growing_distance_table(monkeypatch):
    """Without gradients FIRE's ψ(|i − j|) is cached per distance: rebuilt only when the table doubles, and the
    logits equal those of the formula path (gradients enabled)."""
    from fope.pos.fire import FIRE

    model = fope.model.build(tiny_config(pe="fire")).eval()
    ids = torch.randint(0, 97, (1, 70))
    want = model(ids).detach()
    built = []
    real = FIRE._psi_table

    def spy(self, n):
        built.append(n)
        return real(self, n)

    monkeypatch.setattr(FIRE, "_psi_table", spy)
    cache = model.new_cache()
    with torch.no_grad():
        outs = [model(ids[:, :30], cache=cache)] + [model(ids[:, i : i + 1], cache=cache) for i in range(30, 70)]
    torch.testing.assert_close(torch.cat(outs, dim=1), want)
    assert built == [30] * 2 + [60] * 2 + [120] * 2
