"""LongBench-E through lm-evaluation-harness, with lm-eval's own tasks and metrics (FOPE-SPEC 3.7, Table 1).

    fope hf longbench --model DIR [--tasks gov_report,trec] [--limit 20]          # needs the HF hub (network)

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
from pathlib import Path
from typing import Any, Sequence

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


def run(model: str | Path, tasks: Sequence[str], *, limit: int | float | None = None,
        include_path: str | Path | None = None, batch_size: int = 1, device: str = "cpu",
        max_length: int | None = None, dtype: str = "float32", apply_chat_template: bool = False,
        trust_remote_code: bool = False) -> dict:
    """Evaluate the model directory (or hub name) on lm-eval ``tasks``; returns lm-eval's results dict
    (with ``samples``) plus ``"buckets"``: {task: {bucket: {"score": mean x100, "n": count}}}.

    ``trust_remote_code`` lets transformers run Python code shipped with the model (off by default)."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    from .io import register_auto_classes

    register_auto_classes()  # FoPE directories load with fope's own classes, without remote code
    args = model_args(model, dtype=dtype, max_length=max_length, trust_remote_code=trust_remote_code)
    manager = TaskManager(include_path=str(include_path) if include_path else None)
    results = lm_eval.simple_evaluate(
        model="hf", model_args=args, tasks=list(tasks), limit=limit, batch_size=batch_size, device=device,
        task_manager=manager, log_samples=True, apply_chat_template=apply_chat_template,
    )
    results["buckets"] = {task: bucket_scores(samples) for task, samples in results.get("samples", {}).items()}
    return results


def model_args(model: str | Path, *, dtype: str = "float32", max_length: int | None = None,
               trust_remote_code: bool = False) -> dict[str, Any]:
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
    return {"settings": {"config": _jsonable(results.get("config", {}))},
            "results": _jsonable(results.get("results", {})), "by_bucket": results.get("buckets", {})}


def _jsonable(obj: Any) -> Any:
    return json.loads(json.dumps(obj, default=str))


__all__ = ["LONGBENCH_E", "BUCKETS", "resolve_tasks", "run", "model_args", "bucket_scores", "summary"]
