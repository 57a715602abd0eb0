"""Regenerate docs/RESULTS.md from the committed results under docs/results/ (and publish new runs there first).

    .venv/bin/python scripts/make_results_doc.py                                   # regenerate RESULTS.md
    .venv/bin/python scripts/make_results_doc.py --publish cpu=runs/cpu cpu-quick=runs/cpu-quick
    .venv/bin/python scripts/make_results_doc.py --publish cpu-passkey-seed3=runs/cpu-pk-s3
    .venv/bin/python scripts/make_results_doc.py --refresh-claims                  # after a verdict-rule change

--publish NAME=RUN copies a `fope reproduce` output's results.json (claims recomputed) and figures to
docs/results/NAME/ (NAME: cpu, cpu-quick, cpu-quick-avx2, cpu-quick-bf16-tables, cpu-passkey, cpu-passkey-seedN; figures
are copied for cpu and cpu-passkey*). --refresh-claims
recomputes the claims stored in every committed results.json with the current rules (docs/reproduce.md, "Verdict
rules"). The page itself is `fope.reproduce.publish.results_doc`; the notes are docs/results/notes.md. The claim
blocks (``<!-- fope:KIND ARG -->...<!-- /fope -->``) of README.md, docs/results/notes.md and docs/analysis.md are
refilled from the committed claims (`fope.reproduce.publish.fill_generated`) every time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fope.reproduce.publish import (
    GENERATED_PAGES,
    committed_results,
    fill_generated,
    publish_run,
    refresh_claims,
    results_doc,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--publish",
        nargs="+",
        default=[],
        metavar="NAME=RUN",
        help="copy a `fope reproduce` output directory's results to docs/results/NAME first",
    )
    ap.add_argument(
        "--refresh-claims",
        action="store_true",
        help="recompute the claims stored in every committed results.json with the current rules",
    )
    args = ap.parse_args(argv)
    for item in args.publish:
        name, sep, run = item.partition("=")
        if not sep or not name or "/" in name or not (Path(run) / "results.json").is_file():
            print(
                f"make_results_doc: error: --publish takes NAME=RUN_DIR with RUN_DIR/results.json, got {item!r}",
                file=sys.stderr,
            )
            return 2
        figures = "passkey*.png" if name.startswith("cpu-passkey") else "*.png" if name == "cpu" else None
        publish_run(Path(run), RESULTS / name, figures=figures)
        print(f"published {run} to {RESULTS / name}")
    if args.refresh_claims:
        for path in committed_results(RESULTS):
            if refresh_claims(path):
                print(f"claims recomputed: {path.relative_to(ROOT)}")
    for page in GENERATED_PAGES:  # the finding-stating sentences of these pages are generated blocks
        path = ROOT / page
        text = path.read_text()
        if fill_generated(text, RESULTS) != text:
            path.write_text(fill_generated(text, RESULTS))
            print(f"regenerated the claim blocks of {page}")
    notes = RESULTS / "notes.md"
    (ROOT / "docs" / "RESULTS.md").write_text(results_doc(RESULTS, notes.read_text() if notes.is_file() else None))
    print(f"wrote {ROOT / 'docs' / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
