"""Test ECGs with known answers for the beat, delineation and rhythm tests, plus checks of that data itself.

:func:`template_ecgs` builds 12-lead records from one analytic template beat, evaluated at the exact sample
times (no quantisation of the beat positions): a P wave, a Q-R-S complex and a T wave made of raised-cosine
(Hann) pulses, which are exactly zero outside their support, so the true P onset, QRS onset and offset and T
end are known. The 8 independent leads (I, aVF, V1-V6) are fixed projections of the waves, the other 4 leads
follow from Einthoven / Goldberger. Options: RR jitter, per-beat amplitude jitter, P wave absent in some
beats, noise.

:func:`respaced_real` puts the beats of real records at new, irregular positions (real morphology,
irregular rhythm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.signal import resample_poly

from midtecg.data.heart_rate import detect_r_peaks
from midtecg.data.leads import to_twelve_leads

_BUILD_FS = 500.0
# Per-wave gains of the 8 independent leads (I, V1-V6, aVF: the model order of to_twelve_leads).
_GAINS = {
    "p": np.array([0.6, 0.5, 0.4, 0.5, 0.6, 0.7, 0.7, 0.8]),
    "q": np.array([-0.1, 0.1, -0.05, -0.1, -0.15, -0.2, -0.2, -0.1]),
    "r": np.array([0.7, 0.3, 0.6, 1.0, 1.4, 1.5, 1.2, 0.8]),
    "s": np.array([-0.2, -1.0, -1.4, -1.0, -0.6, -0.3, -0.2, -0.2]),
    "t": np.array([0.25, 0.1, 0.4, 0.45, 0.4, 0.35, 0.3, 0.2]),
}


@dataclass
class Template:
    """Known truth of :func:`template_ecgs` (all times in ms; the R peak is at time 0 of each beat)."""

    pr_ms: float = 160.0
    qrs_ms: float = 90.0
    qt_ms: float = 400.0
    p_ms: float = 100.0
    qrs_on_ms: float = -40.0
    p_amp: float = 0.15
    rr: list = field(default_factory=list)  # per record: the RR intervals (s)
    amps: list = field(default_factory=list)  # per record: the per-beat amplitude factors


def _hann(t: np.ndarray, start: float, stop: float) -> np.ndarray:
    u = (t - start) / (stop - start)
    return np.where((u >= 0) & (u <= 1), 0.5 * (1.0 - np.cos(2.0 * np.pi * u)), 0.0)


def _beat(t_ms: np.ndarray, tpl: Template, p_gain: float) -> np.ndarray:
    """(8, T) template beat at times ``t_ms`` relative to R."""
    on = tpl.qrs_on_ms
    q_end, s_start, off = on + 0.25 * tpl.qrs_ms, on + 0.6 * tpl.qrs_ms, on + tpl.qrs_ms
    p_on = on - tpl.pr_ms
    t_end = on + tpl.qt_ms
    t_start = off + 0.3 * (t_end - off)
    waves = {
        "p": p_gain * tpl.p_amp * _hann(t_ms, p_on, p_on + tpl.p_ms),
        "q": _hann(t_ms, on, q_end),
        "r": _hann(t_ms, q_end - 0.1 * tpl.qrs_ms, s_start + 0.1 * tpl.qrs_ms),
        "s": _hann(t_ms, s_start, off),
        "t": _hann(t_ms, t_start, t_end),
    }
    return sum(_GAINS[k][:, None] * w[None, :] for k, w in waves.items())


def template_ecgs(
    n: int,
    *,
    fs: float = 100.0,
    seconds: float = 10.0,
    rr_s: float = 0.85,
    rr_jitter: float = 0.0,
    amp_jitter: float = 0.0,
    p_present: float = 1.0,
    noise_mv: float = 0.0,
    seed=0,
    **template,
) -> tuple[np.ndarray, Template]:
    """``n`` records (n, 12, L) float32 mV and the :class:`Template` truth. Rates below 500 Hz are made
    as PTB-XL's 100 Hz files are: built at 500 Hz and decimated with an anti-aliasing filter.

    ``rr_jitter``: relative sd of the RR intervals (0: strictly regular); ``amp_jitter``: relative sd of a
    per-beat amplitude factor; ``p_present``: probability that a beat has its P wave; other keywords set
    the :class:`Template` intervals (``pr_ms``, ``qrs_ms``, ``qt_ms``, ``p_amp``).
    """
    rng = np.random.default_rng(seed)
    tpl = Template(**template)
    fs_build = max(float(fs), _BUILD_FS)  # lower rates: built at 500 Hz, then decimated (anti-aliased)
    length = round(seconds * fs_build)
    t = np.arange(length) / fs_build
    out = np.zeros((n, 8, length))
    for i in range(n):
        r_times, rr = [rng.uniform(0.3, 0.3 + rr_s)], []
        while r_times[-1] < seconds + 1.0:
            step = rr_s * max(0.3, 1.0 + rr_jitter * rng.normal())
            rr.append(step)
            r_times.append(r_times[-1] + step)
        amps = 1.0 + amp_jitter * rng.normal(size=len(r_times))
        inside = [k for k, r in enumerate(r_times) if r < seconds]
        tpl.rr.append(np.diff([r_times[k] for k in inside]))
        tpl.amps.append(amps[inside])
        for k, r in enumerate(r_times):
            p_gain = 1.0 if rng.random() < p_present else 0.0
            near = np.abs(t - r) < 1.0
            out[i][:, near] += amps[k] * _beat((t[near] - r) * 1000.0, tpl, p_gain)
    if fs_build != fs:
        out = resample_poly(out, int(fs), int(fs_build), axis=-1)
    out += noise_mv * rng.normal(size=out.shape)
    return to_twelve_leads(out).astype(np.float32), tpl


def respaced_real(x: np.ndarray, fs: float, *, rr_range_s=(0.45, 1.3), seed=0) -> np.ndarray:
    """Real records with their beats (-250..+450 ms around each R peak, Hann-tapered edges) put at random
    RR intervals drawn uniformly from ``rr_range_s``: real morphology, irregular rhythm."""
    rng = np.random.default_rng(seed)
    lo, hi = int(0.25 * fs), int(0.45 * fs)
    taper = np.ones(lo + hi)
    edge = int(0.05 * fs)
    taper[:edge] = taper[-edge:][::-1] = 0.5 * (1 - np.cos(np.pi * np.arange(edge) / edge))
    out = np.zeros_like(x)
    for i, peaks in enumerate(detect_r_peaks(x, fs)):
        beats = [x[i][:, p - lo : p + hi] * taper for p in peaks if p - lo >= 0 and p + hi <= x.shape[-1]]
        pos = lo + int(rng.uniform(0, 0.3) * fs)
        k = 0
        while pos + hi <= x.shape[-1] and beats:
            out[i][:, pos - lo : pos + hi] += beats[k % len(beats)]
            pos += int(rng.uniform(*rr_range_s) * fs)
            k += 1
    return out


# ------------------------------------------------------------------------------ checks of the test data
def test_template_ecgs_are_einthoven_consistent_and_reproducible():
    x, tpl = template_ecgs(2, rr_jitter=0.1, amp_jitter=0.1, seed=3)
    assert x.shape == (2, 12, 1000) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 1], x[:, 0] + x[:, 2], atol=1e-5)  # II = I + III
    np.testing.assert_allclose(x[:, 3] + x[:, 4] + x[:, 5], 0.0, atol=1e-5)  # aVR + aVL + aVF = 0
    np.testing.assert_array_equal(x, template_ecgs(2, rr_jitter=0.1, amp_jitter=0.1, seed=3)[0])
    assert len(tpl.rr) == 2 and len(tpl.amps[0]) == len(tpl.rr[0]) + 1


def test_template_beat_has_its_waves_where_stated():
    tpl = Template()
    t = np.arange(-400.0, 600.0, 1.0)
    beat = np.abs(_beat(t, tpl, 1.0)).sum(axis=0)
    p_on = tpl.qrs_on_ms - tpl.pr_ms
    assert beat[t < p_on].max() == 0.0 and beat[(t > p_on) & (t < p_on + 10)].max() > 0
    gap = (t > p_on + tpl.p_ms) & (t < tpl.qrs_on_ms)  # PR segment: isoelectric
    assert beat[gap].max() == 0.0
    assert beat[t > tpl.qrs_on_ms + tpl.qt_ms].max() == 0.0
    assert np.argmax(beat) == np.flatnonzero(t == 0)[0] or abs(t[np.argmax(beat)]) <= 10


def test_respaced_real_beats_are_irregular():
    x, _ = template_ecgs(2, rr_jitter=0.0)
    y = respaced_real(x, 100.0, seed=1)
    rr = np.diff(detect_r_peaks(y[0], 100.0)) / 100.0
    assert rr.std() / rr.mean() > 0.15
