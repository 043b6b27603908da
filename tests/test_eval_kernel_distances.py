"""Known-answer tests of midtecg.evaluation.kernel_distances (KID, MMD and its kernel-matrix pieces)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation import kernel_distances as kernels
from midtecg.evaluation.distributional import real_floor
from midtecg.evaluation.feature_rows import signal_features
from midtecg.evaluation.kernel_distances import gaussian_gram, kid, median_bandwidth, mmd, mmd2_from_gram

try:
    from test_eval_helpers import ecg_like, real_ecgs_many
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import ecg_like, real_ecgs_many


# ------------------------------------------------------------------------------------------------------------------ KID
def _brute_unbiased_mmd2(x, y, kernel):
    m, n = len(x), len(y)
    sxx = sum(kernel(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    syy = sum(kernel(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    sxy = sum(kernel(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return sxx + syy - 2 * sxy


def test_kid_equals_brute_force_on_one_full_subset():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(9, 3)), rng.normal(0.5, 1.0, size=(9, 3))
    brute = _brute_unbiased_mmd2(x, y, lambda a, b: (a @ b / 3 + 1) ** 3)
    out = kid(x, y, n_subsets=3, subset_size=9, rng=0)  # subset = the whole set: evaluated once
    assert out["kid"] == pytest.approx(brute, rel=1e-10)
    assert out["kid_std"] == 0.0 and out["n_subsets"] == 1
    x2 = np.concatenate([x, x[:1]])  # one more real record: subsets of 9 now differ
    spread = kid(x2, y, n_subsets=5, subset_size=9, rng=0)
    assert spread["n_subsets"] == 5 and spread["subset_size"] == 9


def test_kid_same_distribution_near_zero_and_shift_detected():
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=(600, 32)), rng.normal(size=(600, 32))
    same = kid(a, b, n_subsets=20, subset_size=300, rng=0)
    shifted = kid(a, b + 0.5, n_subsets=20, subset_size=300, rng=0)
    assert abs(same["kid"]) < 3 * same["kid_std"] + 1e-3
    assert shifted["kid"] > 10 * shifted["kid_std"] and shifted["kid"] > 0.05
    assert same["subset_size"] == 300 and same["n_subsets"] == 20


# ------------------------------------------------------------------------------------------------------------------ MMD
def test_mmd_equals_brute_force_with_fixed_bandwidth():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(7, 2, 5)), rng.normal(0.3, 1.0, size=(6, 2, 5))
    sigma = 2.5
    brute = _brute_unbiased_mmd2(
        x.reshape(7, -1), y.reshape(6, -1), lambda a, b: math.exp(-np.sum((a - b) ** 2) / (2 * sigma**2))
    )
    assert mmd(x, y, bandwidth=sigma, downsample=1)["mmd2"] == pytest.approx(brute, rel=1e-10)


def test_mmd_blocks_do_not_change_the_result(monkeypatch):
    x, y = ecg_like(20, 6), ecg_like(15, 7)
    full = mmd(x, y, rng=0)
    monkeypatch.setattr(kernels, "BLOCK_ELEMENTS", 37)  # a few rows per block
    assert mmd(x, y, rng=0)["mmd2"] == pytest.approx(full["mmd2"], rel=1e-9, abs=1e-12)


def test_mmd_identical_independent_and_shifted():
    a, b = ecg_like(60, 8), ecg_like(60, 9)
    ident = mmd(a, a, rng=0)
    # identical sets: the unbiased estimate is -2 (1 - mean off-diagonal kernel) / n, i.e. ~0
    assert -2.0 / 60 <= ident["mmd2"] <= 0.0
    indep = mmd(a, b, rng=0)
    noise = np.random.default_rng(0).normal(0, a.std(), a.shape).astype(np.float32)
    bad = mmd(a, noise, rng=0)
    assert abs(indep["mmd2"]) < 0.05
    # kernel values concentrate in 12,000 dimensions, so even noise stays far below the maximum of 2
    assert bad["mmd2"] > 0.05 and bad["mmd2"] > 10 * abs(indep["mmd2"])
    assert indep["dim"] == 12 * 250  # default: block means of 4 samples
    full = mmd(a, b, downsample=1, center=True, rng=0)
    assert full["dim"] == 12 * 1000


@pytest.mark.shared
def test_mmd_real_floor_vs_noise_on_shared_records():
    real = real_ecgs_many(200)
    floor = real_floor(functools.partial(mmd, rng=0), real, 0, n_repeats=3)
    noise = np.random.default_rng(2).normal(0, real.std(), real[:100].shape).astype(np.float32)
    bad = mmd(real[:100], noise, rng=0)["mmd2"]
    assert abs(floor["mean"]["mmd2"]) < 0.005
    assert bad > 0.01 and bad > abs(floor["mean"]["mmd2"]) + 10 * floor["std"]["mmd2"]


def test_gram_mmd_and_median_bandwidth_match_mmd():
    rng = np.random.default_rng(22)
    x, y = ecg_like(12, rng), ecg_like(9, rng) * 1.2
    fx, fy = signal_features(x, downsample=4), signal_features(y, downsample=4)
    pooled = np.concatenate([fx, fy])
    sigma = median_bandwidth(pooled)
    ref = mmd(x, y)
    assert sigma == pytest.approx(ref["bandwidth"], rel=1e-12)
    gram = gaussian_gram(pooled, bandwidth=sigma)
    assert mmd2_from_gram(gram, np.arange(12), np.arange(12, 21)) == pytest.approx(ref["mmd2"], rel=1e-9)
    np.testing.assert_allclose(gaussian_gram(fx, fy, bandwidth=sigma), gram[:12, 12:], rtol=1e-12)
    assert median_bandwidth(np.ones((5, 3))) == 1.0
    with pytest.raises(DataError, match="bandwidth"):
        gaussian_gram(fx, bandwidth=0.0)


def test_validation():
    bad = np.ones((5, 3))
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match="record 2"):
        kid(bad, np.ones((5, 3)))
