"""Table 5 (gold-answer loss) of `fope eval downstream`: every loglikelihood request carries lm-eval's own target
delimiter (the answer's leading space), and the per-answer log-likelihoods equal what lm-eval's own HF model wrapper
(``lm_eval.models.huggingface.HFLM``, loading the same directory itself) gives for the same requests, to 1e-4."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("lm_eval")
pytest.importorskip("transformers")

from fope.cli import main
from fope.eval import downstream

ARC = [
    {
        "id": "x",
        "question": "What gives plants energy?",
        "answerKey": "B",
        "choices": {"text": ["soil", "sunlight"], "label": ["A", "B"]},
    },
    {
        "id": "y",
        "question": "What melts ice?",
        "answerKey": "A",
        "choices": {"text": ["heat", "cold"], "label": ["A", "B"]},
    },
]
NQ = [{"question": "who wrote hamlet", "answer": ["William Shakespeare", "Shakespeare"]}]
TRIVIA = [
    {
        "question": "What is the capital of France",
        "question_id": "q1",
        "question_source": "x",
        "entity_pages": {},
        "search_results": {},
        "answer": {
            "aliases": ["Paris"],
            "normalized_aliases": ["paris"],
            "normalized_value": "paris",
            "value": "Paris",
        },
    }
]
#: the requests, written by hand from lm-eval's task files (nq_open: its description, "Q: ...?\nA:"; triviaqa:
#: "Question: ...?\nAnswer:"; arc_easy: "Question: ...\nAnswer:"; target_delimiter " " for all three)
EXPECTED = {
    "nq_open_gold_nll": [("Answer these questions:\n\nQ: who wrote hamlet?\nA:", " William Shakespeare")],
    "triviaqa_gold_nll": [("Question: What is the capital of France?\nAnswer:", " Paris")],
    "arc_easy_gold_nll": [
        ("Question: What gives plants energy?\nAnswer:", " sunlight"),
        ("Question: What melts ice?\nAnswer:", " heat"),
    ],
}


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


@pytest.fixture
def setup(tiny_llama, char_tokenizer, tmp_path) -> tuple[Path, Path]:
    tiny_llama.save_pretrained(tmp_path / "model")
    char_tokenizer.save_pretrained(tmp_path / "model")
    data = tmp_path / "data"
    data.mkdir()
    for name, rows in (("arc_easy", ARC), ("nq_open", NQ), ("triviaqa", TRIVIA)):
        write_jsonl(data / f"{name}.jsonl", rows)
    return tmp_path / "model", data


def hflm_loglikelihoods(model_dir: Path, requests: list[tuple[str, str]]) -> list[float]:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    lm = HFLM(pretrained=str(model_dir), backend="causal", device="cpu", batch_size=1)
    instances = [Instance("loglikelihood", {}, request, i) for i, request in enumerate(requests)]
    return [ll for ll, _ in lm.loglikelihood(instances)]


def test_gold_targets_carry_the_tasks_own_delimiter():
    assert downstream.gold_target("arc_easy", "x.y") == '{{" " + x.y}}'  # arc_easy: TaskConfig's default " "
    assert downstream.gold_target("nq_open", "answer[0]") == '{{" " + answer[0]}}'  # set in its YAML


def test_table5_log_likelihoods_equal_lm_evals_own_hf_wrapper(setup, tmp_path, capfd, monkeypatch):
    model_dir, data = setup
    monkeypatch.chdir(tmp_path)  # not a git checkout
    argv = ["eval", "downstream", "--model", str(model_dir), "--tables", "5", "--data-dir", str(data)]
    assert main(argv + ["--bootstrap-iters", "0", "--json", str(tmp_path / "rep.json")]) == 0
    out, err = capfd.readouterr()
    assert "fatal: not a git repository" not in out + err and "neither marked as CausalLM" not in out + err
    assert "|arc_easy_gold_nll|      1|none  |     0|perplexity|↓  |" in out  # lm-eval's table
    rep = json.loads((tmp_path / "rep.json").read_text())
    for key in ("results", "versions", "n-shot", "configs"):
        assert set(rep[key]) == set(EXPECTED), key

    got = rep["gold_answers"]
    assert {t: [(r["context"], r["target"]) for r in rows] for t, rows in got.items()} == EXPECTED
    requests = [req for task in EXPECTED for req in EXPECTED[task]]
    ours = [r["loglikelihood"] for task in EXPECTED for r in got[task]]
    theirs = hflm_loglikelihoods(model_dir, requests)
    assert ours == pytest.approx(theirs, abs=1e-4)
    # the bare answer (what Table 5 scored before) is another number: the test can tell them apart
    bare = hflm_loglikelihoods(model_dir, [(c, t.lstrip(" ")) for c, t in requests])
    assert all(abs(a - b) > 1e-3 for a, b in zip(theirs, bare))

    # Table 5's value: ln(lm-eval's perplexity) = the mean NLL per answer
    t5 = rep["tables"]["5"]["ours"]
    arc = [r["loglikelihood"] for r in got["arc_easy_gold_nll"]]
    assert t5["arc_easy"] == pytest.approx(-sum(arc) / len(arc), rel=1e-6)
    assert t5["natural_qs_open"] == pytest.approx(-got["nq_open_gold_nll"][0]["loglikelihood"], rel=1e-6)
    assert math.exp(t5["trivia_qa_wiki"]) == pytest.approx(rep["results"]["triviaqa_gold_nll"]["perplexity,none"])
