"""Known-answer tests of midtecg.evaluation.distributional (Frechet, KID, MMD, Welch PSD distance, floor)."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
from scipy import linalg

from midtecg.data.errors import DataError
from midtecg.evaluation import distributional as dist
from midtecg.evaluation.distributional import (
    frechet_distance,
    frechet_distance_from_stats,
    gaussian_gram,
    kid,
    log_psd,
    log_psd_distance,
    median_bandwidth,
    mmd,
    mmd2_from_gram,
    precision_recall,
    radial_winsorizer,
    real_floor,
    signal_features,
    welch_psd_distance,
)

try:
    from test_eval_helpers import ecg_like, real_ecgs, real_ecgs_many
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import ecg_like, real_ecgs, real_ecgs_many


def _random_spd(d, rng):
    a = rng.normal(size=(d, d))
    return a @ a.T / d + 0.1 * np.eye(d)


# ------------------------------------------------------------------------------------------------ Frechet
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


# ------------------------------------------------------------------------------------------------ KID
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


# ------------------------------------------------------------------------------------------------ MMD
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
    monkeypatch.setattr(dist, "_BLOCK_ELEMENTS", 37)  # a few rows per block
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


def test_signal_features_downsample_and_center():
    x = np.arange(2 * 1 * 8, dtype=np.float64).reshape(2, 1, 8)
    np.testing.assert_allclose(signal_features(x, downsample=4), [[1.5, 5.5], [9.5, 13.5]])
    c = signal_features(x, center=True)
    np.testing.assert_allclose(c.mean(axis=1), 0.0, atol=1e-12)
    emb = np.ones((3, 5))
    assert signal_features(emb).shape == (3, 5)


# ----------------------------------------------------------------------------------------------- Welch
def test_welch_identical_and_scaled():
    x = ecg_like(20, 10)
    same = welch_psd_distance(x, x.copy())
    assert same["mean"] == 0.0 and same["max"] == 0.0
    assert set(same["per_lead"]) == {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"}
    for metric in ("l1", "l2"):
        d = welch_psd_distance(x, 2.0 * x, metric=metric)
        assert d["mean"] == pytest.approx(20 * math.log10(2.0), abs=1e-3)  # 6.02 dB at every bin
        assert d["unit"] == "dB"
    assert same["mean_log_psd_real"].shape == (12, same["freqs"].size)
    assert same["freqs"][0] >= 0.5 and same["freqs"][-1] <= 50.0


def test_welch_noise_far_real_halves_near():
    x = ecg_like(60, 11)
    y = ecg_like(60, 12)
    noise = np.random.default_rng(1).normal(0, x.std(), x.shape).astype(np.float32)
    near = welch_psd_distance(x, y)["mean"]
    far = welch_psd_distance(x, noise)["mean"]
    assert near < 1.0 and far > 5.0


# -------------------------------------------------------------------------------------- real-data floor
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


@pytest.mark.shared
def test_mmd_real_floor_vs_noise_on_shared_records():
    real = real_ecgs_many(200)
    floor = real_floor(functools.partial(mmd, rng=0), real, 0, n_repeats=3)
    noise = np.random.default_rng(2).normal(0, real.std(), real[:100].shape).astype(np.float32)
    bad = mmd(real[:100], noise, rng=0)["mmd2"]
    assert abs(floor["mean"]["mmd2"]) < 0.005
    assert bad > 0.01 and bad > abs(floor["mean"]["mmd2"]) + 10 * floor["std"]["mmd2"]


# ------------------------------------------------------------------------------- robustness, P / R
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


def test_log_psd_pieces_rebuild_the_welch_distance():
    x, y = ecg_like(6, 23), ecg_like(5, 24) * 0.5
    freqs, sx = log_psd(x, fs=100)
    _, sy = log_psd(y, fs=100)
    assert sx.shape == (6, 12, freqs.size) and freqs[-1] == pytest.approx(50.0)
    direct = welch_psd_distance(x, y, fs=100, metric="l2")
    pieces = log_psd_distance(sx.mean(0), sy.mean(0), freqs, metric="l2")
    assert pieces["mean"] == pytest.approx(direct["mean"], rel=1e-12)
    assert pieces["per_lead"] == pytest.approx(direct["per_lead"], rel=1e-12)


def test_validation():
    x = ecg_like(4, 13)
    with pytest.raises(DataError, match="same leads"):
        welch_psd_distance(x, x[:, :8])
    with pytest.raises(DataError, match="metric"):
        welch_psd_distance(x, x, metric="l3")
    with pytest.raises(DataError, match="2-D"):
        frechet_distance(x, x)
    bad = np.ones((5, 3))
    bad[2, 1] = np.nan
    with pytest.raises(DataError, match="record 2"):
        kid(bad, np.ones((5, 3)))
