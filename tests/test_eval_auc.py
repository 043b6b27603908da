"""Macro ROC-AUC and its bootstrap interval, against sklearn's roc_auc_score."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from midtecg.evaluation.auc import _weighted_auc, bootstrap_auc_ci, macro_auc


def test_macro_auc_matches_sklearn_and_reports_dropped_classes():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 5)) < 0.3).astype(int)
    y[:, 3] = 0  # no positives
    y[:, 4] = 1  # no negatives
    s = np.round(rng.random((300, 5)) + 0.4 * y, 1)  # rounding creates many ties
    auc, dropped = macro_auc(y, s, return_dropped=True)
    reference = np.mean([roc_auc_score(y[:, c], s[:, c]) for c in range(3)])
    assert auc == pytest.approx(reference, abs=1e-12)
    assert dropped == [3, 4]
    _, named = macro_auc(y, s, class_names=list("ABCDE"), return_dropped=True)
    assert named == ["D", "E"]
    # without ties too, and 1-D input
    s2 = rng.random(300) + 0.5 * y[:, 0]
    assert macro_auc(y[:, 0], s2) == pytest.approx(roc_auc_score(y[:, 0], s2), abs=1e-12)
    assert np.isnan(macro_auc(np.zeros((5, 2)), rng.random((5, 2))))
    with pytest.raises(ValueError, match="same shape"):
        macro_auc(y, s[:, :2])


def test_weighted_auc_equals_auc_of_the_resampled_set():
    rng = np.random.default_rng(1)
    y = rng.random((80, 3)) < 0.4
    s = np.round(rng.random((80, 3)), 1)
    idx = rng.integers(0, 80, size=80)
    counts = np.bincount(idx, minlength=80)[None]
    got = _weighted_auc(y, s, counts)[0]
    ref = [roc_auc_score(y[idx, c], s[idx, c]) for c in range(3)]
    np.testing.assert_allclose(got, ref, atol=1e-12)


def test_bootstrap_ci_contains_estimate_and_narrows_with_n():
    rng = np.random.default_rng(0)

    def data(n):
        y = (rng.random((n, 4)) < 0.3).astype(int)
        return y, rng.random((n, 4)) + 0.6 * y

    widths = []
    for n in (100, 1600):
        y, s = data(n)
        r = bootstrap_auc_ci(y, s, n_boot=300, seed=0)
        assert r["auc"] == pytest.approx(macro_auc(y, s))
        assert r["ci_low"] <= r["auc"] <= r["ci_high"]
        assert r["n"] == n and r["n_boot"] == 300 and r["dropped"] == []
        widths.append(r["ci_high"] - r["ci_low"])
        json.dumps(r)
    assert widths[1] < 0.5 * widths[0]  # ~ 1/sqrt(16) in theory
    # seeded: reproducible; a wider alpha gives a narrower interval
    y, s = data(200)
    a = bootstrap_auc_ci(y, s, n_boot=200, seed=3)
    assert a == bootstrap_auc_ci(y, s, n_boot=200, seed=3)
    b = bootstrap_auc_ci(y, s, n_boot=200, seed=3, alpha=0.5)
    assert b["ci_high"] - b["ci_low"] < a["ci_high"] - a["ci_low"]
