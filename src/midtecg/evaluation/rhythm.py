"""Rhythm: is each synthetic ECG one regular train of similar beats with a P wave before each QRS, as real
records in sinus rhythm are?

Per record (:func:`rhythm_measures`, computed with the delineation in one pass by
:func:`midtecg.evaluation.ecg_measures.measure_ecgs` and cached with it):

- ``rr_cv``: RR-interval coefficient of variation, std / mean (ddof 0) of all RR intervals between the R
  peaks of :func:`midtecg.data.heart_rate.detect_r_peaks` (NaN under 3 R peaks). Sinus rhythm is regular
  (PTB-XL SR: median about 0.02), atrial fibrillation or a generator that spaces beats at random is not;
- ``beat_corr``: beat-to-beat morphology consistency, the median over beats of the Pearson correlation of
  each beat with the record's median beat on the 8 independent leads (I, II, V1-V6, each mean-centred,
  concatenated) in a fixed window of -200..+400 ms around R, after 0.5-40 Hz conditioning at 500 Hz;
- ``r_amp_cv``: CV over beats of the QRS amplitude (sum over the 8 leads of the peak-to-peak value within
  +-50 ms of R);
- ``p_wave_fraction``: fraction of beats with the median beat's P wave before the QRS (their P window
  correlates with it at r >= 0.5; 0 when the median beat has no P wave above noise); NaN where no QRS
  was delineated;
- ``n_beats`` (R peaks found) and ``heart_rate`` (bpm, 60 / median RR).

:func:`compare_rhythm` compares real and synthetic distributions of each measure, over all records and
by rhythm group (:func:`rhythm_groups`: sinus rhythm or not), with the distance and floors of
:func:`midtecg.evaluation.floors.compare_values`.
"""

from __future__ import annotations

import numpy as np

from midtecg.data.errors import DataError
from midtecg.data.labels import NUM_LABELS, code_to_index

from .ecg_measures import measure_ecgs
from .floors import DISTANCE_NOTE, compare_values

__all__ = ["RHYTHM_MEASURES", "rhythm_measures", "rhythm_groups", "compare_rhythm"]

RHYTHM_MEASURES: tuple[str, ...] = ("rr_cv", "beat_corr", "r_amp_cv", "p_wave_fraction", "n_beats", "heart_rate")
GROUPS: tuple[str, ...] = ("all", "SR", "other")
_NOTE = (
    "per record: RR-interval CV, median correlation of each beat with the median beat (I, II, V1-V6, "
    "-200..+400 ms around R), CV of the QRS amplitude, fraction of beats with the median beat's P wave, "
    "R peaks found, heart rate; groups by the records' labels (SR: sinus rhythm)"
)


def rhythm_measures(signals, fs: float, *, n_jobs: int = 1, cache_dir=None) -> dict[str, np.ndarray]:
    """Per-record rhythm measures (module docstring) of ``signals`` (N, 12, L) mV, WFDB lead order.

    Returns ``{measure: (N,) array}`` for ``RHYTHM_MEASURES`` (float, NaN where not measurable; ``n_beats``
    int). ``cache_dir``: see :func:`midtecg.evaluation.measure_cache.cached_measure` (False: no cache).
    """
    m = measure_ecgs(signals, fs, n_jobs=n_jobs, cache_dir=cache_dir)
    return {k: m[k] for k in RHYTHM_MEASURES}


def rhythm_groups(labels71) -> np.ndarray:
    """(N, 71) multi-hot SCP labels (alphabetical code order) -> (N,) ``"SR"`` (sinus rhythm, code SR) or
    ``"other"``."""
    y = np.asarray(labels71)
    if y.ndim != 2 or y.shape[1] != NUM_LABELS:
        raise DataError(f"labels71: expected (N, {NUM_LABELS}) multi-hot SCP labels, got shape {y.shape}")
    return np.where(y[:, code_to_index("SR")] > 0.5, "SR", "other")


def _rhythm_masks(groups, n: int, name: str) -> dict[str, np.ndarray]:
    masks = {"all": np.ones(n, dtype=bool)}
    if groups is None:
        return masks
    g = np.asarray(groups).astype(str).ravel()
    if g.size != n:
        raise DataError(f"{name}: {g.size} group labels for {n} records")
    unknown = sorted(set(g) - {"SR", "other"})
    if unknown:
        raise DataError(f"{name}: unknown rhythm group(s) {unknown[:5]}; expected 'SR' or 'other'")
    masks.update(SR=g == "SR", other=g == "other")
    return masks


def _table(t, name: str) -> dict[str, np.ndarray]:
    if not isinstance(t, dict):
        raise DataError(f"{name}: expected the dict returned by rhythm_measures()")
    missing = [k for k in RHYTHM_MEASURES if k not in t]
    if missing:
        raise DataError(f"{name}: missing rhythm measure(s) {missing}")
    cols = {k: np.asarray(t[k], dtype=np.float64).ravel() for k in RHYTHM_MEASURES}
    n = cols["rr_cv"].size
    if any(v.size != n for v in cols.values()):
        raise DataError(f"{name}: rhythm measures have different lengths")
    return cols


def compare_rhythm(
    real, synth, *, real_groups=None, synth_groups=None, n_splits: int = 20, seed: int = 0, min_records: int = 10
) -> dict:
    """Compare the rhythm measures of a real and a synthetic set (outputs of :func:`rhythm_measures`).

    Groups: ``"all"``, and ``"SR"`` / ``"other"`` when both ``real_groups`` and ``synth_groups`` are given
    (:func:`rhythm_groups`; for synthetic ECGs, of the labels they were generated with) and both sides have
    at least ``min_records`` records in the group (the real side at least twice that, for its floor).

    Returns ``{"groups": {group: {"n_real", "n_synth", "measures": {measure: compare_values(...)}}},
    "skipped_groups": {group: reason}, "measures", "distance", "note"}``; see
    :func:`midtecg.evaluation.floors.compare_values` for the per-measure entries (real / synthetic median,
    IQR and 90th percentile, KS and Wasserstein distances, floors and the synthetic value at the floor's n).
    """
    r = _table(real, "real")
    s = _table(synth, "synth")
    n_r, n_s = r["rr_cv"].size, s["rr_cv"].size
    grouped = real_groups is not None and synth_groups is not None
    mr = _rhythm_masks(real_groups if grouped else None, n_r, "real_groups")
    ms = _rhythm_masks(synth_groups if grouped else None, n_s, "synth_groups")
    out: dict = {
        "groups": {},
        "skipped_groups": {},
        "measures": list(RHYTHM_MEASURES),
        "distance": DISTANCE_NOTE,
        "note": _NOTE,
    }
    if not grouped:
        out["skipped_groups"].update({g: "no rhythm groups given for both sets" for g in GROUPS[1:]})
    for g in mr:
        a, b = int(mr[g].sum()), int(ms[g].sum())
        if g != "all" and (a < 2 * min_records or b < min_records):
            out["skipped_groups"][g] = f"{a} real and {b} synthetic records (needs {2 * min_records} and {min_records})"
            continue
        out["groups"][g] = {
            "n_real": a,
            "n_synth": b,
            "measures": {
                k: compare_values(r[k][mr[g]], s[k][ms[g]], n_splits=n_splits, seed=seed, min_records=min_records)
                for k in RHYTHM_MEASURES
            },
        }
    return out
