"""Conditions really steer the generator: a tiny model trained on the 40 fixture records
(tests/fixtures/conditioning_model, numeric age, sex and heart rate) asked for ECGs that differ in one
condition only, measured with midtecg's own R-peak detector and amplitude features.

Sampling is seeded, so the numbers are fixed on a given platform; the margins are about half the measured
effects (README.md of the fixture model), so the tests fail when a condition stops reaching the network.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from midtecg.data.heart_rate import heart_rate_bpm
from midtecg.data.leads import WFDB_LEADS
from midtecg.generate import conditions_from_request
from midtecg.sample import load_generator, sample

MODEL = Path(__file__).resolve().parent / "fixtures" / "conditioning_model"
BASE = {"labels": "NORM,SR", "age": 50, "sex": "male", "heart_rate": 70}
N = 8


@pytest.fixture(scope="module")
def generator():
    torch.set_num_threads(1)
    return load_generator(MODEL, device="cpu")


def _draw(generator, **change) -> np.ndarray:
    request = conditions_from_request(n=N, **{**BASE, **change})
    return sample(generator, request, sampler="dpm++2m", steps=20, seed=0, progress=False).signals


def _chest_amplitude(signals: np.ndarray) -> float:
    chest = [WFDB_LEADS.index(lead) for lead in ("V2", "V3", "V4")]
    return float(np.ptp(signals[:, chest], axis=-1).mean())


def test_the_fixture_model_is_conditioned_on_age_sex_and_heart_rate(generator):
    assert generator.encoder.mode == "numeric"
    assert set(generator.encoder.numeric_fields) == {"age", "sex", "heart_rate"}


def test_asking_for_110_bpm_gives_faster_rhythms_than_55(generator):
    slow = heart_rate_bpm(_draw(generator, heart_rate=55), generator.fs)
    fast = heart_rate_bpm(_draw(generator, heart_rate=110), generator.fs)
    assert np.isfinite(slow).all() and np.isfinite(fast).all()
    assert np.median(fast) - np.median(slow) > 3.0, (slow.round(1), fast.round(1))  # 6.7 bpm measured
    assert (fast > np.median(slow)).mean() >= 0.75


def test_female_ecgs_have_smaller_chest_lead_qrs_than_male(generator):
    # In real ECGs the QRS voltage in V2-V4 is larger in men; the fixture model learnt it from 40 records.
    male, female = _chest_amplitude(_draw(generator, sex="male")), _chest_amplitude(_draw(generator, sex="female"))
    assert male - female > 0.2, (male, female)  # 0.48 mV measured


def test_the_same_seed_gives_the_same_conditioned_ecgs(generator):
    np.testing.assert_array_equal(_draw(generator, heart_rate=90), _draw(generator, heart_rate=90))
