"""Delineation of a record's median beat on several leads at once: QRS onset / offset, T end, P onset.

Works on the :class:`~midtecg.evaluation.beats.Beats` of one record (conditioned, 500 Hz), on a set of leads
(the 8 independent leads I, II, V1-V6 by default: *global* boundaries, as clinical 12-lead systems measure
intervals from the earliest onset to the latest offset over the leads). Sample positions are in the
median-beat window (R at index ``pre``).

- **QRS onset / offset**: the spatial velocity ``v(t) = sqrt(sum_leads (dx/dt)^2)``, smoothed over 10 ms,
  exceeds ``v_iso + 5 % (v_max - v_iso)`` (``v_max``: its peak within +-60 ms of R; ``v_iso``: its
  minimum 40-250 ms before R, the PR segment) on one run around the peak, sub-threshold gaps up to 12 ms
  bridged (between Q, R and S). No boundary within +-150 ms of R, or a velocity peak that is not at least
  twice the velocity anywhere else in the beat (a sine, a smooth or noise-only beat), means no QRS.
- **Isoelectric level** of each lead: its mean 4-20 ms before QRS onset (the PR segment).
- **T end**: on the spatial magnitude of the leads relative to that level, ``m(t) = sqrt(sum (x - level)^2)``
  (smoothed over 10 ms), the T peak is the maximum from 40 ms after QRS offset to the next beat's P onset
  (P onset + RR; the end of the window without a P wave); T end is found on the
  descending limb by the trapezium method (Vazquez-Seisdedos et al. 2011: the point that maximises the area
  of the trapezium spanned with the point of steepest descent and a point 150 ms later), the knee where the
  wave meets the baseline, insensitive to a small offset of the baseline. A T peak under 3 times the
  residual noise of the median beat (or under 0.03 mV) means no T wave.
- **P onset** (found before the T end): in the window from 300 ms before QRS onset (but not before the
  previous beat's T wave, taken to end at ``QRS onset - RR + 450 ms sqrt(RR / 1 s)``, i.e. QTc 450 ms) to
  10 ms before it, each lead is detrended by the line through its mean over the first and the last 10 ms of the
  window and smoothed over 20 ms. A lead carries a P wave when its largest deflection there is at least
  ``P_MIN_SNR`` = 4 times the noise left in the median beat (the robust spread of the beats around the
  median beat in that window, / sqrt(beats)) and at least 0.02 mV. A beat has that P wave when its
  window (same leads, detrending and smoothing) correlates with the median beat's at Pearson r >= 0.5;
  ``p_fraction`` is the fraction of such beats (0 when no lead carries a P wave). The P onset is
  measured only when at least 60 % of the beats have the P wave (not in atrial fibrillation, whose
  f-waves leave bumps in a median of a few beats that no single beat shares): it is where the tangent
  at the steepest ascent of the magnitude of the P-wave leads meets zero. Otherwise PR is NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter1d

from .beats import MEASURE_FS, Beats, ms_to_samples

__all__ = ["Fiducials", "delineate_beats", "QRS_THRESHOLD", "P_MIN_SNR"]

VELOCITY_SMOOTH_MS = 10.0
QRS_PEAK_HALF_MS = 60.0
QRS_SEARCH_MS = 150.0
ISO_WINDOW_MS = (250.0, 40.0)  # before R
QRS_THRESHOLD = 0.05
QRS_GAP_MS = 12.0
QRS_SHARPNESS = 2.0
LEVEL_WINDOW_MS = (20.0, 4.0)  # before QRS onset
T_AFTER_QRS_MS = 40.0
T_SMOOTH_MS = 10.0
T_TRAPEZIUM_MS = 150.0
T_MIN_SNR, T_MIN_MV = 3.0, 0.03
P_WINDOW_MS = (300.0, 10.0)  # before QRS onset
P_PREVIOUS_QTC_S = 0.45  # the P window starts after the previous T wave, taken to end at QTc 450 ms
P_EDGE_MS = 10.0
P_SMOOTH_MS = 20.0
P_MIN_SNR, P_MIN_MV = 4.0, 0.02
P_MATCH_R = 0.5
P_MIN_FRACTION = 0.6
_MAD_TO_SD = 1.4826
_MEDIAN_EFFICIENCY = 1.2533  # sd of a median of n normal values = 1.2533 sd / sqrt(n)


@dataclass(frozen=True)
class Fiducials:
    """Boundaries in median-beat samples at ``MEASURE_FS`` (NaN where not found), the fraction of beats
    with the median beat's P wave (NaN when not measurable) and what failed ("" when the QRS was found)."""

    qrs_on: float = math.nan
    qrs_off: float = math.nan
    t_end: float = math.nan
    p_on: float = math.nan
    p_fraction: float = math.nan
    error: str = ""

    def interval_ms(self, start: str, stop: str) -> float:
        return (getattr(self, stop) - getattr(self, start)) * 1000.0 / MEASURE_FS


def _smooth(y: np.ndarray, ms: float) -> np.ndarray:
    return uniform_filter1d(y, size=max(1, ms_to_samples(ms)), axis=-1, mode="nearest")


def _run_around(mask: np.ndarray, i: int, gap: int) -> tuple[int, int]:
    """First and last index of the run of True values containing ``i``, bridging False gaps up to ``gap``."""
    idx = np.flatnonzero(mask)
    breaks = np.flatnonzero(np.diff(idx) > gap + 1)
    starts = np.concatenate([[0], breaks + 1])
    stops = np.concatenate([breaks, [idx.size - 1]])
    k = int(np.searchsorted(idx[starts], i, side="right")) - 1
    return int(idx[starts[k]]), int(idx[stops[k]])


def _qrs(x: np.ndarray, pre: int) -> tuple[float, float, str]:
    v = _smooth(np.sqrt((np.gradient(x, axis=-1) ** 2).sum(axis=0)) * MEASURE_FS, VELOCITY_SMOOTH_MS)
    w = v.size
    half = ms_to_samples(QRS_PEAK_HALF_MS)
    peak = pre - half + int(np.argmax(v[pre - half : pre + half + 1]))
    iso_lo, iso_hi = max(0, pre - ms_to_samples(ISO_WINDOW_MS[0])), pre - ms_to_samples(ISO_WINDOW_MS[1])
    v_iso = float(v[iso_lo:iso_hi].min()) if iso_hi > iso_lo else float(v[: pre - half].min())
    v_max = float(v[peak])
    if not v_max > 0:
        return math.nan, math.nan, "flat median beat"
    lo, hi = max(0, pre - ms_to_samples(QRS_SEARCH_MS)), min(w - 1, pre + ms_to_samples(QRS_SEARCH_MS))
    above = v[lo : hi + 1] > v_iso + QRS_THRESHOLD * (v_max - v_iso)
    if not above[peak - lo]:  # the velocity peak is no higher than the PR segment's
        return math.nan, math.nan, "no distinct QRS complex"
    on, off = _run_around(above, peak - lo, ms_to_samples(QRS_GAP_MS))
    on, off = on + lo, off + lo
    if on <= lo or off >= hi:
        return math.nan, math.nan, "no QRS boundary within 150 ms of R"
    guard = ms_to_samples(20.0)
    rest = np.concatenate([v[: max(0, on - guard)], v[off + guard :]])
    if rest.size and v_max < QRS_SHARPNESS * float(rest.max()):
        return math.nan, math.nan, "no distinct QRS complex"
    return float(on), float(off), ""


def _noise(beats: np.ndarray, median: np.ndarray) -> np.ndarray:
    """Per-lead noise (sd) left in the median beat: robust spread of the beats around it / sqrt(beats)."""
    dev = np.abs(beats - median[:, None, :])
    spread = _MAD_TO_SD * np.median(dev.reshape(dev.shape[0], -1), axis=-1)
    return _MEDIAN_EFFICIENCY * spread / math.sqrt(beats.shape[1])


def _trapezium(y: np.ndarray, xm: int, xr: int) -> int:
    """Knee of ``y`` between the steepest point ``xm`` and a flat reference ``xr`` (either side)."""
    xs = np.arange(min(xm, xr), max(xm, xr) + 1)
    area = 0.5 * (y[xm] - y[xs]) * (abs(xm - xr) + np.abs(xs - xr))
    return int(xs[np.argmax(area)])


def _t_end(x: np.ndarray, beats: np.ndarray, level: np.ndarray, off: float, stop: int) -> float:
    m = _smooth(np.sqrt(((x - level) ** 2).sum(axis=0)), T_SMOOTH_MS)
    w = m.size
    lo, hi = int(off) + ms_to_samples(T_AFTER_QRS_MS), min(stop, w - ms_to_samples(50.0))
    if hi - lo < ms_to_samples(60.0):
        return math.nan
    peak = lo + int(np.argmax(m[lo:hi]))
    noise = float(np.sqrt((_noise(beats, x) ** 2).sum()))
    if m[peak] < max(T_MIN_MV, T_MIN_SNR * noise) or hi - peak < 3:
        return math.nan
    slope = np.gradient(m)
    steep = peak + int(np.argmin(slope[peak:hi]))
    if not slope[steep] < 0:
        return math.nan
    return float(_trapezium(m, steep, min(w - 1, steep + ms_to_samples(T_TRAPEZIUM_MS))))


def _p_segments(seg: np.ndarray) -> np.ndarray:
    """Detrend (line through the mean of the first and last ``P_EDGE_MS``) and smooth P windows (..., W)."""
    edge = ms_to_samples(P_EDGE_MS)
    a = seg[..., :edge].mean(axis=-1, keepdims=True)
    b = seg[..., -edge:].mean(axis=-1, keepdims=True)
    frac = np.linspace(0.0, 1.0, seg.shape[-1])
    return _smooth(seg - (a + (b - a) * frac), P_SMOOTH_MS)


def _matching_fraction(each: np.ndarray, med: np.ndarray) -> float:
    """Fraction of beats (leads, B, W) whose window correlates with ``med`` (leads, W) at r >= P_MATCH_R."""
    med = med - med.mean(axis=-1, keepdims=True)
    each = each - each.mean(axis=-1, keepdims=True)
    num = np.einsum("lbw,lw->b", each, med)
    den = np.sqrt(np.einsum("lbw,lbw->b", each, each) * float((med**2).sum()))
    corr = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return float((corr >= P_MATCH_R).mean())


def _p_wave(x: np.ndarray, beats: np.ndarray, on: float, rr_s: float) -> tuple[float, float]:
    """``(P onset, fraction of beats with the P wave)``; (NaN, NaN) when there is no room for a P wave."""
    prev_t_end = on - round(MEASURE_FS * (rr_s - P_PREVIOUS_QTC_S * math.sqrt(rr_s)))
    lo = max(0, int(on) - ms_to_samples(P_WINDOW_MS[0]), int(prev_t_end))
    hi = int(on) - ms_to_samples(P_WINDOW_MS[1])
    if hi - lo < ms_to_samples(60.0):
        return math.nan, math.nan
    med = _p_segments(x[:, lo:hi])
    each = _p_segments(beats[:, :, lo:hi])
    edge = ms_to_samples(P_EDGE_MS)
    amp = np.abs(med[:, edge:-edge]).max(axis=-1)
    leads = (amp >= P_MIN_SNR * _noise(each, med)) & (amp >= P_MIN_MV)
    if not leads.any():
        return math.nan, 0.0
    fraction = _matching_fraction(each[leads], med[leads])
    if fraction < P_MIN_FRACTION:
        return math.nan, fraction
    m = np.sqrt((med[leads] ** 2).sum(axis=0))
    peak = edge + int(np.argmax(m[edge:-edge]))
    slope = np.gradient(m)
    steep = int(np.argmax(slope[:peak]))
    if not slope[steep] > 0:
        return math.nan, fraction
    onset = steep - m[steep] / slope[steep]
    return (float(lo + onset) if onset >= -edge else math.nan), fraction


def delineate_beats(b: Beats, leads: tuple[int, ...] | list[int]) -> Fiducials:
    """Boundaries of the median beat of ``b`` on the given lead indices (see the module docstring)."""
    x = b.median[list(leads)]
    beats = b.beats[list(leads)]
    on, off, error = _qrs(x, b.pre)
    if error:
        return Fiducials(error=error)
    g0, g1 = (ms_to_samples(v) for v in LEVEL_WINDOW_MS)
    level = x[:, max(0, int(on) - g0) : max(1, int(on) - g1)].mean(axis=-1, keepdims=True)
    p_on, p_fraction = _p_wave(x, beats, on, b.rr_s)
    stop = int(p_on) + round(b.rr_s * MEASURE_FS) if math.isfinite(p_on) else x.shape[-1]
    t_end = _t_end(x, beats, level, off, stop)
    return Fiducials(qrs_on=on, qrs_off=off, t_end=t_end, p_on=p_on, p_fraction=p_fraction)
