"""Tests of midtecg.evaluation.clinical (delineation of whole sets, interval comparisons with floors, heart-rate
error, groups). The median-beat algorithm itself is tested in test_eval_delineation.py."""

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
    from test_eval_helpers import ecg_like, real_ecgs_both_rates
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import ecg_like, real_ecgs_both_rates


@pytest.fixture(scope="module")
def simulated():
    x, rates = ecg_like(12, 21, return_rates=True)
    return x, rates, delineate(x, cache_dir=False)


@pytest.fixture(scope="module")
def noise_table():
    noise = np.random.default_rng(3).normal(0.0, 0.2, (16, 12, 1000)).astype(np.float32)
    return delineate(noise, cache_dir=False)


def test_simulated_ecgs_measured_heart_rate_and_intervals(simulated):
    _, rates, d = simulated
    assert d["heart_rate"].shape == (12,) and d["failed"].dtype == bool
    assert d["failure_rate"] <= 1 / 12
    err = heart_rate_error(rates, d)
    assert err["median_abs_error"] < 2.0 and err["within_5bpm"] >= 0.75
    for key in ("pr_ms", "qrs_ms", "qt_ms", "qtc_ms"):
        assert np.mean(np.isfinite(d[key])) >= 0.75, key
    # QTc by Bazett, from QT and the median RR
    ok = np.isfinite(d["qt_ms"]) & np.isfinite(d["qtc_ms"])
    np.testing.assert_allclose(d["qtc_ms"][ok], d["qt_ms"][ok] / np.sqrt(d["rr_ms"][ok] / 1000.0))
    np.testing.assert_allclose(d["heart_rate"], 60000.0 / d["rr_ms"])
    assert d["resolution_ms"] == 2.0 and d["lead"] == "global" and "I, II, V1-V6" in d["note"]
    assert isinstance(d["errors"], list) and len(d["errors"]) == 12
    json.dumps(to_jsonable(d), allow_nan=False)


def test_white_noise_does_not_crash_and_fails(simulated, noise_table):
    _, _, d = simulated
    w = noise_table
    assert w["heart_rate"].shape == (16,)
    assert w["failure_rate"] == 1.0 and all("no waveform" in e for e in w["errors"])
    for k in ("pr_ms", "qrs_ms", "qt_ms", "qtc_ms"):
        assert np.isnan(w[k]).all(), k
    cmp_bad = compare_intervals(d, w, min_records=5)
    cmp_ok = compare_intervals(d, delineate(ecg_like(12, 22), cache_dir=False), min_records=5)
    assert cmp_bad["failure_rate_diff"] > 0.9
    for k in ("pr_ms", "qrs_ms", "qt_ms", "qtc_ms"):
        bad, ok = cmp_bad["intervals"][k], cmp_ok["intervals"][k]
        assert math.isnan(bad["wasserstein"]) and bad["synth_missing_rate"] == 1.0
        # unmeasurable records count as values beyond every measured one: as far as can be
        assert bad["ks_with_missing"] > 0.9 and bad["ks_with_missing"] > ok["ks_with_missing"] + 0.3, k


def test_flat_and_bad_input():
    d = delineate(np.zeros((2, 12, 1000), dtype=np.float32), cache_dir=False)
    assert d["failed"].all() and d["errors"] == ["flat signal", "flat signal"]
    assert np.isnan(d["heart_rate"]).all()
    with pytest.raises(DataError, match="too short"):
        delineate(np.ones((1, 12, 100)), fs=100, cache_dir=False)
    with pytest.raises(DataError, match="record 0"):
        delineate(np.full((1, 12, 1000), np.nan), cache_dir=False)
    with pytest.raises(DataError, match="12 leads"):
        delineate(np.ones((1, 8, 1000)), cache_dir=False)
    with pytest.raises(ValueError, match="V9"):
        delineate(np.ones((1, 12, 1000)), lead="V9", cache_dir=False)


def test_one_lead_delineation():
    x, _, _ = real_ecgs_both_rates()
    d = delineate(x[:12], fs=100, cache_dir=False)
    one = delineate(x[:12], fs=100, lead="V5", cache_dir=False)
    assert one["lead"] == "V5" and "lead V5" in one["note"]
    np.testing.assert_allclose(one["heart_rate"], d["heart_rate"])  # R peaks: all leads either way
    assert np.isfinite(one["qt_ms"]).mean() >= 0.75
    assert np.nanmedian(np.abs(one["qt_ms"] - d["qt_ms"])) < 30
    assert delineate(x[:2], lead=1, cache_dir=False)["lead"] == "II"


def test_real_fixture_norm_records_are_physiological_and_agree_with_500hz():
    x100, x500, codes = real_ecgs_both_rates()
    norm = np.array(["NORM" in c for c in codes])
    a = delineate(x100, 100, cache_dir=False)
    b = delineate(x500, 500, cache_dir=False)
    assert a["failure_rate"] <= 0.1 and b["failure_rate"] <= 0.1
    for t in (a, b):
        assert 120 <= np.nanmedian(t["pr_ms"][norm]) <= 200
        assert 70 <= np.nanmedian(t["qrs_ms"][norm]) <= 115
        assert 360 <= np.nanmedian(t["qtc_ms"][norm]) <= 460
        assert 45 <= np.nanmedian(t["heart_rate"]) <= 100
    for k, mae in (("heart_rate", 1.0), ("pr_ms", 8.0), ("qrs_ms", 8.0), ("qt_ms", 8.0), ("qtc_ms", 10.0)):
        diff = np.abs(a[k] - b[k])
        assert np.nanmean(diff) <= mae, (k, np.nanmean(diff))
        assert np.isfinite(diff).mean() >= 0.8, k


def test_compare_intervals_floor_calls_real_records_close_and_a_shifted_set_far():
    x100, _, _ = real_ecgs_both_rates()
    d = delineate(x100, 100, cache_dir=False)
    real = {k: v[:18] for k, v in d.items() if isinstance(v, np.ndarray)}
    other = {k: v[18:] for k, v in d.items() if isinstance(v, np.ndarray)}
    cmp = compare_intervals(real, other, min_records=8)
    for k in INTERVALS:
        e = cmp["intervals"][k]
        assert e["floor_splits"] == 20 and e["floor_n_ref"] == 9 and e["floor_n_cmp"] == 9
        assert e["ks_synth_mean"] <= e["ks_floor_mean"] + 3 * e["ks_floor_std"], k
    shifted = {**other, "qt_ms": other["qt_ms"] + 80.0, "qtc_ms": other["qtc_ms"] + 80.0}
    far = compare_intervals(real, shifted, min_records=8)["intervals"]["qtc_ms"]
    assert far["ks_synth_mean"] > far["ks_floor_mean"] + 3 * far["ks_floor_std"]


# ----------------------------------------------------------------------------- comparisons of tables
def _table(rng, n, shift=0.0):
    t = {
        "heart_rate": rng.normal(70, 10, n),
        "pr_ms": rng.normal(160, 20, n) + shift,
        "qrs_ms": rng.normal(95, 10, n) + shift,
        "qt_ms": rng.normal(400, 30, n) + shift,
    }
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
    assert list(bins) == [
        "<12",
        "12-16",
        "12-16",
        "17-33",
        "34-53",
        "54-73",
        "54-73",
        ">=74",
        ">=74",
        ">=74",
        None,
        None,
    ]
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
