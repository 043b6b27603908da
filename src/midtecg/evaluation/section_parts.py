"""The pieces every section of the evaluation page shares: the verdicts in words, safe reading of an
evaluation result (the dict or its saved JSON, where any block may be missing or hold non-numbers), number
formatting, and the table of an axis's deciding numbers against their real-vs-real floors.
"""

from __future__ import annotations

import math

import pandas as pd

from midtecg.evaluation.report import Report

__all__ = ["VERDICT_WORDS", "finite", "lookup", "fmt", "checks_table"]

VERDICT_WORDS = {
    "close": "CLOSE to real ECGs",
    "far": "FAR from real ECGs",
    "not_informative": "CANNOT TELL from these data",
    "not_measured": "not measured",
    "pass": "PASS: no sign of copied training records",
    "fail": "FAIL: synthetic ECGs are too close to training records",
}


def finite(value) -> float:
    """``value`` as a float; NaN when it is missing, not a number or not finite."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def lookup(d, *keys, default=None):
    """``d[k1][k2]...``, or ``default`` as soon as a level is not a dict or lacks the key."""
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return default
        d = d[k]
    return d


def fmt(v, digits: int = 4) -> str:
    """A number with ``digits`` significant digits (``"n/a"`` when not finite); strings as they are."""
    if isinstance(v, str):
        return v
    v = finite(v)
    return "n/a" if math.isnan(v) else f"{v:.{digits}g}"


def checks_table(report: Report, result: dict, axis: str) -> None:
    """The deciding numbers of one axis: value, floor mean +- spread, threshold, verdict."""
    v = lookup(result, "verdicts", axis) or {}
    checks = v.get("checks") or []
    if not checks:
        if v.get("reason"):
            report.add_note(
                f"{VERDICT_WORDS.get(v.get('verdict'), v.get('verdict'))}: {v['reason']}",
                level="warning" if v.get("verdict") in ("far", "fail") else "info",
            )
        return
    rows = [
        {
            "measure": c.get("metric"),
            "synthetic": c.get("value"),
            "real floor": c.get("floor_mean"),
            "floor spread (sd)": c.get("floor_std"),
            "threshold": c.get("threshold"),
            "verdict": VERDICT_WORDS.get(c.get("verdict"), c.get("verdict")),
        }
        for c in checks
    ]
    report.add_table(
        f"Verdict: {VERDICT_WORDS.get(v.get('verdict'), v.get('verdict'))}",
        pd.DataFrame(rows),
        caption="Synthetic values at the floor's number of records; see 'How to read the verdicts'.",
    )
