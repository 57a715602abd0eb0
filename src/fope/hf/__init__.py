"""The Hugging Face format and fine-tuning: a remote-code Llama-family model with fope position encodings,
conversion of pretrained RoPE checkpoints, export of native fope models, save/load, chat fine-tuning.
(Evaluating HF models, LongBench and the downstream tables included, is fope.eval's; the experiments on them,
context extension and conversion recovery, are fope.reproduce's.)

    >>> import fope.hf
    >>> model = fope.hf.convert(hf_llama, pe="fope", sigma=0.3)    # FopeForCausalLM, every weight kept
    >>> fope.hf.save(model, "out", tokenizer=tok)                   # AutoModelForCausalLM(..., trust_remote_code=True)
    >>> fope.hf.export("runs/x/model", "hf/x")                      # native fope model -> same HF format
    >>> fope.hf.load("out")                                         # FopeForCausalLM (or any HF causal LM / "smollm2")

transformers is imported lazily (inside the functions), so `import fope.hf` is cheap.
"""

from __future__ import annotations

# The functions shadow their submodules' names (fope.hf.convert is the function); importing them here, first,
# keeps it that way (a submodule sets the package attribute only when it is first loaded). None of these
# modules imports transformers at import time.
from .convert import CONVERT_PRESERVING, ROPE_REDUCTION, convert
from .export import export
from .finetune import finetune
from .io import load, load_tokenizer, save

__all__ = ["CONVERT_PRESERVING", "ROPE_REDUCTION", "convert", "export", "finetune", "load", "load_tokenizer", "save"]
