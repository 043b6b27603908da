"""Tests of midtecg.evaluation.clinical (neurokit2 delineation, interval comparisons, HR error, groups)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation.clinical import (
    INTERVALS,
    age_bins,
    compare_by_group,
    compare_intervals,
    delineate,
    heart_rate_error,
    interval_stats,
    interval_stats_by_group,
    sex_groups,
)
from midtecg.evaluation.fidelity import to_jsonable

try:
    from test_eval_helpers import ecg_like, real_ecgs
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import ecg_like, real_ecgs


@pytest.fixture(scope="module")
def simulated():
    x, rates = ecg_like(12, 21, return_rates=True)
    return x, rates, delineate(x)


@pytest.fixture(scope="module")
def noise_table():
    noise = np.random.default_rng(3).normal(0.0, 0.2, (16, 12, 1000)).astype(np.float32)
    return delineate(noise)


def test_simulated_ecgs_measured_heart_rate_and_intervals(simulated):
    x, rates, d = simulated
    assert d["heart_rate"].shape == (12,) and d["failed"].dtype == bool
    assert d["failure_rate"] <= 1 / 12
    err = heart_rate_error(rates, d)
    assert err["median_abs_error"] < 2.0 and err["within_5bpm"] >= 0.75
    assert np.nanmedian(d["qt_ms"]) == pytest.approx(np.nanmedian(d["qt_ms"]))  # finite
    for key in ("qrs_ms", "qt_ms", "qtc_ms"):
        assert np.mean(np.isfinite(d[key])) >= 0.75, key
    # QTc by Bazett, from QT and the median RR
    ok = np.isfinite(d["qt_ms"]) & np.isfinite(d["qtc_ms"])
    np.testing.assert_allclose(d["qtc_ms"][ok], d["qt_ms"][ok] / np.sqrt(d["rr_ms"][ok] / 1000.0))
    np.testing.assert_allclose(d["heart_rate"], 60000.0 / d["rr_ms"])
    assert d["resolution_ms"] == 10.0 and "10 ms" in d["note"] and d["lead"] == "II"
    json.dumps(to_jsonable(d), allow_nan=False)


def test_white_noise_does_not_crash_and_scores_badly(simulated, noise_table):
    _, _, d = simulated
    w = noise_table
    assert w["heart_rate"].shape == (16,)
    assert w["failure_rate"] > d["failure_rate"]
    assert any(e for e in w["errors"])  # failures are explained
    cmp_bad = compare_intervals(d, w)
    other = delineate(ecg_like(12, 22))
    cmp_ok = compare_intervals(d, other)
    assert cmp_bad["failure_rate_diff"] > 0.1
    worse = 0
    for k in INTERVALS:
        bad, ok = cmp_bad["intervals"][k], cmp_ok["intervals"][k]
        # every interval is either missing for noise or distributed far from the ECGs
        assert math.isnan(bad["ks_statistic"]) or bad["ks_statistic"] > ok["ks_statistic"] or bad["ks_statistic"] > 0.4, k
        worse += (not math.isnan(bad["wasserstein"])) and bad["wasserstein"] > ok["wasserstein"]
    assert worse >= 3


def test_flat_and_short_signals():
    x = np.zeros((2, 12, 1000), dtype=np.float32)
    d = delineate(x)
    assert d["failed"].all() and d["errors"] == ["flat signal", "flat signal"]
    assert np.isnan(d["heart_rate"]).all()
    with pytest.raises(DataError, match="too short"):
        delineate(np.ones((1, 12, 100)), fs=100)
    with pytest.raises(DataError, match="record 0"):
        delineate(np.full((1, 12, 1000), np.nan))
    with pytest.raises(ValueError):
        delineate(np.ones((1, 12, 1000)), lead="V9")


def test_single_lead_input_and_upsampling(simulated):
    x, rates, d = simulated
    one = delineate(x[:4, 1, :], fs=100)
    np.testing.assert_allclose(one["heart_rate"], d["heart_rate"][:4], equal_nan=True)
    up = delineate(x[:4], fs=100, upsample=5)
    assert up["upsample"] == 5 and up["resolution_ms"] == 10.0
    assert np.sum(np.abs(up["heart_rate"] - rates[:4]) < 0.1 * rates[:4]) >= 3


@pytest.mark.slow
def test_two_workers_give_the_same_result(simulated):
    x, _, d = simulated
    par = delineate(x, n_jobs=2)
    for k in INTERVALS + ("n_beats", "failed"):
        np.testing.assert_array_equal(par[k], d[k])


def test_real_fixture_records():
    real = real_ecgs(16)
    d = delineate(real)
    assert d["failure_rate"] <= 0.2
    assert 45 < np.nanmedian(d["heart_rate"]) < 110
    assert 300 < np.nanmedian(d["qt_ms"]) < 550


# ----------------------------------------------------------------------------- comparisons (no neurokit2)
def _table(rng, n, shift=0.0):
    t = {"heart_rate": rng.normal(70, 10, n), "pr_ms": rng.normal(160, 20, n) + shift,
         "qrs_ms": rng.normal(95, 10, n) + shift, "qt_ms": rng.normal(400, 30, n) + shift}
    t["qtc_ms"] = t["qt_ms"] / np.sqrt(60.0 / t["heart_rate"])
    t["failed"] = np.zeros(n, dtype=bool)
    return t


def test_compare_intervals_hand_values():
    rng = np.random.default_rng(0)
    real = _table(rng, 200)
    synth = {k: (v + 10.0 if k in ("pr_ms", "qrs_ms", "qt_ms") else v.copy()) for k, v in real.items()}
    synth["failed"] = real["failed"].copy()
    synth["failed"][:20] = True
    synth["pr_ms"][:20] = np.nan
    out = compare_intervals(real, real)
    for k in INTERVALS:
        assert out["intervals"][k]["wasserstein"] == 0.0 and out["intervals"][k]["ks_statistic"] == 0.0
    out = compare_intervals(real, synth)
    assert out["intervals"]["qt_ms"]["wasserstein"] == pytest.approx(10.0)  # a pure shift
    assert out["intervals"]["qrs_ms"]["synth_mean"] - out["intervals"]["qrs_ms"]["real_mean"] == pytest.approx(10.0)
    assert out["intervals"]["heart_rate"]["wasserstein"] == 0.0
    assert out["intervals"]["pr_ms"]["synth_missing_rate"] == pytest.approx(0.1)
    assert out["intervals"]["pr_ms"]["n_synth"] == 180
    assert out["failure_rate_synth"] == pytest.approx(0.1) and out["failure_rate_diff"] == pytest.approx(0.1)
    empty = dict(real)
    empty["qt_ms"] = np.full(200, np.nan)
    assert math.isnan(compare_intervals(real, empty)["intervals"]["qt_ms"]["wasserstein"])


def test_heart_rate_error_hand_values():
    req = np.array([60.0, 70.0, 80.0, 90.0, 100.0])
    mea = np.array([62.0, 66.0, np.nan, 90.0, 110.0])
    out = heart_rate_error(req, mea)
    assert out["n"] == 4 and out["n_missing"] == 1
    assert out["mae"] == pytest.approx((2 + 4 + 0 + 10) / 4)
    assert out["bias"] == pytest.approx((2 - 4 + 0 + 10) / 4)
    assert out["rmse"] == pytest.approx(math.sqrt((4 + 16 + 0 + 100) / 4))
    assert out["within_5bpm"] == pytest.approx(0.75)
    with pytest.raises(DataError):
        heart_rate_error(req, mea[:3])


def test_age_and_sex_groups():
    bins = age_bins([5, 12, 16.9, 17, 40, 54, 73.9, 74, 89, 300, np.nan, -1])
    assert list(bins) == ["<12", "12-16", "12-16", "17-33", "34-53", "54-73", "54-73", ">=74", ">=74", ">=74",
                          None, None]
    assert list(sex_groups([0, 1, np.nan, 2])) == ["male", "female", None, None]


def test_interval_stats_by_group_and_compare_by_group():
    rng = np.random.default_rng(1)
    real = _table(rng, 100)
    synth = _table(rng, 80, shift=20.0)
    groups_r = sex_groups(rng.integers(0, 2, 100))
    groups_s = sex_groups(rng.integers(0, 2, 80))
    stats_all = interval_stats(real)
    assert stats_all["n"] == 100 and stats_all["failure_rate"] == 0.0
    by = interval_stats_by_group(real, groups_r)
    assert set(by) == {"male", "female"}
    assert by["male"]["n"] + by["female"]["n"] == 100
    assert by["male"]["qt_ms"]["mean"] == pytest.approx(np.mean(real["qt_ms"][groups_r == "male"]))
    cmp = compare_by_group(real, groups_r, synth, groups_s)
    assert set(cmp) == {"male", "female"}
    assert cmp["female"]["intervals"]["qt_ms"]["wasserstein"] > 10.0
    ages = interval_stats_by_group(real, age_bins(rng.uniform(20, 90, 100)))
    assert set(ages) <= {"17-33", "34-53", "54-73", ">=74"}
    json.dumps(to_jsonable(cmp), allow_nan=False)
