"""experiments/recipe/run.py: the arms' configs, the choice of the best combination, and a toy study end to
end (two arms at two processes, a few CPU-seconds each) that resumes without redoing finished work."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from midtecg.data.cache import prepare

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "experiments" / "recipe" / "run.py"


@pytest.fixture(scope="module")
def run():
    spec = importlib.util.spec_from_file_location("recipe_run", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_arms_differ_from_the_base_only_in_their_overrides(run, tmp_path):
    experiment = run.study.load_experiment(run.EXPERIMENT)
    overrides = run.arms(experiment)
    assert {"current", "fix-mel", "fix-init", "fixed", *run.OPTIONS} == set(overrides)
    configs = {n: run.arm_config(experiment, n, o, tmp_path, tmp_path) for n, o in overrides.items()}
    base = run.arm_config(experiment, "base", {}, tmp_path, tmp_path)
    run.check_only_overrides_differ(base, configs, overrides)
    current, fixed = configs["current"], configs["fixed"]
    assert (current.model.cond_init, current.objective.mel_log_order) == ("linear", "square_first")
    assert (fixed.model.cond_init, fixed.objective.mel_log_order) == ("normal", "clamp_first")
    assert configs["flow"].diffusion.prediction == "flow" and configs["scaling"].data.scaling == "std"
    for config in configs.values():  # the same model, budget, thread and seed for all
        assert (config.model.s4_variant, config.model.blocks, config.model.channels) == ("s4d", 6, 32)
        assert config.train.max_cpu_seconds == 1800 and config.train.threads == 1 and config.train.device == "cpu"
    configs["vpred"].train.lr *= 2
    with pytest.raises(ValueError, match="train.lr"):
        run.check_only_overrides_differ(base, configs, overrides)
    with pytest.raises(ValueError, match="table.key"):
        run.arm_config(experiment, "bad", {"lr": 1.0}, tmp_path, tmp_path)


def test_best_combination(run):
    overrides = run.arms(run.study.load_experiment(run.EXPERIMENT))
    scores = {"fixed": 10.0, "scaling": 8.0, "ztsnr": 11.0, "vpred": 9.0, "flow": 9.5}
    merged, used = run.best_overrides(scores, overrides, "lower")
    assert used == ["scaling", "vpred"]  # flow improved too, but less than v-prediction: not combined
    assert merged == {"data.scaling": "std", "diffusion.prediction": "v"}
    merged, used = run.best_overrides({**scores, "flow": 7.0, "ztsnr": 8.5}, overrides, "lower")
    assert used == ["flow", "scaling"] and merged == {"diffusion.prediction": "flow", "data.scaling": "std"}
    merged, used = run.best_overrides({**scores, "ztsnr": 8.5}, overrides, "lower")
    assert used == ["scaling", "ztsnr", "vpred"]
    assert merged == {"data.scaling": "std", "diffusion.zero_terminal_snr": True, "diffusion.prediction": "v"}
    assert run.best_overrides({k: -v for k, v in scores.items()}, overrides, "higher")[1] == ["scaling", "vpred"]
    assert run.best_overrides({**scores, "scaling": math.nan, "vpred": 10.0, "flow": 12.0}, overrides, "lower") == (
        {},
        [],
    )


def _study(args, env):
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_toy_study_end_to_end_and_resumable(tmp_path):
    cache = prepare(REPO / "tests" / "fixtures" / "ptbxl", tmp_path / "cache", progress=False)
    out = tmp_path / "recipe"
    args = [
        "--cache",
        str(cache),
        "--out",
        str(out),
        "--jobs",
        "2",
        "--arms",
        "current",
        "flow",
        "--set",
        "best=false",
        "--set",
        "budget_cpu_seconds=3",
        "--set",
        "model.channels=8",
        "--set",
        "model.blocks=1",
        "--set",
        "train.batch_size=4",
        "--set",
        "train.checkpoint_every=10",
        "--set",
        "train.val_every=20",
        "--set",
        "train.check_samples=2",
        "--set",
        "generate.steps=2",
        "--set",
        "generate.flow_steps=2",
        "--set",
        "evaluate.classifier_epochs=1",
        "--set",
        "evaluate.report=false",
        "--set",
        "evaluate.clinical=false",
        "--set",
        "train.val_batches=1",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    result = _study(args, env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["arms"]) == ["current", "flow"] and summary["best"] is None
    for name, row in summary["arms"].items():
        assert row["training"]["cpu_s"] >= 3 and row["training"]["steps"] > 0, name
        assert math.isfinite(row["training"]["val_loss"]) and row["training"]["warning"], name  # 3 s: far from data
        metrics = row["metrics"]
        assert math.isfinite(metrics["fidelity.frechet"]) and math.isfinite(metrics["paired.snr_db"]), name
        assert metrics["privacy.verdict"] in ("pass", "fail", "not_informative"), name
    assert summary["arms"]["current"]["overrides"] == {
        "model.cond_init": "linear",
        "objective.mel_log_order": "square_first",
    }
    assert json.loads((out / "runs" / "flow" / "latest.json").read_text())["path"].startswith("step-")
    assert "| current | model.cond_init=linear" in (out / "summary.md").read_text()
    assert json.loads((out / "compute.json").read_text())["train"]["jobs"] == 2
    # everything is done: a second run changes nothing but the summary
    done = {
        p: p.stat().st_mtime_ns
        for p in out.rglob("*")
        if p.suffix in (".npz", ".safetensors") or p.name in ("evaluation.json", "latest.json", "log.csv")
    }
    result = _study(args, env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "current: trained" in result.stderr and "flow: evaluated" in result.stderr
    assert done == {p: p.stat().st_mtime_ns for p in done}
