"""Per-record ECG measurements in one pass: heart rate, PR / QRS / QT / QTc intervals and rhythm measures.

For each record: conditioning and R peaks (:mod:`.beats`), the aligned beats and median beat, the
median beat's boundaries (:mod:`.delineation`), then

- intervals (ms): ``pr_ms = QRS onset - P onset``, ``qrs_ms = QRS offset - QRS onset``,
  ``qt_ms = T end - QRS onset`` of the median beat, ``qtc_ms = QT / sqrt(RR / 1 s)`` (Bazett, the clinical
  convention; it over-corrects at high rates) with the median RR; each NaN outside ``PLAUSIBLE_RANGES``;
- ``heart_rate`` (bpm) ``= 60 / median RR``, ``rr_ms`` the median RR, ``n_beats`` the R peaks found;
- rhythm: ``rr_cv`` = std / mean (ddof 0) of all RR intervals (NaN under 3 R peaks), ``beat_corr`` and
  ``r_amp_cv`` (:func:`.beats.regularity`), ``p_wave_fraction`` (the fraction of beats with the median
  beat's P wave, :mod:`.delineation`).

A record is ``failed`` (message in ``errors``) when no heart rate can be measured, when its beats do not
share a waveform (``beat_corr`` under ``MIN_BEAT_CORR``, as for noise) or when its median beat has no
QRS complex; its intervals are then NaN, its rhythm measures are kept where defined.

The work is done in chunks of records (conditioning vectorised over a chunk, about 4 ms per 10 s record
on one core); ``n_jobs > 1`` spreads chunks over worker processes (joblib loky, one thread each).
:func:`measure_ecgs` caches its arrays through :mod:`.measure_cache`.
"""

from __future__ import annotations

import math

import numpy as np

from midtecg.data.errors import DataError
from midtecg.data.heart_rate import detect_r_peaks, rr_heart_rate
from midtecg.data.leads import WFDB_LEADS

from .beats import INDEPENDENT_LEADS, condition, record_beats, regularity
from .delineation import delineate_beats
from .fidelity import check_signals
from .measure_cache import cached_measure

__all__ = ["MEASURES_VERSION", "PLAUSIBLE_RANGES", "INTERVAL_KEYS", "RHYTHM_KEYS", "MIN_BEAT_CORR", "measure_ecgs"]

#: Bump when any measurement changes: cached results of older versions are then not reused.
MEASURES_VERSION = "1"
#: Values outside are delineation errors, not disease (per record).
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "heart_rate": (20.0, 250.0),  # bpm; RR 0.24-3 s
    "pr_ms": (50.0, 400.0),  # normal 120-200, first-degree AV block rarely above 400
    "qrs_ms": (40.0, 250.0),  # normal 70-110, bundle-branch block / pacing up to ~200
    "qt_ms": (150.0, 700.0),
    "qtc_ms": (200.0, 800.0),
}
INTERVAL_KEYS = ("heart_rate", "rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms")
RHYTHM_KEYS = ("rr_cv", "beat_corr", "r_amp_cv", "p_wave_fraction")
MIN_BEAT_CORR = 0.5
_CHUNK = 64


def _plausible(name: str, value: float) -> float:
    lo, hi = PLAUSIBLE_RANGES[name]
    return value if math.isfinite(value) and lo <= value <= hi else math.nan


def _one(x: np.ndarray, peaks: np.ndarray, fs: float, rhythm_leads: list[int], leads: list[int]) -> dict:
    """Measurements of one conditioned record ``x``; lead lists index its rows."""
    out = {k: math.nan for k in INTERVAL_KEYS + RHYTHM_KEYS}
    out.update(n_beats=int(peaks.size), failed=True, error="")
    if np.ptp(x) < 1e-6:
        out["error"] = "flat signal"
        return out
    if peaks.size >= 3:
        rr = np.diff(peaks) / fs
        out["rr_cv"] = float(rr.std() / rr.mean())
    out["heart_rate"] = _plausible("heart_rate", rr_heart_rate(peaks, fs, min_beats=2))
    out["rr_ms"] = 60000.0 / out["heart_rate"]
    if not math.isfinite(out["heart_rate"]):
        out["error"] = f"no heart rate ({peaks.size} R peak(s))"
        return out
    beats = record_beats(x, peaks, fs)
    if beats is None:
        out["error"] = "fewer than 3 complete beats"
        return out
    out["beat_corr"], out["r_amp_cv"] = regularity(x[rhythm_leads], beats.r)
    if not out["beat_corr"] >= MIN_BEAT_CORR:
        out["error"] = f"beats share no waveform (beat correlation {out['beat_corr']:.2f})"
        return out
    f = delineate_beats(beats, leads)
    out["p_wave_fraction"] = f.p_fraction
    if f.error:
        out["error"] = f.error
        return out
    out["failed"] = False
    out["pr_ms"] = _plausible("pr_ms", f.interval_ms("p_on", "qrs_on"))
    out["qrs_ms"] = _plausible("qrs_ms", f.interval_ms("qrs_on", "qrs_off"))
    out["qt_ms"] = qt = _plausible("qt_ms", f.interval_ms("qrs_on", "t_end"))
    out["qtc_ms"] = _plausible("qtc_ms", qt / math.sqrt(beats.rr_s))
    return out


def _chunk(args) -> list[dict]:
    block, fs, leads = args
    used = sorted(set(INDEPENDENT_LEADS) | set(leads))  # only these leads are conditioned
    rhythm_leads = [used.index(i) for i in INDEPENDENT_LEADS]
    delineated = [used.index(i) for i in leads]
    peaks = detect_r_peaks(block, fs)
    x = condition(block[:, used], fs)
    return [_one(xi, np.asarray(p, dtype=np.int64), fs, rhythm_leads, delineated) for xi, p in zip(x, peaks)]


def _compute(x: np.ndarray, fs: float, leads: list[int], n_jobs: int) -> dict[str, np.ndarray]:
    n = x.shape[0]
    tasks = [(x[s : s + _CHUNK], fs, leads) for s in range(0, n, _CHUNK)]
    if n_jobs <= 1 or len(tasks) < 2:
        chunks = [_chunk(t) for t in tasks]
    else:
        from joblib import Parallel, delayed

        chunks = Parallel(n_jobs=n_jobs, backend="loky", inner_max_num_threads=1)(delayed(_chunk)(t) for t in tasks)
    rows = [r for c in chunks for r in c]
    out = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in INTERVAL_KEYS + RHYTHM_KEYS}
    out["n_beats"] = np.array([r["n_beats"] for r in rows], dtype=np.int64)
    out["failed"] = np.array([r["failed"] for r in rows], dtype=bool)
    out["errors"] = np.array([r["error"] for r in rows], dtype=str)
    return out


def measure_ecgs(
    signals: np.ndarray,
    fs: float,
    *,
    leads: tuple[int, ...] | list[int] = INDEPENDENT_LEADS,
    n_jobs: int = 1,
    cache_dir=None,
) -> dict[str, np.ndarray]:
    """Per-record measurements (module docstring) of ``signals`` (N, 12, L) mV in WFDB lead order at ``fs`` Hz
    (>= 50; at least 2 s). NaN / inf samples raise a :class:`DataError` naming the record.

    ``leads``: lead indices delineated together (R peaks and rhythm use all given leads / the 8
    independent ones). ``cache_dir``: see :func:`.measure_cache.cached_measure` (False: no cache).
    Returns (N,) arrays: the ``INTERVAL_KEYS`` and ``RHYTHM_KEYS`` (float, NaN where not measured),
    ``n_beats`` (int), ``failed`` (bool), ``errors`` (str, "" when none).
    """
    x = check_signals(signals, "signals", ndim=3)
    if x.shape[1] != len(WFDB_LEADS):
        raise DataError(f"signals: {x.shape[1]} leads; the 12 leads in WFDB order are needed")
    if not fs >= 50:
        raise DataError(f"fs must be >= 50 Hz to measure ECGs, got {fs}")
    if x.shape[-1] < 2 * fs:
        raise DataError(f"signals: {x.shape[-1]} samples at {fs} Hz is under 2 s; too short to delineate")
    leads = [int(i) for i in leads]
    if not leads or any(not 0 <= i < len(WFDB_LEADS) for i in leads):
        raise DataError(f"leads: {leads} are not WFDB lead indices 0-11")
    name = "ecg-measures-" + "-".join(str(i) for i in leads)
    return cached_measure(
        name,
        x,
        fs,
        lambda: _compute(x, float(fs), leads, max(1, int(n_jobs))),
        cache_dir=cache_dir,
        version=MEASURES_VERSION,
    )
