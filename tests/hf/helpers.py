"""Shared pieces of the fope.hf tests: a tiny native model and the guard for fresh interpreters without fope."""

import textwrap

import torch

import fope.model
from fope.model import ModelConfig


def native(pe, options, *, d_model=32):
    """A tiny native CausalLM (GQA 4/2 heads, train_len 16), seeded, in eval mode."""
    torch.manual_seed(0)
    cfg = ModelConfig(
        vocab_size=50, d_model=d_model, n_layers=2, n_heads=4, n_kv_heads=2, train_len=16, pe=pe, pe_options=options
    )
    return fope.model.build(cfg).eval()


def engine_export(tmp_path):
    """A tiny native FoPE model (2 layers, GQA 4/2, head_dim 16, out_dim full) written by ``fope hf export --format
    engines``'s function to ``tmp_path / "eng"``; returns that directory."""
    from fope.hf.export import export_engines

    cfg = ModelConfig(
        vocab_size=64,
        d_model=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        train_len=64,
        pe="fope",
        pe_options={"out_dim": "full", "sigma": 0.3},
    )
    fope.model.save(fope.model.build(cfg).eval(), tmp_path / "native")
    return export_engines(tmp_path / "native", tmp_path / "eng")


#: the start of a child script run with ``python -I``: offline, and any import of fope raises (fope is installed, so
#: only this guard keeps it out); the script then imports torch, safetensors' load_file and AutoModelForCausalLM
NO_FOPE = textwrap.dedent("""
    import importlib.abc, importlib.util, json, os, sys
    os.environ["HF_HUB_OFFLINE"] = "1"
    assert importlib.util.find_spec("fope") is not None

    class NoFope(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "fope" or name.startswith("fope."):
                raise ImportError(f"remote code tried to import {name}")
            return None

    sys.meta_path.insert(0, NoFope())
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM
""")
