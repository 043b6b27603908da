"""Tests of midtecg.evaluation.section_parts: reading a partial or damaged evaluation result, number formatting,
and the table of an axis's deciding numbers."""

from __future__ import annotations

import math

import numpy as np

from midtecg.evaluation.report import Report
from midtecg.evaluation.section_parts import VERDICT_WORDS, checks_table, finite, fmt, lookup


def test_finite_lookup_and_fmt_read_damaged_results():
    assert finite("2.5") == 2.5 and finite(np.float32(1.5)) == 1.5
    for bad in (None, "n/a", {}, float("inf"), float("nan")):
        assert math.isnan(finite(bad)), bad
    result = {"a": {"b": {"c": 3}}, "x": 5}
    assert lookup(result, "a", "b", "c") == 3
    assert lookup(result, "a", "missing", default="d") == "d"
    assert lookup(result, "x", "y") is None  # a number where a block was expected
    assert fmt(0.123456) == "0.1235" and fmt(123456.0, 3) == "1.23e+05"
    assert fmt(None) == "n/a" and fmt(float("inf")) == "n/a" and fmt("as is") == "as is"


def _items(report: Report) -> list[dict]:
    return [item for section in report.to_dict()["sections"] for item in section["items"]]


def test_checks_table_one_row_per_check_in_words():
    checks = [
        {"metric": "FD", "value": 9.0, "floor_mean": 1.0, "floor_std": 0.5, "threshold": 2.5, "verdict": "far"},
        {"metric": "MMD", "value": 0.01, "floor_mean": 0.01, "floor_std": 0.01, "threshold": 0.04, "verdict": "close"},
    ]
    report = Report("t")
    checks_table(report, {"verdicts": {"fidelity": {"verdict": "far", "checks": checks}}}, "fidelity")
    (table,) = _items(report)
    assert table["type"] == "table" and table["title"] == f"Verdict: {VERDICT_WORDS['far']}"
    rows = table["rows"].to_dict("records")
    assert [r["measure"] for r in rows] == ["FD", "MMD"]
    assert rows[0]["real floor"] == 1.0 and rows[0]["floor spread (sd)"] == 0.5 and rows[0]["threshold"] == 2.5
    assert [r["verdict"] for r in rows] == [VERDICT_WORDS["far"], VERDICT_WORDS["close"]]


def test_checks_table_without_checks_gives_the_reason_or_nothing():
    report = Report("t")
    checks_table(report, {"verdicts": {"labels": {"verdict": "far", "reason": "AUC too low."}}}, "labels")
    checks_table(report, {"verdicts": {"rhythm": {"verdict": "not_informative", "reason": "few."}}}, "rhythm")
    checks_table(report, {"verdicts": {}}, "clinical")
    checks_table(report, {}, "clinical")
    notes = _items(report)
    assert [n["level"] for n in notes] == ["warning", "info"]
    assert notes[0]["text"] == f"{VERDICT_WORDS['far']}: AUC too low."
    assert notes[1]["text"] == f"{VERDICT_WORDS['not_informative']}: few."
