"""Tests of midtecg.evaluation.beats: conditioning, beat alignment, median beat, beat regularity."""

from __future__ import annotations

import numpy as np
import pytest

from midtecg.data.heart_rate import detect_r_peaks
from midtecg.evaluation.beats import (
    INDEPENDENT_LEADS,
    MEASURE_FS,
    beat_median,
    condition,
    record_beats,
    regularity,
)

try:
    from test_eval_templates import template_ecgs
except ImportError:  # tests/ imported as a package
    from tests.test_eval_templates import template_ecgs


def _true_r_s(tpl, x, fs, record=0):
    """R times (s) of the template beats inside the record, from the template's own RR intervals."""
    peaks = detect_r_peaks(x[record], fs)
    first = peaks[0] / fs  # within one sample of the first true R
    return first + np.concatenate([[0.0], np.cumsum(tpl.rr[record])])


def test_condition_resamples_to_500hz_and_keeps_the_ecg_band():
    t = np.arange(1000) / 100.0
    x = 2.0 + 0.5 * np.sin(2 * np.pi * 0.05 * t) + np.sin(2 * np.pi * 10 * t) + np.sin(2 * np.pi * 45 * t)
    y = condition(x[None, None, :], 100.0)[0, 0]
    assert y.shape == (5000,) and MEASURE_FS == 500
    tt = np.arange(5000) / 500.0
    core = slice(1000, 4000)  # away from the filter edges
    ten = np.sin(2 * np.pi * 10 * tt)
    gain = float(np.dot(y[core], ten[core]) / np.dot(ten[core], ten[core]))
    assert gain == pytest.approx(1.0, abs=0.05)  # 10 Hz passes
    residual = y[core] - gain * ten[core]
    assert np.abs(residual).max() < 0.25  # DC, 0.05 Hz wander and most of 45 Hz are gone
    same = condition(np.zeros((1, 2, 5000)), 500.0)
    assert same.shape == (1, 2, 5000)


def test_beat_median_matches_numpy():
    rng = np.random.default_rng(0)
    for n in (3, 4, 9, 10):
        a = rng.normal(size=(8, n, 50))
        np.testing.assert_allclose(beat_median(a), np.median(a, axis=1))


@pytest.mark.parametrize("fs", [100.0, 500.0])
def test_aligned_beats_sit_on_the_true_r_peaks_to_2ms(fs):
    x, tpl = template_ecgs(1, fs=fs, rr_jitter=0.08, seed=4)
    xc = condition(x[0][list(INDEPENDENT_LEADS)], fs)
    b = record_beats(xc, detect_r_peaks(x[0], fs), fs)
    assert b is not None and b.n >= 8
    truth = _true_r_s(tpl, x, fs)
    found = b.r / MEASURE_FS
    nearest = truth[np.abs(truth[None, :] - found[:, None]).argmin(axis=1)]
    offset = found - nearest
    # one common offset (where the median beat puts R), no 10 ms quantisation left between beats
    assert np.abs(offset - np.median(offset)).max() <= 2.5 / 1000
    assert b.median.shape == (len(INDEPENDENT_LEADS), b.beats.shape[-1]) and b.pre > 0
    assert b.rr_s == pytest.approx(np.median(np.diff(detect_r_peaks(x[0], fs))) / fs)


def test_alignment_repairs_r_peaks_placed_on_two_different_points():
    """A detector may put R on either of two similar peaks of a notched QRS: the wide passes realign them."""
    x, _ = template_ecgs(1, fs=100.0, seed=5)
    peaks = detect_r_peaks(x[0], 100.0)
    wrong = peaks + np.where(np.arange(peaks.size) % 2 == 0, 0, 3)  # every other beat 30 ms late
    xc = condition(x[0][list(INDEPENDENT_LEADS)], 100.0)
    good, bad = record_beats(xc, peaks, 100.0), record_beats(xc, wrong, 100.0)
    rr = np.diff(bad.r)
    assert np.abs(rr - np.median(rr)).max() <= 1  # all beats back on one fiducial point
    # the same median beat as with correct R peaks, up to where in the beat R is put (<= 30 ms)
    w = min(good.median.shape[1], bad.median.shape[1]) - 40
    best = max(
        np.corrcoef(good.median[:, 20 : 20 + w].ravel(), bad.median[:, 20 + k : 20 + k + w].ravel())[0, 1]
        for k in range(-20, 21)
    )
    assert best > 0.999


def test_too_few_beats_give_none():
    x, _ = template_ecgs(1, fs=100.0, seconds=2.5, seed=1)
    xc = condition(x[0][list(INDEPENDENT_LEADS)], 100.0)
    assert record_beats(xc, np.array([100, 185]), 100.0) is None
    assert record_beats(xc, np.array([], dtype=np.int64), 100.0) is None


def test_regularity_of_identical_and_of_amplitude_jittered_beats():
    x, tpl = template_ecgs(2, fs=100.0, seed=2)
    for rec in range(2):
        xc = condition(x[rec][list(INDEPENDENT_LEADS)], 100.0)
        b = record_beats(xc, detect_r_peaks(x[rec], 100.0), 100.0)
        corr, amp_cv = regularity(xc, b.r)
        assert corr > 0.999 and amp_cv < 0.005
    y, tpl = template_ecgs(3, fs=500.0, amp_jitter=0.12, seed=3)
    for rec in range(3):
        xc = condition(y[rec][list(INDEPENDENT_LEADS)], 500.0)
        b = record_beats(xc, detect_r_peaks(y[rec], 500.0), 500.0)
        corr, amp_cv = regularity(xc, b.r)
        true_r = _true_r_s(tpl, y, 500.0, rec)
        amps = tpl.amps[rec][(true_r >= 0.2) & (true_r <= 9.6)]  # the beats with a full -200..+400 ms window
        assert amp_cv == pytest.approx(amps.std() / amps.mean(), abs=0.02)
        assert corr > 0.99  # same shape, other amplitudes: Pearson r does not care
