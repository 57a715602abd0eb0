"""Table 5 (gold-answer loss) of `fope eval downstream` on SmolLM2-135M-Instruct and its keep-context FoPE
conversion, on small local rows: the table in docs/evaluation.md ("Table 5 on SmolLM2: a small local run").

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/downstream_smollm2.py --out docs/results/downstream-smollm2
    .venv/bin/python benchmarks/downstream_smollm2.py --table docs/results/downstream-smollm2      # the table only

No nq_open / triviaqa / arc_easy data is reachable offline, so ``--out``/data/ gets rows we write in each Hugging
Face dataset's row format: 16 nq_open and 16 triviaqa (rc.nocontext) rows from the questions of
benchmarks/longbench_smollm2.py (answers found in the embedded wiki corpus), and 8 arc_easy rows of hand-written
grade-school science questions (`ARC`). Then, in separate processes:

    fope hf convert --model smollm2 --preset keep-context --out OUT/smollm2-keep-context   (deleted afterwards)
    fope eval downstream --model M --tables 5 --data-dir OUT/data --json OUT/NAME.json

and, for comparison, the mean NLL of the same answers *without* their leading space (the requests Table 5 sent
before the target delimiter was put back), from lm-eval's HFLM on the logged requests (``bare.json``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: arc_easy rows: (question, choices, index of the answer)
ARC = [
    ("What gives plants the energy to make their food?", ["soil", "sunlight", "wind", "rocks"], 1),
    ("What happens to ice when it is heated?", ["it melts", "it freezes", "it grows", "it hardens"], 0),
    ("Which of these is a mammal?", ["shark", "frog", "whale", "snake"], 2),
    ("What force pulls objects toward the ground?", ["magnetism", "friction", "gravity", "light"], 2),
    ("Which planet is closest to the Sun?", ["Mercury", "Venus", "Earth", "Mars"], 0),
    ("What do bees collect from flowers?", ["sand", "nectar", "salt", "water"], 1),
    ("Which state of matter has a fixed shape?", ["gas", "liquid", "solid", "plasma"], 2),
    ("What organ pumps blood through the body?", ["the lungs", "the liver", "the heart", "the brain"], 2),
]
RUNS = [
    ("smollm2", "SmolLM2-135M-Instruct", "smollm2"),
    ("keep-context", "its keep-context FoPE conversion", "{out}/smollm2-keep-context"),
]
COLUMNS = ("natural_qs_open", "trivia_qa_wiki", "arc_easy")


def _qa() -> list[tuple[str, str, list[str]]]:
    spec = importlib.util.spec_from_file_location("longbench_smollm2", Path(__file__).with_name("longbench_smollm2.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.QA


def build_rows(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    qa = _qa()
    nq = [{"question": q.rstrip("?").lower(), "answer": answers} for _, q, answers in qa]
    trivia = [
        {
            "question": q.rstrip("?"),
            "question_id": f"fope-local-{i}",
            "question_source": "fope benchmarks/downstream_smollm2.py",
            "entity_pages": {},
            "search_results": {},
            "answer": {
                "aliases": answers,
                "normalized_aliases": [a.lower() for a in answers],
                "matched_wiki_entity_name": "",
                "normalized_matched_wiki_entity_name": "",
                "normalized_value": answers[0].lower(),
                "type": "WikipediaEntity",
                "value": answers[0],
            },
        }
        for i, (_, q, answers) in enumerate(qa)
    ]
    labels = ["A", "B", "C", "D"]
    arc = [
        {"id": f"fope-local-arc-{i}", "question": q, "choices": {"text": c, "label": labels}, "answerKey": labels[k]}
        for i, (q, c, k) in enumerate(ARC)
    ]
    for name, rows in (("nq_open", nq), ("triviaqa", trivia), ("arc_easy", arc)):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (out_dir / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return out_dir


def bare_nll(model: str, rep: dict) -> dict[str, float]:
    """Mean NLL per answer of the logged requests with the answer's leading space removed, per Table 5 column."""
    from lm_eval.api.instance import Instance

    from fope.eval.lmeval import hf_lm

    lm, _ = hf_lm(model)
    out = {}
    for task, rows in rep["gold_answers"].items():
        column = next(c for c, (t, _, _) in _table5().items() if f"{t}_gold_nll" == task)
        requests = [
            Instance("loglikelihood", {}, (r["context"], r["target"].lstrip(" ")), i) for i, r in enumerate(rows)
        ]
        lls = [ll for ll, _ in lm.loglikelihood(requests, disable_tqdm=True)]
        out[column] = -sum(lls) / len(lls)
    return out


def _table5() -> dict:
    from fope.eval.downstream import TABLE5

    return TABLE5


def run_all(out: Path) -> None:
    data = build_rows(out / "data")
    converted = out / "smollm2-keep-context"
    log, bare = [], {}
    try:
        commands = [
            [sys.executable, "-m", "fope.cli", "hf", "convert", "--model", "smollm2", "--preset", "keep-context"]
            + ["--out", str(converted)]
        ]
        for name, _, model in RUNS:
            commands.append(
                [sys.executable, "-m", "fope.cli", "eval", "downstream", "--model", model.format(out=out)]
                + ["--tables", "5", "--data-dir", str(data), "--json", str(out / f"{name}.json")]
            )
        for command in commands:
            start = time.time()
            subprocess.run(command, check=True)
            shown = "fope " + " ".join(command[3:])
            log.append({"command": shown, "wall_s": round(time.time() - start, 1)})
            print(f"[{time.time() - start:.0f} s] {shown}", file=sys.stderr, flush=True)
        for name, _, model in RUNS:
            rep = json.loads((out / f"{name}.json").read_text())
            bare[name] = bare_nll(model.format(out=out), rep)
    finally:
        shutil.rmtree(converted, ignore_errors=True)
    (out / "bare.json").write_text(json.dumps(bare, indent=1) + "\n")
    (out / "commands.json").write_text(json.dumps(log, indent=1) + "\n")
    print(table(out))


def table(folder: str | Path) -> str:
    """Markdown: Table 5's mean NLL per answer (nats) per model, with the bare-answer numbers beside each."""
    folder = Path(folder)
    bare = json.loads((folder / "bare.json").read_text())
    head = " | ".join(f"{c} (n)" for c in COLUMNS)
    lines = [f"| model | {head} | without the leading space (old requests) |", "|---|" + "---:|" * (len(COLUMNS) + 1)]
    for name, label, _ in RUNS:
        rep = json.loads((folder / f"{name}.json").read_text())
        t5 = rep["tables"]["5"]
        cells = [f"{t5['ours'][c]:.3f} ({t5['n'][c]})" for c in COLUMNS]
        old = ", ".join(f"{bare[name][c]:.3f}" for c in COLUMNS)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {old} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="run everything, writing data/, the JSON files and the table here")
    parser.add_argument("--table", default=None, help="print the table of a folder of finished runs")
    args = parser.parse_args()
    if args.table:
        print(table(args.table))
    elif args.out:
        run_all(Path(args.out))
    else:
        parser.error("give --out or --table")


if __name__ == "__main__":
    main()
