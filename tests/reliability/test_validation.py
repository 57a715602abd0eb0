"""Bad values are refused before any work (data preparation, model building) in one line naming the key: values
that used to train nothing and exit 0 (train.seq_len=0, train.eps=inf) or fail late (seeds out of range)."""

from __future__ import annotations

import pytest

from fope.cli import main
from fope.train import loop as loop_module


@pytest.mark.parametrize(
    "args,named",
    [
        (["train.seq_len=0"], "train.seq_len must be >= 2"),
        (["train.eps=inf"], "train.eps must be a finite number, got inf"),
        (["train.weight_decay=inf"], "train.weight_decay must be a finite number"),
        (["train.lr=nan"], "train.lr must be a finite number, got nan"),
        (["train.grad_clip=inf"], "train.grad_clip must be a finite number"),
        (["--seed", "-1"], "train.seed (--seed) must be an integer in [0, 2**63 - 1], got -1"),
        (["train.seed=1e30"], "train.seed (--seed) must be an integer in [0, 2**63 - 1], got 1e+30"),
        (["train.seed=1.5"], "train.seed: cannot convert '1.5' to int"),
        (["data.seed=-3"], "data.seed must be an integer"),
        (["model.norm_eps=nan"], "norm_eps must be a positive number, got nan"),
        (["model.init_std=inf"], "init_std must be a positive number, got inf"),
    ],
)
def test_bad_value_is_refused_before_any_work(tmp_path, capsys, monkeypatch, args, named):
    """Each bad value: exit 2, one line naming it, before the data preparation starts."""

    def no_work(*a, **k):
        raise AssertionError("work started")

    monkeypatch.setattr(loop_module, "prepare_data", no_work)
    rc = main(["train", "--preset", "cpu-tiny", *args, "--out", str(tmp_path / "run")])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert rc == 2 and len(err) == 1 and named in err[0], err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def _fope(argv, capsys) -> tuple[int, list[str]]:
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as e:  # argparse's own refusals
        rc = e.code
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    return rc, err


@pytest.mark.parametrize(
    "argv,named",
    [
        (["train", "--preset", "cpu-tiny", "--out", ""], "argument --out: an empty directory name"),
        (["train", "--preset", "cpu-tiny", "--max-steps", "9" * 20], "train.max_steps must be in [1, 1,000,000,000]"),
        (["train", "--preset", "cpu-tiny", "--seed", "1.5"], "argument --seed: invalid int value: '1.5'"),
        (["eval", "ppl", "--model", "x", "--lengths", "abc"], "argument --lengths: 'abc' is not an integer length"),
        (["recovery", "--model", "x", "--out", "y", "--lengths", "1k,x"], "argument --lengths: 'x' is not an integer"),
        (["train", "--preset", "cpu-tiny", "--bogus"], "fope train: error: unrecognized arguments: --bogus"),
    ],
)
def test_bad_command_line_is_refused_in_one_line(tmp_path, capsys, monkeypatch, argv, named):
    """Bad command-line input (`--out ''`, a 20-digit --max-steps, `--seed 1.5`, `--lengths abc`, an unknown option):
    exit 2 with one line naming it (no usage block), before any work."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(loop_module, "prepare_data", lambda *a, **k: pytest.fail("work started"))
    rc, err = _fope(argv, capsys)
    assert rc == 2 and len(err) == 1 and named in err[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "argv,line",
    [
        (["--max-steps", "20"], "warm-up 30 -> 2 steps"),
        (["train.lr=1e-3", "--pe", "rope", "train.seed=4"], None),
        (["--no-progress"], None),
    ],
)
def test_good_command_line_is_accepted(tmp_path, capsys, argv, line):
    """Accepted: a shortened preset run (its warm-up shortened, said in one line), overrides on both sides of an
    option, `fope train --no-progress`."""
    import yaml

    rc, err = _fope(["train", "--preset", "cpu-tiny", *argv, "--dry-run"], capsys)
    assert rc == 0, err
    assert err == ([] if line is None else [next(e for e in err if line in e)])
    rc = main(["train", "--preset", "cpu-tiny", *argv, "--dry-run"])
    cfg = yaml.safe_load(capsys.readouterr().out)["train"]
    if "train.seed=4" in argv:
        assert cfg["seed"] == 4 and cfg["lr"] == 1e-3
    if line:
        assert cfg["warmup_steps"] == 2 and cfg["max_steps"] == 20


def test_longbench_checks_its_data_dir_before_loading_the_model(tmp_path, capsys, monkeypatch):
    """`fope eval longbench --data-dir MISSING`: one line naming the directory, before the model is loaded."""
    pytest.importorskip("lm_eval")
    from fope.eval import lmeval

    monkeypatch.setattr(lmeval, "hf_lm", lambda *a, **k: pytest.fail("the model was loaded first"))
    rc, err = _fope(
        ["eval", "longbench", "--model", tmp_path, "--data-dir", tmp_path / "none", "--tasks", "trec"], capsys
    )
    assert rc == 2 and len(err) == 1 and f"no such directory: {tmp_path / 'none'}" in err[0], err
    (tmp_path / "lb").mkdir()
    rc, err = _fope(
        ["eval", "longbench", "--model", tmp_path, "--data-dir", tmp_path / "lb", "--tasks", "trec"], capsys
    )
    assert rc == 2 and len(err) == 1 and "trec_e.jsonl not found" in err[0], err
