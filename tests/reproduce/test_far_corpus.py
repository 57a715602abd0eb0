"""The grid's far-attention pass reads each run's own training corpus and divides by that run's own ppl(L) on it
(it once read `books` whatever the run was trained on)."""

from __future__ import annotations

import json

import fope.analysis.far as far_module
from fope.reproduce import mechanism
from fope.reproduce.records import run_dir


def test_far_attention_uses_the_runs_own_corpus_and_ppl(tmp_path, monkeypatch):
    seen = []

    def fake_far(path, *, tokens, corpus, length, train_len, device):
        seen.append((path, corpus))
        variants = {"full": {"ppl": 30.0, "far_mass": [[[0.1, 0.2]]]}}
        return None, None, {"cycle_pairs": 0, "edges": [0, 32, 64], "variants": variants, "corpus": corpus}

    monkeypatch.setattr(far_module, "far_attention_of", fake_far)
    runs = {"fope-s0": "wiki", "rope-s0": "kjv"}
    for run, corpus in runs.items():
        d = run_dir(tmp_path, run)
        (d / "eval").mkdir(parents=True)
        (d / "run.json").write_text(json.dumps({"name": run, "corpus": corpus}))
        ppl = {"by_length": {"32": 10.0 if corpus == "wiki" else 15.0}, "request": {"corpus": corpus}}
        (d / "eval" / "ppl.json").write_text(json.dumps(ppl))
    far = {"fope": [("fope-s0", tmp_path / "m1")], "rope": [("rope-s0", tmp_path / "m2")]}
    res = mechanism.far_results(far, 32, length=64, tokens=100, out=tmp_path)
    assert seen == [(tmp_path / "m1", "wiki"), (tmp_path / "m2", "kjv")]
    assert res["corpus"] == runs
    assert res["summary"]["fope"]["full"]["mean"] == 3.0 and res["summary"]["rope"]["full"]["mean"] == 2.0
    # a ppl.json measured on another corpus is not the run's ppl(L): no ratio rather than a mixed one
    (run_dir(tmp_path, "rope-s0") / "eval" / "ppl.json").write_text(
        json.dumps({"by_length": {"32": 15.0}, "request": {"corpus": "books"}})
    )
    res = mechanism.far_results(far, 32, length=64, tokens=100, out=tmp_path)
    assert res["runs"]["rope-s0"]["ppl_L"] is None and res["summary"]["rope"] == {}


def test_the_report_names_the_corpora_the_pass_read():
    from fope.analysis.far_tables import _corpora

    assert _corpora("books") == "`books`"  # results written before each run read its own corpus
    assert _corpora({"a": "wiki", "b": "wiki"}) == "`wiki`"
    assert _corpora({"a": "wiki", "b": "kjv"}) == "each run's own training corpus (`kjv`, `wiki`)"
