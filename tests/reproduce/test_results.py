"""results.json schema and numbers, claims and report.md from a fake grid and from synthetic dicts."""

from __future__ import annotations

import copy
import dataclasses
import json
import statistics

import pytest

from fope.reproduce import check_claims, collect, render_report, write_outputs
from fope.reproduce.cli import build
from fope.reproduce.scheduler import run_grid


@pytest.fixture(scope="module")
def finished(tmp_path_factory, Fake, make_small_preset):
    """One fake grid shared by the tests of this module (they only read it)."""
    out = tmp_path_factory.mktemp("grid")
    grid = build(make_small_preset())
    run_grid(grid, out, backend=Fake(), log=lambda s: None)
    return grid, out, collect(grid, out, command="fope reproduce --preset test")


def test_results_schema(finished, tiny_preset):
    _grid, _out, res = finished
    L = tiny_preset.train_len
    for key in ("commit", "preset", "config", "machine", "wall_time_s", "main", "extension", "ablations"):
        assert key in res
    assert res["preset"] == "cpu" and res["config"]["train_len"] == L
    assert res["config"]["base_config"]["model"]["train_len"] == L
    assert set(res["main"]) == set(tiny_preset.pes)
    for cell in res["main"].values():
        assert cell["train_len"] == L
        assert list(cell["ppl"]) == [str(n) for n in tiny_preset.ppl_lengths]
        assert list(cell["passkey"]) == [str(n) for n in tiny_preset.passkey_lengths]
        for agg in (*cell["ppl"].values(), *cell["passkey"].values(), *cell["ppl_wiki"].values()):
            assert set(agg) == {"mean", "std", "n"} and agg["n"] == tiny_preset.seeds
    assert res["missing"] == []
    json.dumps(res)  # plain JSON


def test_mean_and_std_over_seeds(finished, tiny_preset):
    _, _, res = finished
    L = tiny_preset.train_len
    # the fake's ppl at L is 20 + seed: seeds 0 and 1
    agg = res["main"]["rope"]["ppl"][str(L)]
    assert agg["mean"] == pytest.approx(20.5)
    assert agg["std"] == pytest.approx(statistics.stdev([20.0, 21.0]))
    # ratio is taken per run, then averaged: rope grows by (n/L - 1) beyond L
    assert res["main"]["rope"]["ppl_ratio"][str(16 * L)]["mean"] == pytest.approx(16.0)
    assert res["main"]["fope"]["ppl_ratio"][str(16 * L)]["mean"] == pytest.approx(1.15)
    # relative to L, not to any other length: below L the fake's perplexity is 10 % higher per halving
    assert res["main"]["rope"]["ppl_ratio"][str(L)]["mean"] == pytest.approx(1.0)
    assert res["main"]["rope"]["ppl_ratio"][str(L // 2)]["mean"] == pytest.approx(1.1)
    # the paper's Fig. 6 ratio: ppl_wiki / ppl at the same length
    wiki = res["main"]["alibi"]["ppl_other_over_train"][str(L)]["mean"]
    assert wiki == pytest.approx(statistics.mean([25 / 20, 26 / 21]))


def test_passkey_by_needle_depth(finished, tiny_preset):
    """Generation per needle-depth bin, pooled over a cell's seeds, and its table in the report (beyond L only)."""
    from fope.eval.passkey import depth_counts

    _, _, res = finished
    L = tiny_preset.train_len
    # the fake's two trials per length: depth 0.05 (bin 0.1) correct only within L, depth 0.95 (bin 0.9) always
    assert res["main"]["rope"]["passkey_depth"][str(2 * L)] == {"0.1": [0, 2], "0.9": [2, 2]}  # 2 seeds pooled
    assert res["main"]["rope"]["passkey_depth"][str(L)] == {"0.1": [2, 2], "0.9": [2, 2]}
    assert res["passkey_variant"]["fope"]["passkey_depth"][str(2 * L)] == {"0.1": [0, 1], "0.9": [1, 1]}
    # by distance from the question: the far needle (0.95 n tokens away) is at >= L from 2L on
    assert res["main"]["rope"]["passkey_far"][str(2 * L)] == {"within": [2, 2], "beyond": [0, 2]}
    assert res["main"]["rope"]["passkey_far"][str(L)] == {"within": [4, 4], "beyond": [0, 0]}
    text = render_report(res)
    assert "by the needle's depth" in text
    assert f"| fope | {2 * L} (2L) | 0/1 | 1/1 | 1/1 | 0/1 |" in text
    assert f"| fope | {L} (1L) |" not in text  # within L is the task's own accuracy table
    # bins of 0.2; a depth on a bin edge goes to the upper bin; the last bin is closed
    trials = [
        {"length": 8, "depth": d, "correct": c} for d, c in ((0.0, True), (0.2, False), (0.39, True), (1.0, True))
    ]
    assert depth_counts(trials) == {"8": {"0.1": [1, 1], "0.3": [1, 2], "0.9": [1, 1]}}


def test_cells_share_deduplicated_runs(finished, tiny_preset):
    _grid, _, res = finished
    assert res["ablations"]["components"]["FoPE"]["runs"] == ["main/fope/seed0"]
    assert res["ablations"]["sigma"]["0.3"]["runs"] == ["main/fope/seed0"]
    assert res["ablations"]["sigma"]["0"]["runs"] == ["ablations/no-fs/seed0"]
    assert res["extension"]["rope+yarn"]["train_len"] == 2 * tiny_preset.train_len
    assert res["extension"]["rope"]["runs"] == ["main/rope/seed0"]
    assert "passkey" not in res["ablations"]["components"]["w/o CF"]  # Fig. 6a needs no passkey
    assert "passkey" in res["ablations"]["freq_dim"]["64"]
    # the cpu presets' passkey task trains dedicated 4-layer models from scratch on the retrieval mixture
    assert res["passkey_variant"]["rope"]["runs"] == ["passkey/rope"]
    assert res["runs"]["passkey/rope"]["init_from"] is None
    assert res["runs"]["passkey/rope"]["overrides"]["data.retrieval_share"] > 0
    assert res["runs"]["passkey/rope"]["overrides"]["model.n_layers"] == 4


def test_passkey_task_fine_tunes_the_main_runs_without_passkey_scratch(tiny_preset):
    p = dataclasses.replace(tiny_preset, passkey_scratch=None, experiments=("passkey",))
    grid = build(p)
    runs = {r.name: r for r in grid.runs}
    assert set(runs) == {f"main/{pe}/seed0" for pe in p.retrieval_pes} | {f"passkey/{pe}" for pe in p.retrieval_pes}
    for pe in p.retrieval_pes:
        assert runs[f"passkey/{pe}"].init_from == f"main/{pe}/seed0"
        assert "model.n_layers" not in runs[f"passkey/{pe}"].overrides
    scratch = build(dataclasses.replace(tiny_preset, experiments=("passkey",)))  # no main run is needed
    assert [r.name for r in scratch.runs] == [f"passkey/{pe}" for pe in p.retrieval_pes]
    assert all(r.init_from is None and r.overrides["model.n_layers"] == 4 for r in scratch.runs)


def test_claims_from_synthetic_numbers(finished):
    _, _, res = finished
    verdicts = {c.id: c.verdict for c in check_claims(res)}
    assert verdicts["target-regime"] == "holds"
    assert verdicts["target-fope-flat"] == "holds"
    assert verdicts["target-fope-below"] == "holds"
    assert verdicts["target-passkey"] == "holds"
    assert verdicts["fig1b-flat"] == "holds"
    # make FoPE blow up like RoPE: the targets must fail, not be tuned
    bad = copy.deepcopy(res)
    bad["main"]["fope"] = copy.deepcopy(bad["main"]["rope"])
    verdicts = {c.id: c for c in check_claims(bad)}
    assert verdicts["target-fope-flat"].verdict == "does not hold"  # 16 vs <= 1.2: a clear miss, whatever else holds
    assert verdicts["target-fope-flat"].why.startswith("FoPE's ratio 16 ± ")  # says by how much it misses
    assert "misses by 15" in verdicts["target-fope-flat"].why
    assert verdicts["target-fope-below"].verdict == "within noise"  # identical perplexities are no difference
    assert verdicts["target-passkey"].verdict == "within noise"  # identical rates are no difference
    assert "16" in verdicts["target-fope-flat"].measured  # the measured ratio is printed


def test_fope_flat_needs_the_baseline(finished):
    """A flat FoPE is not enough: RoPE flat as well -> no win (verdicts compare with the baseline)."""
    _, _, res = finished
    flat = copy.deepcopy(res)
    flat["main"]["rope"] = copy.deepcopy(flat["main"]["fope"])
    verdicts = {c.id: c.verdict for c in check_claims(flat)}
    assert verdicts["target-regime"] == "does not hold"
    # <= 1.2 holds, lower than RoPE is within noise: the target is within noise, never "mixed"
    assert verdicts["target-fope-flat"] == "within noise"
    text = render_report(flat)
    banner = text.split("\n")[2:5]
    assert banner[0].startswith("> **RoPE's perplexity grows 1.15x from its training length L = ") and banner[1] == ">"
    assert "the two grow alike (within noise)" in banner[0]
    assert banner[2].startswith("> **Below the regime where length generalisation can be judged:**")


def test_one_seed_is_judged_with_the_reference_spread(finished):
    """Without a seed spread of its own, a run is judged with the committed `cpu` grid's, and the report says so."""
    from fope.reproduce.verdicts import REFERENCE

    _, _, res = finished
    one = copy.deepcopy(res)
    for cell in one["main"].values():
        for metric in list(cell):
            if isinstance(cell[metric], dict):
                for agg in cell[metric].values():
                    if isinstance(agg, dict) and "std" in agg:
                        agg["std"], agg["n"] = None, 1
    verdicts = {c.id: c for c in check_claims(one)}
    assert verdicts["target-fope-below"].verdict == "holds"  # 1.0 vs 16 apart: far beyond the borrowed band
    # FoPE's ratio 1.15 with one seed: the band is 2 x the reference's FoPE ratio std around 1.2
    band = 2 * REFERENCE.ratio_std["fope"]
    assert verdicts["target-fope-flat"].verdict == ("holds" if band < 1.2 - 1.15 else "within noise")
    assert verdicts["target-regime"].verdict == "holds"
    text = render_report(one)
    assert "> **In the regime:**" in text
    assert "one seed: judged with the seed spread of `docs/results/cpu/results.json` (3 seeds" in text


def test_passkey_task_judged_on_generation_and_likelihood(finished):
    """Both metrics give their own claims: a model can rank the key first before it generates it."""
    _, _, res = finished
    L = res["config"]["train_len"]
    pk = copy.deepcopy(res)

    def cell(gen, lik):
        agg = lambda xs: {str(L * 2**i): {"mean": x, "std": None, "n": 1} for i, x in enumerate(xs)}  # noqa: E731
        return {"train_len": L, "n_runs": 1, "passkey": agg(gen), "passkey_likelihood": agg(lik)}

    pk["passkey_variant"] = {
        "rope": cell([0.05, 0.0, 0.0], [0.85, 0.3, 0.2]),
        "fope": cell([0.0, 0.0, 0.0], [0.9, 0.85, 0.75]),
        "alibi": cell([1.0, 0.6, 0.2], [1.0, 1.0, 0.9]),
    }
    v = {c.id: c.verdict for c in check_claims(pk)}
    assert v["passkey-learnt"] == "does not hold"  # only ALiBi generates the key at L: one failing part is enough
    # RoPE's 0.85 at L over 40 trials is within two binomial s.e. at the bar (0.126) of 0.8: learnt, within noise
    assert v["passkey-learnt-lik"] == "within noise"
    # RoPE and FoPE do not generate the key at L: nothing beyond L can be judged on generation
    assert v["passkey-task-fope"] == v["passkey-task-rope"] == "task not learnt, not tested"
    assert v["passkey-task-fope-lik"] == "holds"
    assert v["passkey-task-rope-lik"] == "does not hold"  # 0.3 at 2L is above chance (0.1)
    assert v["passkey-task-alibi"] == "holds" and v["passkey-task-alibi-lik"] == "holds"
    assert v["passkey-task-fope-alibi"] == "task not learnt, not tested"
    assert "passkey-task-far-needles" not in v  # no distance counts in these cells
    assert v["passkey-task-fope-alibi-lik"] == "does not hold"  # beyond L: FoPE 0.85, 0.75 vs ALiBi 1.0, 0.9
    # FoPE against ALiBi (the paper: FoPE the most stable), once both generate the key at L
    for fope_gen, verdict in (
        ([1.0, 0.9, 0.8], "holds"),
        ([1.0, 0.05, 0.0], "does not hold"),
        ([1.0, 0.55, 0.15], "within noise"),
    ):
        pk["passkey_variant"]["fope"] = cell(fope_gen, [1.0, 1.0, 0.9])
        assert {c.id: c.verdict for c in check_claims(pk)}["passkey-task-fope-alibi"] == verdict, fope_gen
    pk["passkey_variant"]["rope"] = cell([0.05, 0.0, 0.0], [0.85, 0.1, 0.1])
    assert {c.id: c.verdict for c in check_claims(pk)}["passkey-task-rope-lik"] == "holds"
    # keys farther than L from the question: FoPE against RoPE, pooled over the lengths (both must learn the task)
    pk["passkey_variant"]["rope"] = cell([0.9, 0.0, 0.0], [1.0, 0.3, 0.1])
    pk["passkey_variant"]["fope"] = cell([1.0, 0.3, 0.1], [1.0, 0.9, 0.8])
    for f, r, verdict in (
        ((15, 48), (0, 48), "holds"),
        ((0, 48), (15, 48), "does not hold"),
        ((2, 48), (1, 48), "within noise"),
    ):
        pk["passkey_variant"]["fope"]["passkey_far"] = {str(2 * L): {"within": [9, 12], "beyond": list(f)}}
        pk["passkey_variant"]["rope"]["passkey_far"] = {str(2 * L): {"within": [0, 12], "beyond": list(r)}}
        assert {c.id: c.verdict for c in check_claims(pk)}["passkey-task-far-needles"] == verdict, (f, r)
    pk["passkey_variant"]["rope"] = cell([0.5, 0.0, 0.0], [1.0, 0.3, 0.1]) | {
        "passkey_far": {str(2 * L): {"within": [0, 12], "beyond": [0, 48]}}
    }
    assert {c.id: c.verdict for c in check_claims(pk)}["passkey-task-far-needles"] == "task not learnt, not tested"
    # ALiBi's decline tolerates an uptick within two binomial s.e. of the difference (the n trials of the preset)...
    n = int(pk["config"]["passkey_trials"])
    small = 2 * (2 * 0.0375 * (1 - 0.0375) / n) ** 0.5 * 0.9  # 90 % of the tolerance at the pooled rate 0.0375
    pk["passkey_variant"]["alibi"] = cell([0.9, 0.3, 0.0375 - small / 2, 0.0375 + small / 2], [1.0, 1.0, 0.9, 0.8])
    assert {c.id: c.verdict for c in check_claims(pk)}["passkey-task-alibi"] == "holds"
    # ... but not a rise beyond it
    pk["passkey_variant"]["alibi"] = cell([0.9, 0.3, 0.05, 0.3], [1.0, 1.0, 0.9, 0.8])
    assert {c.id: c.verdict for c in check_claims(pk)}["passkey-task-alibi"] == "does not hold"


def test_noise_rules():
    from fope.reproduce.claims import Noise
    from fope.reproduce.verdicts import FAILS, HOLDS, MISSING, NOISE, Part

    noise = Noise(rel=0.05, source="test", trials=20, ablation_trials=20, task_trials=20)
    assert noise.lower(90.0, 100.0).outcome == HOLDS
    assert noise.lower(100.0, 90.0) == Part(FAILS, "100 vs 90: higher by 10.0% (band 5.0%)")
    assert noise.lower(98.0, 100.0) == Part(NOISE, "98 vs 100 differ by 2.0%, within the 5.0% band")
    assert noise.lower(95.0, 100.0).outcome == NOISE  # exactly on the band: within it
    assert noise.lower(None, 1.0).outcome == MISSING
    # 0.5 vs 0.1 over 100 trials each: far beyond two standard errors; 0.12 vs 0.1: not
    assert noise.higher_rate(0.5, 0.1, 100, 100).outcome == HOLDS
    assert noise.higher_rate(0.1, 0.5, 100, 100).outcome == FAILS
    assert noise.higher_rate(0.12, 0.1, 100, 100).outcome == NOISE
    assert noise.higher_rate(0.0, 0.0, 100, 100).outcome == NOISE
    # the band is two binomial s.e. of the difference at the pooled rate: 0.35 vs 0.2 over 100 trials each differ
    # by 0.15 > 2 sqrt(0.275 * 0.725 * 2 / 100) = 0.126; 0.3 vs 0.2 by 0.1 < 2 sqrt(0.25 * 0.75 * 2 / 100) = 0.122
    assert noise.higher_rate(0.35, 0.2, 100, 100).outcome == HOLDS
    assert noise.higher_rate(0.30, 0.2, 100, 100) == Part(NOISE, "0.3 vs 0.2 differ by 0.1, within the band 0.12")


def test_claims_without_data_are_not_measured():
    res = {"config": {"train_len": 64, "other_corpus": "wiki"}, "main": {}, "extension": {}, "ablations": {}}
    assert check_claims(res) == []  # experiments that were not run give no claims
    res["main"] = {"rope": {"ppl": {}}, "fope": {"ppl": {}}}  # run, but without numbers
    claims = check_claims(res)
    assert claims and all(c.verdict == "not measured" for c in claims if c.figure == "target")


def test_report_and_files(finished):
    _grid, out, res = finished
    paths = write_outputs(res, out, figures=False)
    text = paths["report"].read_text()
    assert text.startswith("# FoPE reproduction: preset `cpu`")
    for heading in (
        "## The paper's claims vs this run",
        "## 1. Main comparison",
        "## 2. Cross-distribution",
        "## 3. Length extension",
        "## 4. Ablations",
        "## 5. Passkey",
        "## Runs",
    ):
        assert heading in text
    assert "fope reproduce --preset test" in text
    assert "20.5 ± 0.71" in text  # rope ppl at L: mean ± std of the two seeds
    saved = json.loads(paths["results"].read_text())
    assert saved["claims"] and {"id", "figure", "paper", "measured", "verdict"} <= set(saved["claims"][0])


def test_passkey_tables_print_the_binomial_standard_error():
    """± is sqrt(p (1 - p) / n) over the trials of every run of the cell: 0.5 over 40 trials is ± 0.079."""
    from fope.reproduce.report import _binomial_table, binomial_se

    assert binomial_se(0.5, 40) == pytest.approx(0.0790569, rel=1e-6)
    assert binomial_se(0.9, 100) == pytest.approx(0.03)
    cells = {"fope": {"passkey": {"256": {"mean": 0.5, "n": 1}, "512": {"mean": 0.9, "n": 2}}}}
    table = _binomial_table(cells, "passkey", 256, 40)
    assert table[2] == "| fope | 0.50 ± 0.08 | 0.90 ± 0.03 |"  # 2 runs: 80 trials, sqrt(0.09 / 80) = 0.0335


def test_report_marks_missing_runs(tmp_path, tiny_preset, Fake):
    grid = build(dataclasses.replace(tiny_preset, experiments=("main",)))
    with pytest.raises(KeyboardInterrupt):
        run_grid(grid, tmp_path, backend=Fake(kill_after=2), log=lambda s: None)
    res = collect(grid, tmp_path)
    assert len(res["missing"]) == len(grid.runs) - 2
    assert res["main"]["rope"]["n_runs"] == 1  # seed 0 done, seed 1 missing
    text = render_report(res)
    assert "**Incomplete:**" in text


def test_figures_embedded(finished):
    _, _out, res = finished
    text = render_report(res, {"main_ppl": "figures/main_ppl.png", "ablations": "figures/ablations.png"})
    assert "![perplexity vs length](figures/main_ppl.png)" in text and "figures/ablations.png" in text


@pytest.mark.slow
def test_figures_written(finished):
    pytest.importorskip("matplotlib")
    _, out, res = finished
    paths = write_outputs(res, out, figures=True)
    text = paths["report"].read_text()
    for name in ("main_ppl", "main_passkey", "extension", "ablations", "passkey_task"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 1000
        assert f"figures/{name}.png" in text


def test_untested_main_runs_carry_no_passkey_numbers(tmp_path, Fake, make_small_preset):
    """main_passkey_trials=0: the few passkey trials an ablation arm ran on a shared seed-0 run do not show up as
    the main comparison's (or the passkey task's zero-shot) passkey."""
    preset = dataclasses.replace(make_small_preset(), main_passkey_trials=0, seeds=1)
    grid = build(preset)
    run_grid(grid, tmp_path, backend=Fake(), log=lambda s: None)
    res = collect(grid, tmp_path)
    assert (tmp_path / "runs/main/fope/seed0/eval/passkey.json").is_file()  # the D-sweep arm's evaluation
    for cell in res["main"].values():
        assert not [k for k in cell if k.startswith("passkey")]
    assert all(v["zero_shot"] == {} for v in res["passkey_variant"].values())
    assert {c.id: c.verdict for c in check_claims(res)}["target-passkey"] == "not measured"
    pytest.importorskip("matplotlib")
    paths = write_outputs(res, tmp_path / "report")
    assert (tmp_path / "report" / "figures" / "main_ppl.png").is_file()
    assert not (tmp_path / "report" / "figures" / "main_passkey.png").exists()  # no empty passkey axes
    assert "main_passkey.png" not in paths["report"].read_text()


def test_report_names_the_training_precision(finished):
    """The settings say which precision `auto` resolved to (bf16 only on hardware with native bf16)."""
    _grid, _out, res = finished
    res = copy.deepcopy(res)
    res["config"]["train_overrides"] = {"train.precision": "auto"}
    for info in res["runs"].values():
        info["precision"] = "fp32"
    assert "training precision fp32 (`train.precision=auto`)" in render_report(res)
    next(iter(res["runs"].values()))["precision"] = "bf16"
    assert "training precision bf16 and fp32 (`train.precision=auto`)" in render_report(res)
    for info in res["runs"].values():  # results.json of runs that did not record it
        info.pop("precision")
    assert "training precision" not in render_report(res)
    res["config"]["train_overrides"] = {"train.precision": "bf16"}
    assert "; training precision bf16\n" in render_report(res)
