"""LongBench scoring (fope.eval.longbench_scoring) against values worked out by hand from LongBench's published
definitions (THUDM/LongBench: LongBench/eval.py, metrics.py, config/dataset2maxlen.json, LongBench/pred.py), and
against lm-eval's own LongBench metric functions where the definitions agree.

Where lm-eval's LongBench tasks (lm_eval/tasks/longbench, task versions 5/6) score differently, a test below shows the
difference on a fixed generation (``test_lm_eval_differs_*``):
  * trec / triviaqa / samsum / lsht: lm-eval stops generation at the first "\\n" (``until: ["\\n"]``) and never cuts
    at the first line; a generation starting with a newline scores on '' there, on the next line in LongBench;
  * lm-eval ``.strip()``s generations before ROUGE: whitespace after the last '.' is an empty sentence (one more
    hypothesis word) in LongBench's ``rouge`` call only;
  * lm-eval's code_sim_score skips blank lines; LongBench takes the first unmarked line even when it is blank.

Hand calculations use: token F1 = 2PR/(P+R) with P = common/len(pred), R = common/len(truth) (metrics.py f1_score);
ROUGE-L of the ``rouge`` package = 2PR/(P+R+1e-8) over *distinct* words, sentences split on '.'; fuzz.ratio =
round(100 * 2M/T) with M matched characters, T total length.
"""

from __future__ import annotations

import importlib
import math
import re
import warnings
from pathlib import Path

import pytest

pytest.importorskip("jieba", reason="LongBench's Chinese metrics need jieba (the 'longbench' extra)")
pytest.importorskip("rouge", reason="LongBench's ROUGE needs the 'rouge' package (the 'longbench' extra)")
pytest.importorskip("fuzzywuzzy", reason="LongBench's code_sim needs fuzzywuzzy (the 'longbench' extra)")

from fope.eval import longbench_scoring as lb


def exact(value: float):
    """Equal up to float rounding of the same formula evaluated in another order."""
    return pytest.approx(value, rel=1e-12, abs=1e-15)


def rouge_f(p: float, r: float) -> float:
    """The ``rouge`` package's F: 2PR / (P + R + 1e-8)."""
    return 2.0 * p * r / (p + r + 1e-8)


def names(dataset: str) -> list[str]:
    """Every accepted name of a dataset: LongBench's, LongBench-E's and lm-eval's."""
    return sorted(n for n, d in lb.TASK_NAMES.items() if d == dataset)


@pytest.fixture(scope="module")
def lm():
    """lm-eval's LongBench metrics module (lm_eval/tasks/longbench/metrics.py)."""
    pytest.importorskip("lm_eval")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return importlib.import_module("lm_eval.tasks.longbench.metrics")


def lm_eval_generation(raw: str, until: list[str]) -> str:
    """What lm-eval's HF model hands back for a greedy generation ``raw`` under ``until`` (the stop sequences are
    cut off by lm_eval.models.utils.postprocess_generated_text after generation stops at them)."""
    from lm_eval.models.utils import postprocess_generated_text

    return postprocess_generated_text(generation=raw, stop=list(until), think_end_token=None)


# ------------------------------------------------------------------------------------------------ the task table

# LongBench/eval.py dataset2metric; config/dataset2maxlen.json; eval.py's first-line list
EXPECTED = {
    "narrativeqa": ("qa_f1_score", 128),
    "qasper": ("qa_f1_score", 128),
    "multifieldqa_en": ("qa_f1_score", 64),
    "multifieldqa_zh": ("qa_f1_zh_score", 64),
    "hotpotqa": ("qa_f1_score", 32),
    "2wikimqa": ("qa_f1_score", 32),
    "musique": ("qa_f1_score", 32),
    "dureader": ("rouge_zh_score", 128),
    "gov_report": ("rouge_score", 512),
    "qmsum": ("rouge_score", 512),
    "multi_news": ("rouge_score", 512),
    "vcsum": ("rouge_zh_score", 512),
    "trec": ("classification_score", 64),
    "triviaqa": ("qa_f1_score", 32),
    "samsum": ("rouge_score", 128),
    "lsht": ("classification_score", 64),
    "passage_count": ("count_score", 32),
    "passage_retrieval_en": ("retrieval_score", 32),
    "passage_retrieval_zh": ("retrieval_zh_score", 32),
    "lcc": ("code_sim_score", 64),
    "repobench-p": ("code_sim_score", 64),
}
LONGBENCH_E = {
    "qasper",
    "multifieldqa_en",
    "hotpotqa",
    "2wikimqa",
    "gov_report",
    "multi_news",
    "trec",
    "triviaqa",
    "samsum",
    "passage_count",
    "passage_retrieval_en",
    "lcc",
    "repobench-p",
}  # pred.py's --e list


def test_task_table_is_longbench_eval_py():
    assert set(lb.TASKS) == set(EXPECTED)
    for dataset, (metric, max_gen) in EXPECTED.items():
        spec = lb.TASKS[dataset]
        assert (spec.dataset, spec.metric, spec.max_gen) == (dataset, metric, max_gen)
        assert spec.metric in lb.METRICS
    assert {d for d, s in lb.TASKS.items() if s.first_line} == {"trec", "triviaqa", "samsum", "lsht"}
    assert {d for d, s in lb.TASKS.items() if not s.chat_template} == {
        "trec",
        "triviaqa",
        "samsum",
        "lsht",
        "lcc",
        "repobench-p",
    }
    assert {d for d, s in lb.TASKS.items() if s.newline_eos} == {"samsum"}
    assert {d for d, s in lb.TASKS.items() if s.longbench_e} == LONGBENCH_E


def test_every_name_form_resolves_to_the_same_dataset():
    assert len(lb.TASK_NAMES) == 2 * (21 + 13)
    for name in ("trec", "trec_e", "longbench_trec", "longbench_trec_e"):
        assert lb.resolve_task(name) is lb.TASKS["trec"]
    assert lb.resolve_task("longbench_repobench-p_e").dataset == "repobench-p"
    assert lb.resolve_task("passage_retrieval_en_e").dataset == "passage_retrieval_en"
    assert lb.resolve_task(lb.TASKS["lcc"]) is lb.TASKS["lcc"]


@pytest.mark.parametrize("bad", ["lsht_e", "longbench_lsht_e", "TREC", "longbench_", "trec_ee", "nq", "", None, 3])
def test_unknown_task_is_a_one_line_value_error_naming_it(bad):
    with pytest.raises(ValueError) as err:
        lb.score(bad, "x", ["x"])
    msg = str(err.value)
    assert "\n" not in msg and repr(bad) in msg
    assert "narrativeqa" in msg and "repobench-p" in msg and "'_e'" in msg and "longbench_" in msg
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        lb.postprocess(bad, "x")


def _lm_eval_task_yamls():
    lm_eval = pytest.importorskip("lm_eval")
    import yaml

    folder = Path(lm_eval.__file__).parent / "tasks" / "longbench"

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!function", lambda loader, node: loader.construct_scalar(node))
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        cfg = yaml.load(path.read_text(encoding="utf-8"), Loader=Loader)
        if isinstance(cfg, dict) and "task" in cfg and "process_results" in cfg:
            out[cfg["task"]] = cfg
    return out


def test_table_covers_lm_evals_tasks_and_matches_their_metric_and_budget():
    """Every LongBench task lm-eval ships is supported; lm-eval's metric (process_results get_<metric>_with_score) and
    max_gen_toks equal LongBench's; the 'until' of the first-line tasks is the documented difference."""
    tasks = _lm_eval_task_yamls()
    assert set(tasks) == set(lb.LM_EVAL_TASKS)
    assert len(tasks) == 34
    for name, cfg in tasks.items():
        spec = lb.resolve_task(name)
        fn = cfg["process_results"].removeprefix("metrics.get_").removesuffix("_with_score")
        assert f"{fn}_score" == spec.metric, (name, fn)
        assert cfg["generation_kwargs"]["max_gen_toks"] == spec.max_gen, name
        assert cfg["generation_kwargs"]["do_sample"] is False, name
        until = cfg["generation_kwargs"]["until"]
        # lm-eval stops the four first-line tasks at "\n"; LongBench generates on and cuts afterwards
        assert until == (["\n"] if spec.first_line else []), name


# ------------------------------------------------------------------------------------------------ post-processing


@pytest.mark.parametrize("dataset", ["trec", "triviaqa", "samsum", "lsht"])
def test_first_line_tasks_strip_leading_newlines_and_cut(dataset):
    for name in names(dataset):
        assert lb.postprocess(name, "\nPAS\nQuestion: next") == "PAS"
        assert lb.postprocess(name, "\n\n\nPAS") == "PAS"
        assert lb.postprocess(name, " PAS \nx") == " PAS "  # only newlines are stripped, not spaces
        assert lb.postprocess(name, "\n \nPAS") == " "  # the first line after the newlines, even if blank
        assert lb.postprocess(name, "\n\n") == ""


@pytest.mark.parametrize("dataset", sorted(set(EXPECTED) - {"trec", "triviaqa", "samsum", "lsht"}))
def test_other_tasks_score_the_generation_unchanged(dataset):
    for name in names(dataset):
        assert lb.postprocess(name, "\nA\nB \n") == "\nA\nB \n"


# ------------------------------------------------------------------------------------------------ English QA F1


@pytest.mark.parametrize(
    "dataset", ["narrativeqa", "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "musique", "triviaqa"]
)
def test_qa_f1_by_hand(dataset):
    for name in names(dataset):
        # "the eiffel tower in paris" -> lower, drop ",." -> drop article "the" -> [eiffel, tower, in, paris] (4)
        # truth [eiffel, tower] (2); common 2: P = 2/4, R = 2/2, F1 = 2*0.5*1/(0.5+1) = 2/3
        assert lb.score(name, "The Eiffel Tower, in Paris.", ["Eiffel Tower"]) == exact(2 / 3)
        # several answers, the max: [paris] vs [paris, france]: P = 1, R = 1/2, F1 = 2/3;
        # vs [city, of, paris] ("the" dropped): P = 1, R = 1/3, F1 = (2/3)/(4/3) = 1/2; vs [lyon]: 0 -> 2/3
        assert lb.score(name, "Paris", ["Paris, France", "the city of Paris", "Lyon"]) == exact(2 / 3)
        # multiset counts: pred [cat, cat, cat] (articles dropped), truth [cat, dog, and, cat]
        # common = min(3, 2) = 2: P = 2/3, R = 2/4, F1 = 2*(2/3)(1/2)/((2/3)+(1/2)) = (2/3)/(7/6) = 4/7
        assert lb.score(name, "the cat the cat cat", ["A cat, a dog and a cat"]) == exact(4 / 7)
        # punctuation inside words and case: "U.S.A." -> "usa"; "An apple" -> "apple"
        assert lb.score(name, "U.S.A.", ["usa"]) == 1.0
        assert lb.score(name, "An APPLE!", ["apple"]) == 1.0
        # no shared token, empty prediction, no answers: 0
        assert lb.score(name, "London", ["Paris"]) == 0.0
        assert lb.score(name, "", ["Paris"]) == 0.0
        assert lb.score(name, "Paris", []) == 0.0


def test_multi_line_prediction_is_cut_for_triviaqa_only():
    pred = "\nParis\nQuestion: Where is it"
    for name in names("triviaqa"):
        assert lb.score(name, pred, ["Paris"]) == 1.0  # cut: "Paris"
        # "\n\nThe Beatles\n..." -> "The Beatles" -> [beatles]; answers [beatles] / [beatles] -> 1
        assert lb.score(name, "\n\nThe Beatles\nAnswer: Beatles", ["Beatles", "The Beatles"]) == 1.0
    for name in names("hotpotqa"):
        # not cut: [paris, question, where, is, it] (5) vs [paris]: P = 1/5, R = 1, F1 = (2/5)/(6/5) = 1/3
        assert lb.score(name, pred, ["Paris"]) == exact(1 / 3)


# ------------------------------------------------------------------------------------------------ Chinese QA F1


def test_jieba_segmentation_the_hand_calculations_rest_on():
    assert lb._words_zh("答案是北京。") == ["答案", "是", "北京", "。"]
    assert lb._words_zh("中国的首都是北京") == ["中国", "的", "首都", "是", "北京"]
    assert lb._words_zh("首都北京") == ["首都北京"]
    assert lb._words_zh("会议讨论了预算和人员") == ["会议", "讨论", "了", "预算", "和", "人员"]


def test_qa_f1_zh_by_hand():
    for name in names("multifieldqa_zh"):
        # [答案, 是, 北京, 。] -> "。" normalises to "" and is dropped -> 3 words; truth [北京]
        # common 1: P = 1/3, R = 1, F1 = (2/3)/(4/3) = 1/2
        assert lb.score(name, "答案是北京。", ["北京"]) == exact(1 / 2)
        # several answers: [中国, 的, 首都, 是, 北京] vs [北京]: P = 1/5, R = 1, F1 = 1/3;
        # vs [首都北京] (one jieba word): nothing shared, 0 -> max 1/3
        assert lb.score(name, "中国的首都是北京", ["北京", "首都北京"]) == exact(1 / 3)
        # ASCII punctuation and case are normalised too: [Beijing, !] -> [beijing]
        assert lb.score(name, "Beijing!", ["beijing"]) == 1.0
        assert lb.score(name, "\n北京\n上海", ["北京"]) == exact(2 / 3)  # no cut: [北京, 上海] vs [北京]: P=1/2, R=1


def test_chinese_punctuation_set_is_metrics_pys(lm):
    # every character of metrics.py's list (and ASCII punctuation) vanishes; 《 and the full-width full stop do not
    listed = "".join(sorted(lb._PUNCT_ZH))
    assert lb.normalize_zh_answer(listed) == "" == lm.normalize_zh_answer(listed)
    assert lb.normalize_zh_answer("《书》．") == "《书．" == lm.normalize_zh_answer("《书》．")
    assert lb.normalize_zh_answer(" A b\tC ") == "abc"


# ------------------------------------------------------------------------------------------------ ROUGE-L


@pytest.mark.parametrize("dataset", ["gov_report", "qmsum", "multi_news"])
def test_rouge_by_hand(dataset):
    for name in names(dataset):
        # one sentence each; distinct words hyp {the, cat, sat, on, mat} n = 5, ref {the, cat, lay, on, mat} m = 5
        # LCS "the cat on the mat" -> distinct {the, cat, on, mat} = 4: P = R = 4/5
        assert lb.score(name, "the cat sat on the mat", ["the cat lay on the mat"]) == exact(rouge_f(4 / 5, 4 / 5))
        # union LCS over hypothesis sentences: hyp ["alpha beta zeta", "alpha gamma epsilon"], n = 5 distinct;
        # ref one sentence of m = 6 words; LCS with s1 {alpha, beta}, with s2 {alpha, gamma, epsilon}
        # union {alpha, beta, gamma, epsilon} = 4: P = 4/5, R = 4/6
        assert lb.score(name, "alpha beta zeta. alpha gamma epsilon", ["alpha beta gamma delta epsilon eta"]) == exact(
            rouge_f(4 / 5, 4 / 6)
        )
        # case matters: {storms, hit, the, coast} vs {Storms, hit, the, coast}: LCS 3, P = R = 3/4
        assert lb.score(name, "storms hit the coast", ["Storms hit the coast"]) == exact(rouge_f(3 / 4, 3 / 4))
        # max over references: ref 1 m = 6, LCS 4: P = 1, R = 4/6; ref 2 shares nothing: 0
        assert lb.score(
            name, "Storms hit the coast", ["Storms hit the coast on Monday", "Officials said little"]
        ) == exact(rouge_f(1, 4 / 6))
        # whitespace after the last '.': pieces ["The cat sat", "\n"] -> sentences ["The cat sat", ""]:
        # words {The, cat, sat, ""} n = 4, m = 3, LCS 3: P = 3/4, R = 1
        assert lb.score(name, "The cat sat.\n", ["The cat sat."]) == exact(rouge_f(3 / 4, 1))
        # the rouge package raises on an empty hypothesis (no sentence): metrics.py returns 0.0
        assert lb.score(name, "", ["The cat sat."]) == 0.0
        assert lb.score(name, "...", ["The cat sat."]) == 0.0


def test_samsum_is_cut_before_rouge():
    gen = "\nAmanda will bring cookies.\nDialogue: Tom: hi Jerry"
    for name in names("samsum"):
        # cut -> "Amanda will bring cookies." -> one sentence, n = 4; ref "Amanda will bring cookies tomorrow" m = 5
        # LCS 4: P = 1, R = 4/5
        assert lb.score(name, gen, ["Amanda will bring cookies tomorrow."]) == exact(rouge_f(1, 4 / 5))
    # uncut (gov_report): sentences ["Amanda will bring cookies", "Dialogue: Tom: hi Jerry"]: 4 + 4 = 8 distinct
    # words, LCS with ref 4: P = 4/8, R = 4/5
    assert lb.score("gov_report", gen, ["Amanda will bring cookies tomorrow."]) == exact(rouge_f(4 / 8, 4 / 5))


@pytest.mark.parametrize("dataset", ["dureader", "vcsum"])
def test_rouge_zh_by_hand(dataset):
    for name in names(dataset):
        # jieba words [会议, 讨论, 了, 预算] (n = 4) vs [会议, 讨论, 了, 预算, 和, 人员] (m = 6), LCS 4: P = 1, R = 4/6
        assert lb.score(name, "会议讨论了预算", ["会议讨论了预算和人员"]) == exact(rouge_f(1, 4 / 6))
        assert lb.score(name, "", ["会议讨论了预算"]) == 0.0


# ------------------------------------------------------------------------------------------------ classification

CLASSES = ["City", "Country", "Animal", "Other location"]


@pytest.mark.parametrize("dataset", ["trec", "lsht"])
def test_classification_by_hand(dataset):
    for name in names(dataset):
        assert lb.score(name, "City", ["City"], CLASSES) == 1.0
        # "\nCity\nType: Country": cut -> "City" -> matches [City] -> 1/1
        assert lb.score(name, "\nCity\nType: Country", ["City"], CLASSES) == 1.0
        # two classes named: matches [City, Country]; neither is a proper substring of "City" -> 1/2
        assert lb.score(name, "Country or City", ["City"], CLASSES) == 0.5
        assert lb.score(name, "city", ["City"], CLASSES) == 0.0  # case sensitive: no class matched
        assert lb.score(name, "Animal", ["City"], CLASSES) == 0.0  # wrong class
        assert lb.score(name, "I do not know", ["City"], CLASSES) == 0.0  # no class: no fuzzy fallback
        assert lb.score(name, "City", ["Animal", "City"], CLASSES) == 1.0  # max over answers: 0, 1
        # a class that is a proper substring of the truth is removed: [Date, Date of birth] -> [Date of birth] -> 1
        assert lb.score(name, "Date of birth", ["Date of birth"], ["Date", "Date of birth", "Event"]) == 1.0
        # ... and then cannot score: "Date" alone -> [Date] -> removed -> [] -> 0
        assert lb.score(name, "Date", ["Date of birth"], ["Date", "Date of birth", "Event"]) == 0.0
        # the in-loop list.remove skips the element after a removal: matches [New, New York, York, New York City];
        # i=0 "New" removed -> [New York, York, New York City]; i=1 "York" removed -> [New York, New York City];
        # i=2 ends the loop: "New York" (a proper substring) survives -> 1/2
        assert lb.score(name, "New York City", ["New York City"], ["New", "New York", "York", "New York City"]) == 0.5


def test_lsht_chinese_classes_by_hand():
    classes = ["体育", "足球", "国际足球", "财经"]
    for name in names("lsht"):
        # matches [足球, 国际足球]; 足球 is a proper substring of the truth 国际足球 -> removed -> [国际足球] -> 1
        assert lb.score(name, "国际足球", ["国际足球"], classes) == 1.0
        # cut -> "足球" -> [足球] -> removed -> [] -> 0
        assert lb.score(name, "\n\n足球\n国际足球", ["国际足球"], classes) == 0.0


def test_classification_needs_all_classes():
    with pytest.raises(ValueError, match="all_classes"):
        lb.score("trec_e", "City", ["City"])


# ------------------------------------------------------------------------------------------------ synthetic tasks


def test_retrieval_and_count_by_hand():
    for name in names("passage_retrieval_en"):
        assert lb.score(name, "Paragraph 12", ["Paragraph 12"]) == 1.0
        assert lb.score(name, "Paragraph 1 or Paragraph 12", ["Paragraph 12"]) == 0.5  # numbers [1, 12]: 1 of 2
        assert lb.score(name, "Paragraph 12.\nParagraph 3 and 4", ["Paragraph 12"]) == exact(1 / 3)  # no cut: 1 of 3
        assert lb.score(name, "Paragraph 012", ["Paragraph 12"]) == 0.0  # "012" != "12"
        assert lb.score(name, "I am not sure", ["Paragraph 12"]) == 0.0  # no number
    for name in names("passage_retrieval_zh"):
        assert lb.score(name, "段落5", ["段落5"]) == 1.0
        assert lb.score(name, "答案是段落5，不是段落15", ["段落5"]) == 0.5  # [5, 15]
    with pytest.raises(ValueError, match="names no paragraph"):
        lb.score("passage_retrieval_en", "Paragraph 1", ["the first one"])
    for name in names("passage_count"):
        assert lb.score(name, "7", ["7"]) == 1.0
        assert lb.score(name, "7", [7]) == 1.0  # compared as strings
        assert lb.score(name, "There are 7 unique paragraphs out of 17.", ["7"]) == 0.5  # [7, 17]
        assert lb.score(name, "7, 7", ["7"]) == 1.0  # 2 of 2
        assert lb.score(name, "seven", ["7"]) == 0.0


# ------------------------------------------------------------------------------------------------ code


@pytest.mark.parametrize("dataset", ["lcc", "repobench-p"])
def test_code_sim_by_hand(dataset):
    gt = "return x + 1"
    for name in names(dataset):
        # lstrip('\n') -> first line "    return x + 1" (16 chars) vs 12 chars: M = 12, T = 28
        # 100 * 24/28 = 85.71 -> 86 -> 0.86
        assert lb.score(name, "\n    return x + 1\n}", [gt]) == 0.86
        assert lb.score(name, "# add one\nreturn x + 1", [gt]) == 1.0  # comment line skipped; equal -> 100
        # fence lines skipped; "return x + 2" vs gt: M = 11, T = 24: 100 * 22/24 = 91.67 -> 92
        assert lb.score(name, "```python\nreturn x + 2\n```", [gt]) == 0.92
        # M = 20 ("self.assertEqual(a, ") + 1 (")") = 21, T = 44: 100 * 42/44 = 95.45 -> 95
        assert lb.score(name, "self.assertEqual(a, c)", ["self.assertEqual(a, b)"]) == 0.95
        # a blank line after a comment is the first unmarked line: "" -> ratio 0
        assert lb.score(name, "// comment\n\nreturn x + 1", [gt]) == 0.0
        assert lb.score(name, "# only\n// comments", [gt]) == 0.0  # every line marked -> ""
    assert lb.first_code_line("\n\n  \nx") == "  "


# ------------------------------------------------------------------------------------------------ eval.py x100


def test_dataset_score_is_eval_pys_rounded_percentage():
    preds = ["\nParis\n", "Eiffel Tower in Paris", "London"]
    answers = [["Paris"], ["Eiffel Tower"], ["Paris"]]
    # rows: 1 (cut), 2/3 (P = 2/4, R = 1), 0 -> 100 * (5/3) / 3 = 55.555... -> 55.56
    for name in names("triviaqa"):
        assert lb.dataset_score(name, preds, answers) == 55.56
    # trec with one all_classes list for the file: rows 1, 0 -> 50.0
    assert lb.dataset_score("trec", ["City", "Animal"], [["City"], ["City"]], CLASSES) == 50.0
    with pytest.raises(ValueError, match="2 predictions but 1"):
        lb.dataset_score("trec", ["a", "b"], [["a"]], CLASSES)
    with pytest.raises(ValueError, match="no predictions"):
        lb.dataset_score("trec", [], [], CLASSES)


def test_length_buckets_are_eval_pys_scorer_e():
    preds = ["\nParis\n", "Eiffel Tower in Paris", "London", "Paris"]
    answers = [["Paris"], ["Eiffel Tower"], ["Paris"], ["Paris"]]
    # lengths 3999 -> 0-4k, 4000 and 7999 -> 4-8k, 8000 -> 8k+
    got = lb.length_bucket_scores("triviaqa_e", preds, answers, [3999, 4000, 7999, 8000])
    # 0-4k: [1] -> 100.0; 4-8k: [2/3, 0] -> 100 * 1/3 = 33.33; 8k+: [1] -> 100.0
    assert got == {"0-4k": 100.0, "4-8k": 33.33, "8k+": 100.0}
    got = lb.length_bucket_scores("triviaqa_e", preds[:1], answers[:1], [10])
    assert got["0-4k"] == 100.0 and math.isnan(got["4-8k"]) and math.isnan(got["8k+"])


def test_bad_input_types():
    with pytest.raises(TypeError, match="list of ground-truth"):
        lb.score("triviaqa", "Paris", "Paris")
    with pytest.raises(TypeError, match="prediction must be a str"):
        lb.score("triviaqa", None, ["Paris"])


# ------------------------------------------------------------------------------------------------ vs lm-eval

AGREE = [  # (metric, prediction, ground truth, all_classes): same definition in lm-eval's metrics.py
    ("qa_f1_score", "The Eiffel Tower, in Paris.", "Eiffel Tower", None),
    ("qa_f1_score", "the cat the cat cat", "A cat, a dog and a cat", None),
    ("qa_f1_score", "\nParis\nQuestion: Where is it", "Paris", None),
    ("qa_f1_score", "", "Paris", None),
    ("qa_f1_zh_score", "答案是北京。", "北京", None),
    ("qa_f1_zh_score", "中国的首都是北京", "首都北京", None),
    ("rouge_score", "the cat sat on the mat", "the cat lay on the mat", None),
    ("rouge_score", "alpha beta zeta. alpha gamma epsilon", "alpha beta gamma delta epsilon eta", None),
    ("rouge_score", "The cat sat.\n", "The cat sat.", None),
    ("rouge_score", "", "The cat sat.", None),
    ("rouge_zh_score", "会议讨论了预算", "会议讨论了预算和人员", None),
    ("classification_score", "Country or City", "City", CLASSES),
    ("classification_score", "I do not know", "City", CLASSES),
    ("classification_score", "New York City", "New York City", ["New", "New York", "York", "New York City"]),
    ("classification_score", "国际足球", "国际足球", ["体育", "足球", "国际足球", "财经"]),
    ("retrieval_score", "Paragraph 1 or Paragraph 12", "Paragraph 12", None),
    ("retrieval_zh_score", "答案是段落5，不是段落15", "段落5", None),
    ("count_score", "There are 7 unique paragraphs out of 17.", "7", None),
    ("code_sim_score", "\n    return x + 1\n}", "return x + 1", None),
    ("code_sim_score", "```python\nreturn x + 2\n```", "return x + 1", None),
]


@pytest.mark.parametrize("metric,prediction,truth,classes", AGREE)
def test_metric_equals_lm_evals(lm, metric, prediction, truth, classes):
    ours = lb.METRICS[metric](prediction, truth, all_classes=classes)
    theirs = getattr(lm, metric)(prediction, truth, all_classes=classes)
    assert ours == theirs


def test_lm_eval_differs_first_line_tasks_stop_at_newline(lm):
    """trec / triviaqa / samsum / lsht: lm-eval stops at the first "\\n", so a leading newline leaves ''."""
    cases = [  # (lm-eval task, raw greedy generation, doc, lm-eval's process_results)
        (
            "longbench_trec_e",
            "\nCity\nType: Country",
            {"answers": ["City"], "all_classes": CLASSES},
            lm.get_classification_with_score,
        ),
        (
            "longbench_triviaqa_e",
            "\nParis\nQuestion: next",
            {"answers": ["Paris"], "all_classes": None},
            lm.get_qa_f1_with_score,
        ),
        (
            "longbench_samsum_e",
            "\nAmanda will bring cookies.\nDialogue:",
            {"answers": ["Amanda will bring cookies tomorrow."], "all_classes": None},
            lm.get_rouge_with_score,
        ),
        (
            "longbench_lsht",
            "\n国际足球\n",
            {"answers": ["国际足球"], "all_classes": ["足球", "国际足球"]},
            lm.get_classification_with_score,
        ),
    ]
    for task, raw, doc, theirs in cases:
        assert lm_eval_generation(raw, ["\n"]) == ""
        assert theirs(doc, [lm_eval_generation(raw, ["\n"])])["score"] == 0.0
        ours = lb.score(task, raw, doc["answers"], doc["all_classes"])
        assert ours > 0.5, task  # 1.0, 1.0, rouge_f(1, 4/5) = 0.889, 1.0
        # ours through the process_results hook, fed the raw generation (lm-eval with until: [])
        assert lb.lm_eval_process_results(task)(doc, [raw]) == {"score": ours, lb.resolve_task(task).metric: ours}
    # without a leading newline the two agree: generation stops at the same "\n" that LongBench cuts at
    raw = "City\nType: Country"
    doc = {"answers": ["City"], "all_classes": CLASSES}
    assert lm.get_classification_with_score(doc, [lm_eval_generation(raw, ["\n"])])["score"] == 1.0
    assert lb.score("trec", raw, ["City"], CLASSES) == 1.0


def test_lm_eval_differs_strip_before_rouge(lm):
    """lm-eval strips the generation: no empty sentence after the last '.' -> P = R = 1."""
    doc = {"answers": ["The cat sat."], "all_classes": None}
    assert lm.get_rouge_with_score(doc, ["The cat sat.\n"])["score"] == exact(rouge_f(1, 1))
    assert lb.score("longbench_gov_report_e", "The cat sat.\n", doc["answers"]) == exact(rouge_f(3 / 4, 1))


def test_lm_eval_differs_code_sim_blank_lines(lm):
    """lm-eval (task version 6) skips the blank line; LongBench compares it (ratio 0)."""
    doc = {"answers": ["return x + 1"], "all_classes": None}
    gen = "// comment\n\nreturn x + 1"
    assert lm.get_code_sim_with_score(doc, [gen])["score"] == 1.0
    assert lb.score("longbench_lcc", gen, doc["answers"]) == 0.0


def test_process_results_hook_shape_and_no_strip():
    hook = lb.lm_eval_process_results("longbench_gov_report_e")
    assert hook.__name__ == "process_results_gov_report"
    out = hook({"answers": ["The cat sat."]}, ["The cat sat.\n"])
    assert out == {"score": exact(rouge_f(3 / 4, 1)), "rouge_score": exact(rouge_f(3 / 4, 1))}
    assert lb.lm_eval_process_results("repobench-p").__name__ == "process_results_repobench_p"
    with pytest.raises(ValueError, match="'nq'"):
        lb.lm_eval_process_results("nq")


def test_hooks_load_in_a_real_lm_eval_task_yaml(tmp_path):
    """The integration point: a local task YAML that includes lm-eval's own task file and replaces its data, its
    process_results (by dotted name, `process_results_ref`) and its generation_kwargs (`lm_eval_generation_kwargs`)
    scores the raw generation as LongBench does."""
    pytest.importorskip("lm_eval")
    import json

    import yaml
    from lm_eval.tasks import TaskManager, get_task_dict

    row = {
        "input": "What city is the capital of France?",
        "question": "What city is the capital of France?",
        "context": "Question: Who wrote Hamlet?\nType: Individual",
        "answers": ["City"],
        "length": 12,
        "all_classes": CLASSES,
    }
    data = tmp_path / "trec_e.jsonl"
    data.write_text(json.dumps(row) + "\n", encoding="utf-8")
    base = Path(importlib.import_module("lm_eval").__file__).parent / "tasks" / "longbench" / "trec_e.yaml"
    cfg = {
        "include": str(base),
        "task": "fope_test_trec_e",
        "tag": ["fope_test"],
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "generation_kwargs": lb.lm_eval_generation_kwargs("longbench_trec_e"),
    }
    text = yaml.safe_dump(cfg, sort_keys=False) + f"process_results: !function {lb.process_results_ref('trec_e')}\n"
    (tmp_path / "fope_test_trec_e.yaml").write_text(text, encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        task = get_task_dict(["fope_test_trec_e"], TaskManager(include_path=str(tmp_path)))["fope_test_trec_e"]
        task.build_all_requests(limit=1, rank=0, world_size=1)
    ((context, gen_kwargs),) = [inst.arguments for inst in task.instances]
    assert context.endswith("Type: Individual\nWhat city is the capital of France?")
    assert gen_kwargs["until"] == [] and gen_kwargs["max_gen_toks"] == 64
    doc = task.instances[0].doc
    assert task.process_results(doc, ["\nCity\nType: Country"]) == {"score": 1.0, "classification_score": 1.0}
    assert task.process_results(doc, ["Animal"]) == {"score": 0.0, "classification_score": 0.0}


def test_generation_kwargs_follow_pred_py():
    for name in lb.LM_EVAL_TASKS:
        kw = lb.lm_eval_generation_kwargs(name)
        assert kw == {"max_gen_toks": lb.resolve_task(name).max_gen, "do_sample": False, "until": []}
    # samsum: pred.py's eos_token_id=[eos, newline] and min_length=context+1 -> at least one new token
    assert lb.lm_eval_generation_kwargs("samsum_e", eos_token_id=2, newline_token_id=13) == {
        "max_gen_toks": 128,
        "do_sample": False,
        "until": [],
        "eos_token_id": [2, 13],
        "min_new_tokens": 1,
    }
    assert "eos_token_id" not in lb.lm_eval_generation_kwargs("trec", eos_token_id=2, newline_token_id=13)


def test_every_dataset_has_an_importable_hook():
    assert set(lb.PROCESS_RESULTS) == set(lb.TASKS)
    for name in lb.TASK_NAMES:
        module, _, attr = lb.process_results_ref(name).rpartition(".")
        assert getattr(importlib.import_module(module), attr) is lb.PROCESS_RESULTS[lb.TASK_NAMES[name]]


def test_longbench_prompts_from_lm_evals_templates():
    """LongBench's dataset2prompt.json templates from lm-eval's: the documented differences put back, every other
    task's template kept; an unknown template is refused."""
    pytest.importorskip("lm_eval")
    from fope.eval.lmeval import task_config
    from fope.eval.longbench_scoring import LM_EVAL_TASKS, longbench_prompt

    changed = {}
    for task in LM_EVAL_TASKS:
        theirs = task_config(task)["doc_to_text"]
        ours = longbench_prompt(task, theirs)
        assert longbench_prompt(task, ours) == ours  # already LongBench's: kept
        if ours != theirs:
            changed[task.removeprefix("longbench_").removesuffix("_e")] = ours
    assert set(changed) == {
        "narrativeqa",
        "triviaqa",
        "samsum",
        "passage_count",
        "passage_retrieval_en",
        "lcc",
        "repobench-p",
    }
    assert changed["triviaqa"].endswith("The following are some examples.\n\n{{context}}\n\n{{question}}")
    assert changed["samsum"].endswith("The following are some examples.\n\n{{context}}\n\n{{question}}")
    assert changed["passage_count"].endswith("The final answer is: ")
    assert changed["passage_retrieval_en"].endswith("The answer is: ")
    assert changed["lcc"].endswith("{{context}}Next line of code:\n")
    assert changed["repobench-p"].endswith("{{context}}{{question}}Next line of code:\n")
    assert "asconcisely" not in changed["narrativeqa"] and changed["narrativeqa"].count("as concisely") == 2
    with pytest.raises(ValueError, match=r"'lcc'.*not the ones fope knows"):
        longbench_prompt("lcc", "Complete the code: {{context}}")


#: one fixed generation per dataset, every one starting with a newline, with its score worked by hand from LongBench's
#: eval.py (first-line cut for trec / triviaqa / samsum / lsht only) and metrics.py
NEWLINE_FIRST = {
    # QA F1, no cut: "\nParis\nFrance" -> [paris, france] vs [paris]: P = 1/2, R = 1, F1 = 2/3
    **{
        d: ("\nParis\nFrance", ["Paris"], None, 2 / 3)
        for d in ("narrativeqa", "qasper", "multifieldqa_en", "hotpotqa", "2wikimqa", "musique")
    },
    # cut: "Paris" -> 1
    "triviaqa": ("\nParis\nFrance", ["Paris"], None, 1.0),
    # jieba: "\n", "北京", "\n", "上海"; whitespace words dropped -> [北京, 上海] vs [北京]: F1 = 2/3
    "multifieldqa_zh": ("\n北京\n上海", ["北京"], None, 2 / 3),
    # ROUGE-L, no cut: one sentence, words [the, cat, sat] = the truth's: P = R = 1, F = 2/(2 + 1e-8)
    **{d: ("\nthe cat sat", ["the cat sat"], None, rouge_f(1, 1)) for d in ("gov_report", "qmsum", "multi_news")},
    # cut: "the cat sat" -> as above; uncut, "more" would be a fourth word (P = 3/4)
    "samsum": ("\nthe cat sat\nmore", ["the cat sat"], None, rouge_f(1, 1)),
    # jieba words joined by spaces: "\n 北京" -> [北京] = the truth: F = 2/(2 + 1e-8)
    **{d: ("\n北京", ["北京"], None, rouge_f(1, 1)) for d in ("dureader", "vcsum")},
    # cut: "Human" -> the one class found is the truth: 1; uncut, Location would also be found (1/2)
    "trec": ("\nHuman\nLocation", ["Human"], ["Human", "Location", "Numeric"], 1.0),
    "lsht": ("\n体育\n财经", ["体育"], ["体育", "财经"], 1.0),
    # numbers [3, 4], one equal to the truth: 1/2
    "passage_count": ("\n3\n4", ["3"], None, 0.5),
    "passage_retrieval_en": ("\nParagraph 3\nParagraph 5", ["Paragraph 3"], None, 0.5),
    "passage_retrieval_zh": ("\n段落3\n段落5", ["段落3"], None, 0.5),
    # code_sim picks its own line: after lstrip("\n") the first line "return x" equals the truth: ratio 100 -> 1
    **{d: ("\nreturn x\nfoo()", ["return x"], None, 1.0) for d in ("lcc", "repobench-p")},
}


def test_every_task_scores_a_generation_that_starts_with_a_newline_by_hand():
    assert set(NEWLINE_FIRST) == set(lb.TASKS)  # every supported dataset
    for dataset, (prediction, answers, classes, expected) in NEWLINE_FIRST.items():
        for name in names(dataset):
            assert lb.score(name, prediction, answers, classes) == exact(expected), (name, prediction)
    # what the cut changes there: the uncut generations would score otherwise
    assert lb.classification_score("\nHuman\nLocation", "Human", all_classes=["Human", "Location"]) == 0.5
    assert lb.rouge_score("\nthe cat sat\nmore", "the cat sat") == exact(rouge_f(3 / 4, 1))
