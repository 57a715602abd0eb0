"""The test environment is the one `scripts/setup.sh` builds (fope[dev]): every optional dependency the tests
skip without imports cleanly here, so a broken install fails this test instead of silently skipping others."""

from __future__ import annotations

import importlib

import pytest

#: the optional extras' packages that tests guard with pytest.importorskip
EXTRAS = (
    "transformers",
    "datasets",
    "accelerate",
    "gguf",
    "matplotlib",
    "lm_eval",
    "rouge_score",
    "jieba",
    "fuzzywuzzy",
    "rouge",
    "tokenizers",
    "safetensors",
    "yaml",
    "tqdm",
)


@pytest.mark.parametrize("name", EXTRAS)
def test_setup_installed_the_optional_dependencies(name):
    importlib.import_module(name)
