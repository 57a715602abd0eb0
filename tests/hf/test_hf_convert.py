"""HF Llama-family -> FopeForCausalLM conversion keeps every weight; RoPE and FoPE's RoPE reduction are exact."""

import pytest
import torch
from torch.testing import assert_close

import fope.hf
from fope.hf.convert import CONVERT_PRESERVING, ROPE_REDUCTION, convert, source_context_length


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits


@pytest.mark.parametrize("pe,options", [("rope", {}), ("fope", ROPE_REDUCTION)])
def test_rope_and_fope_reduction_equal_source(tiny_llama, ids, pe, options):
    converted = convert(tiny_llama, pe=pe, **options)
    assert_close(logits(converted, ids), logits(tiny_llama, ids), rtol=0, atol=0)


def test_default_fope_changes_logits_and_keeps_weights(tiny_llama, ids):
    converted = convert(tiny_llama, pe="fope", sigma=0.3)
    src_state, new_state = tiny_llama.state_dict(), converted.state_dict()
    for name, value in src_state.items():
        if not name.endswith("inv_freq"):
            assert torch.equal(new_state[name], value), name
    diff = (logits(converted, ids) - logits(tiny_llama, ids)).abs().max()
    assert diff > 1e-3
    pos = converted.model.layers[0].self_attn.pos_enc
    # train_len defaults to the source's context (64): floor 2pi/64 keeps omega_0..2 of theta^(-2i/16); D_out = min(3, 16/4)
    assert converted.config.pe_train_len == 64
    assert pos.cos_coef.shape == (2, 3, 3)
    # different layers draw different noise; the conversion is reproducible by seed
    assert not torch.equal(pos.cos_coef, converted.model.layers[1].self_attn.pos_enc.cos_coef)
    again = convert(tiny_llama, pe="fope", sigma=0.3)
    assert torch.equal(
        again.model.layers[1].self_attn.pos_enc.sin_coef, converted.model.layers[1].self_attn.pos_enc.sin_coef
    )


@pytest.mark.parametrize(
    "scaling",
    [
        {"rope_type": "linear", "factor": 2.0},
        {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
    ],
)
def test_scaled_rope_sources_are_reproduced(ids, scaling, llama_config):
    from transformers import LlamaForCausalLM

    src = LlamaForCausalLM(llama_config(rope_parameters={"rope_theta": 10000.0, **scaling})).eval()
    assert_close(logits(convert(src, pe="rope"), ids), logits(src, ids))
    assert_close(logits(convert(src, pe="fope", **ROPE_REDUCTION), ids), logits(src, ids))


def test_tied_embeddings_stay_tied(ids, llama_config):
    from transformers import LlamaForCausalLM

    src = LlamaForCausalLM(llama_config(tie_word_embeddings=True)).eval()
    converted = convert(src, pe="rope")
    assert converted.lm_head.weight.data_ptr() == converted.model.embed_tokens.weight.data_ptr()
    assert_close(logits(converted, ids), logits(src, ids), rtol=0, atol=0)


def test_qwen2_biases_and_mistral_are_kept(ids):
    from transformers import MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

    shape = dict(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    qwen = Qwen2ForCausalLM(Qwen2Config(**shape)).eval()
    with torch.no_grad():  # HF inits biases to zero: make them matter
        for layer in qwen.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_()
    conv = convert(qwen, pe="rope")
    assert conv.config.qkv_bias and not conv.config.o_bias
    assert_close(logits(conv, ids), logits(qwen, ids))
    mistral = MistralForCausalLM(MistralConfig(**shape, sliding_window=None)).eval()
    assert_close(logits(convert(mistral, pe="rope"), ids), logits(mistral, ids))


def test_bad_inputs_raise_clear_errors(tiny_llama):
    with pytest.raises(ValueError, match="unknown pe='fop'"):
        convert(tiny_llama, pe="fop")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['sigmaa'\]"):
        convert(tiny_llama, pe="fope", sigmaa=0.3)
    with pytest.raises(ValueError, match=r"fope: pad must be .one. or .zero., got .two."):
        convert(tiny_llama, pe="fope", pad="two")
    tiny_llama.config.model_type = "gpt2"
    with pytest.raises(ValueError, match="model_type='gpt2'"):
        convert(tiny_llama)


def test_train_len_default_and_override(tiny_llama):
    assert source_context_length(tiny_llama.config) == 64
    tiny_llama.config.rope_parameters = {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "original_max_position_embeddings": 32,
    }
    assert source_context_length(tiny_llama.config) == 32
    assert convert(tiny_llama, pe="fope", train_len=4096).config.pe_train_len == 4096


def _rotation_tables(model, positions):
    """Layer 0's FoPE tables, cos/sin (1, Hk, T, D) (the half tables duplicated), and its kept-frequency mask (D/2,)."""
    pos = model.model.layers[0].self_attn.pos_enc
    cos, sin = (torch.cat((t, t), dim=-1) for t in pos.tables(positions))
    return cos, sin, pos.kept


def test_convert_preserving_keeps_each_kept_frequency_on_its_own_pair(tiny_llama):
    # floor length 1024 keeps omega_0..4 of theta^(-2i/16) (5 > the release's cap d_h/4 = 4)
    assert fope.hf.CONVERT_PRESERVING is CONVERT_PRESERVING == {"out_dim": "full", "pad": "zero"}
    positions = torch.arange(40)[None]
    ref_cos, ref_sin = tiny_llama.model.rotary_emb(torch.zeros(1, dtype=torch.float32), positions)  # (1, T, D)
    cos, sin, kept = _rotation_tables(
        convert(tiny_llama, pe="fope", train_len=1024, sigma=0.0, **CONVERT_PRESERVING), positions
    )
    assert int(kept.sum()) == 5 and bool(kept[:5].all())
    pairs = torch.cat((kept, kept))  # rotate-half layout: pair j is dims j and j + D/2
    for h in range(cos.shape[1]):  # kept pairs rotate exactly like RoPE; clipped pairs are true zero frequencies
        assert_close(cos[0, h][:, pairs], ref_cos[0][:, pairs])
        assert_close(sin[0, h][:, pairs], ref_sin[0][:, pairs])
        assert torch.equal(cos[0, h][:, ~pairs], torch.ones_like(cos[0, h][:, ~pairs]))
        assert torch.equal(sin[0, h][:, ~pairs], torch.zeros_like(sin[0, h][:, ~pairs]))
    # the release defaults (cap + step-eye + pad one) move omega_2 onto pair 1 instead
    cos, sin, _ = _rotation_tables(convert(tiny_llama, pe="fope", train_len=1024, sigma=0.0), positions)
    assert_close(cos[0, 0][:, 1], ref_cos[0][:, 2])
    assert not torch.allclose(cos[0, 0][:, 1], ref_cos[0][:, 1])
    assert torch.equal(sin[0, 0][:, 7], torch.ones(40))  # padded pair: cos = sin = 1


def test_convert_preserving_logits_equal_rope_with_clipped_frequencies_zeroed(tiny_llama, ids):
    """sigma=0 + the preset = the source with the clipped inv_freq set to 0 (HF's own rotary embedding);
    sigma > 0 adds the Fourier noise around the identity, on (Hk, Fin, Fin) coefficients."""
    converted = convert(tiny_llama, pe="fope", train_len=1024, sigma=0.0, **CONVERT_PRESERVING)
    kept = converted.model.layers[0].self_attn.pos_enc.kept
    expected_source = logits(tiny_llama, ids)
    tiny_llama.model.rotary_emb.inv_freq[~kept] = 0.0
    assert_close(logits(converted, ids), logits(tiny_llama, ids))
    assert (logits(converted, ids) - expected_source).abs().max() > 1e-5  # the floor alone changes logits
    noisy = convert(tiny_llama, pe="fope", train_len=1024, sigma=0.3, **CONVERT_PRESERVING)
    coef = noisy.model.layers[0].self_attn.pos_enc.cos_coef
    assert coef.shape == (2, 5, 5)
    assert not torch.equal(coef, torch.eye(5).expand(2, 5, 5))
