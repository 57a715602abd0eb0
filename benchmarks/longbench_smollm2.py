"""LongBench-E scoring on SmolLM2-135M-Instruct and its keep-context FoPE conversion, with and without the chat
template: the table in docs/evaluation.md ("LongBench on SmolLM2: a small local run").

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/longbench_smollm2.py --out docs/results/longbench-smollm2
    .venv/bin/python benchmarks/longbench_smollm2.py --table docs/results/longbench-smollm2     # the table only

No LongBench data is reachable offline, so ``--out``/data/ gets a small set of rows we build in LongBench's shipped
format (the fields of THUDM/LongBench's data.zip: ``input``, ``context``, ``answers``, ``length`` (words of the
context), ``dataset``, ``language``, ``all_classes``, ``_id``) from the embedded wiki corpus (``fope data fetch``)
and hand-written questions (`QA`): 8 ``triviaqa_e`` rows (a few-shot task: passages with question and answer as
examples, the row's own passage and question ending in "Answer:"; LongBench keeps the first line and uses no chat
template) and 8 ``hotpotqa_e`` rows (a QA task on "Passage k:" paragraphs with a bare question; scored whole, chat
template applied). Then, in separate processes, the commands the docs show:

    fope hf convert --model smollm2 --preset keep-context --out OUT/smollm2-keep-context   (deleted afterwards)
    fope eval longbench --model M --data-dir OUT/data --tasks triviaqa,hotpotqa [--chat-template] --out OUT/NAME.json

and the table of LongBench's scores (eval.py: x100, 2 decimals) from the four JSON files (`table`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: (wiki article, question, answers): the answers are in the article's text (the embedded corpus' val split)
QA = [
    ("Eiffel Tower", "After which engineer is the Eiffel Tower named?", ["Gustave Eiffel"]),
    ("Mona Lisa", "Which artist painted the Mona Lisa?", ["Leonardo da Vinci"]),
    ("Moby-Dick", "Who wrote Moby-Dick?", ["Herman Melville"]),
    ("Louvre", "In which city is the Louvre?", ["Paris"]),
    ("Macbeth", "Who wrote Macbeth?", ["William Shakespeare", "Shakespeare"]),
    ("The Little Prince", "Who wrote The Little Prince?", ["Antoine de Saint-Exupéry", "Saint-Exupéry"]),
    ("Hello Kitty", "Which company owns Hello Kitty?", ["Sanrio"]),
    ("Moai", "Which people carved the moai?", ["Rapa Nui", "the Rapa Nui people"]),
    ("The Grapes of Wrath", "Who wrote The Grapes of Wrath?", ["John Steinbeck"]),
    ("Heart of Darkness", "Who wrote Heart of Darkness?", ["Joseph Conrad"]),
    ("Florence Cathedral", "Who engineered the dome of Florence Cathedral?", ["Filippo Brunelleschi", "Brunelleschi"]),
    ("The Catcher in the Rye", "Who wrote The Catcher in the Rye?", ["J. D. Salinger", "Salinger"]),
    (
        "Natural History Museum, London",
        "On which road is the main frontage of the Natural History Museum in London?",
        ["Cromwell Road"],
    ),
    ("Book of Kells", "In which language is the Book of Kells written?", ["Latin"]),
    (
        "Heart of Darkness",
        "What is the name of the sailor who tells the story in Heart of Darkness?",
        ["Charles Marlow", "Marlow"],
    ),
    ("Flute", "What is a musician who plays the flute called?", ["flautist", "flutist"]),
]
#: the runs: (file name, model label, model, --chat-template)
RUNS = [
    ("smollm2", "SmolLM2-135M-Instruct", "smollm2", False),
    ("smollm2-chat", "SmolLM2-135M-Instruct", "smollm2", True),
    ("keep-context", "its keep-context FoPE conversion", "{out}/smollm2-keep-context", False),
    ("keep-context-chat", "its keep-context FoPE conversion", "{out}/smollm2-keep-context", True),
]
TASKS = ("longbench_triviaqa_e", "longbench_hotpotqa_e")


def wiki() -> dict[str, str]:
    from fope.data import get_corpus

    return {name.removeprefix("wiki/"): text.strip() for name, text in get_corpus("wiki").named_docs("val")}


def build_rows(out_dir: Path) -> Path:
    """Write ``out_dir/triviaqa_e.jsonl`` and ``out_dir/hotpotqa_e.jsonl`` (module docstring); returns out_dir."""
    docs = wiki()
    missing = sorted({title for title, _, _ in QA if title not in docs})
    if missing:
        raise SystemExit(f"articles {missing} are not in the wiki corpus' val split; run `fope data fetch`")
    out_dir.mkdir(parents=True, exist_ok=True)

    def example(i: int, with_answer: bool) -> str:
        title, question, answers = QA[i]
        return f"Passage: {docs[title]}\nQuestion: {question}\nAnswer:" + (f" {answers[0]}" if with_answer else "")

    base = {"language": "en", "all_classes": None}
    trivia = []
    for i in range(8):  # rows: QA 0-7; few-shot examples: three of QA 8-15
        shots = [example(8 + (i + k) % 8, True) for k in range(3)]
        context = "\n\n".join(shots)
        trivia.append(
            {
                **base,
                "input": example(i, False),
                "context": context,
                "answers": QA[i][2],
                "length": len(context.split()),
                "dataset": "triviaqa_e",
                "_id": f"fope-local-triviaqa-{i}",
            }
        )
    hotpot = []
    for i in range(8):  # rows: QA 8-15, among four distractor passages of QA 0-7
        target = 8 + i
        titles = [QA[(i + k) % 8][0] for k in range(4)]
        titles.insert(i % 5, QA[target][0])
        context = "\n\n".join(f"Passage {k + 1}:\n{t}\n{docs[t]}" for k, t in enumerate(titles))
        hotpot.append(
            {
                **base,
                "input": QA[target][1],
                "context": context,
                "answers": QA[target][2],
                "length": len(context.split()),
                "dataset": "hotpotqa_e",
                "_id": f"fope-local-hotpotqa-{i}",
            }
        )
    for name, rows in (("triviaqa_e", trivia), ("hotpotqa_e", hotpot)):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        (out_dir / f"{name}.jsonl").write_text(text, encoding="utf-8")
    return out_dir


def fope(*args: str) -> list[str]:
    return [sys.executable, "-m", "fope.cli", *args]


def run_all(out: Path) -> None:
    data = build_rows(out / "data")
    converted = out / "smollm2-keep-context"
    log = []
    try:
        commands = [fope("hf", "convert", "--model", "smollm2", "--preset", "keep-context", "--out", str(converted))]
        for name, _, model, chat in RUNS:
            command = fope("eval", "longbench", "--model", model.format(out=out), "--data-dir", str(data))
            command += ["--tasks", "triviaqa,hotpotqa", "--out", str(out / f"{name}.json")]
            commands.append(command + (["--chat-template"] if chat else []))
        for command in commands:
            start = time.time()
            subprocess.run(command, check=True)
            shown = "fope " + " ".join(command[3:])
            log.append({"command": shown, "wall_s": round(time.time() - start, 1)})
            print(f"[{time.time() - start:.0f} s] {shown}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(converted, ignore_errors=True)
    (out / "commands.json").write_text(json.dumps(log, indent=1) + "\n")
    print(table(out))


def table(folder: str | Path) -> str:
    """Markdown: LongBench's score (eval.py: x100, 2 decimals) per run and task, from the runs' JSON files."""
    folder = Path(folder)
    lines = [
        "| model | --chat-template | triviaqa_e (first line, no chat format) | hotpotqa_e (whole answer, chat format) |",
        "|---|---|---:|---:|",
    ]
    for name, label, _, chat in RUNS:
        rep = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        scores = rep["longbench"]
        wrapped = rep["settings"]["chat_template"]
        chat_cell = f"yes ({', '.join(t.removeprefix('longbench_') for t in wrapped)})" if chat else "no"
        cells = [f"{scores[t]['score']:.2f} (n={scores[t]['n']})" for t in TASKS]
        lines.append(f"| {label} | {chat_cell} | " + " | ".join(cells) + " |")
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
