"""Tests of midtecg.evaluation.ecg_measures: the per-record table on known beats, garbage and real records,
its cache and its workers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import butter, sosfiltfilt

import midtecg.evaluation.ecg_measures as em
from midtecg.data.errors import DataError
from midtecg.evaluation.ecg_measures import INTERVAL_KEYS, RHYTHM_KEYS, measure_ecgs

try:
    from test_eval_helpers import real_ecgs_both_rates
    from test_eval_templates import template_ecgs
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import real_ecgs_both_rates
    from tests.test_eval_templates import template_ecgs

INTERVAL_MS = ("pr_ms", "qrs_ms", "qt_ms", "qtc_ms")


def _garbage(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = np.arange(1000) / 100.0
    sos = butter(4, 15.0, fs=100.0, output="sos")
    return {
        "white noise": rng.normal(0.0, 0.2, (4, 12, 1000)),
        "low-passed noise": sosfiltfilt(sos, rng.normal(0.0, 0.3, (4, 12, 1000)), axis=-1),
        "sine 1.2 Hz": np.sin(2 * np.pi * 1.2 * t + rng.uniform(0, 6, (4, 12, 1))) * rng.uniform(0.2, 1, (4, 12, 1)),
        "flat": np.zeros((2, 12, 1000)) + rng.normal(0, 1, (2, 12, 1)),
    }


def test_known_rhythm_of_template_records():
    x, tpl = template_ecgs(4, fs=100.0, rr_jitter=0.1, seed=11)
    m = measure_ecgs(x, 100.0, cache_dir=False)
    true_cv = np.array([r.std() / r.mean() for r in tpl.rr])
    np.testing.assert_allclose(m["rr_cv"], true_cv, atol=0.006)  # 10 ms R-peak quantisation at 100 Hz
    # a beat cut by the record's end can be placed ~30 ms early, which can move an even-count median
    np.testing.assert_allclose(m["heart_rate"], [60.0 / np.median(r) for r in tpl.rr], rtol=0.03)
    np.testing.assert_array_equal(m["n_beats"], [len(r) + 1 for r in tpl.rr])
    assert (m["beat_corr"] > 0.99).all() and (m["p_wave_fraction"] == 1.0).all()
    assert not m["failed"].any() and list(m["errors"]) == [""] * 4
    np.testing.assert_allclose(m["qtc_ms"], m["qt_ms"] / np.sqrt(m["rr_ms"] / 1000.0))
    regular = measure_ecgs(template_ecgs(2, fs=100.0, seed=1)[0], 100.0, cache_dir=False)
    assert (regular["rr_cv"] < 0.01).all()


@pytest.mark.parametrize("kind", list(_garbage()))
def test_garbage_fails_and_never_gets_intervals(kind):
    m = measure_ecgs(_garbage()[kind].astype(np.float32), 100.0, cache_dir=False)
    assert m["failed"].all(), list(m["errors"])
    assert all(m["errors"])
    for k in INTERVAL_MS:
        assert np.isnan(m[k]).all(), k
    assert np.isnan(m["p_wave_fraction"]).all()
    if "noise" in kind:  # what is still measured is far from any ECG: beats that share no waveform
        assert (m["beat_corr"] < 0.5).all()


def test_real_records_are_measured_alike_from_100hz_and_500hz_files():
    x100, x500, codes = real_ecgs_both_rates()
    a = measure_ecgs(x100, 100.0, cache_dir=False)
    b = measure_ecgs(x500, 500.0, cache_dir=False)
    sinus = np.array(["SR" in c for c in codes])
    assert a["failed"].mean() <= 0.1
    assert np.nanmedian(a["rr_cv"][sinus]) < 0.06 and np.nanmedian(a["beat_corr"]) > 0.98
    assert np.nanmedian(a["p_wave_fraction"][sinus]) == 1.0
    for k, tol in (("rr_cv", 0.01), ("beat_corr", 0.01), ("r_amp_cv", 0.01), ("p_wave_fraction", 0.05)):
        assert np.nanmedian(np.abs(a[k] - b[k])) <= tol, k


def test_measurements_are_cached(tmp_path, monkeypatch):
    x, _ = template_ecgs(3, fs=100.0, seed=2)
    first = measure_ecgs(x, 100.0, cache_dir=tmp_path)
    monkeypatch.setattr(em, "_compute", lambda *a, **k: pytest.fail("measured again"))
    second = measure_ecgs(x, 100.0, cache_dir=tmp_path)
    assert set(second) == set(INTERVAL_KEYS + RHYTHM_KEYS + ("n_beats", "failed", "errors"))
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])


def test_bad_input_is_refused():
    with pytest.raises(DataError, match="3-D"):
        measure_ecgs(np.zeros((12, 1000)), 100.0, cache_dir=False)
    with pytest.raises(DataError, match="50 Hz"):
        measure_ecgs(np.zeros((1, 12, 1000)), 40.0, cache_dir=False)
    with pytest.raises(DataError, match="too short"):
        measure_ecgs(np.zeros((1, 12, 150)), 100.0, cache_dir=False)
    with pytest.raises(DataError, match="12 leads"):
        measure_ecgs(np.zeros((1, 8, 1000)), 100.0, cache_dir=False)
    with pytest.raises(DataError, match="record 1"):
        measure_ecgs(np.stack([np.zeros((12, 1000)), np.full((12, 1000), np.inf)]), 100.0, cache_dir=False)
    with pytest.raises(DataError, match="WFDB lead indices"):
        measure_ecgs(np.zeros((1, 12, 1000)), 100.0, leads=[12], cache_dir=False)


@pytest.mark.slow
def test_two_workers_give_the_same_result():
    x, _ = template_ecgs(80, fs=100.0, rr_jitter=0.05, seed=5)  # two chunks
    one = measure_ecgs(x, 100.0, cache_dir=False)
    two = measure_ecgs(x, 100.0, n_jobs=2, cache_dir=False)
    for k in one:
        np.testing.assert_array_equal(one[k], two[k])
