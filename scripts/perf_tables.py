"""The timing tables of docs/performance.md and docs/model.md that come from JSON lines of benchmarks/train_step.py and
benchmarks/decode.py, printed from the committed lines (tests/test_doc_numbers.py keeps the pages equal to them):

    python scripts/perf_tables.py docs/results/performance/cpu-shared.jsonl        # performance.md, "CPU (2 cores, shared)"
    python scripts/perf_tables.py docs/results/performance/decode-16k.jsonl        # performance.md, 16k-token decoding
    python scripts/perf_tables.py --model-md docs/results/performance/model-train-step.jsonl   # model.md, step speed
    python scripts/perf_tables.py --loss-curve docs/results/performance/loss-curve   # performance.md, fp32 vs bf16

Each file holds the JSON lines the benchmarks printed when the tables were made, in the order the page shows them
(the pages quote them too). They are timings of a shared, loaded 2-core machine: see the pages for when and how.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "docs" / "results" / "performance"


def read_lines(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def train_step_table(r: dict[str, Any]) -> str:
    """One benchmarks/train_step.py result as performance.md shows it."""
    lines = [
        f"Run: d_model {r['d_model']}, layers {r['n_layers']}, heads {r['n_heads']}, vocab {r['vocab_size']}, "
        f"batch {r['batch']} x seq {r['seq']}, {r['steps']} timed steps, threads {r['threads']}, torch {r['torch']}",
        "",
        "| variant | median s/step | tokens/s | time vs first | first step s (compile) |",
        "|---|---|---|---|---|",
    ]
    for n in r["median_s"]:
        lines.append(
            f"| `{n}` | {r['median_s'][n]:.3f} | {r['tokens_per_s'][n]:,} | {r['ratio_to_first'][n]:.3f} | "
            f"{r['first_step_s'][n]:.1f} |"
        )
    return "\n".join(lines)


def decode_table(r: dict[str, Any]) -> str:
    """One benchmarks/decode.py result as a Markdown table."""
    base = next(k for k in r if k.startswith("ratio_to_"))
    lines = [
        f"Run: prompt {r['prompt']}, {r['new']} new tokens, batch {r['batch']}, {r['precision']}, "
        f"scaling {r['scaling']}, threads {r['threads']}",
        "",
        f"| kind | prefill s | per-token ms (median) | per token vs {base.removeprefix('ratio_to_')} |",
        "|---|---|---|---|",
    ]
    for k in r["per_token_ms"]:
        lines.append(f"| {k} | {r['prefill_s'][k]:.2f} | {r['per_token_ms'][k]:.2f} | {r[base][k]:.2f} |")
    return "\n".join(lines)


def decode_text(r: dict[str, Any]) -> str:
    """One benchmarks/decode.py result as the benchmark prints it."""
    base = next(k for k in r if k.startswith("ratio_to_"))
    return "\n".join(
        f"{k:7s} prefill {r['prefill_s'][k]:8.2f} s   per token {r['per_token_ms'][k]:8.2f} ms   x{r[base][k]:.2f}"
        for k in r["per_token_ms"]
    )


def table(r: dict[str, Any]) -> str:
    return train_step_table(r) if r["benchmark"] == "train_step" else decode_table(r)


def model_md_table(path: str | Path = FOLDER / "model-train-step.jsonl") -> str:
    """model.md's training-step speed: FoPE, RoPE and HF Llama, one row per run."""
    lines = [
        "| steps | median s: FoPE / RoPE / HF | min s: FoPE / RoPE / HF | FoPE / RoPE (target <= 1.05) "
        "| RoPE / HF (target <= 1.00) |",
        "|---|---|---|---|---|",
    ]
    for r in read_lines(path):
        med = " / ".join(f"{r['median_s'][k]:.2f}" for k in ("fope", "rope", "hf_llama"))
        low = " / ".join(f"{r['min_s'][k]:.2f}" for k in ("fope", "rope", "hf_llama"))
        lines.append(
            f"| {r['steps']} | {med} | {low} | {r['ratio_fope_over_rope']:.3f} | {r['ratio_rope_over_hf']:.3f} |"
        )
    return "\n".join(lines)


def training_run_cell(folder: str | Path = ROOT / "docs" / "results" / "training" / "cpu-tiny-fope-fp32") -> str:
    """training.md's "run" cell: tokens and the loss curve's ends of a committed `fope train` run."""
    folder = Path(folder)
    summary = json.loads((folder / "summary.json").read_text())
    val = {r["step"]: r["val_loss"] for r in read_lines(folder / "metrics.jsonl") if "val_loss" in r}
    first, last = min(val), max(val)
    return (
        f"{summary['tokens'] / 1e6:.2f}M tokens, loss {summary['first_loss']:.2f} → {summary['final_loss']:.2f} "
        f"(val {val[first]:.2f} @{first} → {val[last]:.2f} @{last})"
    )


def loss_curve_tables(folder: str | Path = FOLDER / "loss-curve") -> str:
    """performance.md's loss curves of the whole `cpu-tiny` preset in fp32 and in bf16 + torch.compile."""
    runs = [{r["step"]: r for r in read_lines(Path(folder) / v / "metrics.jsonl")} for v in ("fp32", "bf16-compile")]
    a, b = runs
    steps = [s for s in sorted(a) if s == min(a) or s % 50 == 0]
    lines = ["| step | train loss fp32 | train loss bf16+compile | diff |", "|---|---|---|---|"]
    lines += [f"| {s} | {a[s]['loss']:.4f} | {b[s]['loss']:.4f} | {b[s]['loss'] - a[s]['loss']:+.4f} |" for s in steps]
    lines += ["", "| step | val loss fp32 | val loss bf16+compile | diff |", "|---|---|---|---|"]
    lines += [
        f"| {s} | {a[s]['val_loss']:.4f} | {b[s]['val_loss']:.4f} | {b[s]['val_loss'] - a[s]['val_loss']:+.4f} |"
        for s in sorted(a)
        if "val_loss" in a[s]
    ]
    diffs = [abs(b[s]["loss"] - a[s]["loss"]) for s in a]
    lines += [
        "",
        f"max |train diff| over {len(diffs)} logged steps: {max(diffs):.4f}, mean {sum(diffs) / len(diffs):.4f}",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("jsonl", type=Path, help="a JSON-lines file, or the loss-curve folder with --loss-curve")
    ap.add_argument("--loss-curve", action="store_true", help="the fp32 / bf16+compile loss-curve tables")
    ap.add_argument("--model-md", action="store_true", help="model.md's FoPE / RoPE / HF table")
    ap.add_argument("--text", action="store_true", help="decode results as the benchmark prints them")
    a = ap.parse_args()
    if a.model_md or a.loss_curve:
        print(model_md_table(a.jsonl) if a.model_md else loss_curve_tables(a.jsonl))
        return
    for r in read_lines(a.jsonl):
        print(decode_text(r) if a.text and r["benchmark"] == "decode" else table(r), end="\n\n")


if __name__ == "__main__":
    main()
