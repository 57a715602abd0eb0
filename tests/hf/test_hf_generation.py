"""HF cache, generation and padding behave like full forwards."""

import pytest
import torch
from torch.testing import assert_close

from fope.hf.convert import convert

KINDS = [("fope", {"sigma": 0.3}), ("rope", {}), ("alibi", {}), ("fire", {})]


@pytest.mark.parametrize("pe,options", KINDS)
def test_incremental_cache_equals_full_forward(tiny_llama, ids, pe, options):
    from transformers import DynamicCache

    model = convert(tiny_llama, pe=pe, **options)
    with torch.no_grad():
        full = model(input_ids=ids, use_cache=False).logits
        cache = DynamicCache()
        parts = [model(input_ids=ids[:, :10], cache=cache, use_cache=True).logits]
        parts += [model(input_ids=ids[:, t : t + 1], cache=cache, use_cache=True).logits for t in range(10, 16)]
        parts.append(model(input_ids=ids[:, 16:], cache=cache, use_cache=True).logits)  # several new tokens
    assert_close(torch.cat(parts, dim=1), full)


@pytest.mark.parametrize("pe,options", KINDS[:3])
def test_generate_with_cache_equals_greedy_full_forward(tiny_llama, ids, pe, options):
    model = convert(tiny_llama, pe=pe, **options)
    prompt = ids[:1, :8]
    out = model.generate(prompt, max_new_tokens=10, do_sample=False, min_new_tokens=10)
    seq = prompt
    with torch.no_grad():
        for _ in range(10):
            nxt = model(input_ids=seq, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            seq = torch.cat([seq, nxt], dim=1)
    assert torch.equal(out, seq)


@pytest.mark.parametrize("pe,options", KINDS[:3])
def test_left_padding_with_attention_mask_matches_unpadded(tiny_llama, ids, pe, options):
    model = convert(tiny_llama, pe=pe, **options)
    short, long = ids[0, :6], ids[1, :10]
    batch = torch.stack([torch.cat([torch.zeros(4, dtype=torch.long), short]), long])
    mask = torch.ones_like(batch)
    mask[0, :4] = 0
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        padded = model(input_ids=batch, attention_mask=mask, position_ids=positions).logits
        alone = model(input_ids=short[None]).logits
    assert_close(padded[0, 4:], alone[0])
    generated = model.generate(batch, attention_mask=mask, max_new_tokens=5, do_sample=False, min_new_tokens=5)
    single = model.generate(short[None], max_new_tokens=5, do_sample=False, min_new_tokens=5)
    assert torch.equal(generated[0, 4:], single[0])


def test_labels_give_the_shifted_mean_cross_entropy(tiny_llama, ids):
    model = convert(tiny_llama, pe="fope")
    labels = ids.clone()
    labels[:, :5] = -100
    out = model(input_ids=ids, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 97), labels[:, 1:].reshape(-1))
    assert_close(out.loss, expected)


def test_bad_attention_mask_shape_raises(tiny_llama, ids):
    model = convert(tiny_llama, pe="rope")
    with pytest.raises(ValueError, match="attention_mask must be"):
        model(input_ids=ids, attention_mask=torch.ones(2, 3))
