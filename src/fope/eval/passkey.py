"""Passkey retrieval (docs/paper.md §4.5; the YaRN / landmark-attention test the paper's `eval_passkey/` uses).

The prompt is five lines joined with "\\n":
    TASK
    garbage prefix
    "The pass key is {K}. Remember it. {K} is the pass key."
    garbage suffix
    "What is the pass key? The pass key is"
The garbage is `GARBAGE` repeated (joined by spaces) and cut to a character count; prefix and suffix
together hold `n_garbage` characters. For a target length of T tokens, `n_garbage` is the largest
multiple of 128 characters whose prompt has fewer than T tokens (`garbage_for_target`), found once
per length with the tokenizer on a calibration prompt (key `CALIBRATION_KEY`, needle in the middle);
each trial records its own prompt token count, which can differ from the calibration by a few tokens.

Each trial: needle depth (prefix = uniform integer in [0, n_garbage] characters, or `round(d * n_garbage)`
for a grid of depths d), then K = randint(1, 50000) (the official code's range: 1-5 digits although the
paper says "a five-digit number", docs/paper.md §7.16), both drawn from `random.Random(seed)`, restarted
for every length (so the trials at one length never depend on which other lengths run).

Scores:
* generation: greedy decoding of `max_new_tokens` (10) tokens with the KV cache, stopping at EOS; the
  trial is correct iff the first integer in the decoded continuation equals K. Two graded scores of the same
  generation say how a wrong answer is wrong (`digit_scores`): `digits_in_place`, the share of K's digits
  generated at their own position, and `digits_present`, the share of K's digits (as a multiset) that occur
  anywhere in the generated number. A model that has found the needle but cannot copy it in order (small
  models trained on little data: they lack the induction heads that copy a digit sequence) scores high on
  the second and low on the first.
* likelihood (signal for models too small to retrieve): teacher-forced log p(" K" | prompt) against
  `n_distractors` seeded keys with K's number of digits (and, where possible, as many tokens, so that
  a summed log-probability does not favour shorter tokenizations); reports the rank of the true key among the
  candidates (ties count against it), top-1 accuracy, mean reciprocal rank and the mean margin
  log p(true) - max log p(distractor).

Nothing is caught: an exception in any trial propagates (a bare `except:` around a trial is a known failure of passkey
scripts: it turns OOMs into wrong answers).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from fope.eval.adapters import LMAdapter, as_adapter

TASK = (
    "There is an important info hidden inside a lot of irrelevant text. Find it and memorize them. "
    "I will quiz you about the important information there."
)
GARBAGE = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
QUESTION = "What is the pass key? The pass key is"
KEY_RANGE = (1, 50000)
CALIBRATION_KEY = 50000
GARBAGE_STEP = 128
DEPTH_GRID = (0.0, 0.25, 0.5, 0.75, 1.0)
MODES = ("generate", "likelihood", "both")


def garbage(n_chars: int) -> str:
    """`GARBAGE` repeated, joined by single spaces, cut to exactly `n_chars` characters."""
    if n_chars < 0:
        raise ValueError(f"n_chars must be >= 0, got {n_chars}")
    reps = n_chars // (len(GARBAGE) + 1) + 1
    return " ".join([GARBAGE] * reps)[:n_chars]


def passkey_prompt(n_garbage: int, key: int, prefix_chars: int) -> str:
    """The five-line prompt with `prefix_chars` of garbage before the needle and the rest after it."""
    if not 0 <= prefix_chars <= n_garbage:
        raise ValueError(f"prefix_chars={prefix_chars} outside [0, n_garbage={n_garbage}]")
    needle = NEEDLE.format(key=key)
    return "\n".join([TASK, garbage(prefix_chars), needle, garbage(n_garbage - prefix_chars), QUESTION])


def needle_distance(tokenizer, prompt_ids: Sequence[int], n_garbage: int, key: int, prefix_chars: int) -> int:
    """Distance in tokens from the needle sentence's last token to the prompt's last token (the position that
    predicts the answer): ``len(prompt) - len(prompt cut after the needle)``. A needle at distance >= L is farther
    from the question than any query-key distance of training at length L."""
    head = "\n".join([TASK, garbage(prefix_chars), NEEDLE.format(key=key)])
    return len(prompt_ids) - len(tokenizer.encode(head))


def _calibration_tokens(tokenizer, n_garbage: int) -> int:
    return len(tokenizer.encode(passkey_prompt(n_garbage, CALIBRATION_KEY, n_garbage // 2)))


def garbage_for_target(tokenizer, target: int, *, step: int = GARBAGE_STEP) -> int:
    """Largest multiple of `step` characters of garbage whose calibration prompt has < `target` tokens.

    Exponential then binary search over multiples of `step`; the result n always satisfies
    tokens(n) < target <= tokens(n + step) (it is the largest such n when the token count grows
    monotonically with the garbage, as it does for the repeated sentence).
    """
    base = _calibration_tokens(tokenizer, 0)
    if base >= target:
        raise ValueError(
            f"target length {target} tokens is too short: the passkey prompt without garbage already has {base} tokens"
        )
    lo, hi = 0, 1  # invariant once hi is found: tokens(lo*step) < target <= tokens(hi*step)
    while _calibration_tokens(tokenizer, hi * step) < target:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _calibration_tokens(tokenizer, mid * step) < target:
            lo = mid
        else:
            hi = mid
    return lo * step


@dataclass(frozen=True)
class PasskeyTrial:
    """One passkey trial (generation fields are None when only the likelihood ran, and vice versa)."""

    length: int  # target length (tokens)
    depth: float  # prefix_chars / n_garbage (0 = needle right after the task line)
    key: int
    n_garbage: int
    prefix_chars: int
    prompt_tokens: int
    needle_distance: int | None = None  # tokens from the needle's last token to the prompt's last (see needle_distance)
    generated: str | None = None
    predicted: int | None = None
    correct: bool | None = None
    rank: int | None = None  # 1 = true key most likely among 1 + n_candidates - 1
    n_candidates: int | None = None
    logprob_key: float | None = None
    margin: float | None = None  # logprob_key - best distractor logprob

    def to_dict(self) -> dict:
        return asdict(self)


def passkey_eval(
    model: LMAdapter,
    tokenizer,
    lengths: Sequence[int],
    *,
    trials: int,
    seed: int = 0,
    depths: str | Sequence[float] | None = None,
    mode: str = "generate",
    n_distractors: int = 9,
    max_new_tokens: int = 10,
    depth_bins: int = 5,
    progress: bool = True,
) -> dict:
    """Passkey retrieval accuracy per length and per (length, depth), plus likelihood scores.

    Args:
        model: an `LMAdapter`, a fope `CausalLM` or a `transformers` model.
        tokenizer: encode(str) -> list[int], decode(list[int]) -> str, eos_id.
        lengths: target prompt lengths in tokens (any list; the paper doubles 512..8192).
        trials: trials per length, or per (length, depth) with a depth grid.
        seed: seed of `random.Random`, restarted for each length.
        depths: None or "uniform" (uniform needle position), "grid" (`DEPTH_GRID`) or a list of depths in [0, 1].
        mode: "generate", "likelihood" or "both".
        n_distractors: likelihood mode: distractor keys per trial (fewer for 1-digit keys: only 8 exist).
        max_new_tokens: generation length.
        depth_bins: uniform depths are reported in this many equal bins of [0, 1].
        progress: tqdm bar per length.

    Returns:
        {"by_length": {L: accuracy}, "metric": "generate"|"likelihood_top1",
         "by_length_depth": {L: {depth: accuracy}}, "counts": {L: {depth: n}},
         "generate": {...} | None, "likelihood": {...} | None, "n_garbage": {L: chars},
         "trials": [PasskeyTrial.to_dict(), ...]}
        where the "generate"/"likelihood" blocks hold "by_length" and "by_length_depth" of their own scores
        (likelihood: top1, mrr, mean_rank, margin per length).
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    if trials < 1:
        raise ValueError(f"trials must be >= 1, got {trials}")
    if n_distractors < 1 and mode != "generate":
        raise ValueError(f"n_distractors must be >= 1, got {n_distractors}")
    grid = _depth_grid(depths)
    model = as_adapter(model)
    lengths = [int(x) for x in lengths]
    if not lengths or len(set(lengths)) != len(lengths):
        raise ValueError(f"lengths must be a non-empty list without duplicates, got {lengths}")
    records: list[PasskeyTrial] = []
    n_garbage: dict[int, int] = {}
    for length in lengths:
        n_garbage[length] = garbage_for_target(tokenizer, length)
        records += _run_length(
            model,
            tokenizer,
            length,
            n_garbage[length],
            grid=grid,
            trials=trials,
            seed=seed,
            mode=mode,
            n_distractors=n_distractors,
            max_new_tokens=max_new_tokens,
            progress=progress,
        )
    return summarize(records, lengths, grid=grid, depth_bins=depth_bins, mode=mode) | {"n_garbage": n_garbage}


def _depth_grid(depths: str | Sequence[float] | None) -> tuple[float, ...] | None:
    """None for uniform depths, else the tuple of grid depths."""
    if depths is None or depths == "uniform":
        return None
    if depths == "grid":
        return DEPTH_GRID
    if isinstance(depths, str):
        raise ValueError(f"depths must be 'uniform', 'grid' or a list of floats, got {depths!r}")
    grid = tuple(float(d) for d in depths)
    bad = [d for d in grid if not 0.0 <= d <= 1.0]
    if not grid or bad or len(set(grid)) != len(grid):
        raise ValueError(f"depths must be a non-empty list of distinct values in [0, 1], got {list(depths)}")
    return grid


def _run_length(
    model, tokenizer, length, n_garbage, *, grid, trials, seed, mode, n_distractors, max_new_tokens, progress
):
    from tqdm.auto import tqdm

    rng = random.Random(seed)
    plan = [None] * trials if grid is None else [d for d in grid for _ in range(trials)]
    out = []
    for i, depth in enumerate(tqdm(plan, desc=f"passkey L={length}", unit="trial", disable=not progress, leave=False)):
        prefix = rng.randint(0, n_garbage) if depth is None else round(depth * n_garbage)
        key = rng.randint(*KEY_RANGE)
        trial_rng = random.Random(f"{seed}:distractors:{length}:{i}")  # leaves `rng` untouched
        out.append(
            run_trial(
                model,
                tokenizer,
                length=length,
                n_garbage=n_garbage,
                prefix_chars=prefix,
                key=key,
                mode=mode,
                distractor_rng=trial_rng,
                n_distractors=n_distractors,
                max_new_tokens=max_new_tokens,
                depth=depth,
            )
        )
    return out


def run_trial(
    model: LMAdapter,
    tokenizer,
    *,
    length: int,
    n_garbage: int,
    prefix_chars: int,
    key: int,
    mode: str = "generate",
    distractor_rng: random.Random | None = None,
    n_distractors: int = 9,
    max_new_tokens: int = 10,
    depth: float | None = None,
) -> PasskeyTrial:
    """One trial: build the prompt, generate and/or score the candidate keys.

    `depth` is the nominal grid depth recorded with the trial (default: prefix_chars / n_garbage).
    """
    prompt = passkey_prompt(n_garbage, key, prefix_chars)
    prompt_ids = tokenizer.encode(prompt)
    pre = model.prefill(prompt_ids)  # the prompt runs once for both scores
    fields: dict = {}
    if mode in ("generate", "both"):
        gen_ids = model.generate_greedy(
            prompt_ids, max_new_tokens, eos_id=getattr(tokenizer, "eos_id", None), prefill=pre
        )
        text = tokenizer.decode(gen_ids)
        predicted = first_integer(text)
        fields |= {"generated": text, "predicted": predicted, "correct": predicted == key}
    if mode in ("likelihood", "both"):
        rng = distractor_rng if distractor_rng is not None else random.Random(key)
        distractors = distractor_keys(key, n_distractors, rng, same=lambda k: len(tokenizer.encode(f" {k}")))
        fields |= _likelihood(model, tokenizer, prompt, prompt_ids, key, distractors, pre)
    return PasskeyTrial(
        length=length,
        depth=depth if depth is not None else (prefix_chars / n_garbage if n_garbage else 0.0),
        key=key,
        n_garbage=n_garbage,
        prefix_chars=prefix_chars,
        prompt_tokens=len(prompt_ids),
        needle_distance=needle_distance(tokenizer, prompt_ids, n_garbage, key, prefix_chars),
        **fields,
    )


def digit_scores(key: int, predicted: int | None) -> tuple[float, float]:
    """(digits in place, digits present) of a generated number against the key, each in [0, 1].

    In place: positions i < len(K) where the prediction's i-th digit is K's i-th digit, over len(K).
    Present: size of the multiset intersection of the two numbers' digits, over len(K).
    """
    k = str(key)
    if predicted is None:
        return 0.0, 0.0
    p = str(predicted)
    in_place = sum(a == b for a, b in zip(k, p)) / len(k)
    present = sum(min(k.count(d), p.count(d)) for d in set(k)) / len(k)
    return in_place, present


def first_integer(text: str) -> int | None:
    """The first run of ASCII digits in `text` as an int, or None."""
    m = re.search(r"[0-9]+", text)
    return int(m.group()) if m else None


def distractor_keys(key: int, n: int, rng: random.Random, *, same=None, tries: int = 50) -> list[int]:
    """Up to `n` distinct keys with as many digits as `key`, none equal to it (all 8 others for 1 digit).

    `same(k) -> hashable`, when given, is a property the distractors should share with `key` (the token
    count of " {k}"): up to `tries * n` draws look for such keys before any same-digit key is accepted.
    """
    digits = len(str(key))
    lo, hi = 10 ** (digits - 1), 10**digits - 1
    n = min(n, hi - lo)  # hi - lo + 1 keys with this many digits, one of them the key itself
    out: list[int] = []
    seen = {key}
    want = same(key) if same is not None else None
    budget = tries * n if same is not None else 0
    while len(out) < n:
        k = rng.randint(lo, hi)
        if k in seen:
            continue
        if budget > 0:
            budget -= 1
            if same(k) != want:
                continue
        seen.add(k)
        out.append(k)
    return out


def key_tokens(tokenizer, prompt: str, prompt_ids: list[int], key: int) -> list[int]:
    """Tokens of " {key}" right after the prompt.

    Taken from the tokenization of prompt + " " + key when that starts with the prompt's tokens
    (byte-level BPE: always), else the separate tokenization of " {key}".
    """
    full = tokenizer.encode(f"{prompt} {key}")
    n = len(prompt_ids)
    if full[:n] == prompt_ids and len(full) > n:
        return full[n:]
    return tokenizer.encode(f" {key}")


def _likelihood(model, tokenizer, prompt, prompt_ids, key, distractors, prefill) -> dict:
    cands = [key, *distractors]
    conts = [key_tokens(tokenizer, prompt, prompt_ids, k) for k in cands]
    scores = model.continuation_logprobs(prompt_ids, conts, prefill=prefill)
    true, others = scores[0], scores[1:]
    return {
        "rank": 1 + sum(s >= true for s in others),
        "n_candidates": len(cands),
        "logprob_key": true,
        "margin": true - max(others),
    }


# ----------------------------------------------------------------------------------------------------
# aggregation


def depth_key(depth: float, grid: tuple[float, ...] | None, bins: int) -> float:
    """The depth a trial is reported under: its grid depth, or the centre of its uniform bin."""
    if grid is not None:
        return depth
    b = min(int(depth * bins), bins - 1)
    return round((b + 0.5) / bins, 6)


def _tally(trials: Sequence[dict], bin_of) -> dict[str, dict[str, list[int]]]:
    """``{length: {bin: [correct, trials]}}`` of the trial records with a generation score; ``bin_of(trial)`` names
    a trial's bin (None: leave the trial out). Lengths in increasing order."""
    out: dict[str, dict[str, list[int]]] = {}
    for t in trials:
        b = bin_of(t)
        if b is None or t.get("correct") is None:
            continue
        cell = out.setdefault(str(t["length"]), {}).setdefault(b, [0, 0])
        cell[0] += bool(t["correct"])
        cell[1] += 1
    return dict(sorted(out.items(), key=lambda kv: int(kv[0])))


def depth_counts(trials: Sequence[dict], bins: int = 5) -> dict[str, dict[str, list[int]]]:
    """``{length: {depth-bin centre: [correct, trials]}}`` of trial records (``PasskeyTrial.to_dict()``) with
    uniform depths, in ``bins`` equal bins of [0, 1]; greedy generation. Depth 0 is the needle at the start of the
    filler, farthest from the question; 1 is right before it. Counts, not rates, so runs can be pooled."""
    counts = _tally(trials, lambda t: str(depth_key(float(t["depth"]), None, bins)))
    return {n: dict(sorted(d.items(), key=lambda kv: float(kv[0]))) for n, d in counts.items()}


def distance_counts(trials: Sequence[dict], train_len: int) -> dict[str, dict[str, list[int]]]:
    """``{length: {"within": [correct, trials], "beyond": [correct, trials]}}``: greedy generation split by whether
    the needle is closer to the question than ``train_len`` tokens or not (trials with ``needle_distance``)."""
    counts = _tally(
        trials,
        lambda t: (
            None if t.get("needle_distance") is None else "within" if t["needle_distance"] < train_len else "beyond"
        ),
    )
    return {n: {b: d.get(b, [0, 0]) for b in ("within", "beyond")} for n, d in counts.items()}


def summarize(
    records: Sequence[PasskeyTrial], lengths: Sequence[int], *, grid, depth_bins: int = 5, mode: str = "generate"
) -> dict:
    """Aggregate trial records into per-length and per-(length, depth) scores (see `passkey_eval`)."""
    gen = None
    if mode != "likelihood":
        gen = _aggregate(records, lengths, grid, depth_bins, lambda r: float(r.correct))
        for i, name in enumerate(("digits_in_place", "digits_present")):
            a = _aggregate(records, lengths, grid, depth_bins, lambda r, i=i: digit_scores(r.key, r.predicted)[i])
            gen[name] = {"by_length": a["by_length"], "by_length_depth": a["by_length_depth"]}
    lik = None
    if mode != "generate":
        lik = {
            "top1": _aggregate(records, lengths, grid, depth_bins, lambda r: float(r.rank == 1)),
            "mrr": _aggregate(records, lengths, grid, depth_bins, lambda r: 1.0 / r.rank),
            "mean_rank": _aggregate(records, lengths, grid, depth_bins, lambda r: float(r.rank)),
            "margin": _aggregate(records, lengths, grid, depth_bins, lambda r: r.margin),
        }
    main = gen if gen is not None else lik["top1"]
    return {
        "metric": "generate" if gen is not None else "likelihood_top1",
        "by_length": main["by_length"],
        "by_length_depth": main["by_length_depth"],
        "counts": main["counts"],
        "generate": gen,
        "likelihood": None
        if lik is None
        else {
            "n_candidates": {L: _mean([r.n_candidates for r in records if r.length == L]) for L in lengths},
            **{name: {"by_length": a["by_length"], "by_length_depth": a["by_length_depth"]} for name, a in lik.items()},
        },
        "trials": [r.to_dict() for r in records],
    }


def _aggregate(records, lengths, grid, bins, value) -> dict:
    by_length, by_ld, counts = {}, {}, {}
    for L in lengths:
        rows = [r for r in records if r.length == L]
        by_length[L] = _mean([value(r) for r in rows])
        cells: dict[float, list[float]] = {}
        for r in rows:
            cells.setdefault(depth_key(r.depth, grid, bins), []).append(value(r))
        keys = sorted(cells) if grid is None else [d for d in grid if d in cells]
        by_ld[L] = {d: _mean(cells[d]) for d in keys}
        counts[L] = {d: len(cells[d]) for d in keys}
    return {"by_length": by_length, "by_length_depth": by_ld, "counts": counts}


def _mean(xs: Sequence[float]) -> float:
    if not xs:
        raise ValueError("no trials to average")
    return sum(xs) / len(xs)
