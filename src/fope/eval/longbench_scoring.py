"""LongBench scoring as LongBench's own ``eval.py`` / ``metrics.py`` do it, for every LongBench and LongBench-E task.

    >>> from fope.eval.longbench_scoring import score, postprocess, dataset_score
    >>> postprocess("longbench_triviaqa_e", "\\nParis\\nQuestion: ...")        # first line, leading newlines gone
    'Paris'
    >>> score("triviaqa", "\\nParis\\nQuestion: ...", ["Paris", "Paris, France"])   # max over the answers
    1.0
    >>> dataset_score("trec", ["City", "Animal"], [["City"], ["City"]], all_classes=["City", "Animal"])  # x100, 2 dp
    50.0

The reference (THUDM/LongBench, the v1 code now under ``LongBench/`` in that repository):

* ``LongBench/eval.py`` (``scorer`` / ``scorer_e``): for the datasets trec, triviaqa, samsum and lsht -- and only
  those -- the prediction becomes ``prediction.lstrip('\\n').split('\\n')[0]`` (leading newlines removed, then the
  first line) before any metric; every other prediction is scored exactly as generated (no strip). A row's score is
  the **maximum over its ground-truth answers** (starting from 0), the dataset's score is
  ``round(100 * sum / n, 2)``, and LongBench-E's per-bucket score (length < 4000, < 8000, else; the row's ``length``
  field) is ``round(100 * mean, 2)``. ``all_classes`` is handed to every metric; only classification reads it.
  An earlier revision (root ``eval.py``, 20 datasets, before multi_news / samsum) had no first-line cut.
* ``metrics.py``: the metric functions re-implemented below from their definitions (our code, same results):
  ``qa_f1_score`` (English normalisation + token F1), ``qa_f1_zh_score`` (jieba words, Chinese normalisation, F1),
  ``rouge_score`` (ROUGE-L F of the ``rouge`` package, 0.0 on any exception), ``rouge_zh_score`` (jieba words joined
  by spaces, then ``rouge_score``), ``classification_score``, ``retrieval_score`` / ``retrieval_zh_score``,
  ``count_score``, ``code_sim_score`` (fuzzywuzzy's ``fuzz.ratio`` / 100).
* ``config/dataset2maxlen.json``: the generation budget per dataset (`TaskScoring.max_gen`).
* ``LongBench/pred.py``: greedy decoding, ``max_new_tokens`` from dataset2maxlen, the chat format applied except for
  trec / triviaqa / samsum / lsht / lcc / repobench-p (`TaskScoring.chat_template`), and for samsum only a newline
  token added to the end-of-sequence ids with at least one new token (`TaskScoring.newline_eos`).

Where lm-evaluation-harness's ``longbench`` tasks (``lm_eval/tasks/longbench``, task version 5/6) differ
(docs/evaluation.md, "LongBench", has the summary and tests/eval/test_longbench_scoring.py shows each one):

1. trec, triviaqa, samsum, lsht generate with ``until: ["\\n"]`` and are **not** cut at the first line: a generation
   that starts with a newline stops there and scores on ``''`` (LongBench strips the newline and scores the next
   line).
2. every ``process_results`` ``.strip()``s the generation (except code_sim). For ROUGE this matters: the ``rouge``
   package splits on ``'.'``, and whitespace after the last period is an extra empty sentence -- one more (empty)
   word in the hypothesis -- in LongBench, but not after lm-eval's strip.
3. lm-eval's ``code_sim_score`` (task version 6) skips blank lines when picking the first code line; LongBench picks
   the first line without a backtick, ``#`` or ``//``, blank or not (after ``lstrip('\\n')``), so a blank line after a
   comment scores 0 there.
4. lm-eval's ``classification_score`` drops LongBench's ``difflib`` fallback, which never runs in LongBench anyway
   (``em_match_list != 0`` is always true for a list): same results. Both keep the in-loop ``list.remove`` that can
   skip an element (reproduced here, see `classification_score`).
5. not scoring but generation: prompts for triviaqa / samsum use ``\\n`` where LongBench has ``\\n\\n`` before the
   question, passage_count / passage_retrieval_en lose the trailing space after the final colon, lcc / repobench-p
   lose the final ``\\n``; lm-eval truncates long prompts from the left (LongBench: from the middle); its chat
   template (when asked for) applies to all tasks.

Every other metric function of lm-eval's ``metrics.py`` agrees with ours on the same (prediction, answer) pair.

Dependencies: ``jieba``, ``fuzzywuzzy``, ``rouge`` (the ``longbench`` extra), imported when a metric first needs
them. Task names: LongBench's dataset names (``trec``, ``repobench-p``), their LongBench-E names (``trec_e``) and
lm-eval's (``longbench_trec``, ``longbench_trec_e``).
"""

from __future__ import annotations

import logging
import re
import string
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------------------------------------------------------
# the task table


@dataclass(frozen=True)
class TaskScoring:
    """How LongBench generates for and scores one dataset (its LongBench-E variant, if any, is scored the same)."""

    dataset: str
    """LongBench's dataset name, the key of ``dataset2metric`` in LongBench/eval.py (e.g. ``"trec"``)."""
    metric: str
    """The metric function of LongBench's metrics.py (``qa_f1_score``, ``rouge_score``, ...); lm-eval's task reports
    it under the same name next to ``score``. Its implementation here: ``METRICS[metric]``."""
    first_line: bool
    """eval.py replaces the prediction by ``prediction.lstrip('\\n').split('\\n')[0]`` before the metric (trec,
    triviaqa, samsum, lsht)."""
    max_gen: int
    """``max_new_tokens`` of LongBench/pred.py, from config/dataset2maxlen.json (equal to lm-eval's
    ``max_gen_toks``)."""
    chat_template: bool
    """pred.py wraps the prompt in the model's chat format (``build_chat``); False for the few-shot and code tasks
    (trec, triviaqa, samsum, lsht, lcc, repobench-p), which a chat model sees as plain text."""
    newline_eos: bool = False
    """pred.py (samsum only) adds the newline token to ``eos_token_id`` and forbids stopping before one new token
    (``min_length=context_length+1``): generation ends at the first newline token after at least one token."""
    longbench_e: bool = False
    """LongBench-E has this dataset (``<dataset>_e``; the 13 datasets of pred.py's ``--e`` list)."""


def _t(
    dataset: str,
    metric: str,
    max_gen: int,
    *,
    first_line: bool = False,
    chat: bool = True,
    newline_eos: bool = False,
    e: bool = False,
) -> tuple[str, TaskScoring]:
    return dataset, TaskScoring(dataset, metric, first_line, max_gen, chat, newline_eos, e)


#: LongBench dataset name -> its scoring (LongBench/eval.py dataset2metric, config/dataset2maxlen.json, pred.py)
TASKS: dict[str, TaskScoring] = dict(
    [
        # single-document QA
        _t("narrativeqa", "qa_f1_score", 128),
        _t("qasper", "qa_f1_score", 128, e=True),
        _t("multifieldqa_en", "qa_f1_score", 64, e=True),
        _t("multifieldqa_zh", "qa_f1_zh_score", 64),
        # multi-document QA
        _t("hotpotqa", "qa_f1_score", 32, e=True),
        _t("2wikimqa", "qa_f1_score", 32, e=True),
        _t("musique", "qa_f1_score", 32),
        _t("dureader", "rouge_zh_score", 128),
        # summarisation
        _t("gov_report", "rouge_score", 512, e=True),
        _t("qmsum", "rouge_score", 512),
        _t("multi_news", "rouge_score", 512, e=True),
        _t("vcsum", "rouge_zh_score", 512),
        # few-shot learning: cut at the first line, no chat format
        _t("trec", "classification_score", 64, first_line=True, chat=False, e=True),
        _t("triviaqa", "qa_f1_score", 32, first_line=True, chat=False, e=True),
        _t("samsum", "rouge_score", 128, first_line=True, chat=False, newline_eos=True, e=True),
        _t("lsht", "classification_score", 64, first_line=True, chat=False),
        # synthetic
        _t("passage_count", "count_score", 32, e=True),
        _t("passage_retrieval_en", "retrieval_score", 32, e=True),
        _t("passage_retrieval_zh", "retrieval_zh_score", 32),
        # code: no chat format; code_sim_score picks the first code line itself
        _t("lcc", "code_sim_score", 64, chat=False, e=True),
        _t("repobench-p", "code_sim_score", 64, chat=False, e=True),
    ]
)

#: every accepted task name -> LongBench dataset name
TASK_NAMES: dict[str, str] = {}
for _name, _spec in TASKS.items():
    for _variant in (_name, f"{_name}_e") if _spec.longbench_e else (_name,):
        TASK_NAMES[_variant] = _name
        TASK_NAMES[f"longbench_{_variant}"] = _name
del _name, _spec, _variant

#: lm-eval's LongBench task names (``longbench_<dataset>[_e]``), the 34 tasks lm-eval 0.4.x ships
LM_EVAL_TASKS: tuple[str, ...] = tuple(sorted(n for n in TASK_NAMES if n.startswith("longbench_")))


def resolve_task(task: str | TaskScoring) -> TaskScoring:
    """The `TaskScoring` of a LongBench / LongBench-E / lm-eval task name; ValueError naming it otherwise."""
    if isinstance(task, TaskScoring):
        return task
    dataset = TASK_NAMES.get(task) if isinstance(task, str) else None
    if dataset is None:
        e_sets = ", ".join(n for n, s in TASKS.items() if s.longbench_e)
        raise ValueError(
            f"unknown LongBench task {task!r}; supported: {', '.join(TASKS)} (LongBench-E adds '_e' to "
            f"{e_sets}; lm-eval's names add the prefix 'longbench_')"
        )
    return TASKS[dataset]


# ---------------------------------------------------------------------------------------------------------------
# optional dependencies (the ``longbench`` extra)

_INSTALL = "pip install -e '.[longbench]' (or pip install jieba fuzzywuzzy rouge)"
_cache: dict[str, Any] = {}


def _jieba():
    if "jieba" not in _cache:
        try:
            import jieba
        except ImportError as e:
            raise ImportError(f"LongBench's Chinese metrics need jieba: {_INSTALL}") from e
        jieba.setLogLevel(logging.WARNING)  # no "Building prefix dict ..." lines on stderr
        _cache["jieba"] = jieba
    return _cache["jieba"]


def _words_zh(text: str) -> list[str]:
    """jieba's accurate mode (``jieba.cut(text, cut_all=False)``), as metrics.py segments Chinese."""
    return list(_jieba().cut(text, cut_all=False))


def _fuzz_ratio(a: str, b: str) -> int:
    if "fuzz" not in _cache:
        try:
            with warnings.catch_warnings():  # "Using slow pure-python SequenceMatcher": same results, no noise
                warnings.simplefilter("ignore")
                from fuzzywuzzy import fuzz
        except ImportError as e:
            raise ImportError(f"LongBench's code_sim_score needs fuzzywuzzy: {_INSTALL}") from e
        _cache["fuzz"] = fuzz
    return _cache["fuzz"].ratio(a, b)


def _rouge():
    if "rouge" not in _cache:
        try:
            from rouge import Rouge
        except ImportError as e:
            raise ImportError(f"LongBench's ROUGE metrics need the 'rouge' package: {_INSTALL}") from e
        _cache["rouge"] = Rouge()  # stateless; metrics.py builds one per call
    return _cache["rouge"]


# ---------------------------------------------------------------------------------------------------------------
# metrics (LongBench metrics.py definitions)

_PUNCT_EN = frozenset(string.punctuation)
#: metrics.py's Chinese punctuation list (note: it has 》 but not 《, and no full-width full stop U+FF0E) + ASCII
_PUNCT_ZH = (
    frozenset(
        "\uff01\uff1f\uff61\u3002"  # ！？｡。
        "\uff02\uff03\uff04\uff05\uff06\uff07\uff08\uff09\uff0a\uff0b\uff0c\uff0d\uff0f"  # ＂＃＄％＆＇（）＊＋，－／
        "\uff1a\uff1b\uff1c\uff1d\uff1e\uff20"  # ：；＜＝＞＠
        "\uff3b\uff3c\uff3d\uff3e\uff3f\uff40"  # ［＼］＾＿｀
        "\uff5b\uff5c\uff5d\uff5e\uff5f\uff60\uff62\uff63\uff64"  # ｛｜｝～｟｠｢｣､
        "\u3001\u3003\u300b\u300c\u300d\u300e\u300f\u3010\u3011"  # 、〃》「」『』【】
        "\u3014\u3015\u3016\u3017\u3018\u3019\u301a\u301b\u301c\u301d\u301e\u301f"  # 〔〕〖〗〘〙〚〛〜〝〞〟
        "\u3030\u303e\u303f"  # 〰〾〿
        "\u2013\u2014\u2018\u2019\u201b\u201c\u201d\u201e\u201f\u2026\u2027\ufe4f"  # –—‘’‛“”„‟…‧﹏
        "."
    )
    | _PUNCT_EN
)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """English answer normalisation of metrics.py (SQuAD style), in its order: lower case, drop ASCII punctuation
    (``string.punctuation``), replace the words a / an / the by a space, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCT_EN)
    return " ".join(_ARTICLES.sub(" ", text).split())


def normalize_zh_answer(text: str) -> str:
    """Chinese normalisation of metrics.py: lower case, drop ASCII and the listed Chinese punctuation, remove all
    whitespace."""
    return "".join("".join(ch for ch in text.lower() if ch not in _PUNCT_ZH).split())


def token_f1(prediction: Sequence[str], ground_truth: Sequence[str]) -> float:
    """metrics.py ``f1_score`` over token lists: common = multiset intersection, P = common / len(prediction),
    R = common / len(ground_truth), F1 = 2PR / (P + R); 0 when nothing is shared."""
    same = sum((Counter(prediction) & Counter(ground_truth)).values())
    if same == 0:
        return 0.0
    precision = 1.0 * same / len(prediction)
    recall = 1.0 * same / len(ground_truth)
    return (2 * precision * recall) / (precision + recall)


def qa_f1_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """Token F1 of the `normalize_answer` forms split on whitespace."""
    return token_f1(normalize_answer(prediction).split(), normalize_answer(ground_truth).split())


def qa_f1_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """Token F1 over jieba words, each word `normalize_zh_answer`-ed and empty ones (punctuation, spaces) dropped."""

    def words(text: str) -> list[str]:
        return [w for w in (normalize_zh_answer(w) for w in _words_zh(text)) if w]

    return token_f1(words(prediction), words(ground_truth))


def rouge_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """ROUGE-L F of the ``rouge`` package (``Rouge().get_scores([pred], [gt], avg=True)["rouge-l"]["f"]``), as
    metrics.py calls it; any exception (empty hypothesis, recursion limit on very long sentences) scores 0.0.

    What that package computes (rouge 1.0.1): each text is split on ``'.'`` into sentences (empty pieces dropped,
    whitespace-only pieces kept as an empty sentence), words are split on single spaces after collapsing whitespace;
    no lower-casing or punctuation removal. m / n = number of *distinct* words of reference / hypothesis;
    LCS = summed over reference sentences, the number of distinct words newly added to the running union of the
    LCS words between that reference sentence and each hypothesis sentence; R = LCS/m, P = LCS/n,
    F = 2PR / (P + R + 1e-8)."""
    rouge = _rouge()
    try:
        return rouge.get_scores([prediction], [ground_truth], avg=True)["rouge-l"]["f"]
    except Exception:  # metrics.py: bare ``except: return 0.0``
        return 0.0


def rouge_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """`rouge_score` of the jieba words joined by single spaces."""
    return rouge_score(" ".join(_words_zh(prediction)), " ".join(_words_zh(ground_truth)))


def classification_score(
    prediction: str, ground_truth: str, *, all_classes: Sequence[str] | None = None, **_: Any
) -> float:
    """metrics.py ``classification_score``: the classes that occur in the prediction as substrings (case
    sensitive, in ``all_classes`` order); classes that are a proper substring of the ground truth are then removed;
    score = 1 / (number left) if the ground truth is among them, else 0.

    The removal walks the list while removing from it, as metrics.py's ``for ... : list.remove(...)`` does: after a
    removal the next element is skipped (e.g. classes New, New York, York, New York City and prediction / truth
    "New York City" keep [New York, New York City] -> 0.5). metrics.py's ``difflib`` fallback for "no class matched"
    is unreachable there (``em_match_list != 0`` is always true), so a prediction naming no class scores 0."""
    if all_classes is None:
        raise ValueError("classification_score needs all_classes (the row's 'all_classes' list)")
    matches = [c for c in all_classes if c in prediction]
    i = 0
    while i < len(matches):  # a list iterator's index; removal shifts the rest left under it
        term = matches[i]
        if term in ground_truth and term != ground_truth:
            del matches[matches.index(term)]  # list.remove: the first equal element
        i += 1
    return 1.0 / len(matches) if ground_truth in matches else 0.0


def _share_of(numbers: list[str], target: str) -> float:
    """Fraction of the numbers in the prediction that equal the target (0 when there are none)."""
    if not numbers:
        return 0.0
    return float(sum(1 for n in numbers if n == target) / len(numbers))


def _paragraph_id(ground_truth: str, pattern: str) -> str:
    ids = re.findall(pattern, ground_truth)
    if not ids:  # metrics.py fails here with an IndexError
        raise ValueError(f"ground truth {ground_truth!r} names no paragraph (pattern {pattern!r})")
    return ids[0]


def retrieval_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """The paragraph number of the ground truth (``Paragraph (\\d+)``, first match) against every number
    (``\\d+``) in the prediction: (numbers equal to it) / (numbers), 0 without numbers."""
    return _share_of(re.findall(r"\d+", prediction), _paragraph_id(ground_truth, r"Paragraph (\d+)"))


def retrieval_zh_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """`retrieval_score` with the Chinese pattern ``段落(\\d+)``."""
    return _share_of(re.findall(r"\d+", prediction), _paragraph_id(ground_truth, r"段落(\d+)"))


def count_score(prediction: str, ground_truth: str | int, **_: Any) -> float:
    """(numbers ``\\d+`` in the prediction equal to the ground truth as a string) / (numbers), 0 without numbers."""
    return _share_of(re.findall(r"\d+", prediction), str(ground_truth))


def first_code_line(prediction: str) -> str:
    """The line code_sim_score compares: after ``lstrip('\\n')``, the first line with no backtick, ``#`` or ``//``
    (a blank line qualifies); ``''`` when every line has one."""
    for line in prediction.lstrip("\n").split("\n"):
        if "`" not in line and "#" not in line and "//" not in line:
            return line
    return ""


def code_sim_score(prediction: str, ground_truth: str, **_: Any) -> float:
    """fuzzywuzzy ``fuzz.ratio(first_code_line(prediction), ground_truth) / 100``: round(100 * 2M / T) / 100 with M
    the matched characters (difflib's matching blocks) and T the two lengths summed; 100 for equal strings, 0 when
    one is empty."""
    return _fuzz_ratio(first_code_line(prediction), ground_truth) / 100


#: LongBench metric name -> implementation (signature ``(prediction, ground_truth, all_classes=None) -> float``)
METRICS: dict[str, Callable[..., float]] = {
    "qa_f1_score": qa_f1_score,
    "qa_f1_zh_score": qa_f1_zh_score,
    "rouge_score": rouge_score,
    "rouge_zh_score": rouge_zh_score,
    "classification_score": classification_score,
    "retrieval_score": retrieval_score,
    "retrieval_zh_score": retrieval_zh_score,
    "count_score": count_score,
    "code_sim_score": code_sim_score,
}


# ---------------------------------------------------------------------------------------------------------------
# eval.py: post-processing, max over answers, x100


def postprocess(task: str | TaskScoring, prediction: str) -> str:
    """The prediction as eval.py hands it to the metric: ``lstrip('\\n').split('\\n')[0]`` for trec, triviaqa,
    samsum and lsht (and their ``_e`` / lm-eval names), unchanged otherwise."""
    spec = resolve_task(task)
    if not isinstance(prediction, str):
        raise TypeError(f"prediction must be a str, got {type(prediction).__name__}")
    return prediction.lstrip("\n").split("\n")[0] if spec.first_line else prediction


def score(
    task: str | TaskScoring, prediction: str, answers: Sequence[str], all_classes: Sequence[str] | None = None
) -> float:
    """One row's score in [0, 1]: the `postprocess`-ed prediction against each ground-truth answer with the task's
    metric, the maximum kept (0.0 for no answers). ``all_classes``: the row's class list (needed by trec / lsht)."""
    spec = resolve_task(task)
    if isinstance(answers, str) or not isinstance(answers, Sequence):
        raise TypeError(f"answers must be a list of ground-truth strings, got {type(answers).__name__}")
    if spec.metric == "classification_score" and all_classes is None:
        raise ValueError(
            f"task {spec.dataset!r} scores by classification and needs all_classes (the row's 'all_classes' list)"
        )
    prediction = postprocess(spec, prediction)
    metric = METRICS[spec.metric]
    best = 0.0
    for answer in answers:
        best = max(best, metric(prediction, answer, all_classes=all_classes))
    return float(best)


def dataset_score(
    task: str | TaskScoring,
    predictions: Sequence[str],
    answers: Sequence[Sequence[str]],
    all_classes: Sequence[str] | None = None,
) -> float:
    """eval.py ``scorer``: ``round(100 * sum(row scores) / rows, 2)``. ``all_classes`` is shared by all rows (eval.py
    keeps the last row's list; LongBench's rows of one dataset share it)."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions but {len(answers)} answer lists")
    if not predictions:
        raise ValueError("no predictions to score")
    total = 0.0
    for prediction, truths in zip(predictions, answers):
        total += score(task, prediction, truths, all_classes)
    return round(100 * total / len(predictions), 2)


#: LongBench-E's length buckets (eval.py ``scorer_e``): name, lower bound inclusive, upper bound exclusive
BUCKETS = (("0-4k", 0, 4000), ("4-8k", 4000, 8000), ("8k+", 8000, float("inf")))


def length_bucket_scores(
    task: str | TaskScoring,
    predictions: Sequence[str],
    answers: Sequence[Sequence[str]],
    lengths: Sequence[float],
    all_classes: Sequence[str] | None = None,
) -> dict[str, float]:
    """eval.py ``scorer_e``: {"0-4k", "4-8k", "8k+": ``round(100 * mean, 2)``} by the rows' ``length`` field (< 4000,
    < 8000, else); an empty bucket is NaN, as ``numpy.mean([])`` gives there."""
    import numpy as np

    if not len(predictions) == len(answers) == len(lengths):
        raise ValueError(f"{len(predictions)} predictions, {len(answers)} answer lists, {len(lengths)} lengths")
    groups: dict[str, list[float]] = {name: [] for name, _, _ in BUCKETS}
    for prediction, truths, length in zip(predictions, answers, lengths):
        name = "0-4k" if length < 4000 else "4-8k" if length < 8000 else "8k+"
        groups[name].append(score(task, prediction, truths, all_classes))
    return {name: round(100 * float(np.mean(v)), 2) if v else float("nan") for name, v in groups.items()}


def lm_eval_process_results(task: str | TaskScoring) -> Callable[[Mapping[str, Any], Sequence[str]], dict]:
    """A ``process_results(doc, results)`` for an lm-eval task YAML that scores like LongBench: the raw generation
    ``results[0]`` (no strip) through `score` with the doc's ``answers`` / ``all_classes``; returns
    ``{"score": s, <metric>: s}``, the two metrics lm-eval's LongBench tasks list (means of values in [0, 1])."""
    spec = resolve_task(task)

    def process_results(doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, float]:
        value = score(spec, results[0], doc["answers"], doc.get("all_classes"))
        return {"score": value, spec.metric: value}

    process_results.__name__ = process_results.__qualname__ = f"process_results_{spec.dataset.replace('-', '_')}"
    return process_results


#: lm-eval ``process_results`` hooks by LongBench dataset name. Each is also a module attribute
#: ``process_results_<dataset>`` ('-' -> '_'), so a task YAML can name it; lm-eval's YAML loader imports a
#: ``!function`` target from an importable module when no file of that name sits next to the YAML:
#: ``process_results: !function fope.eval.longbench_scoring.process_results_trec``
PROCESS_RESULTS: dict[str, Callable[[Mapping[str, Any], Sequence[str]], dict]] = {
    name: lm_eval_process_results(name) for name in TASKS
}
globals().update({hook.__name__: hook for hook in PROCESS_RESULTS.values()})


def process_results_ref(task: str | TaskScoring) -> str:
    """The dotted name of the task's hook for a YAML ``process_results: !function <ref>`` line."""
    return f"{__name__}.{PROCESS_RESULTS[resolve_task(task).dataset].__name__}"


#: Where lm-eval's LongBench prompts (``doc_to_text`` of lm_eval/tasks/longbench, 0.4.x) differ from LongBench's own
#: config/dataset2prompt.json (docs/evaluation.md, "LongBench"): per dataset, (lm-eval's text, LongBench's text).
#: triviaqa / samsum put a blank line before the question, passage_count / passage_retrieval_en end with a space after
#: the colon, lcc / repobench-p with a newline, narrativeqa reads "as concisely" (lm-eval kept an early typo).
PROMPT_EDITS: dict[str, tuple[tuple[str, str], ...]] = {
    "narrativeqa": (("asconcisely", "as concisely"),),
    "triviaqa": (("{{context}}\n{{question}}", "{{context}}\n\n{{question}}"),),
    "samsum": (("{{context}}\n{{question}}", "{{context}}\n\n{{question}}"),),
    "passage_count": (("The final answer is:", "The final answer is: "),),
    "passage_retrieval_en": (("The answer is:", "The answer is: "),),
    "lcc": (("Next line of code:", "Next line of code:\n"),),
    "repobench-p": (("Next line of code:", "Next line of code:\n"),),
}


def longbench_prompt(task: str | TaskScoring, lm_eval_prompt: str) -> str:
    """LongBench's prompt template (pred.py's ``dataset2prompt``, in lm-eval's Jinja with ``{{question}}`` for
    LongBench's ``{input}``) from lm-eval's ``doc_to_text`` of the same task: `PROMPT_EDITS` applied. A template that
    already reads as LongBench's is kept; ValueError naming the task when lm-eval's template has neither form (an
    lm-eval version whose prompts changed)."""
    spec = resolve_task(task)
    text = lm_eval_prompt
    for old, new in PROMPT_EDITS.get(spec.dataset, ()):
        if new in text:
            continue
        if old not in text:
            raise ValueError(
                f"lm-eval's prompt for {spec.dataset!r} has neither {old!r} nor LongBench's {new!r}; this lm-eval "
                "version's LongBench prompts are not the ones fope knows"
            )
        text = text.replace(old, new)
    return text


def lm_eval_generation_kwargs(
    task: str | TaskScoring, *, eos_token_id: int | None = None, newline_token_id: int | None = None
) -> dict[str, Any]:
    """``generation_kwargs`` for an lm-eval task YAML that generate as LongBench/pred.py does: greedy
    (``do_sample: false``; pred.py's ``temperature=1.0`` does nothing there, and lm-eval warns about a temperature
    with greedy decoding, so none is given), ``max_gen_toks`` = `TaskScoring.max_gen`, and ``until: []`` (lm-eval's HF
    model still stops at the tokenizer's EOS, as ``model.generate`` does in pred.py); the first-line cut is then
    `postprocess`'s job, in the hook. lm-eval merges an ``include`` shallowly, so this replaces the included task's
    whole ``generation_kwargs``.

    samsum (`TaskScoring.newline_eos`): given both token ids (pred.py: the tokenizer's ``eos_token_id`` and the last id
    of ``tokenizer.encode("\n", add_special_tokens=False)``), adds ``eos_token_id: [eos, newline]`` and
    ``min_new_tokens: 1``, which lm-eval's HF model hands to ``model.generate``. Without them samsum generates up to
    its budget and is cut at the first line, which differs from pred.py only when the greedy first token is a
    newline or EOS (pred.py forbids stopping there and so takes another first token)."""
    spec = resolve_task(task)
    kwargs: dict[str, Any] = {"max_gen_toks": spec.max_gen, "do_sample": False, "until": []}
    if spec.newline_eos and eos_token_id is not None and newline_token_id is not None:
        kwargs.update(eos_token_id=[int(eos_token_id), int(newline_token_id)], min_new_tokens=1)
    return kwargs


__all__ = [
    "BUCKETS",
    "LM_EVAL_TASKS",
    "METRICS",
    "PROCESS_RESULTS",
    "PROMPT_EDITS",
    "TASKS",
    "TASK_NAMES",
    "TaskScoring",
    "classification_score",
    "code_sim_score",
    "count_score",
    "dataset_score",
    "first_code_line",
    "length_bucket_scores",
    "lm_eval_generation_kwargs",
    "lm_eval_process_results",
    "longbench_prompt",
    "normalize_answer",
    "normalize_zh_answer",
    "postprocess",
    "process_results_ref",
    "qa_f1_score",
    "qa_f1_zh_score",
    "resolve_task",
    "retrieval_score",
    "retrieval_zh_score",
    "rouge_score",
    "rouge_zh_score",
    "score",
    "token_f1",
]
