"""Tiny Hugging Face models for the fope.hf tests (fp32, CPU, a few ms each)."""

import pytest
import torch

pytest.importorskip("transformers")


def tiny_llama_config(**overrides):
    from transformers import LlamaConfig

    kwargs = dict(vocab_size=97, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, head_dim=16, max_position_embeddings=64, tie_word_embeddings=False,
                  rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, bos_token_id=None,
                  eos_token_id=None, pad_token_id=None)
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


@pytest.fixture
def llama_config():
    """Factory: tiny_llama_config(**overrides)."""
    return tiny_llama_config


@pytest.fixture
def tiny_llama():
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_llama_config()).eval()


@pytest.fixture
def ids():
    return torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(1))


CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}")


@pytest.fixture
def char_tokenizer():
    """A character-level fast tokenizer (97 ids) with a ChatML chat template, for chat/fine-tuning tests."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)]  # 95 printable characters
    vocab = {"<unk>": 0, "\n": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="\n", pad_token="\n")
    fast.chat_template = CHATML
    return fast
