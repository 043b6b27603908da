"""Tests of midtecg.evaluation.set_distances: floors from many splits, an FD that one record cannot break, agreement
with the plain formulas where they apply, far sets far."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from midtecg.data.errors import DataError
from midtecg.evaluation.distributional import frechet_distance
from midtecg.evaluation.fidelity import mean_correlation_matrix_error
from midtecg.evaluation.kernel_distances import mmd
from midtecg.evaluation.set_distances import embedding_distances, floor_splits, signal_distances
from midtecg.evaluation.spectra import welch_psd_distance

try:
    from test_eval_helpers import ecg_like, fixture_folds
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import ecg_like, fixture_folds

_MIX = np.random.default_rng(11).normal(size=(16, 64)) / 4.0


def embeddings(n, rng, shift=0.0):
    """A fixed 64-dim distribution: a 16-dim Gaussian latent mixed in, plus isotropic noise."""
    return rng.normal(size=(n, 16)) @ _MIX + 0.3 * rng.normal(size=(n, 64)) + shift


def within_floor(metric: dict, k: float = 3.0) -> bool:
    return abs(metric["value_at_floor_n"] - metric["floor_mean"]) <= k * metric["floor_std"]


def test_floor_splits_are_disjoint_and_sized():
    n_floor, splits = floor_splits(101, 30, 20, seed=0)
    assert n_floor == 30 and len(splits) == 20
    for a, b, s in splits:
        assert len(a) == len(b) == len(s) == 30 and not set(a) & set(b)
        assert s.max() < 30 and len(set(s)) == 30
    assert floor_splits(40, 100, 5, seed=0)[0] == 20
    assert not np.array_equal(splits[0][0], splits[1][0])
    with pytest.raises(DataError, match="n_splits"):
        floor_splits(10, 10, 1, seed=0)


def test_same_distribution_sits_within_the_floor_for_every_metric():
    rng = np.random.default_rng(0)
    out = embedding_distances(embeddings(600, rng), embeddings(300, rng), n_splits=20, seed=1)
    for name in ("frechet", "kid", "precision", "recall"):
        m = out[name]
        assert m["n_splits"] == 20 and m["n_floor"] == 300 and m["floor_std"] > 0, name
        assert within_floor(m), (name, m)
    assert 0.5 < out["frechet"]["ratio"] < 2.0
    assert out["frechet"]["dim"] == 60  # min(64, 300 // 5)
    assert out["winsorized"] == {"real": 0, "synth": 0, "cutoff_mad": 5.0}


def test_one_extreme_record_does_not_break_the_fd():
    """A single record 1000 x outside the data (a 28.5 mV artefact, say) in either set: the plain FD
    explodes; the robust FD stays within its floor's spread."""
    rng = np.random.default_rng(1)
    real, synth = embeddings(400, rng), embeddings(200, rng)
    outlier = 1000.0 * np.abs(rng.normal(size=(1, 64)))
    for name, (r, s) in {
        "in synth": (real, np.concatenate([synth[1:], outlier])),
        "in real": (np.concatenate([real[1:], outlier]), synth),
    }.items():
        plain = frechet_distance(r, s)
        assert plain > 100 * frechet_distance(real, synth), name
        out = embedding_distances(r, s, n_splits=20, seed=2)
        assert within_floor(out["frechet"]), (name, out["frechet"])
        assert within_floor(out["kid"]) and within_floor(out["precision"]) and within_floor(out["recall"]), name
        assert sum(out["winsorized"][k] for k in ("real", "synth")) == 1, name


def test_a_far_set_is_far():
    rng = np.random.default_rng(3)
    real = embeddings(400, rng)
    far = embeddings(200, rng, shift=0.5) * 1.5
    out = embedding_distances(real, far, n_splits=20, seed=0)
    assert out["frechet"]["z"] > 10 and out["frechet"]["ratio"] > 3
    assert out["kid"]["z"] > 10
    assert out["precision"]["value_at_floor_n"] < out["precision"]["floor_mean"] - 3 * out["precision"]["floor_std"]


def test_fd_equals_the_plain_formula_on_well_conditioned_data():
    """d = 4 << n: the projection keeps every direction (a rotation) and no record is moved, so the value is
    the textbook FD; checked against scipy's sqrtm formula computed here from the raw samples."""
    rng = np.random.default_rng(4)
    a = rng.normal(size=(800, 4)) @ np.diag([2.0, 1.0, 0.5, 0.3])
    b = rng.normal(size=(600, 4)) + np.array([0.3, 0.0, -0.2, 0.1])
    out = embedding_distances(a, b, n_splits=5, seed=0)
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    ref = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real))
    assert out["frechet"]["dim"] == 4 and out["winsorized"]["real"] == 0 and out["winsorized"]["synth"] == 0
    assert out["frechet"]["value"] == pytest.approx(ref, rel=1e-8)
    assert out["frechet"]["value"] == pytest.approx(frechet_distance(a, b), rel=1e-8)


def test_kid_spread_and_tiny_sets():
    rng = np.random.default_rng(5)
    out = embedding_distances(embeddings(100, rng), embeddings(100, rng), n_splits=4, seed=0)
    assert out["kid"]["std"] > 0 and out["kid"]["n_subsets"] == 100 and out["kid"]["subset_size"] == 50
    tiny = embedding_distances(embeddings(5, rng), embeddings(5, rng), n_splits=4, seed=0)
    assert tiny["frechet"]["n_floor"] == 0 and np.isnan(tiny["frechet"]["floor_mean"])
    with pytest.raises(DataError, match="embedding sizes differ"):
        embedding_distances(embeddings(10, rng), embeddings(10, rng)[:, :10])


# ------------------------------------------------------------------------------------------------ signals
def test_signal_distances_agree_with_the_single_functions(tmp_path_factory):
    real = fixture_folds(tmp_path_factory)
    x, y = real["train"], real["val"]
    out = signal_distances(x, y, fs=100, n_splits=20, seed=0)
    m = out["mmd"]
    assert m["value"] == pytest.approx(mmd(x, y, bandwidth=m["bandwidth"])["mmd2"], rel=1e-9, abs=1e-12)
    assert out["welch_psd"]["value"] == pytest.approx(welch_psd_distance(x, y, fs=100)["mean"], rel=1e-12)
    corr = mean_correlation_matrix_error(x, y)["mean_abs_error"]
    assert out["correlation"]["value"] == pytest.approx(corr, rel=1e-12)
    for name, v in out.items():
        assert v["n_floor"] == 10 and v["n_splits"] == 20 and v["floor_std"] > 0, name


def test_signals_real_within_floor_noise_far():
    rng = np.random.default_rng(6)
    real, same = ecg_like(120, rng), ecg_like(60, rng)
    noise = 0.3 * rng.normal(size=(60, 12, 1000))
    near = signal_distances(real, same, fs=100, n_splits=20, seed=0)
    far = signal_distances(real, noise, fs=100, n_splits=20, seed=0)
    for name in ("mmd", "welch_psd", "correlation"):
        assert within_floor(near[name], k=4.0), (name, near[name])
        assert far[name]["z"] > 10, (name, far[name])
    with pytest.raises(DataError, match="same leads and length"):
        signal_distances(real, noise[:, :, :500], fs=100)
