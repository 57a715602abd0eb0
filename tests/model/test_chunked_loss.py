"""CausalLM.forward(targets=..., loss_chunk=N): the loss and every gradient equal the full-logits computation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import fope.model
from fope.train.evaluate import _computes_loss, token_loss


def _model(pe="rope"):
    torch.manual_seed(0)
    cfg = fope.model.ModelConfig(vocab_size=97, d_model=32, n_layers=2, n_heads=2, train_len=16, pe=pe)
    return fope.model.build(cfg)


def _grads(model, loss):
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk", [1, 7, 16, 50, 10_000])
@pytest.mark.parametrize("pe", ["rope", "fope", "alibi"])
def test_chunked_loss_and_gradients_equal_the_full_logits(chunk, pe):
    model = _model(pe)
    x = torch.randint(0, 97, (3, 17), generator=torch.Generator().manual_seed(1))
    inp, tgt = x[:, :-1], x[:, 1:]
    ref = F.cross_entropy(model(inp).reshape(-1, 97), tgt.reshape(-1))
    g_ref = _grads(model, ref)
    got = model(inp, targets=tgt, loss_chunk=chunk)
    g_got = _grads(model, got)
    torch.testing.assert_close(got, ref, rtol=1e-6, atol=1e-6)
    assert g_got.keys() == g_ref.keys()
    for n in g_ref:
        torch.testing.assert_close(g_got[n], g_ref[n], rtol=1e-5, atol=1e-7, msg=n)


def test_chunked_loss_under_bf16_autocast_and_without_gradients():
    model = _model()
    x = torch.randint(0, 97, (2, 17), generator=torch.Generator().manual_seed(2))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        ref = F.cross_entropy(model(x[:, :-1]).reshape(-1, 97), x[:, 1:].reshape(-1))
        got = model(x[:, :-1], targets=x[:, 1:], loss_chunk=5)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)  # same bf16 logits, summed in another order
    with torch.no_grad():
        torch.testing.assert_close(
            model(x[:, :-1], targets=x[:, 1:], loss_chunk=5),
            F.cross_entropy(model(x[:, :-1]).reshape(-1, 97), x[:, 1:].reshape(-1)),
        )


def test_token_loss_uses_the_model_loss_through_wrappers_and_falls_back_otherwise():
    model = _model()
    x = torch.randint(0, 97, (2, 17), generator=torch.Generator().manual_seed(3))
    ref = token_loss(model, x[:, :-1], x[:, 1:])
    assert _computes_loss(model) and _computes_loss(torch.compile(model))

    class Wrapped(torch.nn.Module):  # the DDP layout: the model as .module
        def __init__(self, m):
            super().__init__()
            self.module = m

        def forward(self, *a, **k):
            return self.module(*a, **k)

    assert _computes_loss(Wrapped(model))
    torch.testing.assert_close(token_loss(Wrapped(model), x[:, :-1], x[:, 1:], loss_chunk=4), ref)
    logits_only = torch.nn.Sequential(torch.nn.Embedding(97, 97))  # not a CausalLM: full logits path
    assert not _computes_loss(logits_only)
    assert token_loss(logits_only, x[:, :-1], x[:, 1:], loss_chunk=4).shape == ()
