"""Verdicts from real-vs-real floors (midtecg.evaluation.verdicts), on hand-made numbers with known answers."""

from __future__ import annotations

import math

import pytest

from midtecg.evaluation.verdicts import K_SPREAD, RELATIVE_MARGIN, combine, floor_check, verdicts


def test_floor_check_thresholds():
    # spread dominates: threshold = 10 + 3 * 2 = 16
    assert floor_check("d", 15.9, 10.0, 2.0)["verdict"] == "close"
    far = floor_check("d", 16.1, 10.0, 2.0)
    assert far["verdict"] == "far" and far["threshold"] == pytest.approx(10.0 + K_SPREAD * 2.0)
    assert "above" in far["why"] and "16.1" in far["why"]
    # a floor with no spread: the relative margin keeps round-off from deciding
    assert floor_check("d", 10.5, 10.0, 0.0)["threshold"] == pytest.approx(10.0 * (1 + RELATIVE_MARGIN))
    assert floor_check("d", 10.5, 10.0, 0.0)["verdict"] == "close"
    assert floor_check("d", 11.5, 10.0, 0.0)["verdict"] == "far"
    # better than the floor is close, never a special "better than real" verdict
    assert floor_check("d", 1.0, 10.0, 2.0)["verdict"] == "close"


def test_floor_check_higher_is_better_and_missing():
    assert floor_check("auc", 0.70, 0.80, 0.02, higher_is_better=True)["verdict"] == "far"
    assert floor_check("auc", 0.75, 0.80, 0.02, higher_is_better=True)["verdict"] == "close"
    for value, floor in ((math.nan, 1.0), (1.0, None), ("n/a", 1.0)):
        check = floor_check("d", value, floor, 0.1)
        assert check["verdict"] == "not_informative" and "could not be computed" in check["why"]


def test_combine():
    close, far = floor_check("a", 1.0, 1.0, 0.1), floor_check("b", 5.0, 1.0, 0.1)
    missing = floor_check("c", math.nan, 1.0, 0.1)
    assert combine([close, far, missing])["verdict"] == "far"
    assert "b 5" in combine([close, far])["reason"]
    got = combine([close, missing])
    assert got["verdict"] == "close" and "not informative: c" in got["reason"]
    assert combine([missing])["verdict"] == "not_informative"
    assert combine([])["verdict"] == "not_informative"
    assert combine([close], missing="switched off")["verdict"] == "not_measured"


def _block(value, mean, std):
    return {"value": value * 2, "value_at_floor_n": value, "floor_mean": mean, "floor_std": std}


def _ks(value, mean, std):
    return {"ks": value, "ks_synth_mean": value, "ks_floor_mean": mean, "ks_floor_std": std}


def test_bounded_metrics_with_a_too_wide_floor_are_not_informative():
    wide = floor_check("ks", 1.0, 0.6, 0.2, bound=1.0)  # threshold 1.2: a KS statistic can never exceed it
    assert wide["verdict"] == "not_informative" and "more records" in wide["why"]
    assert floor_check("ks", 1.0, 0.2, 0.05, bound=1.0)["verdict"] == "far"
    assert floor_check("precision", 0.0, 0.3, 0.2, higher_is_better=True, bound=0.0)["verdict"] == "not_informative"


def test_verdicts_on_a_result():
    result = {
        "embedding": {
            "frechet": _block(12.0, 10.0, 1.0),
            "kid": _block(0.01, 0.0, 0.01),
            "precision": _block(0.7, 0.72, 0.03),
            "recall": _block(0.2, 0.7, 0.03),
        },
        "distributional": {"mmd": _block(0.01, 0.01, 0.002)},
        "rhythm": {
            "comparison": {
                "groups": {"all": {"measures": {"rr_cv": _ks(0.9, 0.2, 0.05), "beat_corr": _ks(0.25, 0.2, 0.05)}}}
            }
        },
        "labels": {
            "superdiagnostic": {"synth_auc": 0.55, "real_auc": 0.55, "real_auc_std": 0.02},
            "all": {"synth_auc": 0.85, "real_auc": 0.9, "real_auc_std": 0.02},
        },
        "privacy": {"gate": {"verdict": "pass", "reason": "no copies", "margin": 0.1}},
        "errors": {"clinical": "RuntimeError: boom\ntraceback"},
    }
    v = verdicts(result)
    assert set(v) == {"fidelity", "rhythm", "clinical", "labels", "privacy"}  # utility only when run
    assert v["fidelity"]["verdict"] == "far" and "recall" in v["fidelity"]["reason"]
    assert v["rhythm"]["verdict"] == "far" and "RR-interval" in v["rhythm"]["reason"]
    assert v["clinical"]["verdict"] == "not_measured" and "boom" in v["clinical"]["reason"]
    # a classifier at chance on real records cannot judge; the other label set decides
    labels = v["labels"]
    assert [c["verdict"] for c in labels["checks"]] == ["not_informative", "close"]
    assert labels["verdict"] == "close"
    assert v["privacy"] == {"verdict": "pass", "reason": "no copies", "margin": 0.1}
    for axis in v.values():
        assert {"verdict", "reason"} <= set(axis)


def test_verdicts_when_nothing_ran():
    v = verdicts({"privacy": {"skipped": "no training records"}, "utility": {"skipped": "no labels"}})
    assert {a: x["verdict"] for a, x in v.items()} == {
        "fidelity": "not_measured",
        "rhythm": "not_measured",
        "clinical": "not_measured",
        "labels": "not_measured",
        "privacy": "not_measured",
        "utility": "not_measured",
    }
    assert v["privacy"]["reason"] == "no training records"


def test_headline_is_flat_with_short_keys():
    from midtecg.evaluation.verdicts import headline

    result = {
        "inputs": {"real": {"n": 20}, "synth": {"n": 10}},
        "pairing": {"n_pairs": 0},
        "embedding": {"frechet": _block(12.0, 10.0, 1.0)},
        "clinical": {"comparison": {"intervals": {"qrs_ms": _ks(0.5, 0.2, 0.05)}}, "heart_rate_error": {"mae": 4.0}},
        "privacy": {
            "gate": {
                "verdict": "fail",
                "reason": "copies",
                "checks": {"signal.near_copy_excess": {"value": 0.9, "threshold": 0.02}},
            }
        },
    }
    result["verdicts"] = verdicts(result)
    h = headline(result)
    assert h["n_real"] == 20 and h["n_synth"] == 10 and h["n_pairs"] == 0
    assert h["fidelity.verdict"] == "close" and h["fidelity.frechet"] == 12.0 and h["fidelity.frechet.floor"] == 10.0
    assert h["clinical.qrs_ms"] == 0.5 and h["clinical.heart_rate_mae_bpm"] == 4.0
    assert h["privacy.verdict"] == "fail" and h["privacy.signal.near_copy_excess"] == 0.9
    assert all(not isinstance(v, (dict, list)) for v in h.values())


def test_summary_value_reads_the_flat_summary_first_then_a_dotted_path():
    from midtecg.evaluation.verdicts import summary_value

    result = {
        "summary": {"fidelity.frechet": 3.5, "rhythm.rr_cv": None},
        "fidelity": {"frechet": "not this one"},
        "rhythm": {"comparison": {"groups": {"all": {"n": 7}}}},
    }
    assert summary_value(result, "fidelity.frechet") == 3.5
    assert summary_value(result, "rhythm.rr_cv") is None  # present in the summary, even as None
    assert summary_value(result, "rhythm.comparison.groups.all.n") == 7
    assert summary_value(result, "rhythm.comparison.missing.n") is None
    assert summary_value(result, "rhythm.comparison.groups.all.n.deeper") is None
    assert summary_value({}, "fidelity.frechet") is None
