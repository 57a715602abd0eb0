"""Our RoPE CausalLM equals Hugging Face's LlamaForCausalLM with the same weights (an independent reference for the
whole block: pre-norm RMSNorm, GQA, rotate-half RoPE, SwiGLU halves, untied head)."""

from __future__ import annotations

import pytest
import torch

import fope.model

from .helpers import tiny_config


def to_llama(model):
    """A LlamaForCausalLM holding `model`'s weights (att_proj rows are q|k|v; ff_proj rows are up|gate)."""
    transformers = pytest.importorskip("transformers")
    cfg = model.config.resolved()
    hf_cfg = transformers.LlamaConfig(
        vocab_size=cfg.vocab_size,
        hidden_size=cfg.d_model,
        intermediate_size=cfg.mlp_hidden,
        num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads,
        num_key_value_heads=cfg.n_kv_heads,
        head_dim=cfg.head_dim,
        rms_norm_eps=cfg.norm_eps,
        tie_word_embeddings=False,
        attention_bias=False,
        mlp_bias=False,
        max_position_embeddings=64,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.pe_options.get("theta", 10000.0))},
    )
    hf = transformers.LlamaForCausalLM(hf_cfg).eval()
    q, kv = cfg.n_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim
    state = {
        "model.embed_tokens.weight": model.embed.weight,
        "model.norm.weight": model.norm.weight,
        "lm_head.weight": model.lm_head.weight,
    }
    for i, blk in enumerate(model.blocks):
        p = f"model.layers.{i}."
        wq, wk, wv = blk.attn.att_proj.weight.split((q, kv, kv))
        up, gate = blk.mlp.ff_proj.weight.chunk(2)
        state.update(
            {
                p + "self_attn.q_proj.weight": wq,
                p + "self_attn.k_proj.weight": wk,
                p + "self_attn.v_proj.weight": wv,
                p + "self_attn.o_proj.weight": blk.attn.attn_out.weight,
                p + "mlp.gate_proj.weight": gate,
                p + "mlp.up_proj.weight": up,
                p + "mlp.down_proj.weight": blk.mlp.ff_out.weight,
                p + "input_layernorm.weight": blk.attn_norm.weight,
                p + "post_attention_layernorm.weight": blk.ff_norm.weight,
            }
        )
    hf.load_state_dict(state, strict=True)
    return hf


@pytest.mark.parametrize("n_kv_heads", [None, 2])
def test_rope_model_equals_hf_llama(n_kv_heads):
    model = fope.model.build(
        tiny_config(pe="rope", n_heads=4, n_kv_heads=n_kv_heads, d_model=128, pe_options={"theta": 500.0})
    ).eval()
    with torch.no_grad():
        for p in model.parameters():  # non-trivial norms too
            p.add_(0.01 * torch.randn_like(p))
    hf = to_llama(model)
    ids = torch.randint(0, 97, (2, 23))
    with torch.no_grad():
        torch.testing.assert_close(model(ids), hf(ids).logits.float(), rtol=1e-4, atol=1e-4)
