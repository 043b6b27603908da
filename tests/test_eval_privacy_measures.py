"""Tests of midtecg.evaluation.privacy: exact neighbours, chance-level attacks, a copying generator fails."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation import privacy as priv
from midtecg.evaluation.fidelity import to_jsonable
from midtecg.evaluation.privacy import (
    DEFAULT_GATE_THRESHOLDS,
    as_features,
    dcr_test,
    mia_density,
    mia_distance,
    near_copies,
    nearest_neighbors,
    nndr,
    nnaa,
    privacy_audit,
    privacy_gate,
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
def test_independent_generator_is_chance_level_and_passes(sets):
    train, holdout, synth = sets
    audit = privacy_audit(train, holdout, synth, rng=0)
    for key in ("mia_distance_auc", "mia_density_auc", "mia_density_ratio_auc"):
        assert abs(audit[key] - 0.5) < 0.07, (key, audit[key])
    assert abs(audit["nnaa_train"] - 0.5) < 0.06 and abs(audit["nnaa_holdout"] - 0.5) < 0.06
    assert abs(audit["nnaa_privacy_loss"]) < 0.08
    assert abs(audit["dcr_prob_synth_closer"] - 0.5) < 0.06
    assert 0.4 < audit["dcr_ratio_median"] / 1.0 < 1.2
    assert audit["near_copy_fraction"] < 0.04 and audit["near_copy_fraction_holdout"] < 0.04
    assert abs(audit["near_copy_excess"]) < 0.02
    gate = privacy_gate(audit)
    assert gate["passed"], gate["failed"]
    assert audit["dcr_synth"].shape == (400,) and audit["space"] == "signal"
    json.dumps(to_jsonable(audit), allow_nan=False)


def test_copying_generator_fails_the_gate(sets):
    train, holdout, _ = sets
    rng = np.random.default_rng(3)
    copies = train[rng.choice(400, 400, replace=False)]
    audit = privacy_audit(train, holdout, copies, rng=0)
    assert audit["near_copy_fraction"] == 1.0 and audit["near_copy_count"] == 400
    assert audit["mia_distance_auc"] > 0.99
    assert audit["mia_density_auc"] > 0.6 and audit["mia_density_ratio_auc"] > 0.9
    assert audit["nnaa_train"] < 0.05 and audit["nnaa_privacy_loss"] > 0.4
    assert audit["dcr_p_value"] < 1e-10 and audit["dcr_synth_summary"]["median"] == 0.0
    assert audit["nndr_synth_median"] == pytest.approx(0.0, abs=1e-6)
    gate = privacy_gate(audit)
    assert not gate["passed"]
    assert audit["near_copy_excess"] > 0.9
    for check in ("near_copy_excess", "mia_distance_auc", "mia_density_ratio_auc", "nnaa_train", "dcr_p_value"):
        assert check in gate["failed"]


def test_noisy_partial_copies_are_caught(sets):
    train, holdout, synth = sets
    rng = np.random.default_rng(4)
    leaked = train[rng.choice(400, 100, replace=False)] + 0.05 * rng.normal(size=(100, 12, 50)).astype(np.float32)
    mixed = np.concatenate([synth[:300], leaked])
    audit = privacy_audit(train, holdout, mixed, rng=0)
    assert audit["near_copy_fraction"] >= 0.25 - 0.01
    gate = privacy_gate(audit)
    assert not gate["passed"] and "near_copy_excess" in gate["failed"]


def test_single_functions_agree_with_the_audit(sets):
    train, holdout, synth = sets
    audit = privacy_audit(train[:200], holdout[:150], synth[:180], rng=0)
    dcr = dcr_test(train[:200], holdout[:150], synth[:180])
    np.testing.assert_allclose(dcr["dcr_synth"], audit["dcr_synth"])
    assert dcr["dcr_p_value"] == pytest.approx(audit["dcr_p_value"])
    nn = nndr(train[:200], holdout[:150], synth[:180])
    assert nn["nndr_synth_median"] == pytest.approx(audit["nndr_synth_median"])
    assert np.all((nn["nndr_synth"] >= 0) & (nn["nndr_synth"] <= 1))
    assert mia_distance(train[:200], holdout[:150], synth[:180])["auc"] == pytest.approx(audit["mia_distance_auc"])
    dens = mia_density(train[:200], holdout[:150], synth[:180], rng=0)
    assert dens["auc"] == pytest.approx(audit["mia_density_auc"])
    nc = near_copies(train[:200], synth[:180], holdout[:150], rng=0)
    assert nc["near_copy_threshold"] == pytest.approx(audit["near_copy_threshold"])
    aa = nnaa(train[:150], synth[:150])
    assert aa["n"] == 150 and 0.0 <= aa["aa"] <= 1.0


def test_nnaa_hand_example():
    real = np.array([[0.0], [10.0], [20.0]])
    far = np.array([[100.0], [110.0], [120.0]])  # easy to tell apart: AA = 1
    assert nnaa(real, far)["aa"] == 1.0
    close = real + 0.1  # each synthetic record right next to a real one: AA = 0
    assert nnaa(real, close)["aa"] == 0.0


def test_embedding_space_and_multi_space_gate(sets):
    rng = np.random.default_rng(5)
    e_tr, e_ho, e_sy = rng.normal(size=(300, 32)), rng.normal(size=(300, 32)), rng.normal(size=(300, 32))
    emb = privacy_audit(e_tr, e_ho, e_sy, rng=0)
    assert emb["space"] == "embedding" and emb["dim"] == 32
    train, holdout, synth = sets
    sig = privacy_audit(train, holdout, train.copy(), center=True, rng=0)
    gate = privacy_gate({"signal": sig, "embedding": emb})
    assert not gate["passed"]
    assert "signal.near_copy_excess" in gate["failed"] and "signal.mia_distance_auc" in gate["failed"]
    for check in ("mia_distance_auc", "mia_density_auc", "near_copy_excess", "nnaa_train"):
        assert gate["checks"][f"embedding.{check}"]["passed"], check
    assert len(gate["checks"]) == 2 * len(DEFAULT_GATE_THRESHOLDS)


def test_ecg_like_signals_chance_and_copies():
    rng = np.random.default_rng(6)
    train, holdout, synth = ecg_like(150, rng), ecg_like(150, rng), ecg_like(150, rng)
    audit = privacy_audit(train, holdout, synth, center=True, rng=0, keep_arrays=False)
    assert abs(audit["mia_distance_auc"] - 0.5) < 0.1
    assert "dcr_synth" not in audit
    copies = privacy_audit(train, holdout, train[::-1].copy(), center=True, rng=0)
    assert copies["mia_distance_auc"] > 0.99 and copies["near_copy_fraction"] == 1.0
    assert not privacy_gate(copies)["passed"]


# ------------------------------------------------------------------------------------------------ gate
def test_gate_nan_handling_and_custom_thresholds():
    audit = {"mia_distance_auc": 0.55, "mia_density_auc": math.nan}
    th = {"mia_distance_auc": ("<=", 0.6), "mia_density_auc": ("<=", 0.6)}
    strict = privacy_gate(audit, th)
    assert not strict["passed"] and strict["failed"] == ["mia_density_auc"]
    lenient = privacy_gate(audit, th, strict=False)
    assert lenient["passed"] and lenient["skipped"] == ["mia_density_auc"]
    assert not privacy_gate(audit, {"mia_distance_auc": ("<=", 0.5)})["passed"]
    full = privacy_gate(audit)  # the missing metrics fail by default
    assert "near_copy_excess" in full["failed"]
    json.dumps(to_jsonable(full), allow_nan=False)
    with pytest.raises(DataError, match="operator"):
        privacy_gate(audit, {"mia_distance_auc": ("=<", 0.6)})


def test_validation():
    x = np.zeros((5, 12, 50), dtype=np.float32)
    with pytest.raises(DataError, match="different sizes"):
        privacy_audit(x, x, x[:, :, :40])
    with pytest.raises(DataError, match="at least 3"):
        privacy_audit(x, x[:2], x)
    bad = x.copy()
    bad[4, 0, 0] = np.nan
    with pytest.raises(DataError, match="record 4"):
        privacy_audit(x, x, bad)
