"""fope eval ruler: RULER's prompts word for word, its scoring (checked against lm-eval's own functions), seeding,
sizing and batched greedy decoding."""

from __future__ import annotations

import ast
import random
from pathlib import Path

import pytest

pytest.importorskip("wonderwords")

import contextlib

from fope.eval import ruler
from fope.eval.adapters import as_adapter

from .conftest import CumMeanLM

LMEVAL_RULER = None
try:
    import lm_eval

    LMEVAL_RULER = Path(lm_eval.__file__).parent / "tasks" / "ruler"
except ImportError:  # pragma: no cover
    pass


def _lmeval_constants(name: str) -> dict:
    """The string constants (and CONFIG dicts) of one of lm-eval's ruler modules, read from its source (importing
    niah_utils would fetch nltk data)."""
    if LMEVAL_RULER is None:
        pytest.skip("lm-eval not installed")
    tree = ast.parse((LMEVAL_RULER / name).read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            with contextlib.suppress(ValueError):
                out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_templates_are_rulers_word_for_word():
    niah = _lmeval_constants("niah_utils.py")
    assert niah["TEMPLATE"] == ruler.NIAH_TEMPLATE
    assert _lmeval_constants("prepare_niah.py")["NEEDLE"] == ruler.NEEDLE
    vt = _lmeval_constants("vt_utils.py")["CONFIG"]["variable_tracking"]
    assert (ruler.VT_TEMPLATE, ruler.VT_PREFIX, ruler.GEN_TOKENS["vt"]) == (
        vt["template"],
        vt["answer_prefix"],
        vt["tokens_to_generate"],
    )
    for mod, (tpl, prefix, fam) in {
        "cwe_utils.py": (ruler.CWE_TEMPLATE, ruler.CWE_PREFIX, "cwe"),
        "fwe_utils.py": (ruler.FWE_TEMPLATE, ruler.FWE_PREFIX, "fwe"),
    }.items():
        cfg = _lmeval_constants(mod)["CONFIG"]
        assert (tpl, prefix, ruler.GEN_TOKENS[fam]) == (
            cfg["template"],
            cfg["answer_prefix"],
            cfg["tokens_to_generate"],
        )
    qa = _lmeval_constants("qa_utils.py")
    assert qa["CONFIG"]["template"] == ruler.QA_TEMPLATE and qa["DOCUMENT_PROMPT"] == ruler.DOCUMENT
    assert ruler.QA_PREFIX.strip() == qa["CONFIG"]["answer_prefix"] and ruler.GEN_TOKENS["qa"] == 32
    assert ruler.DEPTHS[:3] == [0, 3, 5] and ruler.DEPTHS[-1] == 100 and len(ruler.DEPTHS) == 40


def test_niah_prompt_singular_and_plural_forms():
    rng = random.Random(0)
    one, refs, depths = ruler.make_niah(ruler.NIAH["niah_single_1"], 10, rng)
    assert one.startswith("A special magic number is hidden within the following text.")
    assert one.endswith("mentioned in the provided text is") and refs[0] in one and len(refs[0]) == 7
    assert one.count(ruler.NOISE) == 10 and len(depths) == 1
    many, refs, _ = ruler.make_niah(ruler.NIAH["niah_multivalue"], 10, random.Random(0))
    assert many.startswith("Some special magic numbers are hidden") and many.endswith("text are")
    assert len(refs) == 4 and all(f"is: {v}." in many for v in refs)
    mq, refs, _ = ruler.make_niah(ruler.NIAH["niah_multiquery"], 10, random.Random(0))
    assert ", and " in mq.splitlines()[-1] and len(refs) == 4


@pytest.fixture(scope="module")
def lmeval_scoring():
    if LMEVAL_RULER is None:
        pytest.skip("lm-eval not installed")
    from lm_eval.tasks.ruler import common_utils

    return common_utils


PREDS = [
    (" 1234567.", ["1234567"]),
    ("the numbers are 11, 22 and\x0733", ["11", "22", "33", "44"]),
    ("NOTHING", ["abc"]),
    ("AbC-dEf and xyz", ["abc-def", "XYZ"]),
]


@pytest.mark.parametrize("task", ["niah_single_1", "niah_multikey_2", "niah_multikey_3", "vt", "cwe", "fwe"])
def test_scores_equal_lmevals_own_process_results_times_100(task, lmeval_scoring):
    preds, refs = [p for p, _ in PREDS], [r for _, r in PREDS]
    theirs = [lmeval_scoring.process_results({"max_length": 4096, "outputs": r}, [p])["4096"] for p, r in PREDS]
    assert ruler.score(task, preds, refs) == pytest.approx(100 * sum(theirs) / len(theirs), abs=1e-12)
    assert ruler.score(task, preds, refs) == pytest.approx(100 * (1 + 0.75 + 0 + 1) / 4)


def test_qa_counts_any_match_where_lmeval_gives_the_share(lmeval_scoring):
    pred, refs = "Paris", ["Paris", "the city of Paris"]
    assert ruler.score("qa_1", [pred], [refs]) == 100.0  # RULER's string_match_part
    assert lmeval_scoring.process_results_part({"max_length": 4096, "outputs": refs}, [pred])["4096"] == 0.5


def _tok():
    from .conftest import train_tiny_tokenizer

    return train_tiny_tokenizer()


@pytest.fixture(scope="module")
def tok():
    return _tok()


@pytest.mark.parametrize("task", ["niah_single_1", "niah_multikey_2", "vt", "cwe", "fwe"])
def test_samples_fit_the_length_and_repeat_with_the_seed(tok, task):
    L = 1500 if task in ("vt", "cwe") else 600
    a = ruler.build_samples(tok, task, L, 3, seed=5)
    b = ruler.build_samples(tok, task, L, 2, seed=5)
    c = ruler.build_samples(tok, task, L, 2, seed=6)
    assert [s.input for s in a[:2]] == [s.input for s in b]  # same seed, same samples, whatever --samples
    assert [s.input for s in b] != [s.input for s in c]
    budget = L - ruler.GEN_TOKENS[ruler.family(task)]
    assert all(len(s.n_tokens) <= budget for s in a)
    assert max(len(s.n_tokens) for s in a) > budget * 0.8  # the haystack fills the length
    assert all(all(r in s.input for r in s.outputs) for s in a if task != "fwe")


def test_fwe_answers_are_ranks_two_to_four():
    prompt, refs, _ = ruler.make_fwe(2000, random.Random(1), 4096)
    words = prompt.split("coded words. ")[1].split("\n")[0].split()
    counts = sorted(((words.count(w), w) for w in set(words)), reverse=True)
    assert counts[0][1] == "..." and [w for _, w in counts[1:4]] == refs


def test_cwe_common_words_are_the_most_frequent():
    prompt, refs, _ = ruler.make_cwe(50, random.Random(1), 8192)
    body = prompt.split("\n")[-2]
    for w in refs:
        assert body.count(f". {w} ") + body.endswith(f". {w}") >= 29


def test_batched_generation_equals_one_prompt_at_a_time(tok):
    model = as_adapter(CumMeanLM(tok.vocab_size))
    samples = ruler.build_samples(tok, "niah_single_1", 500, 4, seed=0)
    for s in samples[1:]:
        s.n_tokens = list(samples[0].n_tokens[:-3]) + s.n_tokens[-3:]  # same length: one batch
    ruler.generate(model, tok, samples, 12)
    for s in samples:
        want = tok.decode(model.generate_greedy(s.n_tokens, 12, eos_id=tok.eos_id))
        assert s.pred == want


def test_ruler_eval_result_schema_and_skipped_qa(tok):
    model = as_adapter(CumMeanLM(tok.vocab_size))
    lines = []
    res = ruler.ruler_eval(
        model, tok, [600], tasks=["niah_single_1", "qa_1"], samples=2, progress=False, log=lines.append
    )
    assert lines == ["ruler: skipping qa_1: no --data-dir (a SQuAD v2 JSON file)"]
    cell = res["tasks"]["niah_single_1"]["600"]
    assert set(cell) == {"score", "samples"} and set(cell["samples"][0]) == {"input", "pred", "outputs"}
    assert res["by_length"] == {"600": cell["score"]} and res["seed"] == 0 and "essay_haystack" in res["substitutions"]
    assert "niah_single_1" in ruler.table(res) and "mean" in ruler.table(res)


def test_qa_from_local_squad_file(tok, tmp_path):
    import json

    paras = [
        {
            "context": f"Paragraph {i} says the answer is word{i}.",
            "qas": [
                {"question": f"What does paragraph {i} say?", "is_impossible": False, "answers": [{"text": f"word{i}"}]}
            ],
        }
        for i in range(30)
    ]
    (tmp_path / "squad.json").write_text(json.dumps({"data": [{"paragraphs": paras}]}))
    s = ruler.build_samples(tok, "qa_1", 400, 2, seed=0, data_dir=tmp_path)
    assert all(s_.outputs[0] in s_.input and "Document 1:\n" in s_.input for s_ in s)
    assert s[0].input.endswith(" Answer:")
