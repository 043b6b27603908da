"""Clinical coherence: heart rate and PR / QRS / QT / QTc intervals of two sets, and their comparison.

**Delineation** (:func:`delineate`; the algorithm is in :mod:`.beats` and :mod:`.delineation`, the per-record
driver in :mod:`.ecg_measures`): every record is band-passed 0.5-40 Hz and resampled to 500 Hz, its R peaks
found on all leads (:mod:`midtecg.data.heart_rate`), its beats aligned to 2 ms and their sample-wise
**median beat** delineated on the 8 independent leads together (I, II, V1-V6: global boundaries, as
clinical 12-lead systems measure intervals): QRS onset / offset from the spatial velocity, T end by the
trapezium method on the spatial magnitude, P onset by the tangent method, a P wave only when it stands above
the residual noise and at least 60 % of the beats share it. ``PR = QRS onset - P onset``,
``QRS = QRS offset - QRS onset``, ``QT = T end - QRS onset``, ``QTc = QT / sqrt(RR / 1 s)`` (Bazett, the
convention of clinical ECG reports; it over-corrects at high heart rates) with the median RR; heart rate
``= 60 / median RR``. Values outside ``PLAUSIBLE_RANGES`` are NaN (delineation errors, not disease).

**Validation on PTB-XL** (``benchmarks/delineation_agreement.py``: the 1,206 NORM records, superdiagnostic,
of the 2,482 in ``../shared/data/ptbxl``, delineated from the 100 Hz and the 500 Hz caches): medians at
100 Hz / 500 Hz PR 162.2 / 162.4 ms, QRS 88 / 86 ms, QT 386 / 386 ms, QTc 413.9 / 414.5 ms, heart rate
68.8 / 68.6 bpm, inside the physiological NORM ranges (PR 120-200, QRS 70-115, QTc 360-460 ms); no record
failed, PR missing in 0.6 %. Remaining bias of 100 Hz against 500 Hz delineation of the same records (mean
difference, and per-record mean absolute difference): PR -0.1 ms (2.1), QRS +1.0 ms (3.4), QT -0.6 ms
(2.6), QTc -0.6 ms (3.0), heart rate -0.00 bpm (0.23); on PTB-XL's own 100 Hz files (297 of these records)
PR -0.4 (2.0), QRS +1.7 (3.4), QT -0.4 (2.5), QTc -0.3 (2.9) ms.

On analytic beats of known boundaries (raised-cosine waves, ``tests/test_eval_templates.py``) QT is found
within -4..+2 ms, PR 10-15 ms short (the tangent meets zero after the flat start of a smooth P wave) and QRS
6-12 ms wide at 500 Hz (the velocity smoothing), 8-24 ms at 100 Hz (the band limit of a 100 Hz recording
smooths this sharp analytic QRS; on real records 100 Hz and 500 Hz differ by 1-2 ms). The thresholds were
set from the definitions above and checked by eye on median beats, not fitted to reference annotations
(none are available here); a clinical system's values may differ by several ms, so compare sets
delineated the same way.

The previous neurokit2 DWT delineation (on lead II) gave PTB-XL NORM records QRS 166 ms, PR 90 ms,
QTc 469 ms at 100 Hz: its wavelet QRS boundaries are far too wide.

**Failures.** A record is ``failed`` (reason in ``errors``) when no heart rate can be measured, its beats
do not share a waveform (noise) or its median beat has no distinct QRS complex (flat signal, sine); its
intervals are then NaN. PR is NaN without a P wave (atrial fibrillation), QT without a T wave.

**Speed** (``benchmarks/delineation_speed.py``): about 7 ms of CPU per 10 s record at 100 Hz on one core,
rhythm measures included (neurokit2's DWT delineation took about 85 ms); results are cached on disk by
content (:mod:`.measure_cache`), so a second evaluation against the same real set does not measure it again.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

from midtecg.data.errors import DataError
from midtecg.data.leads import WFDB_LEADS, canonical_lead_name

from .beats import INDEPENDENT_LEADS, MEASURE_FS
from .ecg_measures import PLAUSIBLE_RANGES, measure_ecgs
from .fidelity import group_masks, nanstats
from .floors import DISTANCE_NOTE, compare_values

__all__ = [
    "INTERVALS",
    "PLAUSIBLE_RANGES",
    "AGE_BIN_THRESHOLDS",
    "AGE_BIN_NAMES",
    "delineate",
    "compare_intervals",
    "heart_rate_error",
    "interval_stats",
    "interval_stats_by_group",
    "compare_by_group",
    "age_bins",
    "sex_groups",
]

INTERVALS: tuple[str, ...] = ("heart_rate", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms")
AGE_BIN_THRESHOLDS: tuple[float, ...] = (12.0, 17.0, 34.0, 54.0, 74.0)  # method.md section 5
AGE_BIN_NAMES: tuple[str, ...] = ("<12", "12-16", "17-33", "34-53", "54-73", ">=74")
GLOBAL_LEAD = "global"
_NOTE = (
    "median beat of each record at 500 Hz (0.5-40 Hz), delineated on {leads}: QRS from the spatial "
    "velocity, T end by the trapezium method, P onset by the tangent method; QTc by Bazett; boundaries "
    "on a 2 ms grid, recording at {fs:g} Hz"
)


def _leads(lead) -> tuple[list[int], str]:
    if isinstance(lead, str) and lead.strip().lower() == GLOBAL_LEAD:
        return list(INDEPENDENT_LEADS), GLOBAL_LEAD
    if isinstance(lead, (int, np.integer)):
        if not 0 <= int(lead) < len(WFDB_LEADS):
            raise DataError(f"lead index {lead} out of range for {len(WFDB_LEADS)} leads")
        return [int(lead)], WFDB_LEADS[int(lead)]
    name = canonical_lead_name(str(lead))
    return [WFDB_LEADS.index(name)], name


def delineate(signals, fs: float = 100.0, *, lead: str | int = GLOBAL_LEAD, n_jobs: int = 1, cache_dir=None) -> dict:
    """Heart rate and PR / QRS / QT / QTc intervals of every record (see the module docstring).

    Parameters
    ----------
    signals : (N, 12, L) mV in WFDB lead order.
    fs : sampling rate in Hz (>= 50).
    lead : ``"global"`` (default): the 8 independent leads I, II, V1-V6 delineated together; or one lead
        name / WFDB index to delineate that lead alone (R peaks are still found on all leads).
    n_jobs : worker processes (1: in this process); results are identical for any value.
    cache_dir : measurement cache folder; None: ``$MIDTECG_CACHE_DIR`` or ``~/.cache/midtecg/measurements``;
        False: no cache (:mod:`.measure_cache`).

    Returns
    -------
    dict with (N,) float arrays ``heart_rate`` (bpm), ``rr_ms``, ``pr_ms``, ``qrs_ms``, ``qt_ms``,
    ``qtc_ms`` (NaN where not measured), ``n_beats`` (int, R peaks found), ``failed`` (bool), ``errors``
    (list of N strings, "" when none), and ``failure_rate``, ``fs``, ``lead``, ``resolution_ms`` (2 ms, the
    grid of the boundaries), ``note`` (method, for reports).
    """
    leads, lead_name = _leads(lead)
    m = measure_ecgs(signals, float(fs), leads=leads, n_jobs=n_jobs, cache_dir=cache_dir)
    out: dict = {k: m[k] for k in ("heart_rate", "rr_ms", "pr_ms", "qrs_ms", "qt_ms", "qtc_ms", "n_beats", "failed")}
    out["errors"] = [str(e) for e in m["errors"]]
    n = out["failed"].size
    out["failure_rate"] = float(out["failed"].mean()) if n else math.nan
    out["fs"] = float(fs)
    out["lead"] = lead_name
    out["resolution_ms"] = 1000.0 / MEASURE_FS
    out["note"] = _NOTE.format(
        leads="I, II, V1-V6 together" if lead_name == GLOBAL_LEAD else f"lead {lead_name}", fs=float(fs)
    )
    return out


# ------------------------------------------------------------------------------------------- comparisons
def _table(t, name: str) -> dict[str, np.ndarray]:
    if not isinstance(t, dict):
        try:  # a DataFrame
            t = {c: t[c].to_numpy() for c in t.columns}
        except AttributeError as exc:
            raise DataError(f"{name}: expected the dict returned by delineate() or a DataFrame") from exc
    missing = [k for k in INTERVALS if k not in t]
    if missing:
        raise DataError(f"{name}: missing interval column(s) {missing}")
    cols = {k: np.asarray(t[k], dtype=np.float64).ravel() for k in INTERVALS}
    n = cols["heart_rate"].size
    if any(v.size != n for v in cols.values()):
        raise DataError(f"{name}: interval columns have different lengths")
    if "failed" in t:
        cols["failed"] = np.asarray(t["failed"], dtype=bool).ravel()
    else:
        cols["failed"] = np.isnan(cols["heart_rate"])
    return cols


def _subset(t: dict[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[mask] for k, v in t.items()}


def compare_intervals(
    real, synth, *, min_valid: int = 2, n_splits: int = 20, seed: int = 0, min_records: int = 10
) -> dict:
    """Compare heart rate and interval distributions of a real and a synthetic set.

    ``real`` / ``synth``: outputs of :func:`delineate` (or DataFrames with the ``INTERVALS`` columns and
    optionally ``failed``). Per interval, over the records where it was measured: the 1-Wasserstein
    distance (same unit as the interval: bpm or ms), the two-sample Kolmogorov-Smirnov statistic and p
    value, means, standard deviations, medians, counts and missing rates (NaN when either set has fewer than
    ``min_valid`` measured values). Then, for verdicts, the distance of
    :func:`midtecg.evaluation.floors.compare_values` over all records (``ks_with_missing``: KS with
    unmeasured records counted above every value) and its real-vs-real floor from ``n_splits`` splits of
    the real set in halves (``ks_floor_mean``, ``ks_floor_std``), the synthetic value at the floor's n
    (``ks_synth_mean``, ``ks_synth_std``), the same for ``wasserstein_*``, and ``floor_n_ref``,
    ``floor_n_cmp``, ``floor_splits``; floors are NaN under ``min_records`` (synthetic) or twice that (real).

    Returns ``{"intervals": {name: {...}}, "failure_rate_real", "failure_rate_synth", "failure_rate_diff"
    (synth - real), "n_real", "n_synth", "distance"}`` (plus ``resolution_ms`` when known).
    """
    r = _table(real, "real")
    s = _table(synth, "synth")
    out: dict = {"intervals": {}}
    for k in INTERVALS:
        a = r[k][~np.isnan(r[k])]
        b = s[k][~np.isnan(s[k])]
        entry = {
            "real_mean": float(a.mean()) if a.size else math.nan,
            "synth_mean": float(b.mean()) if b.size else math.nan,
            "real_std": float(a.std()) if a.size else math.nan,
            "synth_std": float(b.std()) if b.size else math.nan,
            "real_median": float(np.median(a)) if a.size else math.nan,
            "synth_median": float(np.median(b)) if b.size else math.nan,
            "n_real": int(a.size),
            "n_synth": int(b.size),
            "real_missing_rate": float(1.0 - a.size / r[k].size) if r[k].size else math.nan,
            "synth_missing_rate": float(1.0 - b.size / s[k].size) if s[k].size else math.nan,
        }
        if a.size >= min_valid and b.size >= min_valid:
            ks = stats.ks_2samp(a, b)
            entry.update(
                wasserstein=float(stats.wasserstein_distance(a, b)),
                ks_statistic=float(ks.statistic),
                ks_pvalue=float(ks.pvalue),
            )
        else:
            entry.update(wasserstein=math.nan, ks_statistic=math.nan, ks_pvalue=math.nan)
        floor = compare_values(r[k], s[k], n_splits=n_splits, seed=seed, min_records=min_records)
        entry["ks_with_missing"] = floor["ks"]
        entry.update({key: v for key, v in floor.items() if key.startswith(("ks_", "wasserstein_", "floor_"))})
        out["intervals"][k] = entry
    fr = float(r["failed"].mean()) if r["failed"].size else math.nan
    fsyn = float(s["failed"].mean()) if s["failed"].size else math.nan
    out.update(
        failure_rate_real=fr,
        failure_rate_synth=fsyn,
        failure_rate_diff=fsyn - fr,
        n_real=int(r["failed"].size),
        n_synth=int(s["failed"].size),
        distance=DISTANCE_NOTE,
    )
    for t in (real, synth):
        if isinstance(t, dict) and "resolution_ms" in t:
            out["resolution_ms"] = float(t["resolution_ms"])
            break
    return out


def heart_rate_error(requested, measured) -> dict:
    """Requested (conditioning) vs measured heart rate, bpm.

    ``measured``: (N,) array or the dict of :func:`delineate` (its ``heart_rate``). Records where either
    value is NaN are left out and counted. Returns ``{"mae", "bias" (mean of measured - requested),
    "rmse", "median_abs_error", "within_5bpm" (fraction), "n", "n_missing"}``.
    """
    if isinstance(measured, dict):
        measured = measured["heart_rate"]
    req = np.asarray(requested, dtype=np.float64).ravel()
    mea = np.asarray(measured, dtype=np.float64).ravel()
    if req.shape != mea.shape:
        raise DataError(f"heart_rate_error: {req.size} requested vs {mea.size} measured values")
    ok = np.isfinite(req) & np.isfinite(mea)
    err = mea[ok] - req[ok]
    if err.size == 0:
        nan = math.nan
        return {
            "mae": nan,
            "bias": nan,
            "rmse": nan,
            "median_abs_error": nan,
            "within_5bpm": nan,
            "n": 0,
            "n_missing": int(req.size),
        }
    return {
        "mae": float(np.abs(err).mean()),
        "bias": float(err.mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "median_abs_error": float(np.median(np.abs(err))),
        "within_5bpm": float((np.abs(err) <= 5.0).mean()),
        "n": int(err.size),
        "n_missing": int((~ok).sum()),
    }


def interval_stats(table) -> dict:
    """``{"n", "failure_rate", interval: {"mean", "std", "median", "n_valid"}}`` of one delineated set."""
    t = _table(table, "table")
    n = t["failed"].size
    out: dict = {"n": int(n), "failure_rate": float(t["failed"].mean()) if n else math.nan}
    for k in INTERVALS:
        out[k] = nanstats(t[k])
    return out


def age_bins(ages) -> np.ndarray:
    """Ages in years -> bin names of ``AGE_BIN_NAMES`` (thresholds 12, 17, 34, 54, 74; method.md section 5).

    PTB-XL's code 300 (age above 89) goes to ``">=74"``; NaN / negative ages give ``None``.
    """
    a = np.asarray(ages, dtype=np.float64).ravel()
    out = np.empty(a.shape, dtype=object)
    ok = np.isfinite(a) & (a >= 0)
    idx = np.searchsorted(np.asarray(AGE_BIN_THRESHOLDS), a[ok], side="right")
    out[ok] = np.asarray(AGE_BIN_NAMES, dtype=object)[idx]
    out[~ok] = None
    return out


def sex_groups(sex) -> np.ndarray:
    """PTB-XL sex codes (0 male, 1 female) -> ``"male"`` / ``"female"`` (None for anything else)."""
    s = np.asarray(sex, dtype=np.float64).ravel()
    out = np.full(s.shape, None, dtype=object)
    out[s == 0] = "male"
    out[s == 1] = "female"
    return out


def interval_stats_by_group(table, groups, *, class_names: Sequence[str] | None = None) -> dict:
    """:func:`interval_stats` per group. ``groups``: one label per record (e.g. :func:`age_bins`,
    :func:`sex_groups`), a sequence of label lists, or a multi-hot matrix, as in
    :func:`midtecg.evaluation.fidelity.breakdown`; records with no label are in no group."""
    t = _table(table, "table")
    masks = group_masks(groups, t["failed"].size, class_names)
    return {g: interval_stats(_subset(t, m)) for g, m in masks.items() if m.any()}


def compare_by_group(
    real,
    real_groups,
    synth,
    synth_groups,
    *,
    class_names: Sequence[str] | None = None,
    min_valid: int = 2,
    n_splits: int = 20,
    seed: int = 0,
) -> dict:
    """:func:`compare_intervals` within each group present in both sets (e.g. age bin or sex, taken from
    the conditions each synthetic record was generated with)."""
    r = _table(real, "real")
    s = _table(synth, "synth")
    mr = group_masks(real_groups, r["failed"].size, class_names)
    ms = group_masks(synth_groups, s["failed"].size, class_names)
    out = {}
    for g in mr:
        if g in ms and mr[g].any() and ms[g].any():
            out[g] = compare_intervals(
                _subset(r, mr[g]), _subset(s, ms[g]), min_valid=min_valid, n_splits=n_splits, seed=seed
            )
    return out
