"""Deterministic data order and its split across processes / micro-batches (no processes started here)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fope.data import WindowOrder
from fope.train.distributed import DistInfo, grad_accum_steps, micro_batch_start


def _info(rank: int, world: int) -> DistInfo:
    return DistInfo(rank=rank, world_size=world, local_rank=rank, device=torch.device("cpu"))


def test_order_is_a_seeded_permutation_per_epoch():
    order = WindowOrder(10, seed=3)
    first, second = order.window_ids(0, 10), order.window_ids(10, 10)
    assert sorted(first) == list(range(10)) and sorted(second) == list(range(10))
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(WindowOrder(10, seed=3).window_ids(5, 12), np.r_[first[5:], second[:7]])
    assert not np.array_equal(WindowOrder(10, seed=4).window_ids(0, 10), first)


@pytest.mark.parametrize("global_batch, micro, world", [(8, 4, 2), (8, 2, 2), (12, 3, 2), (8, 1, 4)])
def test_every_split_of_a_step_sees_the_same_windows(global_batch, micro, world):
    order = WindowOrder(1000, seed=0)
    for step in range(3):
        single = order.window_ids(step * global_batch, global_batch)
        seen = []
        accum = grad_accum_steps(global_batch, micro, world)
        for rank in range(world):
            for m in range(accum):
                start = micro_batch_start(
                    step, m, global_batch=global_batch, micro_batch=micro, info=_info(rank, world)
                )
                seen.append(order.window_ids(start, micro))
        np.testing.assert_array_equal(np.sort(np.concatenate(seen)), np.sort(single))


def test_indivisible_global_batch_names_values():
    with pytest.raises(ValueError, match=r"global_batch=10 is not divisible by train.micro_batch=4 x world_size=2"):
        grad_accum_steps(10, 4, 2)
    assert grad_accum_steps(1024, 64, 4) == 4


def test_no_windows_is_an_error():
    with pytest.raises(ValueError, match="no training windows"):
        WindowOrder(0, seed=0)
