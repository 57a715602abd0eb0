"""fope: Fourier Position Embedding (Hua et al., ICML 2025) and the research around it.

Sub-packages, from the ground up (each imports only those above it in this list; docs/ARCHITECTURE.md):
    fope.utils      atomic writes, file errors, the cache root, KEY=VALUE overrides, documented fields
    fope.pos        position encodings (rope, fope, alibi, nope, kerple, fire) + frequency scaling
    fope.model      OLMo-style causal LM, size presets, KV cache, safetensors save/load
    fope.data       corpora, tokenizers, packed token shards
    fope.train      training loop, checkpoints, torchrun DDP
    fope.hf         the Hugging Face format (conversion, remote-code model, export) and fine-tuning
    fope.eval       the model loader; perplexity vs length, passkey retrieval, plots, LongBench, downstream tables
    fope.analysis   the paper's mechanism analyses and ours
    fope.reproduce  the paper's experiment grid; context extension and conversion recovery on HF models
    fope.cli        the `fope` command
"""

__version__ = "0.1.0"
