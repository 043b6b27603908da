"""Multi-lead R-peak detection and heart rate, vectorised over records.

Detector (Pan-Tompkins style, all 12 leads combined; the same at any sampling rate >= 50 Hz):

1. Each lead is band-passed 5-15 Hz (2nd-order Butterworth, zero phase), the band where QRS energy
   dominates P and T waves and baseline wander.
2. QRS energy: the squared band-passed leads are summed over leads, each lead first divided by its own
   robust amplitude (the 99th percentile of its absolute band-passed value) so that one lead with a huge or
   noisy signal does not decide alone, then smoothed with a centred 100 ms moving average (the envelope).
3. Peaks of the envelope above ``0.3 x`` its 98th percentile, at least 250 ms apart (refractory period,
   up to 240 bpm), are QRS candidates. A candidate less than 360 ms after the previous one with less than
   half its envelope height is taken for a T wave and dropped (and conversely a P wave is replaced by the
   following QRS twice its height), as in Pan-Tompkins. Where two consecutive beats are more than 1.6 median
   RR intervals apart, the gap is searched again with half the threshold (search-back for a missed beat).
4. Each R peak is placed at the maximum of the lead-summed absolute band-passed signal within 50 ms of the
   envelope peak.

Heart rate = 60 / (median RR interval in s) by default (robust to one missed or extra beat), or 60 / mean
RR with ``statistic="mean"``. It is NaN when it cannot be told: NaN or inf samples, a flat record, fewer
than ``min_beats`` beats, or a rate outside 20-300 bpm.

Work is done in chunks of records, so memory stays bounded for the full PTB-XL.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import butter, find_peaks, sosfiltfilt

from midtecg.data.demographics import HEART_RATE_RANGE_BPM

__all__ = ["detect_r_peaks", "heart_rate_bpm", "rr_heart_rate"]

BAND_HZ = (5.0, 15.0)
ENVELOPE_S = 0.10
REFRACTORY_S = 0.25
THRESHOLD = 0.3
T_WAVE_S = 0.36
T_WAVE_RATIO = 0.5
SEARCHBACK_RR = 1.6
RATE_RANGE_BPM = HEART_RATE_RANGE_BPM  # measured rates outside are failed detections, as requests outside are refused
_CHUNK = 256


def _as_batch(signal) -> tuple[np.ndarray, bool]:
    x = np.asarray(signal)
    if x.ndim == 1:
        return x[None, None, :], True
    if x.ndim == 2:
        return x[None], True
    if x.ndim == 3:
        return x, False
    raise ValueError(f"expected a signal (L,), (leads, L) or (N, leads, L), got shape {x.shape}")


def _envelopes(x: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Envelope (n, L), summed |band-pass| (n, L) and a validity flag (n,) for a chunk (n, leads, L)."""
    x = x.astype(np.float64, copy=True)
    finite = np.isfinite(x).all(axis=(1, 2))
    x[~finite] = 0.0
    x -= x.mean(axis=-1, keepdims=True)
    high = min(BAND_HZ[1], 0.45 * fs)
    sos = butter(2, [BAND_HZ[0], high], btype="bandpass", fs=fs, output="sos")
    bp = sosfiltfilt(sos, x, axis=-1)
    scale = np.percentile(np.abs(bp), 99, axis=-1, keepdims=True)
    lead_ok = scale > 1e-6
    bp = np.where(lead_ok, bp / np.where(lead_ok, scale, 1.0), 0.0)
    energy = (bp**2).sum(axis=1)
    width = max(1, int(round(ENVELOPE_S * fs)))
    envelope = uniform_filter1d(energy, size=width, axis=-1, mode="nearest")
    valid = finite & lead_ok.any(axis=(1, 2))
    return envelope, np.abs(bp).sum(axis=1), valid


def _reject_t_waves(peaks: np.ndarray, envelope: np.ndarray, fs: float) -> np.ndarray:
    """Drop a candidate closer than ``T_WAVE_S`` to the previous beat with less than half its energy (a T
    wave); when the later one has more than twice the energy, the earlier one (a P wave) is dropped."""
    window = T_WAVE_S * fs
    kept: list[int] = []
    for p in peaks:
        if kept and p - kept[-1] < window:
            if envelope[p] < T_WAVE_RATIO * envelope[kept[-1]]:
                continue
            if envelope[kept[-1]] < T_WAVE_RATIO * envelope[p]:
                kept[-1] = p
                continue
        kept.append(int(p))
    return np.asarray(kept, dtype=np.int64)


def _peaks_one(envelope: np.ndarray, summed: np.ndarray, fs: float) -> np.ndarray:
    distance = max(1, int(round(REFRACTORY_S * fs)))
    level = np.percentile(envelope, 98)
    if not level > 0:
        return np.zeros(0, dtype=np.int64)
    peaks, _ = find_peaks(envelope, height=THRESHOLD * level, distance=distance)
    peaks = _reject_t_waves(peaks, envelope, fs)
    if len(peaks) >= 3:  # search-back in long gaps with half the threshold
        rr = np.median(np.diff(peaks))
        extra = []
        for a, b in zip(peaks[:-1], peaks[1:]):
            if b - a > SEARCHBACK_RR * rr:
                lo, hi = a + distance, b - distance
                if hi > lo:
                    cand, _ = find_peaks(envelope[lo:hi], height=0.5 * THRESHOLD * level, distance=distance)
                    if len(cand):
                        best = cand[np.argmax(envelope[lo:hi][cand])]
                        extra.append(lo + best)
        if extra:
            peaks = np.sort(np.concatenate([peaks, np.asarray(extra, dtype=peaks.dtype)]))
    half = max(1, int(round(0.05 * fs)))
    refined = np.empty_like(peaks)
    for i, p in enumerate(peaks):
        lo, hi = max(0, p - half), min(len(summed), p + half + 1)
        refined[i] = lo + int(np.argmax(summed[lo:hi]))
    return np.unique(refined).astype(np.int64)


def detect_r_peaks(signal, fs: float):
    """R-peak sample indices of each record.

    ``signal``: one record (leads, L) (or a single lead (L,)) -> an int64 array; a batch (N, leads, L) ->
    a list of N arrays. Records with NaN/inf samples or no signal give an empty array.
    """
    x, single = _as_batch(signal)
    if fs < 50:
        raise ValueError(f"heart-rate detection needs fs >= 50 Hz, got {fs}")
    out: list[np.ndarray] = []
    for start in range(0, len(x), _CHUNK):
        envelope, summed, valid = _envelopes(x[start : start + _CHUNK], fs)
        for env, s, ok in zip(envelope, summed, valid):
            out.append(_peaks_one(env, s, fs) if ok else np.zeros(0, dtype=np.int64))
    return out[0] if single else out


def rr_heart_rate(peaks, fs: float, *, statistic: str = "median", min_beats: int = 3) -> float:
    """Heart rate (bpm) from R-peak indices; NaN with fewer than ``min_beats`` peaks or outside 20-300 bpm."""
    peaks = np.asarray(peaks)
    if len(peaks) < max(2, min_beats):
        return float("nan")
    rr = np.diff(np.sort(peaks)) / float(fs)
    if statistic == "median":
        interval = float(np.median(rr))
    elif statistic == "mean":
        interval = float(np.mean(rr))
    else:
        raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}")
    if interval <= 0:
        return float("nan")
    rate = 60.0 / interval
    return rate if RATE_RANGE_BPM[0] <= rate <= RATE_RANGE_BPM[1] else float("nan")


def heart_rate_bpm(signal, fs: float, *, statistic: str = "median", min_beats: int = 3):
    """Heart rate in bpm of one record (12, L) -> float, or of a batch (N, 12, L) -> float64 array (N,).

    Any number of leads works (the 12 leads are combined); NaN where the rate cannot be told.
    """
    x, single = _as_batch(signal)
    peaks = detect_r_peaks(x, fs)
    rates = np.array([rr_heart_rate(p, fs, statistic=statistic, min_beats=min_beats) for p in peaks])
    return float(rates[0]) if single else rates
