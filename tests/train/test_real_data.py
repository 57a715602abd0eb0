"""End to end on the embedded `books` corpus: BPE training (cached), shards, a few steps, a loadable model."""

from __future__ import annotations

import pytest
import torch

import fope.data
import fope.model
from fope.train import apply_overrides, load_preset, train

pytestmark = [pytest.mark.data, pytest.mark.slow]


@pytest.fixture(autouse=True)
def _need_corpora():
    try:
        next(iter(fope.data.get_corpus("books").docs("val")))
    except (FileNotFoundError, ValueError, StopIteration) as e:
        pytest.skip(f"embedded corpora not fetched (run `fope data fetch`): {e}")


def test_cpu_tiny_on_books(tmp_path):
    cfg = apply_overrides(
        load_preset("cpu-tiny"),
        [
            "train.max_steps=8",
            "train.warmup_steps=2",
            "train.global_batch=8",
            "train.micro_batch=4",
            "train.eval_every=4",
            "train.eval_windows=4",
            "train.save_every=4",
            "train.log_every=1",
        ],
    )
    summary = train(cfg, tmp_path / "run")
    assert summary["finished"] and summary["final_loss"] < summary["first_loss"]
    records = [r for r in summary["losses"]]
    assert len(records) == 8
    model = fope.model.load(tmp_path / "run")
    tok = fope.data.load_tokenizer(tmp_path / "run" / "model")
    assert tok.vocab_size <= model.config.vocab_size
    ids = torch.tensor([tok.encode("To be, or not to be")])
    assert torch.isfinite(model(ids)).all()
