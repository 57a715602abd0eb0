"""The documentation is self-contained: nothing cites files users do not get, and every citation of
docs/paper.md names a section (and every link an anchor) that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAPER = ROOT / "docs" / "paper.md"
SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".sh", ".cfg"}
# built from parts so that this file does not match itself
FORBIDDEN = ("FOPE" + "-SPEC", "../" + "shared", "shared/" + "reference")

SECTION = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", re.M)
CITATION = re.compile(r"paper\.md\s*((?:(?:§|section )\s*\d+(?:\.\d+)*(?:\s*(?:,|–|-|and)\s*)?)+)")
SECTION_NUMBER = re.compile(r"(?:§|section )\s*(\d+(?:\.\d+)*)")
LINK = re.compile(r"\]\((?:\.\./)?(?:docs/)?paper\.md#([^)\s]+)\)")


def project_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for top in ("src", "docs", "tests", "scripts", "benchmarks", "configs"):
        files += [p for p in sorted((ROOT / top).rglob("*")) if p.is_file() and p.suffix in SUFFIXES]
    return [p for p in files if p.exists()]


def paper_sections(text: str) -> set[str]:
    return set(SECTION.findall(text))


def paper_anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation other than - and _ removed, spaces to hyphens."""
    return {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in re.findall(r"^#{1,6} (.*)$", text, re.M)
    }


def cited_sections(text: str) -> list[str]:
    """Every section number cited as `paper.md §X` or `paper.md section X` (also chains: `paper.md §4.1-§4.3, §6.7`)."""
    return [n for chain in CITATION.findall(text) for n in SECTION_NUMBER.findall(chain)]


def test_citation_parser():
    text = (
        "see docs/paper.md §4.1-§4.3, §6.7 and docs/paper.md\n§3.4; not §9.9; [paper.md §7](paper.md#7-x), "
        "paper.md section 4.6"
    )
    assert cited_sections(text) == ["4.1", "4.3", "6.7", "3.4", "7", "4.6"]
    assert LINK.findall(text) == ["7-x"]
    assert paper_sections("## 3. Method\n### 3.3 FoPE as released\n#### 3.3.1 x\n") == {"3", "3.3", "3.3.1"}
    assert "35-consequences-of-the-released-choices" in paper_anchors("### 3.5 Consequences of the released choices")
    assert "75-the-d_out-cap-and-dead-columns" in paper_anchors("### 7.5 The D_out cap and dead columns")


def test_nothing_cites_files_users_do_not_have():
    offenders = [
        f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
        for p in project_files()
        for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if any(s in line for s in FORBIDDEN)
    ]
    assert not offenders, "cite docs/paper.md instead:\n" + "\n".join(offenders)


def test_every_paper_citation_names_an_existing_section():
    sections = paper_sections(PAPER.read_text(encoding="utf-8"))
    assert {"1", "3.3", "3.4", "4.1", "4.6", "6.7", "7.1", "7.20"} <= sections
    bad, n = [], 0
    for p in project_files():
        for number in cited_sections(p.read_text(encoding="utf-8", errors="replace")):
            n += 1
            if number not in sections:
                bad.append(f"{p.relative_to(ROOT)}: paper.md §{number}")
    assert n > 50, f"only {n} citations of docs/paper.md found: is the pattern still right?"
    assert not bad, "citations of sections docs/paper.md does not have:\n" + "\n".join(bad)


def test_paper_internal_references_and_links_resolve():
    text = PAPER.read_text(encoding="utf-8")
    sections = paper_sections(text)
    internal = set(SECTION_NUMBER.findall(text)) - sections
    assert not internal, f"docs/paper.md refers to sections it does not have: {sorted(internal)}"
    anchors = paper_anchors(text)
    bad = [
        f"{p.relative_to(ROOT)}: #{a}"
        for p in project_files()
        if p.suffix == ".md"
        for a in LINK.findall(p.read_text(encoding="utf-8"))
        if a not in anchors
    ]
    bad += [f"docs/paper.md: #{a}" for a in re.findall(r"\]\(#([^)\s]+)\)", text) if a not in anchors]
    assert not bad, "links to anchors docs/paper.md does not have:\n" + "\n".join(bad)


@pytest.mark.parametrize("doc", ["README.md", "docs/ARCHITECTURE.md"])
def test_paper_page_is_linked(doc):
    assert "paper.md" in (ROOT / doc).read_text(encoding="utf-8")


def _script(path: str):
    """A benchmarks/ or scripts/ file (not a package) as a module, to call its ``table`` function."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script,log", [("pilot_sweep.py", "pilots.jsonl"), ("passkey_pilot.py", "passkey.jsonl")])
def test_pilot_tables_in_reproduce_md_are_generated_from_their_logs(script, log):
    """docs/reproduce.md holds each pilot table exactly as `benchmarks/SCRIPT --table LOG` prints it."""
    module = _script(f"benchmarks/{script}")
    table = module.table(str(ROOT / "docs" / "results" / "pilots" / log))
    assert table in (ROOT / "docs" / "reproduce.md").read_text(), f"regenerate the table with {script} --table"


def test_far_attention_table_in_analysis_md_is_generated_from_its_json():
    from fope.analysis import far_tables  # what scripts/far_attention.py --table prints

    table = far_tables.model_table(ROOT / "docs" / "results" / "analysis" / "far_attention.json")
    assert table in (ROOT / "docs" / "analysis.md").read_text(), "regenerate it with scripts/far_attention.py --table"


def test_far_mass_table_in_analysis_md_is_generated_from_its_json():
    from fope.analysis import far_tables  # what scripts/far_attention.py --mass-table prints

    folder = ROOT / "docs" / "results" / "analysis"
    names = ("far_mass.json", "far_mass_seeds.json", "far_mass_sig0.json")
    table = far_tables.mass_table([folder / name for name in names])
    assert table in (ROOT / "docs" / "analysis.md").read_text(), (
        "regenerate it with scripts/far_attention.py --mass-table"
    )


def test_far_passkey_table_in_analysis_md_is_generated_from_its_json():
    from fope.analysis import far_tables  # what scripts/far_attention.py --passkey-table prints

    folder = ROOT / "docs" / "results" / "analysis" / "far-passkey"
    table = far_tables.passkey_table([folder / f"far-{pe}.json" for pe in ("rope", "fope", "alibi")])
    assert table in (ROOT / "docs" / "analysis.md").read_text(), (
        "regenerate it with scripts/far_attention.py --passkey-table"
    )


def test_grid_speed_table_in_performance_md_is_generated_from_the_committed_grid():
    module = _script("benchmarks/grid_speed.py")
    table = module.table(str(ROOT / "docs" / "results" / "cpu-quick" / "results.json"))
    assert table in (ROOT / "docs" / "performance.md").read_text(), "regenerate it with benchmarks/grid_speed.py"


def test_drill_table_in_reliability_md_is_generated_from_the_committed_tally():
    """docs/reliability.md holds the drill table exactly as scripts/drill_table.py prints it from the tally the
    reliability suite wrote, and that tally names every drill (test function) of tests/reliability."""
    import ast

    module = _script("scripts/drill_table.py")
    record = ROOT / "docs" / "results" / "reliability" / "drills.json"
    assert module.table(record) in (ROOT / "docs" / "reliability.md").read_text(), (
        "regenerate it: FOPE_DRILL_RECORD=docs/results/reliability/drills.json pytest -m reliability tests/reliability"
        " && python scripts/drill_table.py"
    )
    import json

    tallied = {r["drill"] for r in json.loads(record.read_text())}
    drills = {
        f"{path.name}::{node.name}"
        for path in sorted((ROOT / "tests" / "reliability").glob("test_*.py"))
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }
    assert drills == tallied, f"not in the tally: {sorted(drills - tallied)}; gone: {sorted(tallied - drills)}"
