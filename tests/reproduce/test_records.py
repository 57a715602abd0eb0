"""The grid's records: one result schema (fope.eval's), read also in the flat form older grid directories hold."""

from __future__ import annotations

import pytest

from fope.reproduce.records import check_same_config, write_json_atomic
from fope.reproduce.results import passkey_series

UNIFIED = {
    "kind": "passkey",
    "by_length": {"128": 0.5},
    "generate": {"digits_in_place": {"by_length": {"128": 0.7}}},
    "likelihood": {"top1": {"by_length": {"128": 0.6}}, "mrr": {"by_length": {"128": 0.8}}},
}
#: what `fope reproduce` wrote into OUT/runs/*/eval/passkey.json before the schemas were one
FLAT = {
    "kind": "passkey",
    "by_length": {"128": 0.5},
    "likelihood_top1": {"128": 0.6},
    "likelihood_mrr": {"128": 0.8},
    "digits_in_place": {"128": 0.7},
}


@pytest.mark.parametrize("record", [UNIFIED, FLAT], ids=["unified", "flat"])
def test_passkey_records_of_either_form_give_the_same_metrics(record):
    assert passkey_series(record) == {
        "passkey": {"128": 0.5},
        "passkey_likelihood": {"128": 0.6},
        "passkey_mrr": {"128": 0.8},
        "passkey_digits": {"128": 0.7},
    }


def test_generation_only_records_have_no_likelihood():
    assert passkey_series({"by_length": {"128": 0.5}, "likelihood": None, "generate": {}}) == {
        "passkey": {"128": 0.5},
        "passkey_likelihood": None,
        "passkey_mrr": None,
        "passkey_digits": None,
    }


def test_records_are_written_whole_with_indent_1(tmp_path):
    write_json_atomic(tmp_path / "eval" / "ppl.json", {"by_length": {"128": 1.5}})
    assert (tmp_path / "eval" / "ppl.json").read_text() == '{\n "by_length": {\n  "128": 1.5\n }\n}\n'
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_changed_config_is_named_with_the_resume_guards_diff(tmp_path):
    from fope.train import apply_overrides, load_preset

    cfg = load_preset("cpu-tiny")
    cfg.to_yaml(tmp_path / "config.yaml")
    check_same_config(cfg, tmp_path, "main/rope/seed0")  # the same config: nothing to say
    moved = apply_overrides(cfg, ["train.init_from=/elsewhere"])
    check_same_config(moved, tmp_path, "main/rope/seed0")  # init_from paths aside
    changed = apply_overrides(cfg, ["train.lr=1e-2", "model.pe_options.sigma=0.1"])
    with pytest.raises(
        ValueError,
        match=r"run 'main/rope/seed0' in .* was started with another config "
        r"\(model.pe_options: \{'sigma': 0.3\} -> \{'sigma': 0.1\}, "
        r"train.lr: 0.002 -> 0.01\); use a new --out directory",
    ):
        check_same_config(changed, tmp_path, "main/rope/seed0")
