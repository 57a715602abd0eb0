"""lm-evaluation-harness runs a converted model through its `hf` model type (trust_remote_code, local path) on a
tiny local generate_until task; per-sample scores land in the LongBench-E length buckets."""

import json

import pytest

from fope.eval.lmeval import BUCKETS, LONGBENCH_E, bucket_scores, resolve_tasks

TASK = """task: fope_tiny_copy
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "{{{{question}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 3
  do_sample: false
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def test_bucket_scores_follow_longbench_e_bounds():
    samples = [
        {"score": 1.0, "doc": {"length": 10}},
        {"score": 0.0, "doc": {"length": 3999}},
        {"score": 0.5, "doc": {"length": 4000}},
        {"score": 0.25, "doc": {"length": 12000}},
        {"score": 1.0, "doc": {}},
    ]
    assert bucket_scores(samples) == {
        "0-4k": {"score": 50.0, "n": 2},
        "4-8k": {"score": 50.0, "n": 1},
        "8k+": {"score": 25.0, "n": 1},
        "all": {"score": 100.0, "n": 1},
    }
    assert [b[0] for b in BUCKETS] == ["0-4k", "4-8k", "8k+"]
    with pytest.raises(ValueError, match="no metric 'rouge'"):
        bucket_scores(samples, metric="rouge")


def test_longbench_task_names_exist_in_installed_lm_eval():
    pytest.importorskip("lm_eval")
    from pathlib import Path

    import lm_eval

    folder = Path(lm_eval.__file__).parent / "tasks" / "longbench"
    for name in LONGBENCH_E.values():
        assert f"task: {name}\n" in (folder / f"{name.removeprefix('longbench_')}.yaml").read_text()
    assert resolve_tasks(["trec", "longbench_samsum_e"]) == ["longbench_trec_e", "longbench_samsum_e"]
    assert resolve_tasks(None) == list(LONGBENCH_E.values())


@pytest.mark.slow
def test_lm_eval_runs_a_converted_model_on_a_local_task(tiny_llama, char_tokenizer, tmp_path):
    pytest.importorskip("lm_eval")
    from fope.eval import lmeval
    from fope.hf.convert import convert
    from fope.hf.io import save

    rows = [
        {"question": "ab", "answer": "c", "length": 100},
        {"question": "de", "answer": "f", "length": 5000},
        {"question": "gh", "answer": "i", "length": 9000},
    ]
    (tmp_path / "data.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "tiny.yaml").write_text(TASK.format(data=tmp_path / "data.jsonl"))
    save(convert(tiny_llama, pe="fope"), tmp_path / "model", tokenizer=char_tokenizer)
    results = lmeval.run(tmp_path / "model", ["fope_tiny_copy"], include_path=tmp_path / "tasks")
    assert results["results"]["fope_tiny_copy"]["sample_len"] == 3
    assert set(results["buckets"]["fope_tiny_copy"]) == {"0-4k", "4-8k", "8k+"}
    assert all(b["n"] == 1 for b in results["buckets"]["fope_tiny_copy"].values())


def test_long_prompts_are_cut_in_the_middle_as_longbench_does(tiny_llama, char_tokenizer):
    """pred.py keeps the first and last int(limit / 2) tokens; the HFLM subclass does so row by row, left-padded."""
    pytest.importorskip("lm_eval")
    from fope.eval.lmeval import middle_truncate, middle_truncating_hflm

    assert middle_truncate(list(range(10)), 4) == [0, 1, 8, 9]
    assert middle_truncate(list(range(10)), 5) == [0, 1, 8, 9]  # int(5 / 2) = 2 from each end
    assert middle_truncate(list(range(3)), 4) == [0, 1, 2]
    lm = middle_truncating_hflm()(pretrained=tiny_llama, tokenizer=char_tokenizer, backend="causal", batch_size=1)
    ids, mask = lm.tok_batch_encode(["abcdefghij", "xyz"], left_truncate_len=4)
    text = ["".join(char_tokenizer.convert_ids_to_tokens(row[m.bool()].tolist())) for row, m in zip(ids, mask)]
    assert text == ["abij", "xyz"] and mask.tolist() == [[1, 1, 1, 1], [0, 1, 1, 1]]
    full, _ = lm.tok_batch_encode(["abcdefghij"])  # no limit: lm-eval's own encoding
    assert "".join(char_tokenizer.convert_ids_to_tokens(full[0].tolist())) == "abcdefghij"
