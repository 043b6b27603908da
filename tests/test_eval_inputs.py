"""Inputs of the evaluation suite (midtecg.evaluation.inputs): every accepted form, pairing by ecg_id only,
and clear errors for sets that cannot be compared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from midtecg.data.errors import DataError
from midtecg.evaluation.inputs import check_compatible, default_train_source, load_ecg_set, pair_records


@pytest.fixture(scope="module")
def test_set(fixture_cache):
    return load_ecg_set((fixture_cache, "test"), role="real")


def test_cache_forms_and_default_train(fixture_cache, test_set):
    assert len(test_set) == 10 and test_set.fs == 100.0 and test_set.labels71() is not None
    assert len(load_ecg_set(fixture_cache)) == 10  # a bare cache path is its test split
    assert len(load_ecg_set((fixture_cache, [9, 10]))) == 20
    assert default_train_source((fixture_cache, "test")) == (fixture_cache, "train")
    assert default_train_source(np.zeros((2, 12, 10))) is None
    with pytest.raises(DataError, match="not a prepared cache"):
        load_ecg_set(fixture_cache / "signals.npy", split="test")


def test_wfdb_folder_pairs_by_ecg_id_and_reads_conditions(test_set, tmp_path):
    from midtecg.io import save_npz, write_conditions_csv, write_wfdb

    ids = test_set.ids()
    rng = np.random.default_rng(3)
    synth = test_set.signals + rng.normal(0, 0.02, test_set.signals.shape).astype(np.float32)
    order = rng.permutation(len(ids))  # written shuffled: pairing must use the ids, not the order
    names = [f"synth_ecg{int(i):05d}" for i in ids[order]]
    comments = [{"labels": "NORM", "age": 60, "sex": "woman", "heart_rate": 70.0} for _ in order]
    folder = tmp_path / "gen" / "wfdb"
    write_wfdb(synth[order], folder, fs=100, names=names, comments=comments)

    got = load_ecg_set(folder, role="synth")  # header comments only
    assert got.fs == 100.0 and list(got.ids()) == sorted(ids)  # records are read in name order
    assert set(got.table["sex"]) == {1.0} and got.labels71() is not None  # "woman" is female everywhere
    pairing = pair_records(test_set, got)
    assert pairing["method"] == "ecg_id" and pairing["n_pairs"] == len(ids)
    assert np.allclose(got.signals[pairing["synth_index"]], synth[pairing["real_index"]], atol=1e-3)

    # conditions.csv next to the wfdb folder (the `midtecg generate` layout) wins over the comments
    write_conditions_csv(
        tmp_path / "gen" / "conditions.csv",
        pd.DataFrame({"name": names, "labels": ["IMI"] * len(names), "heart_rate": 80.0}),
    )
    got = load_ecg_set(tmp_path / "gen", role="synth")
    assert np.allclose(got.column("heart_rate"), 80.0)
    assert any("conditions read from" in note for note in got.notes)

    path = save_npz(tmp_path / "ecgs.npz", synth, pd.DataFrame({"ecg_id": ids}), fs=100)
    assert list(load_ecg_set(path).ids()) == list(ids)


def test_never_paired_by_order(test_set):
    x = test_set.signals
    same_order = load_ecg_set((x + 0.01, None, 100))
    pairing = pair_records(load_ecg_set((x, None, 100)), same_order)
    assert pairing["method"] is None and pairing["n_pairs"] == 0 and "never paired by order" in pairing["reason"]
    # one side with ids is not enough
    assert pair_records(test_set, same_order)["method"] is None
    # ids that match no real record
    other = load_ecg_set((x, pd.DataFrame({"ecg_id": test_set.ids() + 100000}), 100))
    assert "no synthetic ecg_id matches" in pair_records(test_set, other)["reason"]
    # a partial match pairs what it can and says how many are left
    part = load_ecg_set((x[:4], pd.DataFrame({"ecg_id": list(test_set.ids()[:3]) + [999999]}), 100))
    pairing = pair_records(test_set, part)
    assert pairing["n_pairs"] == 3 and "1 synthetic record(s) have no real partner" in pairing["reason"]


def test_incompatible_sets_are_refused(test_set):
    x = test_set.signals
    real = load_ecg_set((x, None, 100))
    with pytest.raises(DataError, match="samples"):
        check_compatible(real, load_ecg_set((x[..., :500], None, 100)), "synth")
    with pytest.raises(DataError, match="Hz"):
        check_compatible(real, load_ecg_set((x, None, 500)), "synth")
    with pytest.raises(DataError, match="12 leads"):
        load_ecg_set(x[:, :8], role="synth")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_ecg_set("/nonexistent/synthetic", role="synth")
    with pytest.raises(DataError, match="float millivolts"):
        load_ecg_set(np.array([["a"] * 10] * 12, dtype=object)[None], role="synth")
    with pytest.raises(DataError, match="integers"):  # int16 microvolts are not millivolts
        load_ecg_set((np.round(x * 1000).astype(np.int16), None, 100), role="synth")
    with pytest.raises(DataError, match="record 3: NaN"):
        bad = x.copy()
        bad[3, 2, 7] = np.nan
        load_ecg_set((bad, None, 100), role="synth")
    with pytest.raises(DataError, match="rows for"):
        load_ecg_set((x, pd.DataFrame({"age": [1.0]}), 100), role="synth")
