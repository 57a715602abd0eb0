"""docs/huggingface.md's measured tables: each rests on committed JSON under docs/results/ (generated and checked),
or says in a "**Not committed:**" note just before it that it rests on an uncommitted run (as docs/performance.md
does). Its four run tables (conversion context, conversion options, recovery, extend) are of the second kind."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "huggingface.md"

#: the first header cell of each measured table of the page
MEASURED = ("| preset | σ |", "| conversion (FoPE", "| stage |", "| passkey accuracy", "| method | ppl @")


def _tables(text: str) -> list[tuple[int, str]]:
    """(line index, header line) of every Markdown table."""
    lines = text.splitlines()
    return [
        (i, line)
        for i, line in enumerate(lines)
        if line.startswith("|") and (i == 0 or not lines[i - 1].startswith("|"))
    ]


def test_every_measured_table_is_committed_or_marked():
    text = PAGE.read_text()
    lines = text.splitlines()
    found = [(i, h) for i, h in _tables(text) if h.startswith(MEASURED)]
    assert len(found) == 5, [h for _, h in found]  # context, options, recovery (ppl, passkey), extend
    sections = [i for i, line in enumerate(lines) if line.startswith("## ") or line.startswith("### ")]
    for i, header in found:
        start = max(s for s in sections if s < i)
        before = "\n".join(lines[start:i])
        committed = re.search(r"docs/results/\S+\.json", before)
        assert committed or "**Not committed:**" in before, f"docs/huggingface.md: {header[:40]!r} has no source"
