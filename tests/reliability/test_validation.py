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
