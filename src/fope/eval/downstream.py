"""The paper's downstream tables (appendix A.4, Tables 4-6) through lm-evaluation-harness, with the paper's numbers
beside ours.

    fope eval downstream --model DIR [--tables 4,5,6] [--limit 200] [--data-dir local/] [--json report.json]

Models: any HF causal LM directory, hub name or ``smollm2``; a native fope model directory is exported to the HF
format first (`fope.hf.export`, into a temporary directory). The model is loaded once by fope's loader and run by
lm-eval's own HF model wrapper (``HFLM``, causal backend); the output is lm-eval's (``make_table``; ``results``,
``versions``, ``n-shot``, ``configs`` under the real task names) with the paper's tables beside it.

Tables and lm-eval tasks (the paper used OLMo's in-loop evaluators; these are lm-eval's tasks of the same names):
    4  accuracy (``acc``), zero-shot: social_iqa, winogrande, openbookqa, sciq, hellaswag, piqa, commonsense_qa,
       arc_easy. OLMo's ``basic_arithmetic`` has no lm-eval counterpart and is reported as not run.
    5  gold-answer negative log-likelihood: nq_open, triviaqa, arc_easy run as ``loglikelihood`` tasks
       (``<task>_gold_nll``) whose target is the (first) gold answer after the task's target delimiter (" sunlight",
       the continuation lm-eval scores for that answer as a choice). We report ln(lm-eval's ``perplexity``) = the
       mean NLL per answer in nats; the paper's CE is per token, so compare models with each other, not with the
       paper's absolute values.
    6  MMLU accuracy per category (stem, social sciences, humanities, other): lm-eval's ``mmlu`` subtasks, averaged
       per category weighted by size.

Offline: ``data_dir`` holds ``<lm-eval task>.jsonl`` files in the Hugging Face dataset's own row format (e.g.
``piqa.jsonl`` with goal/sol1/sol2/label, ``mmlu_anatomy.jsonl`` with question/subject/choices/answer); each task
listed must have its file (`fope.eval.lmeval.local_task` keeps lm-eval's prompt and metric, swaps the data).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Table 4 column -> lm-eval task (None: not available in lm-eval)
TABLE4 = {
    "basic_arith": None,
    "social_iqa": "social_iqa",
    "winogrande": "winogrande",
    "openbook_qa": "openbookqa",
    "sciq": "sciq",
    "hellaswag": "hellaswag",
    "piqa": "piqa",
    "commonsense_qa": "commonsense_qa",
    "arc_easy": "arc_easy",
}
#: Table 5 column -> (lm-eval task, the Jinja expression of its (first) gold answer, other overrides). The task runs
#: as a ``loglikelihood`` task (`TABLE5_COMMON`) named ``<task>_gold_nll`` whose target is the gold answer after the
#: task's own target delimiter (`gold_target`): the request is ``(context, " answer")``, exactly the continuation
#: lm-eval scores for that answer in the task's multiple_choice form.
TABLE5 = {
    "natural_qs_open": ("nq_open", "answer[0]", {}),
    "trivia_qa_wiki": ("triviaqa", "answer.value", {}),
    "arc_easy": ("arc_easy", "choices.text[choices.label.index(answerKey)]", {"doc_to_choice": None}),
}
TABLE5_COMMON = {
    "output_type": "loglikelihood",
    "generation_kwargs": None,
    "filter_list": None,
    "metric_list": [{"metric": "perplexity", "aggregation": "perplexity", "higher_is_better": False}],
}
#: the suffix of Table 5's task names (``arc_easy_gold_nll``)
GOLD_SUFFIX = "_gold_nll"
#: Table 6 column -> the tag lm-eval's MMLU subtask YAMLs carry
TABLE6 = {
    "stem": "mmlu_stem_tasks",
    "social_science": "mmlu_social_sciences_tasks",
    "humanity": "mmlu_humanities_tasks",
    "other": "mmlu_other_tasks",
}

#: The paper's numbers (1.2B models trained on C4 at 512; appendix A.4). Table 4's printed avg divides by 10.
PAPER = {
    4: {
        "NoPE": [25.67, 43.71, 51.86, 29.80, 76.70, 41.83, 68.83, 31.61, 51.40],
        "ALiBi": [24.97, 42.53, 53.12, 31.40, 77.70, 43.06, 69.42, 33.42, 53.68],
        "KERPLE": [25.03, 43.81, 54.07, 32.40, 78.20, 43.65, 69.64, 32.92, 52.46],
        "FIRE": [25.60, 42.63, 49.88, 33.40, 77.00, 42.75, 69.31, 32.92, 50.35],
        "RoPE": [24.60, 43.45, 51.54, 33.60, 77.10, 43.36, 70.13, 33.01, 52.98],
        "FoPE": [26.17, 44.12, 53.20, 32.20, 77.80, 43.83, 70.08, 32.92, 53.33],
    },
    5: {
        "NoPE": [1.4334, 1.6129, 1.3077],
        "ALiBi": [1.3879, 1.6057, 1.2789],
        "KERPLE": [1.4149, 1.5878, 1.2825],
        "FIRE": [1.4365, 1.6258, 1.3118],
        "RoPE": [1.4114, 1.5973, 1.2588],
        "FoPE": [1.3818, 1.5736, 1.2272],
    },
    6: {
        "NoPE": [25.47, 25.38, 28.01, 24.39],
        "ALiBi": [25.93, 27.20, 26.44, 24.39],
        "KERPLE": [26.02, 25.97, 27.82, 24.82],
        "FIRE": [26.34, 27.41, 26.25, 24.16],
        "RoPE": [27.01, 27.26, 27.87, 24.53],
        "FoPE": [27.30, 27.31, 29.89, 25.79],
    },
}
COLUMNS = {4: list(TABLE4), 5: list(TABLE5), 6: list(TABLE6)}


def mmlu_subtasks() -> dict[str, str]:
    """{lm-eval MMLU subtask: Table 6 column} from the installed lm-eval's YAML tags."""
    import yaml

    from .lmeval import task_yaml_path

    folder = task_yaml_path("mmlu_anatomy").parent
    by_tag = {tag: col for col, tag in TABLE6.items()}
    out = {}
    for path in sorted(folder.glob("mmlu_*.yaml")):
        cfg = yaml.safe_load(path.read_text())
        if isinstance(cfg, dict) and cfg.get("tag") in by_tag:
            out[cfg["task"]] = by_tag[cfg["tag"]]
    return out


def plan(tables: Sequence[int], tasks: Sequence[str] | None = None) -> list[tuple[int, str, str]]:
    """(table, column, lm-eval task) to run; ``tasks`` (lm-eval names) restricts it. Table 4's unavailable column
    is left out (reported as not run)."""
    rows: list[tuple[int, str, str]] = []
    for table in tables:
        if table == 4:
            rows += [(4, col, task) for col, task in TABLE4.items() if task]
        elif table == 5:
            rows += [(5, col, task) for col, (task, _, _) in TABLE5.items()]
        elif table == 6:
            rows += [(6, col, task) for task, col in mmlu_subtasks().items()]
        else:
            raise ValueError(f"unknown table {table!r}; the downstream tables are 4, 5, 6")
    if tasks:
        unknown = sorted(set(tasks) - {t for _, _, t in rows})
        if unknown:
            raise ValueError(f"task(s) {unknown} are not in tables {list(tables)}")
        rows = [r for r in rows if r[2] in set(tasks)]
    return rows


def gold_target(task: str, answer: str) -> str:
    """Table 5's ``doc_to_target`` for ``task``: the task's own ``target_delimiter`` (lm-eval's default " " when it
    sets none) before the gold ``answer`` expression, as a Jinja template (``{{" " + answer[0]}}``)."""
    from .lmeval import task_config

    delimiter = task_config(task).get("target_delimiter", " ")
    return "{{" + json.dumps(delimiter) + " + " + answer + "}}"


def write_tasks(
    rows: Sequence[tuple[int, str, str]], out_dir: str | Path, data_dir: str | Path | None = None
) -> dict[str, tuple[int, str, str]]:
    """lm-eval YAMLs in ``out_dir`` for the rows (Table 5 variants always; local data when ``data_dir``):
    {task name to run: (table, column, original task)}. Table 5's tasks are ``<task>_gold_nll`` (`TABLE5`); a local
    task of Tables 4 / 6 is shown under its lm-eval name."""
    from .lmeval import local_task, task_yaml_path, write_task_yaml

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names: dict[str, tuple[int, str, str]] = {}
    for table, col, task in rows:
        name = task
        if data_dir is not None:
            name = local_task(task, Path(data_dir) / f"{task}.jsonl", out, name=f"fope_local_{table}_{task}")
        if table == 5:
            base = task_yaml_path(task)
            if data_dir is not None:  # the local copy must not register twice under another name
                base = (out / f"{name}.yaml").rename(out / f"{name}.base")
            _, answer, extra = TABLE5[col]
            gold = f"{task}{GOLD_SUFFIX}"
            config = {
                "include": str(base),
                "task": gold,
                "task_alias": gold,
                "tag": ["fope_gold_nll"],
                **TABLE5_COMMON,
                "target_delimiter": "",  # the delimiter is in the target (gold_target)
                "doc_to_target": gold_target(task, answer),
                **extra,
            }
            write_task_yaml(out, config)
            name = gold
        names[name] = (table, col, task)
    return names


def run(
    model: str | Path,
    *,
    tables: Sequence[int] = (4, 5, 6),
    tasks: Sequence[str] | None = None,
    data_dir: str | Path | None = None,
    limit: int | float | None = None,
    batch_size: int = 1,
    device: str = "cpu",
    num_fewshot: int | None = 0,
    trust_remote_code: bool = False,
    bootstrap_iters: int = 100000,
) -> dict:
    """Run the tables' tasks with lm-eval on ``model`` (loaded once by fope's loader, run by lm-eval's ``HFLM``).

    Returns `report`'s ``tables`` and ``settings``, lm-eval's results dict keyed by the real task names
    (``results``, ``versions``, ``n-shot``, ``configs``, ``higher_is_better``, ``n-samples``, ``samples``,
    ``config``) and ``gold_answers`` (Table 5: every answer's log-likelihood, `gold_answers`).
    ``trust_remote_code``: let a model directory's own Python code run (off by default; FoPE exports load with
    fope's registered classes without it). ``bootstrap_iters``: lm-eval's resamples for the standard errors (its
    default; 0: none)."""
    import tempfile

    from .lmeval import evaluate, hf_lm, rename_tasks

    rows = plan(tables, tasks)
    with tempfile.TemporaryDirectory(prefix="fope-downstream-") as tmp:
        lm, settings = hf_lm(
            model, device=device, batch_size=batch_size, trust_remote_code=trust_remote_code, export_to=Path(tmp) / "m"
        )
        names = write_tasks(rows, Path(tmp) / "tasks", data_dir)
        results = evaluate(
            lm,
            list(names),
            [Path(tmp) / "tasks"],
            limit=limit,
            batch_size=batch_size,
            device=device,
            num_fewshot=num_fewshot,
            bootstrap_iters=bootstrap_iters,
        )
    real = {name: (task if name.startswith("fope_local_") else name) for name, (_, _, task) in names.items()}
    results = rename_tasks(results, real)
    names = {real[n]: v for n, v in names.items()}
    out = report(results["results"], names, results.get("n-samples", {}))
    for key in ("results", "versions", "n-shot", "configs", "higher_is_better", "n-samples", "samples"):
        out[key] = results.get(key, {})
    out["config"] = {
        **(results.get("config") or {}),
        "model": "hf",
        "model_args": settings,
        "batch_size": batch_size,
        "device": device,
        "limit": limit,
    }
    out["gold_answers"] = gold_answers(results)
    out["settings"] = {
        "model": str(model),
        "tables": list(tables),
        "tasks": [r[2] for r in rows],
        "limit": limit,
        "num_fewshot": num_fewshot,
        "data_dir": str(data_dir) if data_dir else None,
    }
    return out


def gold_answers(results: dict) -> dict[str, list[dict]]:
    """Table 5's requests as lm-eval ran them: per ``<task>_gold_nll`` task, each document's ``context``, ``target``
    (the answer with its leading delimiter) and ``loglikelihood`` (the answer's summed log-probability, nats)."""
    out: dict[str, list[dict]] = {}
    for task, samples in (results.get("samples") or {}).items():
        if not task.endswith(GOLD_SUFFIX):
            continue
        rows = []
        for sample in sorted(samples, key=lambda s: s.get("doc_id", 0)):
            context, target = sample["arguments"][0][:2]
            loglikelihood = sample["resps"][0][0]
            if isinstance(loglikelihood, (list, tuple)):
                loglikelihood = loglikelihood[0]
            rows.append(
                {
                    "doc_id": sample.get("doc_id"),
                    "context": context,
                    "target": target,
                    "loglikelihood": float(loglikelihood),
                }
            )
        out[task] = rows
    return out


def summary(rep: dict) -> dict:
    """The JSON `fope eval downstream --json` writes: `run`'s dict without the raw samples, JSON-safe."""
    return json.loads(json.dumps({k: v for k, v in rep.items() if k != "samples"}, default=str))


def results_table(rep: dict) -> str:
    """lm-eval's standard results table of the run (``lm_eval.utils.make_table``)."""
    from .lmeval import results_table as table

    return table(rep)


def hf_model_dir(model: str | Path, export_to: Path) -> str:
    """An HF directory / hub name lm-eval can load (native fope directories exported first; `fope.hf.export.hf_dir`)."""
    from fope.hf.export import hf_dir

    return str(hf_dir(model, export_to))


def _metric(result: dict, name: str) -> float | None:
    for key, value in result.items():
        if key.split(",")[0] == name and isinstance(value, (int, float)):
            return float(value)
    return None


def report(results: dict, names: dict[str, tuple[int, str, str]], n_samples: dict | None = None) -> dict:
    """{"tables": {4|5|6: {"columns", "ours", "paper", "n"}}}: ours x100 for accuracies, nats for Table 5;
    MMLU categories weighted by each subtask's sample count."""
    n_samples = n_samples or {}
    tables: dict[int, dict[str, Any]] = {}
    groups: dict[tuple[int, str], list[tuple[float, int]]] = {}
    for name, (table, col, _task) in names.items():
        res = results.get(name)
        if res is None:
            continue
        if table == 5:
            ppl = _metric(res, "perplexity")
            value = None if ppl is None else math.log(ppl)
        else:
            acc = _metric(res, "acc")
            value = None if acc is None else 100.0 * acc
        n = int((n_samples.get(name) or {}).get("effective", 1)) if isinstance(n_samples.get(name), dict) else 1
        if value is not None:
            groups.setdefault((table, col), []).append((value, n))
    for table in sorted({t for t, _, _ in names.values()}):
        ours, counts = {}, {}
        for col in COLUMNS[table]:
            vals = groups.get((table, col))
            if vals:
                total = sum(n for _, n in vals)
                ours[col] = sum(v * n for v, n in vals) / total
                counts[col] = total
            else:
                ours[col] = None
        tables[table] = {"columns": COLUMNS[table], "ours": ours, "n": counts, "paper": PAPER[table]}
    return {"tables": tables}


def format_report(rep: dict, label: str = "ours") -> str:
    """Markdown: per table, the paper's rows then ours (– where not run)."""
    lines = []
    titles = {
        4: "Table 4: accuracy (%)",
        5: "Table 5: gold-answer NLL (ours: nats per answer; paper: CE per token)",
        6: "Table 6: MMLU accuracy (%)",
    }
    for table, t in sorted(rep["tables"].items(), key=lambda kv: int(kv[0])):
        table = int(table)
        cols = t["columns"]
        lines += ["", titles[table], "", "| model | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
        for name, values in t["paper"].items():
            lines.append(f"| paper {name} | " + " | ".join(f"{v:g}" for v in values) + " |")
        cells = ["–" if t["ours"].get(c) is None else f"{t['ours'][c]:.2f}" for c in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines).strip()


__all__ = [
    "PAPER",
    "TABLE4",
    "TABLE5",
    "TABLE6",
    "format_report",
    "gold_answers",
    "gold_target",
    "hf_model_dir",
    "mmlu_subtasks",
    "plan",
    "report",
    "results_table",
    "run",
    "summary",
    "write_tasks",
]
