"""The drill table of docs/reliability.md (drill, what it does, tries, survived), from the tally the reliability
suite writes; tests/test_docs.py checks that the page holds exactly this table and that the tally names every drill.

    FOPE_DRILL_RECORD=docs/results/reliability/drills.json python -m pytest -q -m reliability tests/reliability
    python scripts/drill_table.py [docs/results/reliability/drills.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

RECORD = Path(__file__).resolve().parents[1] / "docs" / "results" / "reliability" / "drills.json"


def table(path: str | Path = RECORD) -> str:
    """The markdown table of a tally: one row per drill (a test function, its parametrised cases summed; a drill
    that loops over many cases in one test counts each), then the totals."""
    rows = json.loads(Path(path).read_text())
    lines = ["| drill | what it checks | tries | survived |", "|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['drill']}` | {r['what'].rstrip('.')} | {r['tries']} | {r['survived']} |")
    tries, survived = sum(r["tries"] for r in rows), sum(r["survived"] for r in rows)
    lines.append(f"| **all {len(rows)} drills** | | **{tries}** | **{survived}** |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table(sys.argv[1] if len(sys.argv) > 1 else RECORD))
