import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)


@pytest.fixture(scope="session")
def shards(tmp_path_factory):
    from .helpers import write_shards

    return write_shards(tmp_path_factory.mktemp("shards"), n_train=8_000, n_val=1_000)
