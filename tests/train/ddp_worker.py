"""Run by tests/train/test_distributed.py under torchrun: the tiny experiment on 2 gloo processes."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fope.train import train
from tests.train.helpers import tiny_experiment

if __name__ == "__main__":
    torch.set_num_threads(1)
    shards, out, stop_at = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    train(
        tiny_experiment(shards),
        out,
        resume=(out / "checkpoint").exists(),
        stop_at=int(stop_at) if stop_at != "none" else None,
    )
