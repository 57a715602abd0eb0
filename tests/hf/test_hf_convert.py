"""HF Llama-family -> FopeForCausalLM conversion keeps every weight; RoPE and FoPE's RoPE reduction are exact."""

import pytest
import torch
from torch.testing import assert_close

from fope.hf.convert import ROPE_REDUCTION, convert, source_context_length


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
    assert torch.equal(again.model.layers[1].self_attn.pos_enc.sin_coef, converted.model.layers[1].self_attn.pos_enc.sin_coef)


@pytest.mark.parametrize("scaling", [
    {"rope_type": "linear", "factor": 2.0},
    {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16},
])
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

    shape = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=64)
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
    with pytest.raises(ValueError, match="fope pad must be"):
        convert(tiny_llama, pe="fope", pad="two")
    tiny_llama.config.model_type = "gpt2"
    with pytest.raises(ValueError, match="model_type='gpt2'"):
        convert(tiny_llama)


def test_train_len_default_and_override(tiny_llama):
    assert source_context_length(tiny_llama.config) == 64
    tiny_llama.config.rope_parameters = {"rope_type": "default", "rope_theta": 10000.0,
                                         "original_max_position_embeddings": 32}
    assert source_context_length(tiny_llama.config) == 32
    assert convert(tiny_llama, pe="fope", train_len=4096).config.pe_train_len == 4096
