"""The reliability drills: every test here is marked ``reliability``; a drill that tries many cases in one test counts
them with the ``drill`` fixture. ``FOPE_DRILL_RECORD=FILE pytest -m reliability tests/reliability`` writes the tally
(drill, tries, survived) that docs/reliability.md's table is generated from (scripts/drill_table.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

_TALLY: dict[str, dict] = {}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/reliability/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.reliability)


class Drill:
    """Tries of one drill: ``with drill.attempt(): ...`` counts one try, and one survived if the block passes."""

    def __init__(self) -> None:
        self.tries = 0
        self.survived = 0

    class _Attempt:
        def __init__(self, drill: Drill) -> None:
            self.drill = drill

        def __enter__(self) -> None:
            self.drill.tries += 1

        def __exit__(self, exc_type, exc, tb) -> bool:
            if exc_type is None:
                self.drill.survived += 1
            return False

    def attempt(self) -> Drill._Attempt:
        return Drill._Attempt(self)


@pytest.fixture
def drill(request) -> Drill:
    d = Drill()
    request.node._drill = d
    return d


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" and not (report.when == "setup" and report.outcome != "passed"):
        return
    name = f"{Path(str(item.fspath)).name}::{item.originalname}"
    d = getattr(item, "_drill", None)
    passed = report.outcome == "passed"
    if report.outcome == "skipped":
        return
    tries, survived = (d.tries, d.survived) if d is not None and d.tries else (1, int(passed))
    entry = _TALLY.setdefault(name, {"drill": name, "what": _what(item.function), "tries": 0, "survived": 0})
    entry["tries"] += tries
    entry["survived"] += survived


def _what(function) -> str:
    """The first paragraph of a drill's docstring, on one line."""
    paragraph = (function.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(paragraph.split()).replace("|", "\\|")


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("FOPE_DRILL_RECORD")
    if path and _TALLY:
        Path(path).write_text(json.dumps(sorted(_TALLY.values(), key=lambda e: e["drill"]), indent=1) + "\n")


@pytest.fixture(scope="session")
def shards(tmp_path_factory):
    from .helpers import write_shards

    return write_shards(tmp_path_factory.mktemp("shards"), n_train=8_000, n_val=1_000)
