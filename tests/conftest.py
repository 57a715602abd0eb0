import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# Tiny tensors gain nothing from several threads, and OpenMP contention (e.g. two DDP workers on two cores)
# can make them orders of magnitude slower. Tests that measure speed set their own thread count.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _reset_torch_state():
    """Every test starts from the same seed, fp32 default dtype, one thread and no process group."""
    torch.manual_seed(0)
    prev, prev_threads = torch.get_default_dtype(), torch.get_num_threads()
    torch.set_default_dtype(torch.float32)
    torch.set_num_threads(1)
    yield
    torch.set_default_dtype(prev)
    torch.set_num_threads(prev_threads)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


# --------------------------------------------------------------------------- tiny Hugging Face models
# (fp32, CPU, a few ms each) for the tests of fope.hf and of the code built on it (fope.eval's lm-eval runs, the
# experiments in fope.reproduce); each fixture skips its test when transformers is not installed.


def tiny_llama_config(**overrides):
    """A LlamaConfig of the tiny test model (97-token vocabulary, 2 layers, GQA 4/2 heads of 16) with overrides."""
    LlamaConfig = pytest.importorskip("transformers").LlamaConfig

    kwargs = dict(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=64,
        tie_word_embeddings=False,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        bos_token_id=None,
        eos_token_id=None,
        pad_token_id=None,
    )
    kwargs.update(overrides)
    return LlamaConfig(**kwargs)


@pytest.fixture
def llama_config():
    """Factory: tiny_llama_config(**overrides)."""
    return tiny_llama_config


@pytest.fixture
def tiny_llama():
    LlamaForCausalLM = pytest.importorskip("transformers").LlamaForCausalLM
    torch.manual_seed(0)
    return LlamaForCausalLM(tiny_llama_config()).eval()


CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}"
)


@pytest.fixture
def char_tokenizer():
    """A character-level fast tokenizer (97 ids) with a ChatML chat template, for chat/fine-tuning tests."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    PreTrainedTokenizerFast = pytest.importorskip("transformers").PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)]  # 95 printable characters
    vocab = {"<unk>": 0, "\n": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", eos_token="\n", pad_token="\n")
    fast.chat_template = CHATML
    return fast
