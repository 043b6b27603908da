"""The privacy audit (midtecg.evaluation.privacy) on real PTB-XL records (the 40-record fixture) and on a fixed
synthetic distribution: a shifted copy is found with its lag, membership inference is read against its
baseline (a population shift alone gives no advantage; output that hugs its training records does), and bad
input is refused with the record named."""

from __future__ import annotations

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation.privacy import privacy_audit
from midtecg.evaluation.privacy_gate import privacy_gate

try:
    from test_eval_helpers import audit, band_embedding, fixture_folds
except ImportError:  # tests/ imported as a package
    from tests.test_eval_helpers import audit, band_embedding, fixture_folds


@pytest.fixture(scope="module")
def folds(tmp_path_factory):
    return fixture_folds(tmp_path_factory)  # train: 20 records (folds 1-8), val: 10 (fold 9), test: 10 (fold 10)


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


# ------------------------------------------------------------------------------------------------- membership inference
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
