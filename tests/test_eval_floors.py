"""Tests of midtecg.evaluation.floors: the NaN-aware KS distance, summaries and real-vs-real floors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from midtecg.evaluation.floors import compare_values, ks_distance, summarise


def test_ks_distance_matches_scipy_on_measured_values():
    rng = np.random.default_rng(0)
    for n, m, shift in ((50, 80, 0.0), (30, 30, 0.5), (200, 17, 2.0)):
        a, b = rng.normal(size=n), rng.normal(shift, 1.0, size=m)
        assert ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)
    ties = np.array([0.0, 0.0, 1.0, 1.0]), np.array([0.0, 1.0, 1.0, 1.0])
    assert ks_distance(*ties) == pytest.approx(0.25)


def test_ks_distance_counts_unmeasurable_records_beyond_every_value():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    assert ks_distance(a, np.full(4, np.nan)) == 1.0
    assert ks_distance(np.full(3, np.nan), np.full(5, np.nan)) == 0.0
    # half the synthetic records unmeasurable, the others identical to real: KS = the missing-rate gap
    assert ks_distance(a, np.array([1.0, 2.0, np.nan, np.nan])) == pytest.approx(0.5)
    assert math.isnan(ks_distance(a, []))


def test_summarise_hand_values():
    s = summarise([1.0, 2.0, 3.0, 4.0, np.nan])
    assert s["n"] == 5 and s["n_measured"] == 4 and s["missing_rate"] == pytest.approx(0.2)
    assert s["median"] == 2.5 and s["q25"] == 1.75 and s["q75"] == 3.25 and s["iqr"] == 1.5
    assert s["p90"] == pytest.approx(3.7)
    assert math.isnan(summarise([np.nan])["median"])


def test_floor_sizes_and_verdict_support():
    rng = np.random.default_rng(1)
    real = rng.normal(size=300)
    same = compare_values(real, rng.normal(size=120), n_splits=20, seed=0)
    assert same["floor_splits"] == 20 and same["floor_n_ref"] == 150 and same["floor_n_cmp"] == 120
    assert same["ks_synth_mean"] <= same["ks_floor_mean"] + 3 * same["ks_floor_std"]
    assert same["ks_floor_std"] > 0 and same["wasserstein_floor_mean"] > 0
    shifted = rng.normal(1.0, 1.0, size=120)
    far = compare_values(real, shifted, n_splits=20, seed=0)
    assert far["ks_synth_mean"] > far["ks_floor_mean"] + 3 * far["ks_floor_std"]
    assert far["wasserstein"] == pytest.approx(stats.wasserstein_distance(real, shifted))
    big = compare_values(real, rng.normal(size=1000), n_splits=20, seed=0)
    assert big["floor_n_cmp"] == 150  # the synthetic set is subsampled to the floor's n
    small = compare_values(real[:15], real[15:40], min_records=10)
    assert small["floor_splits"] == 0 and math.isnan(small["ks_floor_mean"]) and not math.isnan(small["ks"])
    assert compare_values(real, real[::-1].copy(), seed=3) == compare_values(real, real[::-1].copy(), seed=3)


def test_small_synthetic_sets_are_not_better_than_real_by_sample_size():
    """At n = 20 the full-set KS of a matching set is ~0.2 by chance; the floor at the same n says so."""
    rng = np.random.default_rng(2)
    real = rng.normal(size=400)
    small = compare_values(real, rng.normal(size=20), n_splits=30, seed=0)
    assert small["floor_n_cmp"] == 20
    assert small["ks_floor_mean"] > 0.12  # the floor carries the same small-n noise
    assert abs(small["ks_synth_mean"] - small["ks_floor_mean"]) < 3 * small["ks_floor_std"]
