"""Noise sources (diffusion/noise.py): per-row streams keyed by (seed, index, draw), standard normal, independent."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from midtecg.diffusion import IndexedNoise, generator_noise
from midtecg.diffusion.noise import hash32


def fmix32(x: int) -> int:
    """murmur3's finaliser written with its unsigned multipliers (an independent implementation)."""
    x ^= x >> 16
    x = (x * 0x85EBCA6B) % 2**32
    x ^= x >> 13
    x = (x * 0xC2B2AE35) % 2**32
    return x ^ (x >> 16)


def reference_normal(seed: int, index: int, draw: int, element: int) -> float:
    """Element ``element`` of row ``index`` of draw ``draw``, by the recipe of the module docstring, in plain
    Python integers and math."""
    keys = []
    for start in (0x243F6A88, 0xB7E15162):
        state = start
        for word in (seed % 2**32, seed >> 32, index % 2**32, index >> 32, draw):
            state = fmix32(state ^ word)
        keys.append(state)

    def bits(counter):
        return fmix32((fmix32(counter ^ keys[0]) + keys[1]) % 2**32)

    pair = element // 2
    radius = math.sqrt(-2.0 * math.log((bits(2 * pair) + 0.5) / 2**32))
    angle = 2.0 * math.pi * bits(2 * pair + 1) / 2**32
    return radius * (math.cos(angle) if element % 2 == 0 else math.sin(angle))


def test_hash32_is_murmur3s_finaliser():
    assert hash32(0) == 0 and hash32(1) == 0x514E28B7  # the published fmix32(1)
    words = [1, 2, 0xDEADBEEF, 2**32 - 1, 123456789]
    assert [hash32(w) for w in words] == [fmix32(w) for w in words]
    assert hash32(torch.tensor(words)).tolist() == [fmix32(w) for w in words]  # int64 tensors: no overflow


def test_indexed_noise_follows_the_documented_recipe():
    cases = [(0, [0, 1, 7], 0), (12345, [3, 2**33 + 5], 17), (2**64 - 1, [2**63 - 1], 2**32 - 1)]
    for seed, indices, draw in cases:
        z = IndexedNoise(seed, indices)((len(indices), 3, 5), draw).reshape(len(indices), -1)
        assert z.dtype == torch.float32
        for row, index in enumerate(indices):
            expected = [reference_normal(seed, index, draw, e) for e in (0, 1, 2, 13, 14)]
            np.testing.assert_allclose(z[row, [0, 1, 2, 13, 14]].numpy(), expected, rtol=1e-6, atol=1e-7)


def test_a_row_depends_only_on_its_seed_index_and_draw():
    shape = (8, 1000)
    alone = IndexedNoise(3, [5])((1, *shape), 2)
    for indices in ([5], [0, 5], [9, 8, 7, 6, 5], list(range(5, 70))):
        row = IndexedNoise(3, indices)((len(indices), *shape), 2)[indices.index(5)]
        np.testing.assert_allclose(row.numpy(), alone[0].numpy(), rtol=0, atol=1e-6)
    others = [
        IndexedNoise(4, [5])((1, *shape), 2),
        IndexedNoise(3, [6])((1, *shape), 2),
        IndexedNoise(3, [5])((1, *shape), 3),
    ]
    for other in others:  # another seed, index or draw: another stream
        assert (other - alone).abs().max() > 1.0


def test_indexed_noise_is_standard_normal():
    z = IndexedNoise(11, range(100))((100, 8, 1000), 1).double().flatten().numpy()
    n = z.size
    assert abs(z.mean()) < 4 / math.sqrt(n)
    assert abs(z.std() - 1.0) < 4 / math.sqrt(2 * n)
    assert abs(stats.kurtosis(z)) < 4 * math.sqrt(24 / n)
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert np.abs(z).max() < math.sqrt(-2 * math.log(2.0**-33))  # the largest value Box-Muller can give here


def test_indexed_noise_is_uncorrelated_across_indices_draws_seeds_and_elements():
    n = 8000
    z = IndexedNoise(0, range(64))((64, n), 0).double().numpy()
    bound = 4.5 / math.sqrt(n)  # |r| of independent samples stays below about 4.5 SE, pairs included
    corr = np.corrcoef(z)[~np.eye(64, dtype=bool)]
    assert np.abs(corr).max() < 1.5 * bound and abs(corr.mean()) < 4 / math.sqrt(n * 64 * 63 / 2)
    assert corr.std() == pytest.approx(1 / math.sqrt(n), rel=0.1)  # the spread of independent rows' r
    flat = z.ravel()
    for lag in (1, 2, 7, n):  # neighbouring elements (one Box-Muller pair at lag 1), the next row
        assert abs(np.corrcoef(flat[:-lag], flat[lag:])[0, 1]) < 4 / math.sqrt(flat.size)
    assert abs(np.corrcoef(flat[0::2] ** 2, flat[1::2] ** 2)[0, 1]) < 4 / math.sqrt(flat.size / 2)
    other_draw = IndexedNoise(0, range(64))((64, n), 1).double().numpy().ravel()
    other_seed = IndexedNoise(1, range(64))((64, n), 0).double().numpy().ravel()
    for other in (other_draw, other_seed):
        assert abs(np.corrcoef(flat, other)[0, 1]) < 4 / math.sqrt(flat.size)


def test_one_element_over_many_draws_and_indices_is_standard_normal():
    over_indices = IndexedNoise(7, range(20000))((20000, 2), 3).double().numpy()
    one_row = IndexedNoise(7, [5])
    over_draws = torch.stack([one_row((1, 2), d)[0] for d in range(3000)]).double().numpy()
    for values in (over_indices, over_draws):
        assert stats.kstest(values[:, 0], "norm").pvalue > 1e-3
        assert stats.kstest(values[:, 1], "norm").pvalue > 1e-3
        assert abs(np.corrcoef(values[:, 0], values[:, 1])[0, 1]) < 4 / math.sqrt(len(values))


@pytest.mark.parametrize(
    "seed, indices, message",
    [
        (-1, [0], "seed"),
        (2**64, [0], "seed"),
        (1.5, [0], "seed"),
        (True, [0], "seed"),
        (0, [-1], "non-negative"),
        (0, [0.5], "whole numbers"),
        (0, [], "non-empty"),
        (0, [[0, 1]], "1-D"),
    ],
)
def test_bad_seeds_and_indices_are_refused(seed, indices, message):
    with pytest.raises(ValueError, match=message):
        IndexedNoise(seed, indices)


def test_a_draw_must_match_the_rows():
    noise = IndexedNoise(0, [0, 1])
    assert noise((2, 3), 0).shape == (2, 3) and noise((2,), 0).shape == (2,)
    with pytest.raises(ValueError, match="2 rows"):
        noise((3, 3), 0)
    with pytest.raises(ValueError, match="draw"):
        noise((2, 3), -1)


def test_generator_noise_is_the_generators_consecutive_draws():
    noise = generator_noise(torch.Generator().manual_seed(5), "cpu")
    first, second = noise((2, 3), 0), noise((2, 3), 0)
    expected = torch.randn((4, 3), generator=torch.Generator().manual_seed(5))
    assert torch.equal(torch.cat([first, second]), expected)
