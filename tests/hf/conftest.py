"""The fope.hf tests need transformers; their tiny Hugging Face models are in tests/conftest.py."""

import pytest
import torch

pytest.importorskip("transformers")


@pytest.fixture
def ids():
    return torch.randint(0, 97, (2, 24), generator=torch.Generator().manual_seed(1))
