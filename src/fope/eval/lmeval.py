"""LongBench and LongBench-E through lm-evaluation-harness, generated and scored as LongBench's own ``pred.py`` /
``eval.py`` do (docs/paper.md §4.7, Table 1; docs/evaluation.md "LongBench").

    fope eval longbench --model DIR [--tasks gov_report,trec] [--limit 20]          # lm-eval's hub data (network)
    fope eval longbench --model DIR --data-dir longbench/data                         # local copies, offline

Every LongBench task runs as a task YAML of ours that *includes* lm-eval's own task file (its dataset, metric names
and version) and replaces what LongBench does differently (`longbench_task`):

* the prompt: LongBench's template (`fope.eval.longbench_scoring.longbench_prompt`: lm-eval's, with the few places
  where it differs from LongBench's ``config/dataset2prompt.json`` put back);
* generation: greedy, LongBench's budget, stopping only at the tokenizer's end of sequence (samsum also at a newline
  token after at least one token), as pred.py (`longbench_scoring.lm_eval_generation_kwargs`);
* scoring: ``process_results`` is `fope.eval.longbench_scoring`'s hook, which post-processes (leading newlines
  stripped and the first line kept for trec / triviaqa / samsum / lsht, nothing else) and scores each generation as
  eval.py does, max over the answers; lm-eval's ``score`` and ``<metric>`` are its values;
* the chat template (``--chat-template``) wraps only the tasks pred.py wraps (not trec, triviaqa, samsum, lsht, lcc,
  repobench-p), in a second lm-eval call;
* prompts longer than ``max_length - max_gen`` tokens are cut in the middle (first and last halves kept), as pred.py
  does, not from the left (`middle_truncating_hflm`).

The model is loaded once by fope's loader (`fope.eval.loader.load_model`: path checks, config.json, weights, no
remote code unless ``trust_remote_code``) and handed to lm-eval's own HF model wrapper (``HFLM``). Per-sample
scores are kept (``log_samples``) and averaged into the LongBench-E length buckets 0-4k / 4-8k / 8k+ (the rows'
``length`` field, in words as LongBench counts them), x100 as the paper reports.

Local data (``data_dir``): LongBench's JSONL files exactly as THUDM/LongBench's ``data.zip`` ships them
(``trec_e.jsonl``: ``input``, ``context``, ``answers``, ``length``, ``all_classes``, ...; ``input`` becomes the
``question`` lm-eval's prompts read). Dependencies: lm-eval's ``longbench`` extra (jieba, fuzzywuzzy, rouge).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fope.utils import json_object

#: the paper's five tasks -> lm-eval task names (LongBench-E variants)
LONGBENCH_E = {
    "gov_report": "longbench_gov_report_e",
    "multi_news": "longbench_multi_news_e",
    "trec": "longbench_trec_e",
    "triviaqa": "longbench_triviaqa_e",
    "samsum": "longbench_samsum_e",
}
#: LongBench-E buckets: (name, lower bound inclusive, upper bound exclusive), on the doc's ``length`` field
BUCKETS = (("0-4k", 0, 4000), ("4-8k", 4000, 8000), ("8k+", 8000, float("inf")))
#: lm-eval's result keys that are keyed by task name (renamed back to the real task names after a run)
TASK_KEYED = ("results", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "samples")


def resolve_tasks(tasks: Sequence[str] | None) -> list[str]:
    """Task names -> lm-eval task names; None = the paper's five. A LongBench dataset name (``trec``,
    ``hotpotqa``) means its LongBench-E task where LongBench-E has it (``longbench_trec_e``), else its LongBench
    task (``longbench_narrativeqa``); ``trec_e`` -> ``longbench_trec_e``; anything else is kept (lm-eval names,
    tasks of an ``include_path``)."""
    from .longbench_scoring import TASK_NAMES, TASKS

    if not tasks:
        return list(LONGBENCH_E.values())
    out = []
    for task in tasks:
        task = task.strip()
        if task in LONGBENCH_E:
            out.append(LONGBENCH_E[task])
        elif task in TASKS:
            out.append(f"longbench_{task}_e" if TASKS[task].longbench_e else f"longbench_{task}")
        elif task in TASK_NAMES and not task.startswith("longbench_"):
            out.append(f"longbench_{task}")
        else:
            out.append(task)
    return out


#: lm-eval's ``longbench`` extra; its metrics module imports all three at load time
LONGBENCH_DEPS = ("jieba", "fuzzywuzzy", "rouge")


def check_longbench_deps() -> None:
    """ImportError with the install line when a LongBench metric dependency is missing."""
    import importlib.util

    missing = [m for m in LONGBENCH_DEPS if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"LongBench metrics need {', '.join(missing)}: pip install -e '.[longbench]' "
            f"(or pip install {' '.join(LONGBENCH_DEPS)})"
        )


def is_longbench(task: str) -> bool:
    """``task`` is one of lm-eval's LongBench / LongBench-E tasks (``longbench_<dataset>[_e]``)."""
    from .longbench_scoring import LM_EVAL_TASKS

    return task in LM_EVAL_TASKS


@functools.lru_cache(maxsize=1)
def _task_files() -> dict[str, str]:
    """{task: YAML file} of the installed lm-eval's tasks (indexing them takes seconds: once per process)."""
    from lm_eval.tasks import TaskManager

    index = TaskManager().task_index
    return {name: str(entry.yaml_path) for name, entry in index.items() if getattr(entry, "yaml_path", None)}


def task_yaml_path(task: str) -> Path:
    """The YAML file of an installed lm-eval task; ValueError naming the task when lm-eval has none."""
    path = _task_files().get(task)
    if not path:
        raise ValueError(f"lm-eval has no task {task!r} with a YAML file (lm-eval {_lm_eval_version()})")
    return Path(path)


def task_config(task: str) -> dict[str, Any]:
    """An installed lm-eval task's YAML with its includes merged (``!function`` tags left unresolved)."""
    from lm_eval.tasks._yaml_loader import load_yaml

    return load_yaml(task_yaml_path(task), resolve_func=False)


def _lm_eval_version() -> str:
    import lm_eval

    return getattr(lm_eval, "__version__", "?")


def read_rows(data_file: str | Path, normalize=None) -> list[dict]:
    """The documents of a local JSONL file (one JSON object a line); FileNotFoundError / ValueError name the file
    and the offending line. ``normalize(row, where) -> row`` may rewrite each row."""
    data_file = Path(data_file)
    if not data_file.is_file():
        raise FileNotFoundError(f"local data not found: {data_file}")
    rows = []
    for i, line in enumerate(data_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json_object(line, f"{data_file}:{i}")
        rows.append(normalize(row, f"{data_file}:{i}") if normalize else row)
    if not rows:
        raise ValueError(f"{data_file} holds no documents")
    return rows


def _local_data_keys(rows: list[dict], copy: Path) -> dict[str, Any]:
    copy.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return {
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {"test": str(copy)}},
        "test_split": "test",
        "validation_split": None,
        "training_split": None,
        "fewshot_split": None,
    }


def write_task_yaml(out_dir: Path, config: dict[str, Any], *, functions: dict[str, str] | None = None) -> Path:
    """``out_dir/<config['task']>.yaml``; ``functions`` {key: dotted name} become ``key: !function name`` lines
    (lm-eval imports a dotted name from an importable module)."""
    import yaml

    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    text += "".join(f"{key}: !function {ref}\n" for key, ref in (functions or {}).items())
    path = Path(out_dir) / f"{config['task']}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def local_task(
    task: str,
    data_file: str | Path,
    out_dir: str | Path,
    *,
    name: str | None = None,
    normalize=None,
    alias: str | None = None,
) -> str:
    """Write ``out_dir/<name>.yaml``: lm-eval's ``task`` with its data replaced by the local JSONL ``data_file``
    (every row a document in the Hugging Face dataset's format), evaluated as the test split, shown as ``alias``
    (default: ``task``) in lm-eval's tables. Returns the new task name (default ``local_<task>``).
    ``normalize(row, where) -> row`` may rewrite rows first (the copy lands in out_dir). FileNotFoundError /
    ValueError name the file and the offending line."""
    data_file = Path(data_file)
    if not data_file.is_file():
        raise FileNotFoundError(f"local data for task {task!r} not found: {data_file}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or f"local_{task}"
    rows = read_rows(data_file, normalize)
    config = {
        "include": str(task_yaml_path(task)),
        "task": name,
        "task_alias": alias or task,
        "tag": ["fope_local"],
        **_local_data_keys(rows, out / f"{name}.jsonl"),
    }
    write_task_yaml(out, config)
    return name


def longbench_row(row: dict, where: str) -> dict:
    """A LongBench JSONL row as lm-eval's tasks read it: THUDM's ``input`` becomes ``question``; required fields
    checked (ValueError naming the file:line and the field)."""
    row = dict(row)
    if "question" not in row and "input" in row:
        row["question"] = row["input"]
    for field in ("question", "context", "answers", "length"):
        if field not in row:
            raise ValueError(f"{where}: LongBench row has no {field!r} field (has {sorted(row)})")
    if not isinstance(row["answers"], list):
        raise ValueError(f"{where}: 'answers' must be a list, got {type(row['answers']).__name__}")
    row.setdefault("all_classes", None)
    return row


def longbench_task(
    task: str,
    out_dir: str | Path,
    *,
    data_file: str | Path | None = None,
    eos_token_id: int | None = None,
    newline_token_id: int | None = None,
) -> str:
    """Write the task YAML that runs lm-eval's LongBench ``task`` as LongBench does (module docstring) into
    ``out_dir``; returns its name, ``fope_<task>`` (shown as ``task`` in lm-eval's tables). ``data_file``: a local
    JSONL file in LongBench's format instead of lm-eval's hub dataset. The token ids: samsum's newline stop
    (`longbench_scoring.lm_eval_generation_kwargs`)."""
    from . import longbench_scoring as lbs

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = f"fope_{task}"
    base = task_config(task)
    config: dict[str, Any] = {
        "include": str(task_yaml_path(task)),
        "task": name,
        "task_alias": task,
        "tag": ["fope_longbench"],  # replaces the include's group tags
        "doc_to_text": lbs.longbench_prompt(task, base.get("doc_to_text", "")),
        "generation_kwargs": lbs.lm_eval_generation_kwargs(
            task, eos_token_id=eos_token_id, newline_token_id=newline_token_id
        ),
    }
    if data_file is not None:
        config.update(_local_data_keys(read_rows(data_file, longbench_row), out / f"{name}.jsonl"))
    write_task_yaml(out, config, functions={"process_results": lbs.process_results_ref(task)})
    return name


def longbench_data_file(data_dir: str | Path, task: str) -> Path:
    """``data_dir/<dataset>.jsonl`` of a LongBench task (``trec_e.jsonl`` for ``longbench_trec_e``);
    FileNotFoundError naming the file when it is not there."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"no such directory: {data_dir} (LongBench data directory)")
    file = data_dir / f"{task.removeprefix('longbench_')}.jsonl"
    if not file.is_file():
        raise FileNotFoundError(
            f"LongBench file {file} not found (task {task}); unzip THUDM/LongBench data.zip into {data_dir}"
        )
    return file


def local_longbench_tasks(data_dir: str | Path, tasks: Sequence[str], out_dir: str | Path) -> dict[str, str]:
    """{task YAML name: LongBench task} for LongBench tasks read from ``data_dir/<dataset>.jsonl`` (e.g.
    ``trec_e.jsonl``), the files of the HF dataset's ``data.zip`` (`longbench_task` with ``data_file``)."""
    return {longbench_task(task, out_dir, data_file=longbench_data_file(data_dir, task)): task for task in tasks}


def newline_token_id(tokenizer: Any) -> int | None:
    """The id pred.py adds to samsum's end-of-sequence ids: the last of ``tokenizer.encode("\\n")``."""
    ids = tokenizer.encode("\n", add_special_tokens=False)
    return int(ids[-1]) if ids else None


# ------------------------------------------------------------------------------------------------------------
# the model and lm-eval's runs


def hf_lm(
    model: str | Path,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    max_length: int | None = None,
    batch_size: int = 1,
    trust_remote_code: bool = False,
    export_to: str | Path | None = None,
    middle_truncation: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """(lm-eval's ``HFLM`` around the model, the settings to report): the model loaded once by
    `fope.eval.loader.load_model` (a native fope directory is exported to ``export_to`` first), its tokenizer, the
    causal backend. ``middle_truncation``: `middle_truncating_hflm` (LongBench's rule for long prompts)."""
    from fope.hf.export import hf_dir

    from .loader import check_device, load_model

    check_device(device)
    if max_length is not None and (isinstance(max_length, bool) or int(max_length) < 1):
        raise ValueError(f"max_length (--max-length) must be a positive number of tokens, got {max_length!r}")
    source = hf_dir(model, export_to) if export_to is not None else model
    loaded = load_model(source, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    if not hasattr(loaded, "tokenizer") or loaded.tokenizer is None or not hasattr(loaded.tokenizer, "tok"):
        raise ValueError(f"model {str(model)!r} has no Hugging Face tokenizer saved with it; save one beside it")
    cls = middle_truncating_hflm() if middle_truncation else _hflm_class()
    kwargs: dict[str, Any] = {"backend": "causal", "batch_size": batch_size}
    if max_length:
        kwargs["max_length"] = int(max_length)
    with _quiet_lm_eval():
        lm = cls(pretrained=loaded.model, tokenizer=loaded.tokenizer.tok, **kwargs)
    settings = {
        "pretrained": str(model),
        "loaded_from": str(source),
        "dtype": dtype,
        "max_length": lm.max_length,
        "trust_remote_code": bool(trust_remote_code),
        "backend": "causal",
    }
    return lm, settings


def _hflm_class() -> type:
    from lm_eval.models.huggingface import HFLM

    return HFLM


@functools.lru_cache(maxsize=1)
def middle_truncating_hflm() -> type:
    """lm-eval's ``HFLM`` with LongBench's truncation of long prompts (built on first use: lm-eval is optional)."""
    import torch

    HFLM = _hflm_class()

    class MiddleTruncating(HFLM):
        """lm-eval's ``HFLM`` with LongBench's truncation: a prompt longer than the limit keeps its first and last
        halves (pred.py: ``tokenized_prompt[:half] + tokenized_prompt[-half:]``) instead of its last tokens."""

        def tok_batch_encode(
            self,
            strings: list[str],
            padding_side: str = "left",
            left_truncate_len: int | None = None,
            truncation: bool = False,
        ):
            if not left_truncate_len:
                return super().tok_batch_encode(strings, padding_side, None, truncation)
            rows = []
            for text in strings:
                ids = super().tok_batch_encode([text], padding_side, None, truncation)[0][0]
                rows.append(middle_truncate(ids.tolist(), int(left_truncate_len)))
            width = max(len(r) for r in rows)
            pad = self.tokenizer.pad_token_id
            pad = self.tokenizer.eos_token_id if pad is None else pad
            ids = torch.full((len(rows), width), int(pad or 0), dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                span = slice(width - len(row), width) if padding_side == "left" else slice(0, len(row))
                ids[i, span] = torch.tensor(row, dtype=torch.long)
                mask[i, span] = 1
            return ids, mask

    return MiddleTruncating


def middle_truncate(ids: list[int], limit: int) -> list[int]:
    """pred.py's rule: a sequence longer than ``limit`` keeps its first and its last ``half = int(limit / 2)`` tokens
    (``tokenized_prompt[:half] + tokenized_prompt[-half:]``; an odd limit keeps ``limit - 1``)."""
    half = int(limit / 2)
    if len(ids) <= limit or half == 0:
        return list(ids)
    return list(ids[:half]) + list(ids[-half:])


#: lm-eval's messages that say nothing to a fope user: its notes about being handed a loaded model (fope loads it,
#: on purpose), and fuzzywuzzy's advice to install python-Levenshtein (LongBench's scores use difflib's ratio)
_QUIET_MESSAGES = (
    "`pretrained` model kwarg is not of type `str`",
    "Passed an already-initialized model through `pretrained`",
    "Using slow pure-python SequenceMatcher",
    "from None to 0",  # "Overwriting default num_fewshot of T from None to 0": zero-shot either way
)


def _git_describe_quietly() -> str | None:
    """lm-eval's ``get_git_commit_hash`` without git's "fatal: not a git repository" on stderr outside a checkout."""
    import os
    import subprocess

    try:
        done = subprocess.run(
            ["git", "describe", "--always"], capture_output=True, text=True, cwd=os.getcwd(), check=False
        )
    except OSError:
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


@contextlib.contextmanager
def _quiet_lm_eval() -> Iterator[None]:
    """lm-eval's run without git's and HFLM's noise on stderr (`_QUIET_MESSAGES`); every other message stays."""
    import logging
    import warnings

    import lm_eval.evaluator

    class Drop(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return not any(m in record.getMessage() for m in _QUIET_MESSAGES)

    drop = Drop()
    loggers = [logging.getLogger(n) for n in ("lm_eval.models.huggingface", "lm_eval.evaluator")]  # theirs
    for logger in loggers:
        logger.addFilter(drop)
    saved = lm_eval.evaluator.get_git_commit_hash
    lm_eval.evaluator.get_git_commit_hash = _git_describe_quietly
    try:
        with warnings.catch_warnings():
            for message in _QUIET_MESSAGES:
                warnings.filterwarnings("ignore", message=f".*{message}")
            yield
    finally:
        lm_eval.evaluator.get_git_commit_hash = saved
        for logger in loggers:
            logger.removeFilter(drop)


def evaluate(lm: Any, tasks: Sequence[str], task_dirs: Sequence[str | Path] = (), **kwargs: Any) -> dict:
    """``lm_eval.simple_evaluate`` on ``tasks`` (the tasks of ``task_dirs`` included), quietly (`_quiet_lm_eval`)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    with _quiet_lm_eval():
        manager = TaskManager(include_path=[str(d) for d in task_dirs] or None)
        return lm_eval.simple_evaluate(model=lm, tasks=list(tasks), task_manager=manager, log_samples=True, **kwargs)


def merge_results(parts: Sequence[dict]) -> dict:
    """One lm-eval results dict from several runs on other tasks (the first run's config, every task-keyed entry)."""
    if len(parts) == 1:
        return parts[0]
    merged = dict(parts[0])
    for key in (*TASK_KEYED, "group_subtasks"):
        joined: dict = {}
        for part in parts:
            joined.update(part.get(key) or {})
        merged[key] = joined
    return merged


def rename_tasks(results: dict, names: dict[str, str]) -> dict:
    """lm-eval's results with every task-keyed entry (and ``group_subtasks``) keyed by the real task names."""
    for key in TASK_KEYED:
        if isinstance(results.get(key), dict):
            results[key] = {names.get(k, k): v for k, v in results[key].items()}
    if isinstance(results.get("group_subtasks"), dict):
        results["group_subtasks"] = {
            names.get(k, k): [names.get(t, t) for t in v] for k, v in results["group_subtasks"].items()
        }
    for res in (results.get("results") or {}).values():
        for key in ("name", "alias"):
            if isinstance(res, dict) and key in res:
                res[key] = names.get(res[key], res[key])
    return results


def run(
    model: str | Path,
    tasks: Sequence[str],
    *,
    limit: int | float | None = None,
    include_path: str | Path | None = None,
    batch_size: int = 1,
    device: str = "cpu",
    max_length: int | None = None,
    dtype: str = "float32",
    apply_chat_template: bool = False,
    data_dir: str | Path | None = None,
    trust_remote_code: bool = False,
    bootstrap_iters: int = 100000,
) -> dict:
    """Evaluate the model (directory, hub name, ``smollm2`` or a native fope directory) on lm-eval ``tasks``;
    returns lm-eval's results dict (with ``samples``) keyed by the real task names, plus ``"buckets"``:
    {task: {bucket: {"score": mean x100, "n": count}}} and ``"settings"``.

    LongBench tasks run as LongBench does (module docstring), from lm-eval's hub dataset or, with ``data_dir``, from
    local JSONL files; other tasks (e.g. of ``include_path``) run as lm-eval defines them. ``trust_remote_code``
    lets transformers run Python code shipped with the model (off by default). ``bootstrap_iters``: lm-eval's
    resamples for the standard errors (its default; 0: none)."""
    import tempfile

    from .longbench_scoring import resolve_task

    tasks = list(tasks)
    longbench = [t for t in tasks if is_longbench(t)]
    if longbench:
        check_longbench_deps()
    if data_dir is not None and (not longbench or len(longbench) < len(tasks)):
        other = [t for t in tasks if not is_longbench(t)]
        raise ValueError(f"--data-dir holds LongBench files; {other} are not LongBench tasks")
    with tempfile.TemporaryDirectory(prefix="fope-lmeval-") as tmp:
        lm, settings = hf_lm(
            model,
            device=device,
            dtype=dtype,
            max_length=max_length,
            batch_size=batch_size,
            trust_remote_code=trust_remote_code,
            export_to=Path(tmp) / "model",
            middle_truncation=True,
        )
        for task in longbench:
            budget = resolve_task(task).max_gen
            if lm.max_length <= budget:
                raise ValueError(
                    f"{task} generates up to {budget} tokens, but the model's context is {lm.max_length} tokens: "
                    f"pass --max-length above {budget} (prompt + generation)"
                )
        task_dir = Path(tmp) / "tasks"
        tokenizer = lm.tokenizer
        eos, newline = tokenizer.eos_token_id, newline_token_id(tokenizer)
        names: dict[str, str] = {}  # our YAML's task name -> the real one
        for task in longbench:
            file = longbench_data_file(data_dir, task) if data_dir is not None else None
            names[longbench_task(task, task_dir, data_file=file, eos_token_id=eos, newline_token_id=newline)] = task
        # lm-eval calls: (task names, chat template); pred.py leaves its few-shot and code tasks unwrapped
        others = [t for t in tasks if not is_longbench(t)]  # lm-eval's own definition
        wrapped = others + [n for n, t in names.items() if resolve_task(t).chat_template]
        unwrapped = [n for n, t in names.items() if not resolve_task(t).chat_template]
        calls = [(wrapped, True), (unwrapped, False)] if apply_chat_template else [(others + list(names), False)]
        dirs = [d for d in (task_dir if names else None, include_path) if d is not None]
        parts = [
            evaluate(
                lm,
                group,
                dirs,
                limit=limit,
                apply_chat_template=chat,
                batch_size=batch_size,
                device=device,
                bootstrap_iters=bootstrap_iters,
            )
            for group, chat in calls
            if group
        ]
        results = rename_tasks(merge_results(parts), names)
    order = {task: i for i, task in enumerate(tasks)}  # the order asked for, whichever lm-eval call ran a task
    for key in TASK_KEYED:
        if isinstance(results.get(key), dict):
            results[key] = dict(sorted(results[key].items(), key=lambda kv: order.get(kv[0], len(order))))
    chat_tasks = [names.get(t, t) for t in wrapped] if apply_chat_template else []
    results["config"] = {
        **(results.get("config") or {}),
        "model": "hf",
        "model_args": settings,
        "batch_size": batch_size,
        "device": device,
        "limit": limit,
    }
    results["settings"] = {
        "model": str(model),
        "tasks": tasks,
        "data_dir": str(data_dir) if data_dir is not None else None,
        "chat_template": sorted(chat_tasks),
        "max_length": settings["max_length"],
        "truncation": "middle (LongBench's pred.py)",
        "scoring": {t: "LongBench eval.py (fope.eval.longbench_scoring)" for t in longbench},
    }
    results["buckets"] = {task: bucket_scores(samples) for task, samples in results.get("samples", {}).items()}
    return results


def bucket_scores(samples: Sequence[dict], metric: str | None = None) -> dict[str, dict[str, float]]:
    """Mean per-sample ``metric`` (x100) per LongBench-E length bucket; samples without a ``length`` go to "all".

    metric: default "score" (LongBench tasks' main metric) when the samples have it, else their first metric.
    """
    groups: dict[str, list[float]] = {}
    for sample in samples:
        if metric is None:
            metric = "score" if "score" in sample else (sample.get("metrics") or ["score"])[0]
        if metric not in sample:
            raise ValueError(f"sample has no metric {metric!r}; it has {sorted(k for k in sample if k != 'doc')}")
        length = (sample.get("doc") or {}).get("length")
        name = "all" if length is None else next(b for b, lo, hi in BUCKETS if lo <= float(length) < hi)
        groups.setdefault(name, []).append(100.0 * float(sample[metric]))
    return {name: {"score": sum(v) / len(v), "n": len(v)} for name, v in groups.items()}


def predictions(results: dict) -> dict[str, list[dict]]:
    """Per LongBench task, each row as LongBench's pred.py writes it (``pred``: the raw generation, ``answers``,
    ``all_classes``, ``length``) with its ``_id`` and its ``score`` (x1, eval.py's row score)."""
    out: dict[str, list[dict]] = {}
    for task, samples in (results.get("samples") or {}).items():
        if not is_longbench(task):
            continue
        rows = []
        for sample in sorted(samples, key=lambda s: s.get("doc_id", 0)):
            doc = sample.get("doc") or {}
            resps = sample.get("resps") or [[""]]
            rows.append(
                {
                    "_id": doc.get("_id"),
                    "pred": resps[0][0] if resps and resps[0] else "",
                    "answers": doc.get("answers"),
                    "all_classes": doc.get("all_classes"),
                    "length": doc.get("length"),
                    "score": sample.get("score"),
                }
            )
        out[task] = rows
    return out


def longbench_scores(results: dict) -> dict[str, dict[str, Any]]:
    """LongBench's own numbers from the raw generations (`fope.eval.longbench_scoring`): per task ``score`` (eval.py
    ``scorer``: round(100 * mean, 2)) and, for LongBench-E tasks, ``by_length`` (``scorer_e``; an empty bucket is
    None)."""
    from .longbench_scoring import dataset_score, length_bucket_scores

    out: dict[str, dict[str, Any]] = {}
    for task, rows in predictions(results).items():
        preds = [r["pred"] for r in rows]
        answers = [r["answers"] for r in rows]
        classes = rows[-1]["all_classes"] if rows else None  # eval.py keeps the last row's list
        entry: dict[str, Any] = {"score": dataset_score(task, preds, answers, classes), "n": len(rows)}
        if task.endswith("_e"):
            lengths = [float(r["length"]) for r in rows]
            buckets = length_bucket_scores(task, preds, answers, lengths, classes)
            entry["by_length"] = {k: None if math.isnan(v) else v for k, v in buckets.items()}
        out[task] = entry
    return out


def summary(results: dict) -> dict:
    """The JSON we save: lm-eval's ``results`` / ``versions`` / ``n-shot`` / ``configs`` / ``higher_is_better`` /
    ``n-samples`` / ``config`` under the real task names, and beside them ``by_bucket`` (the length buckets),
    ``longbench`` (LongBench's own rounded scores), ``predictions`` (pred.py's rows) and ``settings``; no raw
    samples."""
    out = {key: _jsonable(results.get(key, {})) for key in (*TASK_KEYED, "config") if key != "samples"}
    out["settings"] = _jsonable(results.get("settings", {}))
    out["by_bucket"] = results.get("buckets", {})
    out["longbench"] = longbench_scores(results)
    out["predictions"] = predictions(results)
    for key in ("lm_eval_version", "transformers_version", "date"):
        if key in results:
            out[key] = _jsonable(results[key])
    return out


def results_table(results: dict) -> str:
    """lm-eval's standard results table (``lm_eval.utils.make_table``), and its groups table when there are groups."""
    from lm_eval.utils import make_table

    text = make_table(results)
    if results.get("groups"):
        text += "\n" + make_table(results, "groups")
    return text


def format_buckets(rep: dict) -> str:
    """Markdown: per task, LongBench's score and its LongBench-E length buckets (from `summary`'s ``longbench``),
    each bucket's row count in brackets."""
    lines = ["| task | n | score | 0-4k | 4-8k | 8k+ |", "|---|---:|---:|---:|---:|---:|"]
    for task, entry in rep.get("longbench", {}).items():
        counts = {b: v["n"] for b, v in rep.get("by_bucket", {}).get(task, {}).items()}
        cells = []
        for bucket, _, _ in BUCKETS:
            value = (entry.get("by_length") or {}).get(bucket)
            cells.append("–" if value is None else f"{value:.2f} ({counts.get(bucket, 0)})")
        lines.append(f"| {task} | {entry['n']} | {entry['score']:.2f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


__all__ = [
    "BUCKETS",
    "LONGBENCH_DEPS",
    "LONGBENCH_E",
    "bucket_scores",
    "check_longbench_deps",
    "evaluate",
    "format_buckets",
    "hf_lm",
    "is_longbench",
    "local_longbench_tasks",
    "local_task",
    "longbench_data_file",
    "longbench_row",
    "longbench_scores",
    "longbench_task",
    "merge_results",
    "middle_truncate",
    "middle_truncating_hflm",
    "newline_token_id",
    "predictions",
    "read_rows",
    "rename_tasks",
    "resolve_tasks",
    "results_table",
    "run",
    "summary",
    "task_config",
    "task_yaml_path",
    "write_task_yaml",
]
