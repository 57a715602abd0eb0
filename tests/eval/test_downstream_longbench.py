"""LongBench on local copies of the HF dataset's JSONL files with lm-eval's real tasks and metrics, and the paper's
downstream tables (4-6) through lm-eval on small local tasks in the HF datasets' row formats (all offline)."""

import json
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")

from fope.eval import downstream, lmeval

# LongBench-E rows exactly as THUDM/LongBench's data.zip ships them (trec_e.jsonl)
TREC_CLASSES = ["Abbreviation", "Entity", "Description", "Human", "Location", "Numeric"]


def trec_rows():
    base = {"dataset": "trec_e", "language": "en", "all_classes": TREC_CLASSES}
    return [
        {
            **base,
            "input": "Who wrote Hamlet?",
            "context": "Question: What is NASA?\nType: Abbreviation\n",
            "answers": ["Human"],
            "length": 120,
            "_id": "a",
        },
        {
            **base,
            "input": "Where is Paris?",
            "context": "Question: Who is Bach?\nType: Human\n" * 3,
            "answers": ["Location"],
            "length": 5000,
            "_id": "b",
        },
        {
            **base,
            "input": "How many legs?",
            "context": "Question: Where is Rome?\nType: Location\n",
            "answers": ["Numeric"],
            "length": 9000,
            "_id": "c",
        },
    ]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_local_longbench_yaml_includes_lm_evals_task(tmp_path):
    """The YAML keeps lm-eval's task (dataset, metric names, version) and replaces what LongBench does otherwise:
    LongBench's prompt, pred.py's generation (no stop at a newline), eval.py's scoring hook, the real name shown."""
    write_jsonl(tmp_path / "trec_e.jsonl", trec_rows())
    names = lmeval.local_longbench_tasks(tmp_path, ["longbench_trec_e"], tmp_path / "tasks")
    assert names == {"fope_longbench_trec_e": "longbench_trec_e"}
    text = (tmp_path / "tasks" / "fope_longbench_trec_e.yaml").read_text()
    assert text.endswith("process_results: !function fope.eval.longbench_scoring.process_results_trec\n")
    import yaml

    cfg = yaml.safe_load(text.rsplit("process_results:", 1)[0])
    assert cfg["include"].endswith("longbench/trec_e.yaml") and cfg["dataset_path"] == "json"
    assert cfg["task_alias"] == "longbench_trec_e" and cfg["tag"] == ["fope_longbench"]
    assert cfg["generation_kwargs"] == {"max_gen_toks": 64, "do_sample": False, "until": []}
    assert cfg["doc_to_text"].endswith("Here are some examples of questions.\n\n{{context}}\n{{question}}")
    copied = [json.loads(x) for x in (tmp_path / "tasks" / "fope_longbench_trec_e.jsonl").read_text().splitlines()]
    assert [r["question"] for r in copied] == [r["input"] for r in trec_rows()]
    # samsum: LongBench's blank line before the dialogue, and pred.py's newline stop after at least one token
    samsum = lmeval.longbench_task("longbench_samsum_e", tmp_path / "t2", eos_token_id=2, newline_token_id=1)
    cfg = yaml.safe_load((tmp_path / "t2" / f"{samsum}.yaml").read_text().rsplit("process_results:", 1)[0])
    assert cfg["doc_to_text"].endswith("examples.\n\n{{context}}\n\n{{question}}") and "dataset_path" not in cfg
    assert cfg["generation_kwargs"] == {
        "max_gen_toks": 128,
        "do_sample": False,
        "until": [],
        "eos_token_id": [2, 1],
        "min_new_tokens": 1,
    }


def test_local_longbench_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"trec_e.jsonl"):
        lmeval.local_longbench_tasks(tmp_path, ["longbench_trec_e"], tmp_path / "t")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        lmeval.local_longbench_tasks(tmp_path / "nowhere", ["longbench_trec_e"], tmp_path / "t")
    bad = trec_rows()
    del bad[1]["answers"]
    write_jsonl(tmp_path / "trec_e.jsonl", bad)
    with pytest.raises(ValueError, match=r"trec_e.jsonl:2: LongBench row has no 'answers'"):
        lmeval.local_longbench_tasks(tmp_path, ["longbench_trec_e"], tmp_path / "t")
    (tmp_path / "trec_e.jsonl").write_text("{not json\n")
    with pytest.raises(ValueError, match=r"trec_e.jsonl:1: not JSON"):
        lmeval.local_longbench_tasks(tmp_path, ["longbench_trec_e"], tmp_path / "t")


def test_missing_longbench_dependency_is_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "jieba" else real(name, *a))
    with pytest.raises(ImportError, match=r"need jieba: pip install -e '\.\[longbench\]'"):
        lmeval.check_longbench_deps()


def test_downstream_plan_and_report():
    rows = downstream.plan([4, 5])
    assert [c for t, c, _ in rows if t == 4] == [c for c in downstream.TABLE4 if c != "basic_arith"]
    assert ("5", "arc_easy") not in rows and (5, "arc_easy", "arc_easy") in rows
    six = downstream.plan([6])
    cats = {c for _, c, _ in six}
    assert cats == set(downstream.TABLE6) and len(six) == 57  # every MMLU subject, by lm-eval's own tags
    with pytest.raises(ValueError, match="unknown table 7"):
        downstream.plan([7])
    with pytest.raises(ValueError, match="'nope'"):
        downstream.plan([4], ["nope"])
    names = {
        "piqa": (4, "piqa", "piqa"),
        "fope_ce_nq_open": (5, "natural_qs_open", "nq_open"),
        "mmlu_anatomy": (6, "stem", "mmlu_anatomy"),
        "mmlu_astronomy": (6, "stem", "mmlu_astronomy"),
    }
    results = {
        "piqa": {"acc,none": 0.5},
        "fope_ce_nq_open": {"perplexity,none": 2.0},
        "mmlu_anatomy": {"acc,none": 1.0},
        "mmlu_astronomy": {"acc,none": 0.0},
    }
    n = {"mmlu_anatomy": {"effective": 3}, "mmlu_astronomy": {"effective": 1}}
    rep = downstream.report(results, names, n)
    assert rep["tables"][4]["ours"]["piqa"] == 50.0 and rep["tables"][4]["ours"]["sciq"] is None
    assert rep["tables"][5]["ours"]["natural_qs_open"] == pytest.approx(0.693147, abs=1e-6)
    assert rep["tables"][6]["ours"]["stem"] == 75.0  # weighted by size: (3*100 + 1*0) / 4
    text = downstream.format_report(rep)
    assert "| paper FoPE | 26.17 | 44.12" in text and "| ours | – | – | – | – | – | – | 50.00 |" in text


@pytest.fixture
def hf_model_dir(tiny_llama, char_tokenizer, tmp_path):
    from fope.hf.convert import convert
    from fope.hf.io import save

    return save(convert(tiny_llama, pe="fope"), tmp_path / "model", tokenizer=char_tokenizer)


@pytest.mark.slow
def test_longbench_trec_runs_offline_on_local_data(hf_model_dir, tmp_path):
    """lm-eval's real longbench_trec_e (prompt, generation, classification metric) on a local THUDM-format file."""
    lmeval.check_longbench_deps()
    (tmp_path / "data").mkdir()
    write_jsonl(tmp_path / "data" / "trec_e.jsonl", trec_rows())
    results = lmeval.run(hf_model_dir, ["longbench_trec_e"], data_dir=tmp_path / "data", max_length=512)
    assert results["results"]["longbench_trec_e"]["sample_len"] == 3
    assert {b: v["n"] for b, v in results["buckets"]["longbench_trec_e"].items()} == {"0-4k": 1, "4-8k": 1, "8k+": 1}
    summary = lmeval.summary(results)
    assert set(summary["by_bucket"]) == {"longbench_trec_e"}


@pytest.mark.slow
def test_downstream_runs_offline_on_local_tasks(hf_model_dir, tmp_path):
    """Tables 4, 5 and 6 on tiny local files in the HF datasets' formats (piqa, arc_easy, mmlu_anatomy)."""
    data = tmp_path / "data"
    data.mkdir()
    write_jsonl(
        data / "piqa.jsonl",
        [
            {"goal": "open a jar", "sol1": "twist the lid", "sol2": "eat it", "label": 0},
            {"goal": "dry hair", "sol1": "use water", "sol2": "use a towel", "label": 1},
        ],
    )
    arc = {
        "id": "x",
        "question": "What melts ice?",
        "answerKey": "B",
        "choices": {"text": ["cold", "heat"], "label": ["A", "B"]},
    }
    write_jsonl(data / "arc_easy.jsonl", [arc, {**arc, "id": "y", "answerKey": "A"}])
    write_jsonl(
        data / "mmlu_anatomy.jsonl",
        [{"question": "Bones?", "subject": "anatomy", "choices": ["a", "b", "c", "d"], "answer": 2}] * 3,
    )
    rep = downstream.run(hf_model_dir, tables=(4, 5, 6), tasks=["piqa", "arc_easy", "mmlu_anatomy"], data_dir=data)
    t4, t5, t6 = (rep["tables"][k] for k in (4, 5, 6))
    assert 0 <= t4["ours"]["piqa"] <= 100 and 0 <= t4["ours"]["arc_easy"] <= 100 and t4["ours"]["sciq"] is None
    assert t5["ours"]["arc_easy"] > 0 and t5["ours"]["natural_qs_open"] is None
    assert t6["ours"]["stem"] in (0.0, 100.0) and t6["n"]["stem"] == 3
    with pytest.raises(FileNotFoundError, match=r"sciq.jsonl"):
        downstream.run(hf_model_dir, tables=(4,), tasks=["sciq"], data_dir=data)


def test_every_longbench_run_scores_as_longbench_with_or_without_local_data(tmp_path, monkeypatch):
    """Hub runs (no --data-dir) go through the same task YAML as local ones: LongBench's prompt, generation and
    scoring hook, lm-eval's own dataset kept; with --chat-template only the tasks pred.py wraps get it."""
    from types import SimpleNamespace

    calls = []

    def fake_hf_lm(model, **kwargs):
        tok = SimpleNamespace(eos_token_id=2, encode=lambda text, add_special_tokens=False: [7])
        return SimpleNamespace(tokenizer=tok, max_length=4096), {"max_length": 4096}

    def fake_evaluate(lm, tasks, task_dirs, **kwargs):
        folder = Path(task_dirs[0])
        calls.append({"tasks": list(tasks), "chat": kwargs["apply_chat_template"], "yaml": {}})
        assert kwargs["bootstrap_iters"] == 100000  # lm-eval's default, handed through
        for task in tasks:
            calls[-1]["yaml"][task] = (folder / f"{task}.yaml").read_text()
        result = {t: {"alias": t.removeprefix("fope_"), "score,none": 0.5} for t in tasks}
        return {"results": result, "versions": {t: 5.0 for t in tasks}, "samples": {}, "config": {}}

    monkeypatch.setattr(lmeval, "hf_lm", fake_hf_lm)
    monkeypatch.setattr(lmeval, "evaluate", fake_evaluate)
    results = lmeval.run("m", ["longbench_trec_e", "longbench_hotpotqa_e", "longbench_samsum"])
    assert len(calls) == 1 and not calls[0]["chat"]
    for name, text in calls[0]["yaml"].items():
        dataset = name.removeprefix("fope_longbench_").removesuffix("_e").replace("-", "_")
        assert text.endswith(f"process_results: !function fope.eval.longbench_scoring.process_results_{dataset}\n")
        assert "dataset_path" not in text and "until: []" in text  # lm-eval's hub data; no stop at a newline
    assert "  eos_token_id:\n  - 2\n  - 7\n  min_new_tokens: 1" in calls[0]["yaml"]["fope_longbench_samsum"]
    assert set(results["results"]) == {"longbench_trec_e", "longbench_hotpotqa_e", "longbench_samsum"}
    assert set(results["versions"]) == set(results["results"])

    calls.clear()
    results = lmeval.run("m", ["longbench_trec_e", "longbench_hotpotqa_e"], apply_chat_template=True)
    assert [(c["tasks"], c["chat"]) for c in calls] == [
        (["fope_longbench_hotpotqa_e"], True),
        (["fope_longbench_trec_e"], False),
    ]
    assert results["settings"]["chat_template"] == ["longbench_hotpotqa_e"]
    assert set(results["results"]) == {"longbench_trec_e", "longbench_hotpotqa_e"}
