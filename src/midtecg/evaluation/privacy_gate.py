"""Privacy gate: one privacy audit (:func:`~midtecg.evaluation.privacy.privacy_audit`) in, ``pass`` / ``fail`` /
``not_informative`` out, with a reason in plain words and every deciding number beside its threshold.

A synthetic set that is merely *typical* (closer to the training set on average than the holdout, e.g. smooth,
low-noise records) is not failed: the gate uses effect sizes (a fraction of near-copies beyond the holdout's, an
AUC advantage beyond a margin and beyond its standard error), never a bare p-value. :func:`privacy_gate` gives
the order of the decision and the reasons for its thresholds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from midtecg.data.errors import DataError

__all__ = ["DEFAULT_GATE_THRESHOLDS", "privacy_gate"]

#: Gate thresholds (see :func:`privacy_gate` for the reasons).
DEFAULT_GATE_THRESHOLDS: dict[str, float] = {
    "near_copy_excess": 0.02,
    "mia_advantage": 0.10,
    "mia_advantage_z": 3.0,
    "far_fraction": 0.5,
}


def _pct(x: float) -> str:
    return f"{100.0 * x:.1f} %"


def _copy_check(space: str, nc: dict, th: dict, n_synth) -> tuple[dict, str]:
    """The near-copy check of one space: ``(check, reason if it fails else "")``."""
    ok = nc["excess"] <= th["near_copy_excess"]
    check = {
        "value": nc["excess"],
        "op": "<=",
        "threshold": th["near_copy_excess"],
        "passed": ok,
        "count": nc["count"],
        "fraction": nc["fraction"],
        "fraction_holdout": nc["fraction_holdout"],
        "distance_threshold": nc["threshold"],
    }
    reason = (
        ""
        if ok
        else (
            f"{nc['count']} of {n_synth} synthetic ECGs ({_pct(nc['fraction'])}) are near-copies of training ECGs in "
            f"{space} space (closer to one than {nc['factor']:g} times the distance within which the closest "
            f"{nc['quantile']:g} % of unseen real ECGs lie; unseen real ECGs: {_pct(nc['fraction_holdout'])}; allowed "
            f"excess {_pct(th['near_copy_excess'])})"
        )
    )
    return check, reason


def _mia_check(space: str, mia: dict, th: dict) -> tuple[dict, str]:
    """The membership check of one space: ``(check, reason if it fails else "")``."""
    z = mia["advantage"] / mia["advantage_se"] if mia["advantage_se"] > 0 else math.inf
    ok = not (mia["advantage"] > th["mia_advantage"] and z > th["mia_advantage_z"])
    check = {
        "value": mia["advantage"],
        "op": "<=",
        "threshold": th["mia_advantage"],
        "passed": ok,
        "z": z,
        "z_threshold": th["mia_advantage_z"],
        "auc": mia["auc"],
        "baseline_auc": mia["baseline_auc"],
    }
    reason = (
        ""
        if ok
        else (
            f"a membership-inference attack using the synthetic ECGs ({space} space) tells training ECGs from unseen "
            f"ones with AUC {mia['auc']:.3f}, {mia['advantage']:.3f} above the same attack using real training ECGs "
            f"instead ({mia['baseline_auc']:.3f}; allowed {th['mia_advantage']:.2f})"
        )
    )
    return check, reason


def _far_check(far: dict, th: dict) -> dict:
    return {
        "value": far["fraction_beyond"],
        "op": "<=",
        "threshold": th["far_fraction"],
        "passed": far["fraction_beyond"] <= th["far_fraction"],
        "distance_threshold": far["holdout_quantile_value"],
        "median_synth": far["median_synth"],
        "median_holdout": far["median_holdout"],
    }


def privacy_gate(
    audit: Mapping, *, fidelity_verdict: str | None = None, thresholds: Mapping[str, float] | None = None
) -> dict:
    """``pass`` / ``fail`` / ``not_informative`` from one :func:`~midtecg.evaluation.privacy.privacy_audit` result.

    Order of the decision:

    1. **fail** when, in any space, (a) ``near_copy.excess > near_copy_excess`` (0.02): more than 2 % of
       the synthetic records, beyond the holdout's own rate, are near-copies of training records (a set of
       copies gives ~1.0; an independent set 0.00 +- 0.01), or (b) membership inference gains more than
       ``mia_advantage`` (0.10) AUC over the no-synthetic baseline *and* that gain exceeds
       ``mia_advantage_z`` (3) of its standard errors (so a few dozen records cannot fail by chance). 0.10
       above the baseline mirrors the common reading of an AUC of 0.6 as the edge of low risk.
    2. **not_informative** when the synthetic set is far from the data: in any measured distance more than
       ``far_fraction`` (half) of the synthetic records lie beyond the holdout's ``far_quantile`` percentile
       (an independent real set: ~1 %; noise, sines and flat lines: ~100 %), or when the caller's fidelity
       verdict (``fidelity_verdict``) is ``"far"``. Such a set cannot copy anything, but that says nothing of
       a generator whose output resembles the data. Also when the holdout itself holds copies of training
       records (no near-copy threshold).
    3. **pass** otherwise.

    ``thresholds`` overrides entries of :data:`DEFAULT_GATE_THRESHOLDS`. A membership check that could not
    be computed (too few records) is listed under ``skipped`` and decides nothing.

    Measured on PTB-XL (``benchmarks/privacy_false_alarm.py``, train = folds 1-8, 200 synthetic records,
    classifier embeddings): 60 of 60 draws of unseen real records passed (three ways of drawing them, the
    largest near-copy excess 0.00, membership advantage at most +0.05, far fraction at most 0.045); exact,
    noisy (0.02 and 0.05 mV), rescaled (x 0.8, x 1.25), rolled and edge-padded shifted copies, and 5 % or 50 %
    of copies among unseen records, failed in signal space alone; white noise, 1.2 Hz sines and flat lines were
    ``not_informative``.

    Returns ``{"verdict", "reason" (plain words), "checks": {"<space>.<check>": {"value", "op", "threshold",
    "passed", ...}}, "failed", "far", "skipped" (check names), "fidelity_verdict", "thresholds"}``.
    """
    th = {**DEFAULT_GATE_THRESHOLDS, **(thresholds or {})}
    unknown = set(th) - set(DEFAULT_GATE_THRESHOLDS)
    if unknown:
        raise DataError(f"privacy_gate: unknown thresholds {sorted(unknown)}; known: {sorted(DEFAULT_GATE_THRESHOLDS)}")
    spaces = [s for s in ("signal", "embedding") if s in audit]
    if not spaces:
        raise DataError("privacy_gate: expected a privacy_audit result (with a 'signal' or 'embedding' space)")
    checks: dict = {}
    failed, far, skipped, reasons, degenerate = [], [], [], [], []
    for space in spaces:
        a = audit[space]
        if math.isnan(a["near_copy"]["excess"]):
            degenerate.append(space)
            skipped.append(f"{space}.near_copy_excess")
        else:
            checks[f"{space}.near_copy_excess"], why = _copy_check(space, a["near_copy"], th, audit.get("n_synth", "?"))
            if why:
                failed.append(f"{space}.near_copy_excess")
                reasons.append(why)
        if math.isnan(a["mia"]["advantage"]):
            skipped.append(f"{space}.mia_advantage")
        else:
            checks[f"{space}.mia_advantage"], why = _mia_check(space, a["mia"], th)
            if why:
                failed.append(f"{space}.mia_advantage")
                reasons.append(why)
        for dist_name, f in a["far"].items():
            checks[f"{space}.far.{dist_name}"] = _far_check(f, th)
            if not checks[f"{space}.far.{dist_name}"]["passed"]:
                far.append(f"{space}.far.{dist_name}")
    base = {
        "checks": checks,
        "failed": failed,
        "far": far,
        "skipped": skipped,
        "fidelity_verdict": fidelity_verdict,
        "thresholds": dict(th),
    }
    if failed:
        return {"verdict": "fail", "reason": "Copying or membership leakage: " + "; ".join(reasons) + ".", **base}
    if degenerate:
        return {
            "verdict": "not_informative",
            "reason": (
                f"The holdout is not independent of the training set ({', '.join(degenerate)} space): at least 5 % of "
                "its records are exact copies of training records, so it cannot serve as the yardstick for "
                "near-copies. Choose a holdout of other patients."
            ),
            **base,
        }
    if far or fidelity_verdict == "far":
        q = audit.get("settings", {}).get("far_quantile", math.nan)
        detail = (
            f"{_pct(checks[far[0]]['value'])} of the synthetic ECGs are farther from every training ECG "
            f"than {q:g} % of unseen real ECGs ({', '.join(far)})"
            if far
            else "the fidelity verdict is 'far'"
        )
        return {
            "verdict": "not_informative",
            "reason": (
                f"No copying found, but the synthetic ECGs are too unlike real ones for that to mean anything: {detail}. "
                "A set this far from the data cannot copy it, which says nothing about a generator whose output "
                "resembles the data."
            ),
            **base,
        }
    nc_parts = [f"{checks[f'{s}.near_copy_excess']['count']} near-copies in {s} space" for s in spaces]
    mia_parts = [
        f"{checks[f'{s}.mia_advantage']['value']:+.3f} AUC over the no-synthetic baseline in {s} space"
        for s in spaces
        if f"{s}.mia_advantage" in checks
    ]
    return {
        "verdict": "pass",
        "reason": (
            "No sign of copying or membership leakage: "
            + ", ".join(nc_parts)
            + (f" (allowed excess over unseen real ECGs {_pct(th['near_copy_excess'])})" if nc_parts else "")
            + (
                "; membership inference " + ", ".join(mia_parts) + f" (allowed {th['mia_advantage']:.2f})"
                if mia_parts
                else ""
            )
            + "."
        ),
        **base,
    }
