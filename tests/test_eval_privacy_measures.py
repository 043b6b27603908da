"""Tests of midtecg.evaluation.privacy_measures: exact neighbours, chance-level attacks, copies detected."""

from __future__ import annotations

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation import privacy_measures as priv
from midtecg.evaluation.privacy_measures import (
    as_features,
    classic_measures,
    dcr_test,
    mia_density,
    mia_distance,
    near_copies,
    nearest_neighbors,
    nnaa,
    nndr,
    roc_auc,
)

try:
    from test_eval_helpers import ecg_like
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import ecg_like

_MIXING = np.random.default_rng(123).normal(size=(12, 12 * 50))


def draw(n, rng):
    """A fixed distribution of (n, 12, 50) 'signals': a 12-dim Gaussian latent mixed into 600 values + noise."""
    z = rng.normal(size=(n, 12))
    return ((z @ _MIXING) + 0.5 * rng.normal(size=(n, 600))).reshape(n, 12, 50).astype(np.float32)


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(0)
    return draw(400, rng), draw(400, rng), draw(400, rng)  # train, holdout, synth: independent draws


# ------------------------------------------------------------------------------------------ neighbours
def test_nearest_neighbors_matches_brute_force(monkeypatch):
    rng = np.random.default_rng(1)
    q, r = rng.normal(size=(23, 7)), rng.normal(size=(31, 7))
    full = np.linalg.norm(q[:, None] - r[None], axis=-1)
    d, i = nearest_neighbors(q, r, k=3)
    np.testing.assert_allclose(d, np.sort(full, axis=1)[:, :3], atol=1e-10)
    np.testing.assert_array_equal(i, np.argsort(full, axis=1)[:, :3])
    monkeypatch.setattr(priv, "_BLOCK_ELEMENTS", 40)  # one or two rows per block
    d2, i2 = nearest_neighbors(q, r, k=3)
    np.testing.assert_allclose(d2, d, atol=1e-10)
    np.testing.assert_array_equal(i2, i)
    self_d, self_i = nearest_neighbors(r, r, k=1, exclude_self=True)
    rr = np.linalg.norm(r[:, None] - r[None], axis=-1)
    np.fill_diagonal(rr, np.inf)
    np.testing.assert_allclose(self_d[:, 0], rr.min(axis=1), atol=1e-10)
    assert not np.any(self_i[:, 0] == np.arange(31))
    # all candidates requested: k == reference size
    dk, _ = nearest_neighbors(q, r[:3], k=3)
    np.testing.assert_allclose(dk, np.sort(full[:, :3], axis=1), atol=1e-10)
    with pytest.raises(DataError, match="k=5"):
        nearest_neighbors(q, r[:4], k=5)


def test_exact_copy_distance_is_zero_and_signals_flatten():
    x = ecg_like(5, 2)
    d, i = nearest_neighbors(x, x[::-1], k=1)
    np.testing.assert_allclose(d[:, 0], 0.0, atol=1e-4)
    np.testing.assert_array_equal(i[:, 0], np.arange(5)[::-1])
    f = as_features(x, center=True)
    assert f.shape == (5, 12000)
    np.testing.assert_allclose(f.reshape(5, 12, 1000).mean(-1), 0.0, atol=1e-9)


def test_roc_auc_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    pos, neg = rng.normal(0.5, 1, 50), np.round(rng.normal(0, 1, 70), 1)
    ref = roc_auc_score(np.r_[np.ones(50), np.zeros(70)], np.r_[pos, neg])
    assert roc_auc(pos, neg) == pytest.approx(ref)
    assert roc_auc([1, 1], [1, 1]) == 0.5


# ------------------------------------------------------------------------------------ chance level
def test_independent_generator_is_chance_level(sets):
    train, holdout, synth = sets
    assert abs(mia_distance(train, holdout, synth)["auc"] - 0.5) < 0.07
    dens = mia_density(train, holdout, synth, rng=0)
    assert abs(dens["auc"] - 0.5) < 0.07 and abs(dens["auc_ratio"] - 0.5) < 0.07
    assert abs(nnaa(train, synth)["aa"] - 0.5) < 0.06 and abs(nnaa(holdout, synth)["aa"] - 0.5) < 0.06
    dcr = dcr_test(train, holdout, synth)
    assert abs(dcr["dcr_prob_synth_closer"] - 0.5) < 0.06
    assert 0.8 < dcr["dcr_ratio_median"] < 1.2 and dcr["dcr_synth"].shape == (400,)
    nc = near_copies(train, synth, holdout, rng=0)
    assert nc["near_copy_fraction"] < 0.04 and nc["near_copy_fraction_holdout"] < 0.04
    assert abs(nc["near_copy_excess"]) < 0.02


def test_copying_generator_is_detected(sets):
    train, holdout, _ = sets
    rng = np.random.default_rng(3)
    copies = train[rng.choice(400, 400, replace=False)]
    nc = near_copies(train, copies, holdout, rng=0)
    assert nc["near_copy_fraction"] == 1.0 and nc["near_copy_count"] == 400 and nc["near_copy_excess"] > 0.9
    assert mia_distance(train, holdout, copies)["auc"] > 0.99
    dens = mia_density(train, holdout, copies, rng=0)
    assert dens["auc"] > 0.6 and dens["auc_ratio"] > 0.9
    assert nnaa(train, copies)["aa"] < 0.05
    dcr = dcr_test(train, holdout, copies)
    assert dcr["dcr_p_value"] < 1e-10 and dcr["dcr_synth_summary"]["median"] == 0.0
    assert nndr(train, holdout, copies)["nndr_synth_median"] == pytest.approx(0.0, abs=1e-6)


def test_noisy_partial_copies_are_caught(sets):
    train, holdout, synth = sets
    rng = np.random.default_rng(4)
    leaked = train[rng.choice(400, 100, replace=False)] + 0.05 * rng.normal(size=(100, 12, 50)).astype(np.float32)
    mixed = np.concatenate([synth[:300], leaked])
    nc = near_copies(train, mixed, holdout, rng=0)
    assert nc["near_copy_fraction"] >= 0.25 - 0.01 and nc["near_copy_excess"] > 0.2


def test_single_functions_are_consistent(sets):
    train, holdout, synth = sets
    dcr = dcr_test(train[:200], holdout[:150], synth[:180])
    d = nearest_neighbors(synth[:180], train[:200], k=1)[0][:, 0]
    np.testing.assert_allclose(dcr["dcr_synth"], d)
    nn = nndr(train[:200], holdout[:150], synth[:180])
    d2 = nearest_neighbors(synth[:180], train[:200], k=2)[0]
    np.testing.assert_allclose(nn["nndr_synth"], d2[:, 0] / d2[:, 1])
    assert np.all((nn["nndr_synth"] >= 0) & (nn["nndr_synth"] <= 1))
    dm = nearest_neighbors(train[:200], synth[:180], k=1)[0][:, 0]
    dn = nearest_neighbors(holdout[:150], synth[:180], k=1)[0][:, 0]
    assert mia_distance(train[:200], holdout[:150], synth[:180])["auc"] == pytest.approx(roc_auc(-dm, -dn))
    aa = nnaa(train[:150], synth[:150])
    assert aa["n"] == 150 and 0.0 <= aa["aa"] <= 1.0


def test_classic_measures_agree_with_the_single_functions(sets):
    train, holdout, synth = sets
    out = classic_measures(train[:200], holdout[:150], synth[:180], rng=0)
    dcr = dcr_test(train[:200], holdout[:150], synth[:180])
    np.testing.assert_allclose(out["dcr_synth"], dcr["dcr_synth"])
    assert out["dcr_p_value"] == pytest.approx(dcr["dcr_p_value"])
    assert out["nndr_synth_median"] == pytest.approx(nndr(train[:200], holdout[:150], synth[:180])["nndr_synth_median"])
    assert out["mia_distance_auc"] == pytest.approx(mia_distance(train[:200], holdout[:150], synth[:180])["auc"])
    assert out["mia_density_auc"] == pytest.approx(mia_density(train[:200], holdout[:150], synth[:180], rng=0)["auc"])
    nc = near_copies(train[:200], synth[:180], holdout[:150], rng=0)
    assert out["near_copy_threshold"] == pytest.approx(nc["near_copy_threshold"])
    assert out["nnaa_n"] == 150 and 0.0 <= out["nnaa_train"] <= 1.0
    assert out["space"] == "signal" and out["n_train"] == 200
    small = classic_measures(train[:50], holdout[:50], synth[:50], rng=0, keep_arrays=False)
    assert "dcr_synth" not in small and "nndr_holdout" not in small
    with pytest.raises(DataError, match="at least 3"):
        classic_measures(train, holdout[:2], synth)


def test_nnaa_hand_example():
    real = np.array([[0.0], [10.0], [20.0]])
    far = np.array([[100.0], [110.0], [120.0]])  # easy to tell apart: AA = 1
    assert nnaa(real, far)["aa"] == 1.0
    close = real + 0.1  # each synthetic record right next to a real one: AA = 0
    assert nnaa(real, close)["aa"] == 0.0


def test_embedding_space_and_ecg_like_signals():
    rng = np.random.default_rng(5)
    e_tr, e_ho, e_sy = rng.normal(size=(300, 32)), rng.normal(size=(300, 32)), rng.normal(size=(300, 32))
    assert abs(mia_distance(e_tr, e_ho, e_sy)["auc"] - 0.5) < 0.07
    assert near_copies(e_tr, e_tr[:100], e_ho, rng=0)["near_copy_fraction"] == 1.0
    train, holdout, synth = ecg_like(150, rng), ecg_like(150, rng), ecg_like(150, rng)
    assert abs(mia_distance(train, holdout, synth, center=True)["auc"] - 0.5) < 0.1
    copies = train[::-1].copy()
    assert mia_distance(train, holdout, copies, center=True)["auc"] > 0.99
    assert near_copies(train, copies, holdout, center=True, rng=0)["near_copy_fraction"] == 1.0


def test_validation():
    x = np.zeros((5, 12, 50), dtype=np.float32)
    with pytest.raises(DataError, match="different sizes"):
        dcr_test(x, x, x[:, :, :40])
    with pytest.raises(DataError, match="at least 2"):
        nnaa(x[:1], x)
    bad = x.copy()
    bad[4, 0, 0] = np.nan
    with pytest.raises(DataError, match="record 4"):
        mia_distance(x, x, bad)
