"""Known-answer tests of midtecg.evaluation.fidelity (paired SNR / RMSE / PRD / |r|, inter-lead correlations)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation.fidelity import (
    DEFAULT_SNR_CAP_DB,
    breakdown,
    check_signals,
    correlation_matrices,
    interlead_correlation_error,
    mean_correlation_matrix_error,
    mean_matrix_error,
    paired_fidelity,
    to_jsonable,
)

try:
    from test_eval_helpers import ecg_like, real_ecgs
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import ecg_like, real_ecgs


@pytest.fixture(scope="module")
def ecgs():
    return ecg_like(16, 1)


# ------------------------------------------------------------------------------------------ identical
def test_identical_sets_give_zero_error(ecgs):
    out = paired_fidelity(ecgs, ecgs.copy())
    s = out["summary"]
    assert s["rmse"] == 0.0 and s["prd"] == 0.0 and s["abs_r"] == pytest.approx(1.0)
    # every SNR is +inf per record-lead, capped in summaries and counted
    assert np.isposinf(out["per_record_lead"]["snr_db"]).all()
    assert out["snr_n_inf"] == ecgs.shape[0] * 12
    assert s["snr_db"] == DEFAULT_SNR_CAP_DB
    assert np.all(out["per_record"]["snr_db"] == DEFAULT_SNR_CAP_DB)
    corr = interlead_correlation_error(ecgs, ecgs)
    assert corr["mean_abs_error"] == 0.0 and corr["max_abs_error"] == 0.0
    assert corr["between_means"]["mean_abs_error"] == 0.0
    json.dumps(to_jsonable(out), allow_nan=False)  # strict JSON despite the infinities


# ------------------------------------------------------------------------------- scaled / shifted copies
def test_half_amplitude_copy_hand_values(ecgs):
    out = paired_fidelity(ecgs, 0.5 * ecgs)
    s = out["summary"]
    assert s["snr_db"] == pytest.approx(10 * math.log10(1 / 0.25), abs=1e-9)  # 6.0206 dB
    assert s["snr_db"] == pytest.approx(6.0206, abs=1e-4)
    assert s["prd"] == pytest.approx(50.0, abs=1e-9)
    assert s["abs_r"] == pytest.approx(1.0, abs=1e-9)
    rms = np.sqrt(np.mean(ecgs.astype(np.float64) ** 2, axis=-1))
    np.testing.assert_allclose(out["per_record_lead"]["rmse"], 0.5 * rms, rtol=1e-6)
    for lead_value in out["per_lead"]["prd"].values():
        assert lead_value == pytest.approx(50.0)
    corr = interlead_correlation_error(ecgs, 0.5 * ecgs)
    assert corr["mean_abs_error"] == pytest.approx(0.0, abs=1e-12)
    assert corr["max_abs_error"] == pytest.approx(0.0, abs=1e-12)


def test_inverted_copy_hand_values(ecgs):
    s = paired_fidelity(ecgs, -ecgs)["summary"]
    assert s["snr_db"] == pytest.approx(10 * math.log10(1 / 4))  # error = 2x
    assert s["prd"] == pytest.approx(200.0)
    assert s["abs_r"] == pytest.approx(1.0)  # |r|, sign ignored


@pytest.mark.parametrize("c", [0.3, -1.25])
def test_offset_copy_rmse_equals_offset(ecgs, c):
    real = ecgs.astype(np.float64)
    out = paired_fidelity(real, real + c)
    np.testing.assert_allclose(out["per_record_lead"]["rmse"], abs(c), rtol=1e-12)
    assert out["summary"]["rmse"] == pytest.approx(abs(c))
    assert out["summary"]["abs_r"] == pytest.approx(1.0)
    energy = np.sum(real**2, axis=-1)
    expected_prd = 100 * np.sqrt(real.shape[-1] * c**2 / energy)
    np.testing.assert_allclose(out["per_record_lead"]["prd"], expected_prd, rtol=1e-10)
    assert interlead_correlation_error(real, real + c)["mean_abs_error"] == pytest.approx(0.0, abs=1e-12)


def test_tiny_hand_example():
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    y = np.array([[[1.0, 2.0, 3.0, 5.0]]])
    out = paired_fidelity(x, y, lead_names=["only"])
    assert out["per_record_lead"]["snr_db"][0, 0] == pytest.approx(10 * math.log10(30.0))
    assert out["per_record_lead"]["rmse"][0, 0] == pytest.approx(0.5)
    assert out["per_record_lead"]["prd"][0, 0] == pytest.approx(100 * math.sqrt(1 / 30))
    assert out["per_record_lead"]["abs_r"][0, 0] == pytest.approx(np.corrcoef(x[0, 0], y[0, 0])[0, 1])
    assert out["per_lead"]["snr_db"]["only"] == pytest.approx(10 * math.log10(30.0))


# ------------------------------------------------------------------------------------------ flat leads
def test_flat_leads_are_undefined_and_counted(ecgs):
    real = ecgs.copy()
    synth = 0.5 * ecgs
    real[0, 3] = 0.0  # flat real lead: SNR, PRD and r undefined
    synth[1, 4] = 0.7  # constant synthetic lead: r undefined, SNR/PRD fine
    out = paired_fidelity(real, synth)
    assert out["n_undefined"] == {"snr_db": 1, "rmse": 0, "prd": 1, "abs_r": 2}
    assert np.isnan(out["per_record_lead"]["snr_db"][0, 3])
    assert np.isnan(out["per_record_lead"]["abs_r"][1, 4])
    prd = out["per_record_lead"]["prd"].copy()
    prd[1, 4] = 50.0  # the constant synthetic lead has its own (defined) PRD
    assert np.nanmean(prd) == pytest.approx(50.0)
    assert out["summary"]["abs_r"] == pytest.approx(1.0)  # nanmean over the defined values
    cm = correlation_matrices(real)
    assert np.isnan(cm[0, 3]).all() and np.isnan(cm[0, :, 3]).all()
    corr = interlead_correlation_error(real, synth)
    assert corr["n_undefined_pairs"] == 11 + 11
    assert corr["n_undefined_records"] == 0
    assert math.isfinite(corr["mean_abs_error"])


def test_all_flat_record_gives_nan_not_crash():
    x = np.zeros((2, 12, 100), dtype=np.float32)
    x[1] = np.random.default_rng(0).normal(size=(12, 100))
    corr = interlead_correlation_error(x, x)
    assert corr["n_undefined_records"] == 1
    assert np.isnan(corr["per_record_mean"][0]) and corr["per_record_mean"][1] == 0.0
    assert corr["mean_abs_error"] == 0.0


# ------------------------------------------------------------------------------------ correlation errors
def test_interlead_error_hand_example():
    t = np.arange(1000) / 100.0
    s, c = np.sin(2 * np.pi * t), np.cos(2 * np.pi * t)  # 10 full periods: uncorrelated
    real = np.stack([s, s, s])[None]  # all pairs r = 1
    synth = np.stack([s, c, s])[None]  # pairs (0,1): 0, (0,2): 1, (1,2): 0
    out = interlead_correlation_error(real, synth, lead_names=["a", "b", "c"])
    assert out["mean_abs_error"] == pytest.approx(2 / 3, abs=1e-9)
    assert out["max_abs_error"] == pytest.approx(1.0, abs=1e-9)
    assert out["pair_error"][0, 1] == pytest.approx(1.0, abs=1e-9)
    assert out["pair_error"][0, 2] == pytest.approx(0.0, abs=1e-9)
    assert out["between_means"]["max_pair"] in (["a", "b"], ["b", "c"])


def test_between_means_unpaired_sets():
    a = ecg_like(10, 2)
    b = ecg_like(7, 3)
    out = mean_correlation_matrix_error(a, b)
    assert out["real_mean_matrix"].shape == (12, 12)
    assert 0.0 <= out["mean_abs_error"] <= out["max_abs_error"] <= 2.0
    same = mean_correlation_matrix_error(a, a[::-1])
    assert same["mean_abs_error"] == pytest.approx(0.0, abs=1e-12)
    pre = mean_matrix_error(correlation_matrices(a), correlation_matrices(b))
    assert pre["mean_abs_error"] == out["mean_abs_error"] and pre["max_pair"] == out["max_pair"]
    with pytest.raises(DataError, match="same C"):
        mean_matrix_error(correlation_matrices(a), correlation_matrices(b)[:, :8, :8])


def test_white_noise_scores_badly(ecgs):
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, ecgs.std(), ecgs.shape).astype(np.float32)
    good = ecgs + 0.02 * rng.normal(size=ecgs.shape).astype(np.float32)
    bad = paired_fidelity(ecgs, noise)["summary"]
    ok = paired_fidelity(ecgs, good)["summary"]
    assert bad["snr_db"] < 1.0 and ok["snr_db"] > 15.0
    assert bad["abs_r"] < 0.15 and ok["abs_r"] > 0.95
    assert bad["prd"] > 90.0 and ok["prd"] < 20.0
    assert bad["rmse"] > 3 * ok["rmse"]
    ce_bad = interlead_correlation_error(ecgs, noise)
    ce_ok = interlead_correlation_error(ecgs, good)
    assert ce_bad["mean_abs_error"] > 0.3 > 0.05 > ce_ok["mean_abs_error"]
    assert ce_bad["between_means"]["mean_abs_error"] > 0.2


def test_real_fixture_records():
    real = real_ecgs()
    out = paired_fidelity(real, real * 0.5)
    assert out["summary"]["prd"] == pytest.approx(50.0)
    # a different real record is a poor paired match
    other = paired_fidelity(real, np.roll(real, 1, axis=0))["summary"]
    assert other["abs_r"] < 0.6 and other["snr_db"] < 3.0
    corr = interlead_correlation_error(real, np.roll(real, 1, axis=0))
    assert corr["mean_abs_error"] > 0.1


# ----------------------------------------------------------------------------------------- breakdown
def test_breakdown_single_multi_and_multihot():
    vals = np.array([1.0, 2.0, 3.0, np.nan, 5.0])
    single = breakdown(vals, ["a", "b", "a", "a", None])
    assert single["a"]["n"] == 3 and single["a"]["n_valid"] == 2 and single["a"]["mean"] == pytest.approx(2.0)
    assert single["b"]["mean"] == 2.0 and "None" not in single
    multi = breakdown({"snr": vals}, [["NORM"], ["MI", "STTC"], ["MI"], [], ["NORM", "MI"]])
    assert multi["MI"]["n"] == 3 and multi["MI"]["snr"]["mean"] == pytest.approx((2 + 3 + 5) / 3)
    assert multi["NORM"]["snr"]["mean"] == pytest.approx(3.0)
    assert multi["STTC"]["n"] == 1
    hot = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]])
    mh = breakdown(vals, hot, class_names=["NORM", "MI"])
    assert mh["NORM"]["n"] == 3 and mh["NORM"]["mean"] == pytest.approx(3.0)
    assert mh["MI"]["mean"] == pytest.approx(2.5)
    sex = breakdown(vals, np.array([0.0, 1.0, 1.0, np.nan, 0.0]))
    assert set(sex) == {"0.0", "1.0"} and sex["0.0"]["mean"] == pytest.approx(3.0)
    assert breakdown(vals, ["a", "b", "a", "a", "c"], min_count=2).keys() == {"a"}


def test_breakdown_dataframe_and_fidelity_output(ecgs):
    import pandas as pd

    out = paired_fidelity(ecgs, 0.5 * ecgs)
    labels = pd.DataFrame({"NORM": [1] * 8 + [0] * 8, "MI": [0] * 4 + [1] * 12})
    res = breakdown(out["per_record"], labels)
    assert res["NORM"]["n"] == 8 and res["MI"]["n"] == 12
    assert res["MI"]["prd"]["mean"] == pytest.approx(50.0)
    json.dumps(to_jsonable(res), allow_nan=False)


# ----------------------------------------------------------------------------------------- validation
def test_validation_errors(ecgs):
    with pytest.raises(DataError, match="equal shapes"):
        paired_fidelity(ecgs, ecgs[:-1])
    bad = ecgs.copy()
    bad[3, 2, 10] = np.nan
    with pytest.raises(DataError, match="record 3"):
        paired_fidelity(ecgs, bad)
    with pytest.raises(DataError, match="3-D"):
        paired_fidelity(ecgs[0], ecgs[0])
    with pytest.raises(DataError, match="lead_names"):
        paired_fidelity(ecgs, ecgs, lead_names=["I"])
    with pytest.raises(ValueError):  # DataError is a ValueError
        check_signals(np.array(["a", "b"]))
    with pytest.raises(DataError, match="record 0: NaN or infinite"):
        interlead_correlation_error(ecgs, np.where(ecgs > 0, np.inf, ecgs))
