"""Tests of midtecg.evaluation.rhythm: groups, measures and the real-vs-real floors on a battery of sets
(other real records must be close; irregular rhythm, varying beats, noise, sines and flat lines far)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.data.labels import labels_to_vector
from midtecg.evaluation.fidelity import to_jsonable
from midtecg.evaluation.rhythm import RHYTHM_MEASURES, compare_rhythm, rhythm_groups, rhythm_measures

try:
    from test_eval_helpers import real_ecgs_both_rates, real_ecgs_many
    from test_eval_templates import respaced_real, template_ecgs
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import real_ecgs_both_rates, real_ecgs_many
    from tests.test_eval_templates import respaced_real, template_ecgs

N_REAL = 18  # of the 32 fixture records with a 100 Hz file; the other 14 are the "other real" set


def _far(entry: dict) -> bool:
    """The lead's rule: the synthetic value at the floor's n beyond floor mean + 3 floor sd."""
    return entry["ks_synth_mean"] > entry["ks_floor_mean"] + 3 * entry["ks_floor_std"]


@pytest.fixture(scope="module")
def fixture_sets():
    x, _, codes = real_ecgs_both_rates()
    rng = np.random.default_rng(0)
    t = np.arange(1000) / 100.0
    n = x.shape[0] - N_REAL
    sets = {
        "real": x[:N_REAL],
        "other real": x[N_REAL:],
        "re-spaced real beats": respaced_real(x[N_REAL:], 100.0, seed=1),
        "beats of varying amplitude": template_ecgs(n, rr_jitter=0.02, amp_jitter=0.3, seed=2)[0],
        "white noise": rng.normal(0, 0.2, (n, 12, 1000)).astype(np.float32),
        "sines": (np.sin(2 * np.pi * rng.uniform(0.8, 1.6, (n, 1, 1)) * t) * np.ones((1, 12, 1))).astype(np.float32),
        "flat lines": np.zeros((n, 12, 1000), dtype=np.float32),
    }
    return {k: rhythm_measures(v, 100.0, cache_dir=False) for k, v in sets.items()}, codes


def _compare(measures, name):
    return compare_rhythm(measures["real"], measures[name], min_records=7)["groups"]["all"]["measures"]


def test_other_real_records_are_within_the_floor(fixture_sets):
    measures, _ = fixture_sets
    out = _compare(measures, "other real")
    for k in RHYTHM_MEASURES:
        assert out[k]["floor_n_ref"] == 9 and out[k]["floor_n_cmp"] == 9 and out[k]["floor_splits"] == 20
        assert not _far(out[k]), (k, out[k]["ks_synth_mean"], out[k]["ks_floor_mean"], out[k]["ks_floor_std"])


@pytest.mark.parametrize(
    "name,measure",
    [
        ("re-spaced real beats", "rr_cv"),
        ("beats of varying amplitude", "r_amp_cv"),
        ("white noise", "rr_cv"),
        ("white noise", "beat_corr"),
        ("sines", "p_wave_fraction"),
        ("flat lines", "rr_cv"),
    ],
)
def test_irregular_and_garbage_sets_are_far(fixture_sets, name, measure):
    measures, _ = fixture_sets
    entry = _compare(measures, name)[measure]
    assert _far(entry), (entry["ks_synth_mean"], entry["ks_floor_mean"], entry["ks_floor_std"])
    assert entry["ks_synth_mean"] > 0.7


@pytest.mark.parametrize("name", ["white noise", "sines", "flat lines"])
def test_garbage_never_looks_close_on_any_measure_of_beats(fixture_sets, name):
    measures, _ = fixture_sets
    out = _compare(measures, name)
    assert sum(_far(out[k]) for k in ("rr_cv", "beat_corr", "r_amp_cv", "p_wave_fraction")) >= 3


def test_rhythm_groups_and_grouped_comparison(fixture_sets):
    measures, codes = fixture_sets
    labels = np.stack([labels_to_vector(list(c)) for c in codes])
    groups = rhythm_groups(labels)
    assert set(groups) == {"SR", "other"} and (groups == "SR").sum() == sum("SR" in c for c in codes)
    res = compare_rhythm(
        measures["real"],
        measures["other real"],
        real_groups=groups[:N_REAL],
        synth_groups=groups[N_REAL:],
        min_records=4,
    )
    assert "all" in res["groups"] and "SR" in res["groups"]
    assert res["groups"]["SR"]["n_real"] == int((groups[:N_REAL] == "SR").sum())
    assert "other" in res["skipped_groups"]  # too few non-sinus records in the fixture
    assert "Kolmogorov-Smirnov" in res["distance"]
    json.dumps(to_jsonable(res), allow_nan=False)
    ungrouped = compare_rhythm(measures["real"], measures["other real"], min_records=7)
    assert list(ungrouped["groups"]) == ["all"] and set(ungrouped["skipped_groups"]) == {"SR", "other"}


def test_rhythm_measures_of_known_beats():
    x, tpl = template_ecgs(3, rr_jitter=0.15, seed=9)
    m = rhythm_measures(x, 100.0, cache_dir=False)
    assert set(m) == set(RHYTHM_MEASURES) and m["n_beats"].dtype.kind == "i"
    np.testing.assert_allclose(m["rr_cv"], [r.std() / r.mean() for r in tpl.rr], atol=0.006)
    assert (m["beat_corr"] > 0.99).all() and (m["r_amp_cv"] < 0.01).all()
    assert (m["p_wave_fraction"] >= 0.9).all()  # a beat after a short RR may have its P wave in the T wave


def test_bad_input_is_refused(fixture_sets):
    measures, _ = fixture_sets
    with pytest.raises(DataError, match="71"):
        rhythm_groups(np.zeros((3, 5)))
    with pytest.raises(DataError, match="missing"):
        compare_rhythm({"rr_cv": np.zeros(3)}, measures["real"])
    with pytest.raises(DataError, match="group labels"):
        compare_rhythm(measures["real"], measures["other real"], real_groups=["SR"], synth_groups=["SR"] * 14)
    with pytest.raises(DataError, match="unknown rhythm group"):
        compare_rhythm(measures["real"], measures["other real"], real_groups=["AF"] * N_REAL, synth_groups=["SR"] * 14)


@pytest.mark.slow
def test_shared_real_halves_are_close_and_jittered_rhythm_far():
    x = real_ecgs_many(300)
    m = rhythm_measures(x, 100.0, cache_dir=False)
    a, b = np.split(np.random.default_rng(0).permutation(300), 2)
    half = {k: v[a] for k, v in m.items()}
    other = {k: v[b] for k, v in m.items()}
    out = compare_rhythm(half, other)["groups"]["all"]["measures"]
    assert not any(_far(out[k]) for k in RHYTHM_MEASURES)
    jittered = rhythm_measures(respaced_real(x[b], 100.0, seed=3), 100.0, cache_dir=False)
    assert _far(compare_rhythm(half, jittered)["groups"]["all"]["measures"]["rr_cv"])
