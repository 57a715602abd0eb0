"""docs/huggingface.md's table of vLLM's own FoPE layer against fope's, printed from the committed JSON of
tests/serve/vllm_side.py (tests/test_doc_numbers.py keeps the page equal to it):

    python scripts/engines_tables.py docs/results/engines/vllm-parity.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PARITY = ROOT / "docs" / "results" / "engines" / "vllm-parity.json"


def parity_table(path: str | Path = PARITY) -> str:
    d: dict[str, Any] = json.loads(Path(path).read_text())
    lines = [
        f"vLLM {d['vllm']} (`--no-deps`) over torch {d['torch']}, CPU; command: `{d['command']}`",
        "",
        "| head_dim | heads / kv | theta | max_pos | num_inv_freq | kept n | sep_head | dtype | pad | vLLM class "
        "| max abs diff q | max abs diff k | max abs value |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in d["rows"]:
        head, h, kv, theta, max_pos, n_inv, sep = r["case"]
        lines.append(
            f"| {head} | {h} / {kv} | {theta:g} | {max_pos} | {n_inv if n_inv is not None else 'null'} | {r['n']} "
            f"| {str(sep).lower()} | {r['dtype']} | {r['pad']} | `{r['class']}` | {r['max_abs_q']:g} "
            f"| {r['max_abs_k']:g} | {r['scale']:.3g} |"
        )
    lines += [
        "",
        f"SGLang {d['versions']['sglang']} (`FourierRotaryEmbedding.forward`) and lmdeploy {d['versions']['lmdeploy']} "
        "(`FopeRotaryEmbeddingImpl`'s cos/sin tables, applied rotate-half by the test) against fope, fp32, pad one "
        "(both pad sin and cos with 1):",
        "",
        "| engine | head_dim | heads / kv | num_inv_freq | kept n | sep_head | max abs diff q | max abs diff k |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in d["other_engines"]:
        head, h, kv, _theta, _max_pos, n_inv, sep = r["case"]
        lines.append(
            f"| {r['engine']} | {head} | {h} / {kv} | {n_inv if n_inv is not None else 'null'} | {r['n']} "
            f"| {str(sep).lower()} | {r['max_abs_q']:g} | {r['max_abs_k']:g} |"
        )
    c = d["cross"]
    lines += [
        "",
        f"Control: vLLM's pad `one` against fope's pad `zero` (first row's shape) differs by "
        f"{max(c['max_abs_q'], c['max_abs_k']):.3g}. vLLM's measured pad: `{d['vllm_pad']}`; a pad-`zero` model is "
        f'refused: "{d["refusal"]}"',
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(PARITY))
    print(parity_table(parser.parse_args().path))


if __name__ == "__main__":
    main()
