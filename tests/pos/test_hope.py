"""HoPE (fope.pos.hope): the kept set against a numpy re-derivation of the paper's rule, the rotation against numpy,
and exact invariants (FoPE's floor, p-RoPE's frequencies, position-independent low-frequency channels)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.testing import assert_close

import fope.pos
from fope.pos.options import fope_sizes


def numpy_kept(head_dim: int, theta: float, train_len: int, cycles: float) -> np.ndarray:
    omega = theta ** (-2.0 * np.arange(head_dim // 2) / head_dim)
    return omega * train_len >= 2 * np.pi * cycles  # at least `cycles` full periods within the training length


@pytest.mark.parametrize(
    "head_dim,theta,train_len,cycles",
    [(32, 10000.0, 256, 1.0), (64, 10000.0, 512, 1.0), (64, 500000.0, 2048, 1.0), (32, 10000.0, 256, 2.0)],
)
def test_frequencies_equal_numpy_rederivation(head_dim, theta, train_len, cycles):
    pe = fope.pos.build("hope", head_dim=head_dim, n_heads=2, train_len=train_len, theta=theta, cycles=cycles)
    kept = numpy_kept(head_dim, theta, train_len, cycles)
    assert pe.kept.numpy().tolist() == kept.tolist() and 0 < kept.sum() < head_dim // 2
    omega = np.where(kept, theta ** (-2.0 * np.arange(head_dim // 2) / head_dim), 0.0)
    assert_close(pe.inv_freq.double(), torch.from_numpy(omega), rtol=1e-6, atol=0)


def test_rotation_equals_numpy_rederivation():
    head_dim, train_len = 32, 256
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 2, 9, head_dim, generator=g), torch.randn(1, 2, 9, head_dim, generator=g)
    positions = torch.randint(0, 4096, (9,), generator=g)
    omega = np.where(numpy_kept(head_dim, 1e4, train_len, 1.0), 1e4 ** (-2.0 * np.arange(16) / head_dim), 0.0)
    ang = positions.numpy()[:, None].astype(np.float64) * omega
    x = k.numpy().astype(np.float64)
    x1, x2 = x[..., :16], x[..., 16:]
    want = np.concatenate([x1 * np.cos(ang) - x2 * np.sin(ang), x2 * np.cos(ang) + x1 * np.sin(ang)], -1)
    _, k_out = fope.pos.build("hope", head_dim=head_dim, n_heads=2, train_len=train_len).rotate(q, k, positions)
    assert_close(k_out.double(), torch.from_numpy(want), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("train_len", [64, 256, 1000, 4096])
def test_kept_set_is_fopes_clip_floor_and_prope_with_that_p(train_len):
    head_dim = 64
    hope = fope.pos.build("hope", head_dim=head_dim, n_heads=2, train_len=train_len)
    floor = fope_sizes(
        head_dim=head_dim, theta=1e4, train_len=train_len, freq_dim=0, clip_floor=True, floor_ratio=1.0, out_dim="full"
    ).kept
    assert torch.equal(hope.kept, floor)
    n = int(floor.sum())
    prope = fope.pos.build("prope", head_dim=head_dim, n_heads=2, p=n / (head_dim // 2))
    assert torch.equal(prope.inv_freq, hope.inv_freq)


def test_low_frequency_channels_are_position_independent_and_scores_relative():
    pe = fope.pos.build("hope", head_dim=32, n_heads=2, train_len=256)
    n = int(pe.kept.sum())
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(1, 2, 1, 32, generator=g), torch.randn(1, 2, 1, 32, generator=g)
    dropped = [*range(n, 16), *range(16 + n, 32)]
    for t in (0, 7, 255, 10_000):
        q_out, _ = pe.rotate(q, k, torch.tensor([t]))
        assert torch.equal(q_out[..., dropped], q[..., dropped])

    def score(m, j):
        qr, _ = pe.rotate(q, k, torch.tensor([m]))
        _, kr = pe.rotate(q, k, torch.tensor([j]))
        return (qr * kr).sum(-1)

    assert_close(score(300, 290), score(10, 0), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "options,train_len,message",
    [
        ({}, None, "hope: needs train_len"),
        ({"cycles": 0}, 256, "hope: cycles must be"),
        ({"cycle": 1}, 256, "unknown option"),
    ],
)
def test_bad_input_is_one_line_naming_it(options, train_len, message):
    with pytest.raises(ValueError, match=message) as err:
        fope.pos.build("hope", head_dim=32, n_heads=2, train_len=train_len, **options)
    assert "\n" not in str(err.value)
