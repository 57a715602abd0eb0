"""Fixtures of the fope.data tests: tiny corpora written to tmp dirs, a tiny trained tokenizer, and
the real fetched cache (tests that need it are marked ``data`` and skip when it is missing)."""

from __future__ import annotations

import pytest

from fope.data.fetch import SOURCES, is_cached
from fope.utils import cache_root

# small public-domain-style text written for the tests (no network, no fetched data)
SAMPLE_DOCS = [
    "The river bends past the mill. Boats carry grain to the town every morning.\nIn spring the water rises.",
    "A short note: the meeting starts at 10, room 12345, floor 3.",
    "Winter came early that year. The roads were closed and the village waited for the thaw.",
    "Numbers such as 31415 and 27182 appear here, along with words like harbour and lantern.",
    "The committee discussed the budget. Several members asked for more time to read the report.",
    "Old maps were kept in a chest by the window; nobody knew who had drawn them.",
]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from fope.data.tokenizer import train_tokenizer

    return train_tokenizer(SAMPLE_DOCS * 20, 400, min_frequency=2)


@pytest.fixture(scope="session")
def fetched_cache():
    """The real cache of `fope data fetch` ($FOPE_CACHE or ~/.cache/fope); skips when absent."""
    missing = [s.requirement for s in SOURCES.values() if not is_cached(s)]
    if missing:
        pytest.skip(f"embedded corpora not fetched into {cache_root()} (missing {missing}); run `fope data fetch`")
    return cache_root()
