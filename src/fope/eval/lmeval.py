"""LongBench-E through lm-evaluation-harness, with lm-eval's own tasks and metrics (docs/paper.md §4.7, Table 1).

    fope eval longbench --model DIR [--tasks gov_report,trec] [--limit 20]          # needs the HF hub (network)
    fope eval longbench --model DIR --data-dir longbench/data                         # local copies, offline

Dependencies: lm-eval's ``longbench`` extra (jieba, fuzzywuzzy, rouge): ``pip install -e ".[longbench]"`` (scripts/
setup.sh installs it). Local data: the LongBench JSONL files exactly as the Hugging Face dataset ships them
(``THUDM/LongBench`` ``data.zip`` -> ``data/trec_e.jsonl`` ...; fields ``input`` (or ``question``), ``context``,
``answers``, ``length``, ``all_classes``, ...). `local_task` writes an lm-eval YAML that *includes* lm-eval's own task
file (prompt, generation settings, metric functions) and only replaces the dataset by the local JSON file.

The model is loaded by lm-eval's ``hf`` model type. FoPE directories load with fope's registered classes; a model
directory's own Python code (``auto_map``) runs only with ``trust_remote_code=True`` (``--trust-remote-code``), an
explicit opt-in. Model arguments are handed to lm-eval as a dict, never spliced into its ``k=v,k=v`` string. Per-sample scores are kept (``log_samples``) and averaged into the LongBench-E length buckets
0-4k / 4-8k / 8k+ (by the dataset's ``length`` field, in words as LongBench counts them), x100 as the paper reports.

Task names in lm-eval 0.4.x (``lm_eval/tasks/longbench``): longbench_{gov_report,multi_news,trec,triviaqa,samsum}_e,
dataset ``Xnhyacinth/LongBench``; metrics: ROUGE-L (gov_report, multi_news, samsum), classification accuracy (trec),
QA token F1 (triviaqa). lm-eval's tasks for trec/triviaqa/samsum stop generation at the first newline, matching
LongBench's "first line only" scoring.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
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


def resolve_tasks(tasks: Sequence[str] | None) -> list[str]:
    """Short names (gov_report, ...) or full lm-eval names -> lm-eval task names; None = the paper's five."""
    if not tasks:
        return list(LONGBENCH_E.values())
    return [LONGBENCH_E.get(t, t) for t in tasks]


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


def task_yaml_path(task: str) -> Path:
    """The YAML file of an installed lm-eval task; ValueError naming the task when lm-eval has none."""
    from lm_eval.tasks import TaskManager

    entry = TaskManager().task_index.get(task)
    path = getattr(entry, "yaml_path", None) if entry is not None else None
    if not path:
        raise ValueError(f"lm-eval has no task {task!r} with a YAML file (lm-eval {_lm_eval_version()})")
    return Path(path)


def _lm_eval_version() -> str:
    import lm_eval

    return getattr(lm_eval, "__version__", "?")


def local_task(
    task: str, data_file: str | Path, out_dir: str | Path, *, name: str | None = None, normalize=None
) -> str:
    """Write ``out_dir/<name>.yaml``: lm-eval's ``task`` with its data replaced by the local JSONL ``data_file``
    (every row a document in the Hugging Face dataset's format), evaluated as the test split. Returns the new task
    name (default ``local_<task>``). ``normalize(row) -> row`` may rewrite rows first (the copy lands in out_dir).
    FileNotFoundError / ValueError name the file and the offending line."""
    import yaml

    data_file = Path(data_file)
    if not data_file.is_file():
        raise FileNotFoundError(f"local data for task {task!r} not found: {data_file}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = name or f"local_{task}"
    rows = []
    for i, line in enumerate(data_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = json_object(line, f"{data_file}:{i}")
        rows.append(normalize(row, f"{data_file}:{i}") if normalize else row)
    if not rows:
        raise ValueError(f"{data_file} holds no documents")
    copy = out / f"{name}.jsonl"
    copy.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    config = {
        "include": str(task_yaml_path(task)),
        "task": name,
        "tag": ["fope_local"],
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {"test": str(copy)}},
        "test_split": "test",
        "validation_split": None,
        "training_split": None,
        "fewshot_split": None,
    }
    (out / f"{name}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
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


def local_longbench_tasks(data_dir: str | Path, tasks: Sequence[str], out_dir: str | Path) -> dict[str, str]:
    """{local lm-eval task name: original task name} for LongBench-E tasks read from ``data_dir/<dataset>.jsonl``
    (e.g. ``trec_e.jsonl``), the files of the HF dataset's ``data.zip``."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"LongBench data directory {data_dir} does not exist")
    out = {}
    for task in tasks:
        dataset = task.removeprefix("longbench_")
        file = data_dir / f"{dataset}.jsonl"
        if not file.is_file():
            raise FileNotFoundError(
                f"LongBench file {file} not found (task {task}); unzip THUDM/LongBench data.zip into {data_dir}"
            )
        out[local_task(task, file, out_dir, name=f"fope_local_{task}", normalize=longbench_row)] = task
    return out


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
) -> dict:
    """Evaluate the model directory (or hub name, or ``smollm2``) on lm-eval ``tasks``; returns lm-eval's results
    dict (with ``samples``) plus ``"buckets"``: {task: {bucket: {"score": mean x100, "n": count}}}.

    ``data_dir``: LongBench tasks read local JSONL files from there (`local_longbench_tasks`); results and buckets
    are keyed by the original task names. ``trust_remote_code`` lets transformers run Python code shipped with the
    model (off by default)."""
    import tempfile

    import lm_eval
    from lm_eval.tasks import TaskManager

    from fope.hf.io import register_auto_classes, resolve

    register_auto_classes()  # FoPE directories load with fope's own classes, without remote code

    if any(t.startswith("longbench") for t in tasks):
        check_longbench_deps()
    renamed: dict[str, str] = {}
    tmp = None
    if data_dir is not None:
        if include_path is not None:
            raise ValueError("give data_dir or include_path, not both")
        tmp = tempfile.TemporaryDirectory(prefix="fope-lmeval-")
        renamed = local_longbench_tasks(data_dir, tasks, tmp.name)
        include_path, tasks = tmp.name, list(renamed)
    model = resolve(model)
    args = model_args(model, dtype=dtype, max_length=max_length, trust_remote_code=trust_remote_code)
    manager = TaskManager(include_path=str(include_path) if include_path else None)
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args=args,
        tasks=list(tasks),
        limit=limit,
        batch_size=batch_size,
        device=device,
        task_manager=manager,
        log_samples=True,
        apply_chat_template=apply_chat_template,
    )
    if tmp is not None:
        tmp.cleanup()
    for key in ("results", "samples", "configs", "n-samples", "versions", "higher_is_better"):
        if isinstance(results.get(key), dict):
            results[key] = {renamed.get(k, k): v for k, v in results[key].items()}
    results["buckets"] = {task: bucket_scores(samples) for task, samples in results.get("samples", {}).items()}
    return results


def model_args(
    model: str | Path, *, dtype: str = "float32", max_length: int | None = None, trust_remote_code: bool = False
) -> dict[str, Any]:
    """lm-eval ``hf`` model arguments as structured values (a path with commas or '=' stays one value)."""
    args: dict[str, Any] = {"pretrained": str(model), "trust_remote_code": bool(trust_remote_code), "dtype": dtype}
    if max_length:
        args["max_length"] = int(max_length)
    return args


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


def summary(results: dict) -> dict:
    """The JSON we save: settings, lm-eval's aggregate results and the bucket table (no raw samples)."""
    return {
        "settings": {"config": _jsonable(results.get("config", {}))},
        "results": _jsonable(results.get("results", {})),
        "by_bucket": results.get("buckets", {}),
    }


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


__all__ = [
    "BUCKETS",
    "LONGBENCH_DEPS",
    "LONGBENCH_E",
    "bucket_scores",
    "check_longbench_deps",
    "local_longbench_tasks",
    "local_task",
    "longbench_row",
    "model_args",
    "resolve_tasks",
    "run",
    "summary",
    "task_yaml_path",
]
