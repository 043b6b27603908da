"""Tests of midtecg.evaluation.delineation on analytic beats of known boundaries and on garbage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from midtecg.data.heart_rate import detect_r_peaks
from midtecg.evaluation.beats import INDEPENDENT_LEADS, condition, record_beats
from midtecg.evaluation.delineation import Fiducials, delineate_beats

try:
    from test_eval_templates import template_ecgs
except ImportError:  # tests/ imported as a package
    from tests.test_eval_templates import template_ecgs

LEADS = list(range(len(INDEPENDENT_LEADS)))


def _fiducials(x: np.ndarray, fs: float) -> Fiducials:
    xc = condition(x[list(INDEPENDENT_LEADS)], fs)
    b = record_beats(xc, detect_r_peaks(x, fs), fs)
    assert b is not None
    return delineate_beats(b, LEADS)


def _intervals(fs: float, **template) -> tuple[dict, object]:
    x, tpl = template_ecgs(1, fs=fs, seed=7, **template)
    f = _fiducials(x[0], fs)
    return {
        "pr": f.interval_ms("p_on", "qrs_on"),
        "qrs": f.interval_ms("qrs_on", "qrs_off"),
        "qt": f.interval_ms("qrs_on", "t_end"),
        "p_fraction": f.p_fraction,
        "error": f.error,
    }, tpl


CASES = [
    {},
    {"pr_ms": 200.0, "qrs_ms": 120.0, "qt_ms": 440.0},
    {"pr_ms": 130.0, "qrs_ms": 80.0, "qt_ms": 340.0, "rr_s": 0.6},
]


@pytest.mark.parametrize("fs", [100.0, 500.0])
@pytest.mark.parametrize("case", CASES)
def test_known_intervals_are_recovered_within_two_100hz_samples(fs, case):
    got, tpl = _intervals(fs, **case)
    assert got["error"] == "" and got["p_fraction"] == 1.0
    # documented biases (clinical.py): QRS wide by the velocity smoothing, and at 100 Hz by the band limit of
    # the recording for this sharp analytic QRS; PR short (tangent onset of a smooth P wave)
    assert abs(got["qt"] - tpl.qt_ms) <= 10.0
    assert 0.0 <= got["qrs"] - tpl.qrs_ms <= (15.0 if fs == 500 else 25.0)
    assert -20.0 <= got["pr"] - tpl.pr_ms <= 0.0


@pytest.mark.parametrize("fs", [100.0, 500.0])
@pytest.mark.parametrize("name,change", [("pr", 40.0), ("qrs", 20.0), ("qt", 60.0)])
def test_interval_differences_are_tracked(fs, name, change):
    """Biases cancel between two beats: a longer PR, QRS or QT is measured longer by about the same amount
    (QRS at 100 Hz: compressed by the band limit for this sharp analytic QRS)."""
    base, tpl = _intervals(fs)
    longer, _ = _intervals(fs, **{f"{name}_ms": getattr(tpl, f"{name}_ms") + change})
    tol = 10.0 if (name, fs) == ("qrs", 100.0) else 4.0
    assert longer[name] - base[name] == pytest.approx(change, abs=tol)


def test_100hz_and_500hz_recordings_of_one_beat_agree():
    a, _ = _intervals(100.0, rr_jitter=0.05)
    b, _ = _intervals(500.0, rr_jitter=0.05)
    for k in ("pr", "qrs", "qt"):
        assert abs(a[k] - b[k]) <= 10.0, k


def test_no_p_wave_and_p_wave_in_few_beats_give_no_pr():
    none, _ = _intervals(500.0, p_present=0.0)
    assert math.isnan(none["pr"]) and none["p_fraction"] == 0.0 and none["error"] == ""
    assert none["qrs"] > 0 and none["qt"] > 0
    few, _ = _intervals(500.0, p_present=0.3)
    assert math.isnan(few["pr"]) and few["p_fraction"] < 0.5
    noisy, _ = _intervals(100.0, noise_mv=0.02)
    assert noisy["p_fraction"] >= 0.8 and not math.isnan(noisy["pr"])


def test_smooth_or_flat_beats_have_no_qrs():
    t = np.arange(1000) / 100.0
    sine = np.tile(np.sin(2 * np.pi * 1.1 * t), (12, 1))
    peaks = np.flatnonzero((sine[0, 1:-1] > sine[0, :-2]) & (sine[0, 1:-1] >= sine[0, 2:])) + 1
    b = record_beats(condition(sine[list(INDEPENDENT_LEADS)], 100.0), peaks, 100.0)
    f = delineate_beats(b, LEADS)
    assert f.error and math.isnan(f.qrs_on) and math.isnan(f.t_end)
    flat = record_beats(np.zeros((8, 5000)), np.arange(50, 1000, 85), 100.0)
    assert delineate_beats(flat, LEADS).error == "flat median beat"
