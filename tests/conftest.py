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
