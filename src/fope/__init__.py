"""fope: Fourier Position Embedding (Hua et al., ICML 2025) and the research around it.

Sub-packages:
    fope.pos        position encodings (rope, fope, alibi, nope, kerple, fire) + frequency scaling
    fope.model      OLMo-style causal LM, size presets, KV cache, safetensors save/load
    fope.data       corpora, tokenizers, packed token shards
    fope.train      training loop, checkpoints, torchrun DDP
    fope.eval       perplexity vs length, passkey retrieval, plots
    fope.hf         Hugging Face integration (conversion, remote-code model, fine-tuning, LongBench)
    fope.reproduce  the paper's experiment grid
"""

__version__ = "0.1.0"
