"""Measured numbers in docs/analysis.md (§1-3, §5, §7), docs/data.md, docs/training.md, docs/model.md and
docs/performance.md are generated from committed files under docs/results/: each test asserts that the page holds
exactly what the printer function makes of its file (regenerate with the command named in the failure)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "results"


def _script(path: str):
    """A benchmarks/ or scripts/ file (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _doc(name: str) -> str:
    return (ROOT / "docs" / name).read_text(encoding="utf-8")


def _flat(text: str) -> str:
    """Whitespace collapsed, for phrases that the page wraps over lines."""
    return re.sub(r"\s+", " ", text)


# ------------------------------------------------------------------------------------------------ docs/analysis.md
@pytest.fixture(scope="module")
def analysis():
    return _script("scripts/analysis_tables.py")


@pytest.mark.parametrize(
    "table",
    [
        "toy_table",
        "toy_sentence",
        "activations_summary",
        "activations_other_length",
        "activations_sentence",
        "tiny_activations_table",
        "decay_table",
        "damage_table",
        "induction_block",
    ],
)
def test_analysis_md_tables_are_generated_from_their_json(analysis, table):
    text = getattr(analysis, table)()
    assert text in _doc("analysis.md"), f"regenerate it with python scripts/analysis_tables.py print ({table})"


def test_analysis_md_phrases_quote_their_json(analysis):
    page = _flat(_doc("analysis.md"))
    for phrase in analysis.damage_phrases() + analysis.damage_vs_ratio_summary():
        assert _flat(phrase) in page, f"docs/analysis.md §5 should say {phrase!r}"
    dims = analysis.brightest_dims()
    assert dims[1] == dims[0] + 1 and dims[3] == dims[2] + 1
    assert f"dims {dims[0]}–{dims[1]} and {dims[2]}–{dims[3]}" in page
    summary = json.loads((RESULTS / "analysis" / "smollm2" / "activations-smollm2.json").read_text())["summary"]
    means = [s["mean"] for s in summary.values()]
    assert f"{min(means):.2f}–{max(means):.2f}× on average over layers" in page


def test_toy_json_is_what_the_toy_computes(analysis):
    """The toy is deterministic and takes about a second: its committed errors are re-run here."""
    committed = json.loads((RESULTS / "analysis" / "toy.json").read_text())["settings"]
    fresh = analysis.toy_results()
    assert [r["command"] for r in fresh] == [r["command"] for r in committed]
    for new, old in zip(fresh, committed):
        for panel, errors in old["errors"].items():
            for key, value in errors.items():
                assert new["errors"][panel][key] == pytest.approx(value, rel=1e-6, abs=1e-9), (new["command"], panel)


# --------------------------------------------------------------------------------------------------- docs/data.md
def test_data_md_counts_are_generated_from_stats_json():
    data = _script("scripts/data_stats.py")
    page = _doc("data.md")
    for table in (data.token_table(), data.parts_table()):
        assert table in page, "regenerate it with python scripts/data_stats.py --print docs/results/data/stats.json"
    flat = _flat(page)
    for phrase in data.sentences():
        assert _flat(phrase) in flat, f"docs/data.md should say {phrase!r} (docs/results/data/stats.json)"
    assert "32,247,840" not in page  # du -sb of one filesystem, replaced by the manifest's byte count


def test_stats_json_is_consistent_with_itself():
    """The per-part counts add up to the shards' train and val splits (one EOS per document in both)."""
    stats = json.loads((RESULTS / "data" / "stats.json").read_text())
    for split in ("train", "val"):
        parts = [p for key, p in stats["books_parts"].items() if key.endswith(f"/{split}")]
        shard = stats["shards"]["books"]["splits"][split]
        assert sum(p["tokens"] for p in parts) == shard["tokens"]
        assert sum(p["docs"] for p in parts) == shard["documents"]
    retrieval = stats["shards"]["books-retrieval"]["splits"]["train"]
    assert retrieval["tokens"] == stats["shards"]["books"]["splits"]["train"]["tokens"] + retrieval["synthetic_tokens"]


# ----------------------------------------------------------------------------------------------- docs/training.md
def test_training_md_run_cell_is_the_committed_run():
    perf = _script("scripts/perf_tables.py")
    run = RESULTS / "training" / "cpu-tiny-fope-fp32"
    assert f"| {perf.training_run_cell(run)}¹ |" in _doc("training.md"), "regenerate it from " + str(run)
    config = (run / "config.yaml").read_text()
    assert "pe: fope" in config and "precision: fp32" in config


def test_training_md_parameter_counts_and_kept_frequencies():
    import fope.pos
    from fope.model import MODEL_PRESETS

    page = _doc("training.md")
    for name in ("cpu-tiny", "cpu-small", "cpu-base"):
        n = MODEL_PRESETS[name].num_params()
        shown = f"{n / 1e6:.2f}M" if n < 1e7 else f"{n / 1e6:.1f}M"
        assert f"| `{name}` | {shown} |" in page
    kept = [fope.pos.build("fope", head_dim=64, n_heads=8, train_len=L).d_in for L in (512, 1024)]
    assert f"{kept[0]} → {kept[1]} kept frequencies at 60M" in page


# -------------------------------------------------------------------------------------------------- docs/model.md
def _abbreviated(n: int) -> str:
    """A parameter count as docs/model.md abbreviates the paper's (59.3M, 185.7M, 1.18B)."""
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def test_model_md_presets_and_fope_counts_are_the_codes():
    from fope.model import MODEL_PRESETS

    tables = _script("scripts/model_tables.py")
    page, flat = _doc("model.md"), _flat(_doc("model.md"))
    assert tables.presets_table() in page, "regenerate it with python scripts/model_tables.py"
    coef = tables.fope_coefficients()
    counts = " / ".join(f"{c['coef']:,}" for c in coef.values())
    assert f"{counts} numbers for {' / '.join(coef)}" in flat
    tiny, small, base = coef["cpu-tiny"], coef["cpu-small"], coef["cpu-base"]
    assert {k: v for k, v in small.items() if k != "coef"} == {k: v for k, v in base.items() if k != "coef"}
    assert f"D_in = {small['d_in']} of {small['pairs']} frequencies and mixes D_out = {small['d_out']} pairs" in flat
    assert f"keeps {tiny['d_in']} of {tiny['pairs']} frequencies (D_out = {tiny['d_out']})" in flat
    paper = " / ".join(_abbreviated(MODEL_PRESETS[n].num_params(embeddings=1)) for n in ("60M", "180M", "1.2B"))
    assert f"({paper})" in flat


def test_model_md_step_speed_is_generated_from_its_json_lines():
    perf = _script("scripts/perf_tables.py")
    path = RESULTS / "performance" / "model-train-step.jsonl"
    page = _doc("model.md")
    assert perf.model_md_table(path) in page, "regenerate it with scripts/perf_tables.py --model-md"
    assert path.read_text().strip() in page  # the page quotes the committed lines


# -------------------------------------------------------------------------------------------- docs/performance.md
def test_performance_md_tables_are_generated_from_their_json_lines():
    perf = _script("scripts/perf_tables.py")
    page = _doc("performance.md")
    shared = RESULTS / "performance" / "cpu-shared.jsonl"
    for result in perf.read_lines(shared):
        assert perf.table(result) in page, "regenerate it with python scripts/perf_tables.py " + str(shared)
    assert shared.read_text().strip() in page  # the page quotes the committed lines, in order
    decode = RESULTS / "performance" / "decode-16k.jsonl"
    (line,) = perf.read_lines(decode)
    assert perf.decode_text(line) in page and decode.read_text().strip() in page


# ---------------------------------------------------------------------------------------- docs/position-encodings.md
def test_position_encodings_md_derived_numbers_are_the_codes():
    """Not measurements but values the page derives from formulas; computed here with fope.pos itself."""
    import math

    import fope.pos
    from fope.pos.scaling import yarn_correction_range

    page = _flat(_doc("position-encodings.md"))
    pe = fope.pos.build("fope", head_dim=64, n_heads=8, train_len=512)
    assert f"std {0.3 * math.sqrt(2 / (pe.d_out * (pe.d_in + 8))):.4f} for the 60M model" in page
    stds = []
    for head_dim, heads, sigma in ((64, 8, 0.3), (128, 8, 0.4), (128, 16, 0.6)):
        for L in (512, 1024):
            p = fope.pos.build("fope", head_dim=head_dim, n_heads=heads, train_len=L)
            stds.append(sigma * math.sqrt(2 / (p.d_out * (p.d_in + heads))))
    assert f"std ≈ {min(stds):.3f}–{max(stds):.3f}" in page
    (lo64, hi64), (lo128, hi128) = (
        yarn_correction_range(dim=d, theta=1e4, original_len=512, beta_fast=32, beta_slow=1) for d in (64, 128)
    )
    assert f"from pair {lo64} to pair {hi64}. With d_h = 128 it runs from {lo128} to {hi128}" in page


def test_performance_md_loss_curve_is_generated_from_the_committed_runs():
    perf = _script("scripts/perf_tables.py")
    folder = RESULTS / "performance" / "loss-curve"
    assert perf.loss_curve_tables(folder) in _doc("performance.md"), "regenerate it with perf_tables.py --loss-curve"
    assert "precision: fp32" in (folder / "fp32" / "config.yaml").read_text()
    bf16 = (folder / "bf16-compile" / "config.yaml").read_text()
    assert "precision: bf16" in bf16 and "compile: true" in bf16


def test_engines_parity_table_is_generated_from_its_json():
    """docs/huggingface.md's vLLM / SGLang / lmdeploy parity table equals scripts/engines_tables.py's rendering of
    docs/results/engines/vllm-parity.json (the output of tests/serve/vllm_side.py)."""
    tables = _script("scripts/engines_tables.py")
    page = _doc("huggingface.md")
    assert tables.parity_table() in page, "regenerate it with scripts/engines_tables.py"
    data = json.loads((ROOT / "docs/results/engines/vllm-parity.json").read_text())
    assert all(r["max_abs_q"] == 0.0 for r in data["rows"] if r["dtype"] == "float32")
