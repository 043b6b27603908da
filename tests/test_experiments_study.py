"""experiments/study.py: the helpers the studies share (overrides, the cache check, reading numbers)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
import study  # noqa: E402


def test_overrides_are_toml_values_in_nested_tables(tmp_path):
    path = tmp_path / "experiment.toml"
    path.write_text("seed = 0\n[train]\nsteps = 10\n")
    experiment = study.load_experiment(path, ["seed=3", "train.steps=20", "model.channels=8", "name=plain words"])
    assert experiment == {"seed": 3, "train": {"steps": 20}, "model": {"channels": 8}, "name": "plain words"}
    with pytest.raises(ValueError, match="must look like key=value"):
        study.load_experiment(path, ["seed"])


def test_check_cache_names_the_flag_and_the_reason(tmp_path):
    with pytest.raises(SystemExit, match=f"--cache {tmp_path}: not a prepared cache"):
        study.check_cache(tmp_path, 100, "the study")
    (tmp_path / "manifest.json").write_text(json.dumps({"rate": 500}))
    with pytest.raises(SystemExit, match="500 Hz; the study needs 100 Hz"):
        study.check_cache(tmp_path, 100, "the study")
    assert study.check_cache(tmp_path, 500, "the study") == {"rate": 500}


def test_metric_is_a_float_or_nan():
    result = {"summary": {"fidelity.frechet": 4, "privacy.verdict": "pass", "flag": True}, "a": {"b": 2.5}}
    assert study.metric(result, "fidelity.frechet") == 4.0
    assert study.metric(result, "a.b") == 2.5
    for key in ("privacy.verdict", "flag", "missing.key"):
        assert math.isnan(study.metric(result, key))


def test_run_parallel_in_process_keeps_the_order():
    assert study.run_parallel(pow, [(2, 3), (3, 2)], jobs=1, threads=1) == [8, 9]
    assert study.run_parallel(pow, [], jobs=2, threads=1) == []
