"""Known-answer tests of midtecg.evaluation.distributional (Frechet distance, winsorizer, precision / recall,
real-vs-real floor)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import linalg

from midtecg.data.errors import DataError
from midtecg.evaluation.distributional import (
    frechet_distance,
    frechet_distance_from_stats,
    precision_recall,
    radial_winsorizer,
    real_floor,
)
from midtecg.evaluation.spectra import welch_psd_distance

try:
    from test_eval_helpers import ecg_like, real_ecgs
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import ecg_like, real_ecgs


def _random_spd(d, rng):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# -------------------------------------------------------------------------------------------------------------- Frechet
def test_frechet_closed_form_diagonal():
    mu1, mu2 = np.array([1.0, 2.0, 0.0]), np.array([0.0, 0.0, 3.0])
    v1, v2 = np.array([4.0, 1.0, 9.0]), np.array([1.0, 1.0, 4.0])
    # commuting covariances: sum (sqrt(v1) - sqrt(v2))^2
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert expected == pytest.approx(1 + 4 + 9 + 1 + 0 + 1)
    assert frechet_distance_from_stats(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-12)


def test_frechet_matches_sqrtm_formula_general():
    rng = np.random.default_rng(0)
    for d in (2, 5, 20):
        s1, s2 = _random_spd(d, rng), _random_spd(d, rng)
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
        assert frechet_distance_from_stats(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-8, abs=1e-10)
    s = _random_spd(4, rng)
    assert frechet_distance_from_stats(np.zeros(4), s, np.zeros(4), s) == pytest.approx(0.0, abs=1e-10)


def test_frechet_samples_of_known_gaussians():
    rng = np.random.default_rng(1)
    d, n = 4, 40_000
    s1, s2 = _random_spd(d, rng), _random_spd(d, rng)
    mu1, mu2 = np.zeros(d), np.full(d, 0.5)
    a = rng.multivariate_normal(mu1, s1, n)
    b = rng.multivariate_normal(mu2, s2, n)
    expected = frechet_distance_from_stats(mu1, s1, mu2, s2)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.05)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    # two samples of one distribution sit near 0 (small positive bias)
    assert frechet_distance(a[: n // 2], a[n // 2 :]) < 0.02 * expected


def test_frechet_singular_covariance_is_finite():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(10, 64)), rng.normal(size=(12, 64))  # n < d
    v = frechet_distance(a, b)
    assert math.isfinite(v) and v > 0
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    with pytest.raises(DataError, match="embedding sizes"):
        frechet_distance(a, b[:, :10])


# ------------------------------------------------------------------------------------------------------ real-data floor
def test_real_floor_splits_disjoint_halves():
    x = np.arange(40, dtype=np.float64).reshape(10, 4)
    seen = []

    def fn(a, b):
        seen.append((a.copy(), b.copy()))
        assert not set(a[:, 0]) & set(b[:, 0])
        return float(len(a) + len(b))

    assert real_floor(fn, x, 0) == 10.0
    rep = real_floor(fn, x, 0, n_repeats=3)
    assert rep["mean"] == 10.0 and len(rep["values"]) == 3
    drep = real_floor(lambda a, b: {"v": float(a.sum() - b.sum()), "name": "x"}, x, 1, n_repeats=2)
    assert set(drep["mean"]) == {"v"} and len(drep["values"]) == 2
    pairs = real_floor(lambda a, b: (a[0].shape, a[1].shape), (x, x[:, :2]), 0)
    assert pairs == ((5, 4), (5, 2))
    with pytest.raises(DataError):
        real_floor(fn, x[:3], 0)


def test_real_vs_real_sits_near_floor_and_noise_far():
    real = real_ecgs(32)
    floor_w = real_floor(welch_psd_distance, real, 0)["mean"]
    half = real.shape[0] // 2
    noise = np.random.default_rng(2).normal(0, real.std(), real[:half].shape).astype(np.float32)
    assert welch_psd_distance(real[:half], noise)["mean"] > 3 * floor_w

    # an embedding: per-lead log band powers of each record; real halves near, noise far
    def emb(x):
        p = np.abs(np.fft.rfft(x, axis=-1)) ** 2
        bands = np.array_split(p, 10, axis=-1)
        return np.log10(np.stack([b.mean(-1) for b in bands], -1) + 1e-8).reshape(len(x), -1)

    fd_floor = real_floor(lambda a, b: frechet_distance(emb(a), emb(b)), real, 0)
    fd_noise = frechet_distance(emb(real[:half]), emb(noise))
    assert fd_noise > 3 * fd_floor


# ---------------------------------------------------------------------------------------------------- robustness, P / R
def test_radial_winsorizer_moves_only_outliers_onto_the_limit():
    rng = np.random.default_rng(20)
    ref = rng.normal(size=(500, 8))
    w = radial_winsorizer(ref)
    np.testing.assert_array_equal(w(ref), ref)  # a Gaussian sample: nothing beyond median + 5 MAD
    centre = np.median(ref, axis=0)
    radius = np.linalg.norm(ref - centre, axis=1)
    med = np.median(radius)
    limit = med + 5 * 1.4826 * np.median(np.abs(radius - med))
    far = centre + 1000.0 * np.eye(8)[:2]  # two rows far out along two axes
    moved = w(far)
    np.testing.assert_allclose(np.linalg.norm(moved - centre, axis=1), limit, rtol=1e-12)
    np.testing.assert_allclose((moved - centre) / limit, np.eye(8)[:2], atol=1e-12)  # direction kept
    with pytest.raises(DataError, match="features"):
        w(np.zeros((2, 3)))


def test_precision_recall_equals_brute_force():
    rng = np.random.default_rng(21)
    a, b = rng.normal(size=(40, 3)), rng.normal(1.5, 1.0, size=(30, 3))
    out = precision_recall(a, b, k=3)

    def radii(z):
        d = np.linalg.norm(z[:, None] - z[None], axis=-1)
        return np.sort(d, axis=1)[:, 3]  # column 0 is the record itself

    d_ab = np.linalg.norm(b[:, None] - a[None], axis=-1)  # (synth, real)
    precision = np.mean([(d_ab[j] <= radii(a)).any() for j in range(30)])
    recall = np.mean([(d_ab[:, i] <= radii(b)).any() for i in range(40)])
    assert out["precision"] == pytest.approx(precision) and out["recall"] == pytest.approx(recall)
    assert 0 < out["precision"] < 1 and 0 < out["recall"] < 1
    far = precision_recall(a, b + 100.0, k=3)
    assert far["precision"] == 0.0 and far["recall"] == 0.0
    assert precision_recall(a, a.copy(), k=3)["precision"] == 1.0
    with pytest.raises(DataError, match="k="):
        precision_recall(a, b[:3], k=3)


def test_validation():
    x = ecg_like(4, 13)
    with pytest.raises(DataError, match="2-D"):
        frechet_distance(x, x)
