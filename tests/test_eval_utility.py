"""The utility experiments (run_utility): TRTR / TSTR / mixed / low-data structure and input checks on tiny data.
Small and CPU-only."""

from __future__ import annotations

import json

import pytest
import torch

from classifier_task import make_task, tiny_config
from midtecg.evaluation.utility import run_utility

torch.set_num_threads(1)


def test_run_utility_structure_on_tiny_data():
    xr, yr = make_task(40, seed=10, length=300)
    xs, ys = make_task(20, seed=11, length=300)
    xt, yt = make_task(24, seed=12, length=300)
    cfg = tiny_config(epochs=1, batch_size=16)
    result = run_utility(
        xr,
        yr,
        xs,
        ys,
        xt,
        yt,
        fractions=(0.25, 1.0),
        config=cfg,
        label_set_name="toy",
        class_names=["BURST", "FAST"],
        n_boot=50,
        progress=False,
    )
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text)["label_set"] == "toy"
    assert result["n_test"] == 24 and result["n_classes"] == 2 and result["fractions"] == [0.25, 1.0]
    exps = result["experiments"]
    assert set(exps) == {"TRTR", "TSTR", "TRTR+synth", "real_0.25", "real_0.25+synth", "real_1", "real_1+synth"}
    n_train = {k: v["n_train"] for k, v in exps.items()}
    assert n_train == {
        "TRTR": 40,
        "TSTR": 20,
        "TRTR+synth": 60,
        "real_0.25": 10,
        "real_0.25+synth": 30,
        "real_1": 40,
        "real_1+synth": 60,
    }
    assert exps["real_0.25+synth"]["n_real"] == 10 and exps["real_0.25+synth"]["n_synth"] == 20
    assert exps["real_1"]["same_as"] == "TRTR"
    for v in exps.values():
        assert 0.0 <= v["ci_low"] <= v["macro_auc"] <= v["ci_high"] <= 1.0
        assert v["dropped_classes"] == []
        assert set(v) >= {"train", "fraction", "n_real", "n_synth", "n_train", "macro_auc", "ci_low", "ci_high"}


def test_run_utility_rejects_mismatched_inputs():
    xr, yr = make_task(10, seed=0, length=300)
    xs, ys = make_task(10, seed=1, length=200)
    with pytest.raises(ValueError, match="length"):
        run_utility(xr, yr, xs, ys, xr, yr, config=tiny_config(epochs=1), progress=False)
    with pytest.raises(ValueError, match="fractions"):
        run_utility(xr, yr, xr, yr, xr, yr, fractions=(0.0,), config=tiny_config(epochs=1), progress=False)
