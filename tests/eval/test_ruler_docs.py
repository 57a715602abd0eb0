"""docs/evaluation.md's RULER tables are generated from the committed result files (scripts/ruler_tables.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("ruler_tables", ROOT / "scripts" / "ruler_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_evaluation_md_holds_the_generated_ruler_tables():
    mod = _script()
    if not mod.runs():
        pytest.skip("no committed RULER results")
    page = (ROOT / "docs" / "evaluation.md").read_text()
    begin, end = "<!-- ruler-tables:begin -->\n", "<!-- ruler-tables:end -->"
    assert begin in page and end in page
    assert page.split(begin)[1].split(end)[0] == mod.tables()
