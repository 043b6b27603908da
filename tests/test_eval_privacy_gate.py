"""The privacy gate's battery (midtecg.evaluation.privacy_gate) on real PTB-XL records (the 40-record fixture):
unseen real records pass; copies (exact, noisy, rescaled, shifted) fail in signal space alone and with
embeddings; garbage is not_informative; a typical non-copying set is not failed; the gate names its
thresholds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation.fidelity import to_jsonable
from midtecg.evaluation.privacy import privacy_audit
from midtecg.evaluation.privacy_gate import DEFAULT_GATE_THRESHOLDS, privacy_gate
from midtecg.evaluation.privacy_measures import dcr_test

try:
    from test_eval_helpers import FS, audit, fixture_folds
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import FS, audit, fixture_folds


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    return fixture_folds(tmp_path_factory)  # train: 20 records (folds 1-8), val: 10 (fold 9), test: 10 (fold 10)


def transformations(train, rng):
    """name -> ten transformed copies of training records (the first ten, in another order)."""
    src = train[rng.permutation(10)].astype(np.float64)
    shift = rng.integers(60, 480, 10)
    edge = np.stack([np.concatenate([np.repeat(s[:, :1], k, axis=1), s[:, :-k]], axis=1) for s, k in zip(src, shift)])
    zero = np.stack([np.concatenate([s[:, k:], np.zeros((12, k))], axis=1) for s, k in zip(src, shift)])
    return {
        "exact": src,
        "noise_0.02mV": src + 0.02 * rng.normal(size=src.shape),
        "x0.8": 0.8 * src,
        "x1.25": 1.25 * src,
        "rolled": np.stack([np.roll(s, k, axis=-1) for s, k in zip(src, shift)]),
        "shift_edge_padded": edge,
        "shift_zero_padded": zero,
        "per_lead_gain_and_offset": src * rng.uniform(0.7, 1.4, (10, 12, 1)) + rng.normal(0, 0.3, (10, 12, 1)),
    }


# ---------------------------------------------------------------------------------------------------------- the battery
def test_unseen_real_records_pass(folds):
    for embed in (False, True):
        result = audit(folds, folds["val"], embed=embed)
        gate = privacy_gate(result)
        assert gate["verdict"] == "pass", gate["reason"]
        assert result["signal"]["near_copy"]["count"] == 0
        assert "No sign of copying" in gate["reason"]


def test_copies_fail_in_signal_space_alone_and_with_embeddings(folds):
    rng = np.random.default_rng(0)
    for name, synth in transformations(folds["train"], rng).items():
        sig = audit(folds, synth)
        gate = privacy_gate(sig)
        assert gate["verdict"] == "fail", (name, gate["reason"])
        assert gate["failed"][0] == "signal.near_copy_excess", name
        nc = sig["signal"]["near_copy"]
        assert nc["fraction"] == 1.0 and nc["fraction_holdout"] == 0.0, name
        # every copy is matched to its own source
        src_index = sorted(e["train_index"] for e in nc["examples"])
        assert src_index == list(range(10)), name
        both = privacy_gate(audit(folds, synth, embed=True))
        assert both["verdict"] == "fail" and "signal.near_copy_excess" in both["failed"], name
        assert "near-copies of training ECGs" in both["reason"]


def test_exact_and_noisy_copies_also_fail_in_embedding_space(folds):
    rng = np.random.default_rng(1)
    copies = transformations(folds["train"], rng)
    for name in ("exact", "noise_0.02mV"):
        gate = privacy_gate(audit(folds, copies[name], embed=True))
        assert "embedding.near_copy_excess" in gate["failed"], (name, gate["checks"])


def test_a_few_copies_among_real_records_fail(folds):
    synth = np.concatenate([folds["val"], folds["train"][:2] * 1.1])  # 2 of 12 (17 %) copied
    gate = privacy_gate(audit(folds, synth))
    assert gate["verdict"] == "fail"
    assert gate["checks"]["signal.near_copy_excess"]["count"] == 2


def test_garbage_is_not_informative_never_pass(folds):
    rng = np.random.default_rng(2)
    t = np.arange(1000) / FS
    garbage = {
        "white_noise": 0.2 * rng.normal(size=(10, 12, 1000)),
        "sines_1.2Hz": 0.5 * np.sin(2 * np.pi * 1.2 * t + rng.uniform(0, 2 * np.pi, (10, 1, 1))) * np.ones((10, 12, 1)),
        "flat": np.zeros((10, 12, 1000)),
    }
    for name, synth in garbage.items():
        for embed in (False, True):
            gate = privacy_gate(audit(folds, synth, embed=embed))
            assert gate["verdict"] == "not_informative", (name, embed, gate["reason"])
            assert gate["far"] and "too unlike real ones" in gate["reason"]


def test_typical_non_copying_set_is_not_failed(folds):
    """Half-amplitude unseen records sit closer to everything in millivolts: the old Euclidean DCR test calls
    them copies (p < 0.01); the gate, reading effect sizes in an amplitude-invariant space, passes them."""
    synth = 0.5 * folds["val"]
    assert dcr_test(folds["train"], folds["test"], synth)["dcr_p_value"] < 0.01
    for embed in (False, True):
        gate = privacy_gate(audit(folds, synth, embed=embed))
        assert gate["verdict"] == "pass", (embed, gate["reason"])


# ------------------------------------------------------------------------------------------------------------- the gate
def test_gate_fidelity_input_degenerate_holdout_and_thresholds(folds):
    result = audit(folds, folds["val"])
    assert privacy_gate(result, fidelity_verdict="far")["verdict"] == "not_informative"
    assert privacy_gate(result, fidelity_verdict="close")["verdict"] == "pass"
    copies = audit(folds, folds["train"][:10])
    assert privacy_gate(copies, thresholds={"near_copy_excess": 1.0})["verdict"] == "pass"
    with pytest.raises(DataError, match="unknown thresholds"):
        privacy_gate(result, thresholds={"mia_auc": 0.6})
    with pytest.raises(DataError, match="privacy_audit result"):
        privacy_gate({"mia_distance_auc": 0.5})
    # a holdout made of training records: no yardstick
    leaky = privacy_audit(folds["train"], folds["train"][:10], folds["val"])
    assert np.isnan(leaky["signal"]["near_copy"]["threshold"])
    gate = privacy_gate(leaky)
    assert gate["verdict"] == "not_informative" and "not independent" in gate["reason"]


def test_gate_output_is_json_and_names_its_thresholds(folds):
    result = audit(folds, folds["val"], embed=True)
    gate = privacy_gate(result)
    assert set(gate) >= {"verdict", "reason", "checks", "failed", "far", "skipped", "thresholds"}
    assert gate["thresholds"] == DEFAULT_GATE_THRESHOLDS
    for name in (
        "signal.near_copy_excess",
        "signal.mia_advantage",
        "signal.far.aligned",
        "signal.far.spectral",
        "embedding.near_copy_excess",
        "embedding.mia_advantage",
        "embedding.far.euclidean",
    ):
        check = gate["checks"][name]
        assert {"value", "op", "threshold", "passed"} <= set(check), name
    json.dumps(to_jsonable({"audit": result, "gate": gate}), allow_nan=False)
    small = audit(folds, folds["val"], keep_arrays=False, classic=False)
    assert "dcr_synth" not in small["signal"] and "dcr_synth" in result["signal"]
    # the classic Euclidean measures ride along, per space, without deciding anything
    assert "classic" not in small["signal"]
    for space in ("signal", "embedding"):
        classic = result[space]["classic"]
        assert {"mia_distance_auc", "mia_density_auc", "nnaa_train", "nnaa_privacy_loss", "dcr_p_value"} <= set(classic)
        assert classic["space"] == space
