"""Comparing a per-record measure between a real and a synthetic set, with a real-vs-real floor.

:func:`compare_values` is used for every per-record measure (rhythm, clinical intervals):

- **Distance**: the two-sample Kolmogorov-Smirnov statistic (largest gap between the two empirical
  distribution functions), with records whose measure is NaN ("not measurable") counted as a value above
  every measured one. KS is unit-free and bounded in [0, 1], so one decision rule fits every measure (RR CV,
  correlations, fractions, intervals in ms); it depends only on ranks, so one extreme record cannot dominate
  it; and counting NaN as a value makes a set whose measure mostly fails far from a set where it is measured
  (KS >= the difference of the two missing rates), instead of silently comparing the few records that
  survived. The 1-Wasserstein distance (same unit as the measure, over measured records) is reported beside
  it for reading, not for verdicts.
- **Floor**: ``n_splits`` random splits of the real set into two halves A and B. The floor is the distance
  between A and ``m`` records of B, the synthetic value at the floor's n the distance between the same A and
  ``m`` synthetic records, with ``m = min(n_synth, |B|)``: both are measured at exactly the same sample
  sizes, so small-n bias reads the same on both sides (a full-size synthetic distance is not comparable
  with a half-size floor). Mean and standard deviation over the splits are reported.

A synthetic set is indistinguishable from real data on a measure when its value at the floor's n is
within the floor's spread; the suite's verdict rule (e.g. ``far`` beyond ``floor_mean + 3 floor_std``)
lives with the suite.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

__all__ = ["ks_distance", "summarise", "compare_values", "DISTANCE_NOTE"]

DISTANCE_NOTE = (
    "Kolmogorov-Smirnov statistic, records where the measure is not measurable counted as a value "
    "above every measured one; floor: real half vs real half at the same n as the synthetic "
    "comparison, over random splits (mean, std)"
)


def ks_distance(a, b) -> float:
    """Two-sample KS statistic of ``a`` and ``b`` with NaN counted as +inf; NaN if either is empty."""
    a = np.sort(np.where(np.isnan(a), np.inf, np.asarray(a, dtype=np.float64)))
    b = np.sort(np.where(np.isnan(b), np.inf, np.asarray(b, dtype=np.float64)))
    if a.size == 0 or b.size == 0:
        return math.nan
    pooled = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, pooled, side="right") / a.size
    cdf_b = np.searchsorted(b, pooled, side="right") / b.size
    return float(np.abs(cdf_a - cdf_b).max())


def _wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return float(stats.wasserstein_distance(a, b)) if a.size >= 2 and b.size >= 2 else math.nan


def summarise(values) -> dict:
    """``{"n", "n_measured", "missing_rate", "median", "q25", "q75", "iqr", "p90", "mean", "std"}``."""
    v = np.asarray(values, dtype=np.float64).ravel()
    ok = v[np.isfinite(v)]
    out = {
        "n": int(v.size),
        "n_measured": int(ok.size),
        "missing_rate": float(1.0 - ok.size / v.size) if v.size else math.nan,
    }
    if ok.size:
        q25, med, q75, p90 = np.percentile(ok, [25, 50, 75, 90])
        out.update(
            median=float(med),
            q25=float(q25),
            q75=float(q75),
            iqr=float(q75 - q25),
            p90=float(p90),
            mean=float(ok.mean()),
            std=float(ok.std()),
        )
    else:
        out.update({k: math.nan for k in ("median", "q25", "q75", "iqr", "p90", "mean", "std")})
    return out


def _mean_std(values: list[float]) -> tuple[float, float]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return (float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan) if v.size else (math.nan, math.nan)


def compare_values(real, synth, *, n_splits: int = 20, seed: int = 0, min_records: int = 10) -> dict:
    """Distance between the per-record values of a real and a synthetic set, with its real-vs-real floor.

    Returns ``{"real": summarise(real), "synth": summarise(synth), "ks", "wasserstein"`` (full sets),
    ``"ks_floor_mean", "ks_floor_std", "ks_synth_mean", "ks_synth_std"`` (synthetic value at the floor's n),
    the same four for ``wasserstein_*``, ``"floor_n_ref", "floor_n_cmp", "floor_splits"}``. Floors are NaN
    when the real set has under ``2 * min_records`` records or the synthetic set under ``min_records``;
    distances are NaN when either set is empty.
    """
    r = np.asarray(real, dtype=np.float64).ravel()
    s = np.asarray(synth, dtype=np.float64).ravel()
    out = {"real": summarise(r), "synth": summarise(s), "ks": ks_distance(r, s), "wasserstein": _wasserstein(r, s)}
    n_ref = r.size // 2
    m = min(s.size, r.size - n_ref)
    nan = math.nan
    floor = {
        "ks_floor_mean": nan,
        "ks_floor_std": nan,
        "ks_synth_mean": nan,
        "ks_synth_std": nan,
        "wasserstein_floor_mean": nan,
        "wasserstein_floor_std": nan,
        "wasserstein_synth_mean": nan,
        "wasserstein_synth_std": nan,
        "floor_n_ref": int(n_ref),
        "floor_n_cmp": int(m),
        "floor_splits": 0,
    }
    if n_ref >= min_records and s.size >= min_records and n_splits >= 2:
        rng = np.random.default_rng(seed)
        ks_f, ks_s, w_f, w_s = [], [], [], []
        for _ in range(int(n_splits)):
            perm = rng.permutation(r.size)
            a, b = r[perm[:n_ref]], r[perm[n_ref : n_ref + m]]
            pick = s[rng.permutation(s.size)[:m]]
            ks_f.append(ks_distance(a, b))
            ks_s.append(ks_distance(a, pick))
            w_f.append(_wasserstein(a, b))
            w_s.append(_wasserstein(a, pick))
        floor.update(floor_splits=int(n_splits))
        for name, values in (
            ("ks_floor", ks_f),
            ("ks_synth", ks_s),
            ("wasserstein_floor", w_f),
            ("wasserstein_synth", w_s),
        ):
            floor[f"{name}_mean"], floor[f"{name}_std"] = _mean_std(values)
    out.update(floor)
    return out
