"""Known-answer tests of midtecg.evaluation.spectra (Welch log-spectrum distance and its two halves)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation.spectra import log_psd, log_psd_distance, welch_psd_distance

try:
    from test_eval_helpers import ecg_like
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import ecg_like


def test_welch_identical_and_scaled():
    x = ecg_like(20, 10)
    same = welch_psd_distance(x, x.copy())
    assert same["mean"] == 0.0 and same["max"] == 0.0
    assert set(same["per_lead"]) == {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"}
    for metric in ("l1", "l2"):
        d = welch_psd_distance(x, 2.0 * x, metric=metric)
        assert d["mean"] == pytest.approx(20 * math.log10(2.0), abs=1e-3)  # 6.02 dB at every bin
        assert d["unit"] == "dB"
    assert same["mean_log_psd_real"].shape == (12, same["freqs"].size)
    assert same["freqs"][0] >= 0.5 and same["freqs"][-1] <= 50.0


def test_welch_noise_far_real_halves_near():
    x = ecg_like(60, 11)
    y = ecg_like(60, 12)
    noise = np.random.default_rng(1).normal(0, x.std(), x.shape).astype(np.float32)
    near = welch_psd_distance(x, y)["mean"]
    far = welch_psd_distance(x, noise)["mean"]
    assert near < 1.0 and far > 5.0


def test_log_psd_pieces_rebuild_the_welch_distance():
    x, y = ecg_like(6, 23), ecg_like(5, 24) * 0.5
    freqs, sx = log_psd(x, fs=100)
    _, sy = log_psd(y, fs=100)
    assert sx.shape == (6, 12, freqs.size) and freqs[-1] == pytest.approx(50.0)
    direct = welch_psd_distance(x, y, fs=100, metric="l2")
    pieces = log_psd_distance(sx.mean(0), sy.mean(0), freqs, metric="l2")
    assert pieces["mean"] == pytest.approx(direct["mean"], rel=1e-12)
    assert pieces["per_lead"] == pytest.approx(direct["per_lead"], rel=1e-12)


def test_validation():
    x = ecg_like(4, 13)
    with pytest.raises(DataError, match="same leads"):
        welch_psd_distance(x, x[:, :8])
    with pytest.raises(DataError, match="metric"):
        welch_psd_distance(x, x, metric="l3")
