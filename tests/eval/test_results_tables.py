"""The small SmolLM2 tables in docs/evaluation.md are the ones their benchmark scripts print from the committed
output (docs/results/longbench-smollm2, docs/results/downstream-smollm2), and those outputs are what the docs say."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "evaluation.md"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(Path(name).stem, ROOT / "benchmarks" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("script", "folder"),
    [("longbench_smollm2.py", "longbench-smollm2"), ("downstream_smollm2.py", "downstream-smollm2")],
)
def test_the_docs_table_is_the_committed_output(script, folder):
    table = _script(script).table(ROOT / "docs" / "results" / folder)
    assert table in DOC.read_text(encoding="utf-8"), f"regenerate it: python benchmarks/{script} --table ..."


def test_the_longbench_run_scored_its_committed_rows_as_longbench_does():
    """Rescore every committed prediction with fope.eval.longbench_scoring: the JSON's scores are eval.py's."""
    from fope.eval import longbench_scoring as lbs

    folder = ROOT / "docs" / "results" / "longbench-smollm2"
    data = {
        f"longbench_{f.stem}": [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines()]
        for f in sorted((folder / "data").glob("*.jsonl"))
    }
    assert {t: len(rows) for t, rows in data.items()} == {"longbench_hotpotqa_e": 8, "longbench_triviaqa_e": 8}
    for run in ("smollm2", "smollm2-chat", "keep-context", "keep-context-chat"):
        rep = json.loads((folder / f"{run}.json").read_text(encoding="utf-8"))
        assert rep["settings"]["chat_template"] == (["longbench_hotpotqa_e"] if run.endswith("chat") else [])
        for task, rows in rep["predictions"].items():
            assert [r["answers"] for r in rows] == [r["answers"] for r in data[task]]
            preds = [r["pred"] for r in rows]
            assert rep["longbench"][task]["score"] == lbs.dataset_score(task, preds, [r["answers"] for r in rows])
            assert rep["results"][task]["score,none"] == pytest.approx(sum(r["score"] for r in rows) / len(rows))
