"""The privacy gate's battery on real PTB-XL records (the 40-record fixture): unseen real records pass;
copies (exact, noisy, rescaled, shifted) fail in signal space alone and with embeddings; garbage is
not_informative; a typical non-copying set is not failed; membership inference is read against its baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation.distributional import log_psd
from midtecg.evaluation.fidelity import to_jsonable
from midtecg.evaluation.privacy import DEFAULT_GATE_THRESHOLDS, privacy_audit, privacy_gate
from midtecg.evaluation.privacy_measures import dcr_test

try:
    from test_eval_helpers import fixture_folds
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import fixture_folds

FS = 100


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    return fixture_folds(tmp_path_factory)  # train: 20 records (folds 1-8), val: 10 (fold 9), test: 10 (fold 10)


def band_embedding(x) -> np.ndarray:
    """A cheap deterministic, amplitude-sensitive embedding: log Welch power per lead in 20 bands to 30 Hz."""
    _, s = log_psd(x, fs=FS, nperseg=128)
    return s[:, :, 1:41:2].reshape(len(x), -1)


def audit(folds, synth, *, embed=False, holdout=None, **kw):
    train, ho = folds["train"], folds["test"] if holdout is None else holdout
    emb = (
        {"train": band_embedding(train), "holdout": band_embedding(ho), "synth": band_embedding(synth)}
        if embed
        else None
    )
    return privacy_audit(train, ho, synth, embeddings=emb, **kw)


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


# ------------------------------------------------------------------------------------------- the battery
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


def test_shifted_copy_lag_is_reported(folds):
    train = folds["train"]
    synth = np.concatenate([np.roll(train[3:4], 137, axis=-1), folds["val"][:5]])
    nc = audit(folds, synth)["signal"]["near_copy"]
    assert nc["count"] == 1
    assert nc["examples"][0] == {
        "synth_index": 0,
        "distance": pytest.approx(0.0, abs=1e-6),
        "train_index": 3,
        "lag": 137,
    }


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


_MIXING = np.random.default_rng(123).normal(size=(12, 12 * 60))


def draw(n, rng):
    """A fixed distribution of (n, 12, 60) 'signals': a 12-dim Gaussian latent mixed into 720 values + noise."""
    z = rng.normal(size=(n, 12))
    return ((z @ _MIXING) + 0.5 * rng.normal(size=(n, 720))).reshape(n, 12, 60)


def test_membership_inference_is_read_against_the_no_synthetic_baseline():
    """Members and non-members differ as populations (holdout amplitudes x 1.3): an amplitude-sensitive
    attack scores far above 0.5 with a generator that copies nobody, and so does the baseline."""
    rng = np.random.default_rng(3)
    train, synth, holdout = draw(300, rng), draw(300, rng), 1.3 * draw(300, rng)
    emb = {"train": train.reshape(300, -1), "holdout": holdout.reshape(300, -1), "synth": synth.reshape(300, -1)}
    result = privacy_audit(train, holdout, synth, embeddings=emb, rng=0)
    mia = result["embedding"]["mia"]
    assert mia["auc"] > 0.7 and mia["baseline_auc"] > 0.7  # the population shift alone
    assert abs(mia["advantage"]) < 0.05
    assert mia["n_reference"] == 150 and mia["n_members"] == 150 and mia["n_nonmembers"] == 300
    gate = privacy_gate(result)
    assert gate["checks"]["embedding.mia_advantage"]["passed"]
    assert gate["verdict"] == "pass", gate["reason"]


def test_membership_leak_without_near_copies_fails():
    """A generator whose output hugs its training records (heavy noise on each: no near-copies) gives the
    attack an advantage far beyond the baseline's and its standard error."""
    rng = np.random.default_rng(4)
    train, holdout = draw(300, rng), draw(300, rng)
    synth = train + 2.0 * rng.normal(size=train.shape)
    result = privacy_audit(train, holdout, synth, rng=0)
    mia = result["signal"]["mia"]
    assert mia["advantage"] > 0.3 and mia["advantage"] > 3 * mia["advantage_se"]
    assert result["signal"]["near_copy"]["count"] == 0
    gate = privacy_gate(result)
    assert gate["verdict"] == "fail" and gate["failed"] == ["signal.mia_advantage"]
    assert "membership-inference attack" in gate["reason"]


# ------------------------------------------------------------------------------------------------ the gate
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


def test_validation(folds):
    train, test = folds["train"], folds["test"]
    with pytest.raises(DataError, match="same leads and length"):
        privacy_audit(train, test, test[:, :, :900])
    with pytest.raises(DataError, match="at least 3"):
        privacy_audit(train, test[:2], test)
    with pytest.raises(DataError, match="lack"):
        privacy_audit(train, test, test, embeddings={"train": band_embedding(train)})
    emb = {"train": band_embedding(train), "holdout": band_embedding(test), "synth": band_embedding(test[:5])}
    with pytest.raises(DataError, match="rows"):
        privacy_audit(train, test, test, embeddings=emb)
    bad = test.copy()
    bad[4, 0, 0] = np.nan
    with pytest.raises(DataError, match="record 4"):
        privacy_audit(train, test, bad)
