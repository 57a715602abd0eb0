"""Adapters against references: full forwards (fope CausalLM) and transformers' own loss/generate (HF)."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import fope.model
from fope.eval import FopeAdapter, HFAdapter, load_model
from fope.eval.adapters import LMAdapter

V = 53


def fope_model(pe: str = "rope"):
    return fope.model.build("cpu-tiny", pe=pe, vocab_size=V, n_layers=2, train_len=16).eval()


def hf_llama():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.LlamaConfig(
        vocab_size=V,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    return transformers.LlamaForCausalLM(cfg).eval()


def greedy_without_cache(forward, prompt: list[int], n: int) -> list[int]:
    ids = list(prompt)
    for _ in range(n):
        ids.append(int(forward(torch.tensor([ids]))[0, -1].argmax()))
    return ids[len(prompt) :]


def teacher_forced(forward, prompt: list[int], cont: list[int]) -> float:
    ids = torch.tensor([prompt + cont])
    logp = torch.log_softmax(forward(ids)[0].double(), -1)
    return float(sum(logp[len(prompt) - 1 + i, t] for i, t in enumerate(cont)))


@pytest.mark.parametrize("pe", ["rope", "fope", "alibi"])
def test_fope_adapter_matches_full_forward(pe):
    model = fope_model(pe)
    ad = FopeAdapter(model)
    assert isinstance(ad, LMAdapter) and ad.vocab_size == V
    ids = torch.randint(0, V, (2, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids)
    torch.testing.assert_close(ad.logits(ids), full)
    # sum_nll applies the head in slices: compare to F.cross_entropy on full logits
    ref = [float(F.cross_entropy(full[b, f - 1 : -1], ids[b, f:], reduction="sum")) for b, f in enumerate([1, 25])]
    assert ad.sum_nll(ids, [1, 25]) == pytest.approx(ref, rel=1e-5)
    prompt = ids[0, :20].tolist()
    with torch.no_grad():
        assert ad.generate_greedy(prompt, 6) == greedy_without_cache(model, prompt, 6)
        conts = [[3, 4, 5], [7], [3, 9]]
        expected = [teacher_forced(model, prompt, c) for c in conts]
    assert ad.continuation_logprobs(prompt, conts) == pytest.approx(expected, rel=1e-4)


def test_fope_adapter_sum_nll_slices_long_sequences(monkeypatch):
    import fope.eval.adapters as adapters

    monkeypatch.setattr(adapters, "_CE_SLICE", 7)  # several slices over 40 tokens
    model = fope_model()
    ad = FopeAdapter(model)
    ids = torch.randint(0, V, (1, 40), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model(ids)
    ref = float(F.cross_entropy(full[0, 2:-1], ids[0, 3:], reduction="sum"))
    assert ad.sum_nll(ids, [3]) == pytest.approx([ref], rel=1e-5)


def test_generation_stops_at_eos():
    model = fope_model()
    ad = FopeAdapter(model)
    prompt = [1, 2, 3, 4]
    free = ad.generate_greedy(prompt, 5)
    assert ad.generate_greedy(prompt, 5, eos_id=free[2]) == free[: free.index(free[2])]


def test_hf_adapter_matches_transformers():
    model = hf_llama()
    ad = HFAdapter(model, name="tiny-llama")
    ids = torch.randint(0, V, (1, 30), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss  # transformers' own mean CE over 29 predictions
        gen = model.generate(ids[:, :12], max_new_tokens=5, do_sample=False, min_new_tokens=5)
    assert ad.sum_nll(ids, [1]) == pytest.approx([float(loss) * 29], rel=1e-5)
    assert ad.generate_greedy(ids[0, :12].tolist(), 5) == gen[0, 12:].tolist()
    prompt = ids[0, :12].tolist()
    with torch.no_grad():
        expected = [teacher_forced(lambda x: model(input_ids=x).logits, prompt, c) for c in ([5, 6, 7], [8])]
    assert ad.continuation_logprobs(prompt, [[5, 6, 7], [8]]) == pytest.approx(expected, rel=1e-4)
    assert ad.describe()["kind"] == "hf" and ad.describe()["train_len"] == 64


def test_load_model_detects_fope_and_hf_dirs(tmp_path):
    model = fope_model()
    fope.model.save(model, tmp_path / "run" / "model")
    for path in (tmp_path / "run" / "model", tmp_path / "run"):
        ad = load_model(path)
        assert isinstance(ad, FopeAdapter) and ad.tokenizer is None
        assert ad.describe()["config"]["vocab_size"] == V and ad.describe()["train_len"] == 16
    hf_llama().save_pretrained(tmp_path / "hf")
    ad = load_model(tmp_path / "hf")
    assert isinstance(ad, HFAdapter) and ad.tokenizer is None
    assert json.loads((tmp_path / "hf" / "config.json").read_text()).get("format") is None


def test_load_model_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such directory: .*missing"):
        load_model(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"holds no config.json"):
        load_model(tmp_path / "empty")


@pytest.mark.parametrize("which", ["fope", "hf"])
def test_one_prefill_serves_generation_and_scoring_in_any_order(which):
    model = fope_model() if which == "fope" else hf_llama()
    ad = FopeAdapter(model) if which == "fope" else HFAdapter(model)
    prompt, conts = [5, 1, 7, 3, 9, 2, 8], [[4, 4, 2], [6], [1, 2]]
    fresh_gen, fresh_lp = ad.generate_greedy(prompt, 4), ad.continuation_logprobs(prompt, conts)
    pre = ad.prefill(prompt)
    assert ad.continuation_logprobs(prompt, conts, prefill=pre) == pytest.approx(fresh_lp, rel=1e-5)
    assert ad.generate_greedy(prompt, 4, prefill=pre) == fresh_gen
    assert ad.continuation_logprobs(prompt, conts, prefill=pre) == pytest.approx(fresh_lp, rel=1e-5)
    assert ad.generate_greedy(prompt, 4, prefill=pre) == fresh_gen


def test_raw_models_are_wrapped():
    from fope.eval import as_adapter, perplexity_by_length

    model = fope_model()
    toks = torch.randint(0, V, (64,), generator=torch.Generator().manual_seed(5))
    assert perplexity_by_length(model, toks, [16], progress=False) == perplexity_by_length(
        FopeAdapter(model), toks, [16], progress=False
    )
    assert isinstance(as_adapter(hf_llama()), HFAdapter)
    ad = FopeAdapter(model)
    assert as_adapter(ad) is ad
    with pytest.raises(TypeError, match="cannot evaluate a str"):
        as_adapter("gpt2")


@pytest.mark.gpu
def test_fope_adapter_on_cuda_matches_cpu():
    model = fope_model("fope")
    cpu = FopeAdapter(model)
    ids = torch.randint(0, V, (2, 40), generator=torch.Generator().manual_seed(6))
    ref_nll, ref_gen = cpu.sum_nll(ids, [1, 9]), cpu.generate_greedy(ids[0, :10].tolist(), 5)
    ref_lp = cpu.continuation_logprobs(ids[0, :10].tolist(), [[1, 2], [3]])
    gpu = FopeAdapter(model.cuda())
    assert gpu.device.type == "cuda"
    assert gpu.sum_nll(ids, [1, 9]) == pytest.approx(ref_nll, rel=1e-4)
    assert gpu.generate_greedy(ids[0, :10].tolist(), 5) == ref_gen
    assert gpu.continuation_logprobs(ids[0, :10].tolist(), [[1, 2], [3]]) == pytest.approx(ref_lp, rel=1e-4)
