"""The NaN advice's choice of cause and command (fope.train.advice) and the probe comparison (fope.train.versions),
without training; tests/reliability/test_advice.py and test_versions.py follow them on real runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fope.train import apply_overrides, load_preset
from fope.train.advice import nan_advice, reference_lr
from fope.train.versions import PROBE_TOLERANCE, describe, probe_changed


def test_reference_lr_is_the_preset_with_the_same_model():
    assert reference_lr(load_preset("cpu-tiny")) == (2e-3, "the cpu-tiny preset's")
    lr, whose = reference_lr(load_preset("c4-512-60M-fope"))
    assert lr == 6e-4 and "60M" in whose


@pytest.mark.parametrize(
    "overrides,checkpoint,expected",
    [
        (["train.lr=1"], True, "`fope train --resume runs/x train.lr=0.002`"),
        (["train.lr=1"], False, "`fope train runs/x/config.yaml train.lr=0.002 --out runs/x`"),
        (["model.init_std=5"], False, "`fope train runs/x/config.yaml model.init_std=0.02 --out runs/x`"),
        (["model.init_std=5"], True, "a resume cannot change model.init_std"),
        (["train.weight_decay=50"], True, "train.weight_decay=0.1 --out runs/x-2`"),
        (["train.grad_clip=0"], True, "`fope train --resume runs/x train.grad_clip=1`"),
        ([], True, "`fope train --resume runs/x train.lr=0.0002`"),
    ],
)
def test_nan_advice_names_the_cause_and_a_command(overrides, checkpoint, expected):
    cfg = apply_overrides(load_preset("cpu-tiny"), overrides)
    text = nan_advice(cfg, Path("runs/x"), checkpoint=Path("runs/x/checkpoint") if checkpoint else None, last_saved=5)
    assert expected in text and "Likeliest cause" in text


def test_probe_tolerance_and_descriptions():
    assert not probe_changed(4.0, 4.0 * (1 + PROBE_TOLERANCE / 10))
    assert probe_changed(4.0, 4.0 * (1 + PROBE_TOLERANCE * 10))
    assert not probe_changed(None, 4.0)  # a checkpoint without a probe: nothing to compare
    assert describe({"fope_version": "0.1.0", "git_commit": "a" * 40, "git_dirty": True}) == (
        "fope 0.1.0 (commit aaaaaaaaaaaa, with local changes)"
    )
    assert describe(None) == "a fope that recorded no version"
