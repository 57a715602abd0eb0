import pytest
import torch


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(autouse=True)
def _one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="session")
def shards(tmp_path_factory):
    from .helpers import write_shards

    return write_shards(tmp_path_factory.mktemp("shards"), n_train=8_000, n_val=1_000)
