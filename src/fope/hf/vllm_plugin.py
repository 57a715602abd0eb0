"""fope's vLLM out-of-tree model plugin: the ``vllm.general_plugins`` entry point (pyproject.toml) registers
``FopeLlamaForCausalLM`` (fope.hf.vllm_model: vLLM's Llama with vLLM's own FourierRotaryEmbedding per layer, and
the pad check) with vLLM's ModelRegistry, lazily by name. Serve an export of ``fope hf export --format engines``:

    vllm serve DIR --hf-overrides '{"architectures": ["FopeLlamaForCausalLM"]}'

Importable without vLLM (nothing here imports it at module level).
"""

from __future__ import annotations

ARCHITECTURE = "FopeLlamaForCausalLM"


def register() -> None:
    """Register FopeLlamaForCausalLM with vLLM's ModelRegistry (idempotent)."""
    from vllm import ModelRegistry

    if ARCHITECTURE not in ModelRegistry.get_supported_archs():
        ModelRegistry.register_model(ARCHITECTURE, "fope.hf.vllm_model:FopeLlamaForCausalLM")


__all__ = ["ARCHITECTURE", "register"]
