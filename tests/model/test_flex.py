"""Fused bias attention (flex_attention + pos.score_bias) against the blockwise SDPA reference."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

import fope.model
import fope.model.attention as attention_module
import fope.pos
from fope.model.attention import Attention, causal_block_mask

from .helpers import reference_attention, tiny_config

BIAS_KINDS = ("alibi", "kerple", "fire")


@pytest.fixture
def eager_flex(monkeypatch):
    """Run flex_attention uncompiled (its reference implementation) so CPU tests need no compilation."""
    monkeypatch.setattr(attention_module, "_compiled_flex", lambda device_type: flex_attention)
    warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")


def make(kind: str, *, n_heads=4, n_kv_heads=2, head_dim=16, train_len=32) -> Attention:
    pe = fope.pos.build(kind, head_dim=head_dim, n_heads=n_heads, train_len=train_len)
    return Attention(d_model=32, n_heads=n_heads, n_kv_heads=n_kv_heads, head_dim=head_dim, pos=pe)


@pytest.mark.parametrize("kind", BIAS_KINDS)
def test_score_bias_equals_attn_bias_values_and_gradients(kind):
    """The elementwise bias (what flex_attention adds) is the blockwise bias, values and parameter gradients."""
    pe = fope.pos.build(kind, head_dim=16, n_heads=4, train_len=8)
    with torch.no_grad():  # move learned parameters off their init so every term matters
        for p in pe.parameters():
            p.add_(0.1 * torch.randn_like(p))
    qp, kp = torch.arange(3, 40), torch.arange(40)
    grid = pe.attn_bias(qp, kp)
    elem = pe.score_bias(torch.arange(4)[:, None, None], qp[None, :, None], kp[None, None, :])
    torch.testing.assert_close(elem, grid, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(grid)
    params = [p for p in pe.parameters() if p.requires_grad]
    if params:
        want = torch.autograd.grad((grid * weights).sum(), params)
        got = torch.autograd.grad((elem * weights).sum(), params)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("T, Tk", [(300, 300), (5, 300), (128, 256), (1, 1), (200, 1000), (129, 129), (7, 7)])
def test_causal_block_mask_equals_create_block_mask(T, Tk):
    offset = Tk - T
    want = create_block_mask(lambda b, h, q, k: q + offset >= k, None, None, T, Tk, device="cpu")
    got = causal_block_mask(T, Tk, torch.device("cpu"))
    assert torch.equal(got.to_dense(), want.to_dense())
    assert got.shape[-2:] == (T, Tk)


@pytest.mark.parametrize("kind", BIAS_KINDS)
@pytest.mark.parametrize("T, Tk", [(70, 70), (20, 90), (1, 33)])
def test_flex_equals_blockwise_and_reference(kind, T, Tk, eager_flex):
    """Forced flex path == blockwise path == plain softmax reference (GQA, with and without a cache offset)."""
    attn = make(kind)
    q, k, v = torch.randn(2, 4, T, 16), torch.randn(2, 2, Tk, 16), torch.randn(2, 2, Tk, 16)
    q_pos, k_pos = torch.arange(Tk - T, Tk), torch.arange(Tk)
    with torch.no_grad():
        attn.backend = "sdpa"
        blockwise = attn._attend(q, k, v, q_pos)
        attn.backend = "flex"
        fused = attn._attend(q, k, v, q_pos)
        ref = reference_attention(q, k, v, q_pos, k_pos, attn.pos.attn_bias(q_pos, k_pos))
    torch.testing.assert_close(fused, blockwise, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(blockwise, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", BIAS_KINDS)
def test_model_forward_and_cache_with_flex(kind, eager_flex):
    """A whole model on the flex path: same logits as on the blockwise path, full and incremental."""
    model = fope.model.build(tiny_config(pe=kind, n_heads=4, n_kv_heads=2, d_model=64)).eval()
    ids = torch.randint(0, 97, (2, 40))
    with torch.no_grad():
        want = model(ids)
        for block in model.blocks:
            block.attn.backend = "flex"
        torch.testing.assert_close(model(ids), want, rtol=1e-5, atol=1e-5)
        cache = model.new_cache()
        got = torch.cat([model(ids[:, :25], cache=cache), model(ids[:, 25:], cache=cache)], dim=1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_auto_backend_choice_on_cpu():
    """CPU: flex only inside torch.compile and without gradients (no CPU flex backward, eager flex is unfused)."""
    attn = make("kerple")
    q = torch.randn(1, 4, 64, 16)
    assert not attn.use_flex(q)  # eager CPU
    attn.backend = "flex"
    assert attn.use_flex(q)
    attn.backend = "sdpa"
    assert not attn.use_flex(q)
    attn.backend = "fast"
    with pytest.raises(ValueError, match=r"backend must be one of .* got 'fast'"):
        attn.use_flex(q)
    rope = make("rope")
    rope.backend = "flex"
    assert not rope.use_flex(q)  # nothing to fuse


@pytest.mark.slow
def test_compiled_model_eval_uses_flex_on_cpu():
    """torch.compile'd model in eval on CPU: the bias goes through compiled flex_attention, same logits."""
    torch._dynamo.reset()  # a fresh compilation, whatever earlier tests compiled
    model = fope.model.build(tiny_config(pe="alibi", n_heads=4, d_model=64)).eval()
    ids = torch.randint(0, 97, (2, 64))
    calls = []
    real = Attention._attend_flex

    def spy(self, *a):
        calls.append(1)
        return real(self, *a)

    Attention._attend_flex = spy
    try:
        with torch.no_grad():
            want = model(ids)
            got = torch.compile(model)(ids)
    finally:
        Attention._attend_flex = real
    assert calls
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("kind", BIAS_KINDS)
def test_flex_gradients_equal_blockwise_on_cuda(kind):
    """CUDA: flex path (compiled) == blockwise path, outputs and gradients of q, k, v and the bias parameters."""
    torch.manual_seed(0)
    ref = make(kind).cuda()
    fused = make(kind).cuda()
    fused.load_state_dict(ref.state_dict())
    ref.backend, fused.backend = "sdpa", "flex"
    x = torch.randn(2, 300, 32, device="cuda")
    positions = torch.arange(300, device="cuda")
    out_ref, out_fused = ref(x, positions=positions), fused(x, positions=positions)
    torch.testing.assert_close(out_fused, out_ref, rtol=2e-4, atol=2e-4)
    out_ref.square().sum().backward()
    out_fused.square().sum().backward()
    for (name, p_ref), p_fused in zip(ref.named_parameters(), fused.parameters()):
        torch.testing.assert_close(p_fused.grad, p_ref.grad, rtol=2e-3, atol=2e-4, msg=name)


def test_auto_flex_failure_falls_back_to_blockwise_with_a_warning(monkeypatch):
    """If flex_attention fails at run time (an unsupported case on some device), "auto" falls back, once, loudly."""
    attn = make("alibi")
    monkeypatch.setattr(attention_module, "_FLEX_DISABLED", False)
    monkeypatch.setattr(Attention, "use_flex", lambda self, q: not attention_module._FLEX_DISABLED)

    def broken(self, q, k, v):
        raise RuntimeError("no kernel for this case")

    monkeypatch.setattr(Attention, "_attend_flex", broken)
    q, k, v = torch.randn(1, 4, 20, 16), torch.randn(1, 2, 20, 16), torch.randn(1, 2, 20, 16)
    pos = torch.arange(20)
    with pytest.warns(UserWarning, match="flex_attention failed .*no kernel for this case.*falls back"):
        got = attn._attend(q, k, v, pos)
    attn.backend = "sdpa"
    torch.testing.assert_close(got, attn._attend(q, k, v, pos))
    assert attention_module._FLEX_DISABLED
