"""experiments/claims/run.py: equal-budget configs, the statistics, the verdicts, and a toy run end to end."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from midtecg.data.cache import prepare

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "experiments" / "claims" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("claims_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mean_ci_is_the_t_interval(run):
    values = [0.31, 0.35, 0.29]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    out = run.mean_ci(values)
    assert out["mean"] == pytest.approx(np.mean(values))
    assert out["ci"] == pytest.approx((high - low) / 2, rel=1e-3)
    assert math.isnan(run.mean_ci([0.3])["ci"]) and run.mean_ci([math.nan])["n"] == 0


def test_the_four_models_differ_only_in_objective_and_conditions(run, tmp_path):
    experiment = run.study.load_experiment(run.EXPERIMENT)
    configs = {m: run.model_config(experiment, m, 0, tmp_path, tmp_path, "cpu") for m in experiment["models"]}
    run.check_equal_budget(configs)
    assert {c.objective.kind for c in configs.values()} == {"eps", "midt"}
    assert {c.conditions.mode for c in configs.values()} == {"labels", "age", "sex"}
    configs["midt-ecg"].train.lr *= 2
    with pytest.raises(ValueError, match="train"):
        run.check_equal_budget(configs)


def _result(interlead: float, snr: float, mia: float, auc_small_synth: float) -> dict:
    utility = {"TRTR": 0.86, "real_0.1": 0.66, "real_0.1+synth": auc_small_synth}
    return {
        "summary": {"paired.interlead_error_mean": interlead, "paired.snr_db": snr},
        "privacy": {"signal": {"classic": {"mia_distance_auc": mia}}},
        "utility": {"superdiagnostic": {"experiments": {k: {"macro_auc": v} for k, v in utility.items()}}},
    }


def test_verdicts_follow_the_numbers(run):
    experiment = {"evaluate": {"utility_label_sets": ["superdiagnostic"], "utility_fractions": [0.1, 1.0]}}
    results = {
        "sssd-ecg": {s: _result(0.40 + 0.01 * s, -3.0, 0.60, 0.70) for s in range(3)},
        "midt-ecg": {s: _result(0.10 + 0.01 * s, -3.0 + 0.01 * s, 0.55, 0.85) for s in range(3)},
        "midt-ecg-age": {s: _result(0.10, -2.0 + 0.01 * s, 0.55, 0.86) for s in range(3)},
        "midt-ecg-sex": {s: _result(0.10, -4.0 + 0.01 * s, 0.55, 0.86) for s in range(3)},
    }
    interlead, privacy, snr, utility = run.judge_claims(results, experiment)
    expected = 100 * (1 - np.array([0.10, 0.11, 0.12]) / np.array([0.40, 0.41, 0.42]))
    assert interlead["reduction_percent"]["mean"] == pytest.approx(expected.mean())
    assert interlead["verdict"].startswith("holds in direction")
    # MIA AUC 0.60 -> 0.55 halves the distance from 0.5: a 50 % improvement on every seed
    assert privacy["improvement_percent"]["privacy.signal.classic.mia_distance_auc"]["mean"] == pytest.approx(50.0)
    assert snr["snr_gain_db"]["midt-ecg-age"]["mean"] == pytest.approx(1.0)
    assert snr["verdict"] == "holds for one of the two"
    assert utility["auc_differences"]["sssd-ecg"]["gap_to_all_real"]["mean"] == pytest.approx(-0.16)
    assert "fails for sssd-ecg" in utility["verdict"]


def test_toy_experiment_end_to_end_and_resumable(run, tmp_path):
    cache = prepare(REPO / "tests" / "fixtures" / "ptbxl", tmp_path / "cache", progress=False)
    out = tmp_path / "claims"
    args = [
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--device",
        "cpu",
        "--set",
        "seeds=[0]",
        "--set",
        'models=["sssd-ecg","midt-ecg-age"]',
        "--set",
        "model.channels=8",
        "--set",
        "model.blocks=1",
        "--set",
        "train.steps=3",
        "--set",
        "train.batch_size=4",
        "--set",
        "train.log_every=1",
        "--set",
        'generate.sampler="ddim"',
        "--set",
        "generate.steps=2",
        "--set",
        "generate.utility_steps=2",
        "--set",
        "generate.utility_n=6",
        "--set",
        "evaluate.classifier_epochs=1",
        "--set",
        "evaluate.utility_epochs=1",
        "--set",
        "evaluate.utility_fractions=[0.5,1.0]",
    ]
    assert run.main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["runs"] == {"sssd-ecg": [0], "midt-ecg-age": [0]}
    assert len(summary["claims"]) == 4 and (out / "report.html").is_file()
    assert "| claim | measured | verdict |" in (out / "summary.md").read_text()
    assert json.loads((out / "compute.json").read_text())["train"]["device"].startswith("CPU")
    evaluation = json.loads((out / "eval" / "midt-ecg-age-seed0" / "evaluation.json").read_text())
    assert evaluation["inputs"]["utility_synth"]["n"] == 6 and evaluation["summary"]["n_synth"] == 10
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    assert run.main(args + ["--stages", "train", "generate", "evaluate"]) == 0  # everything is done: nothing reruns
    assert before == {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
