"""Generic WFDB folders: other rates, lengths, lead layouts and condition CSVs, through prepare()."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import wfdb

from midtecg.data.cache import load_prepared, prepare
from midtecg.data.errors import DataError
from midtecg.data.leads import WFDB_LEADS
from midtecg.data.ptbxl import read_ptbxl_record, resample
from midtecg.data.wfdb_folder import load_folder_metadata, read_folder_record, stable_fold


def _write(folder, name, x, fs, names, units="mV"):
    scale = 1000.0 if units == "uV" else 1.0
    wfdb.wrsamp(
        name,
        fs=fs,
        units=[units] * len(names),
        sig_name=list(names),
        p_signal=(x * scale).T.astype(np.float64),
        fmt=["16"] * len(names),
        adc_gain=[1000.0 / scale] * len(names),
        baseline=[0] * len(names),
        write_dir=str(folder),
    )


@pytest.fixture
def source(ptbxl_fixture):
    return read_ptbxl_record(ptbxl_fixture, 1, rate=500).astype(np.float64)


def test_other_rate_longer_record_extra_channel_and_shuffled_leads(tmp_path, source):
    folder = tmp_path / "device"
    (folder / "sub").mkdir(parents=True)
    x360 = resample(np.concatenate([source, source[:, :1000]], axis=1), 500, 360)  # 12 s at 360 Hz
    order = list(reversed(range(12)))
    names = [WFDB_LEADS[i].upper() for i in order] + ["RESP"]
    _write(folder / "sub", "a1", np.vstack([x360[order], np.zeros((1, x360.shape[1]))]), 360, names, units="uV")
    pd.DataFrame(
        {
            "filename": ["sub/a1.hea"],
            "labels": ["atrial fibrillation; PVC"],
            "sex": ["F"],
            "age": [300],
            "patient": ["p7"],
        }
    ).to_csv(folder / "meta.csv", index=False)
    table = load_folder_metadata(folder)  # the only CSV of the folder
    row = table.iloc[0]
    assert row["record"] == "sub/a1" and row["scp_codes"] == {"AFIB": 100.0, "PVC": 100.0}
    assert row["strat_fold"] == stable_fold("p7") and row["sex"] == 1.0
    y = read_folder_record(folder, row, rate=100)
    assert y.shape == (12, 1000)
    expected = resample(source, 500, 100)
    assert np.sqrt(np.mean((y[:, 100:900] - expected[:, 100:900]) ** 2)) < 0.02  # two resamplings apart
    data = load_prepared(prepare(folder, tmp_path / "c", progress=False))
    assert data.records.loc[0, "AFIB"] == 1 and data.records.loc[0, "age"] == 90.0
    assert data.manifest["source_kind"] == "wfdb-folder"


def test_missing_limb_leads_are_derived(tmp_path, source):
    folder = tmp_path / "eight"
    folder.mkdir()
    keep = [0, 1] + list(range(6, 12))  # I, II, V1-V6
    _write(folder, "r", source[keep], 500, [WFDB_LEADS[i] for i in keep])
    pd.DataFrame({"record": ["r"]}).to_csv(folder / "conditions.csv", index=False)
    y = read_folder_record(folder, load_folder_metadata(folder).iloc[0], rate=500)
    assert np.abs(y - source).max() < 0.003  # quantisation of the recorded III, aVR, aVL, aVF


def test_records_without_a_csv(tmp_path, source):
    folder = tmp_path / "plain"
    folder.mkdir()
    for name in ("b", "a"):
        _write(folder, name, source, 500, WFDB_LEADS)
    table = load_folder_metadata(folder)
    assert table["record"].tolist() == ["a", "b"] and table["scp_codes"].tolist() == [{}, {}]
    data = load_prepared(prepare(folder, tmp_path / "c", progress=False))
    assert data.signals.shape == (2, 12, 1000) and data.labels().sum() == 0 and data.records["age"].isna().all()


@pytest.mark.parametrize(
    "problem, message",
    [
        ("short", "needs at least 10 s"),
        ("unknown_label", "did you mean"),
        ("missing_leads", "found 6 .*missing I, II"),
        ("duplicate", "listed twice"),
        ("no_record_column", "needs a 'record' column"),
    ],
)
def test_problems_name_the_record(tmp_path, source, problem, message):
    folder = tmp_path / problem
    folder.mkdir()
    x, names, rows = source, list(WFDB_LEADS), [{"record": "r", "labels": "NORM"}]
    if problem == "short":
        x = source[:, :4000]
    elif problem == "unknown_label":
        rows = [{"record": "r", "labels": "NORM, SINUS RYTHM"}]
    elif problem == "missing_leads":
        x, names = source[6:], names[6:]
    elif problem == "duplicate":
        rows = rows * 2
    elif problem == "no_record_column":
        rows = [{"id": "r"}]
    _write(folder, "r", x, 500, names)
    pd.DataFrame(rows).to_csv(folder / "conditions.csv", index=False)
    with pytest.raises(DataError, match=message) as error:
        prepare(folder, tmp_path / "c", progress=False)
    assert "record r" in str(error.value) or "conditions.csv" in str(error.value)


def test_a_fold_outside_1_to_10_names_the_record(tmp_path):
    folder = tmp_path / "folds"
    folder.mkdir()
    pd.DataFrame({"record": ["r1", "r2"], "fold": [3, 11]}).to_csv(folder / "conditions.csv", index=False)
    with pytest.raises(DataError, match="conditions.csv record r2: strat_fold 11 is not one of the folds 1-10"):
        load_folder_metadata(folder)


@pytest.mark.parametrize("column, value", [("ecg_id", "abc"), ("ecg_id", "2.5"), ("strat_fold", "x"), ("fold", "")])
def test_bad_ids_and_folds_name_the_file_and_line(tmp_path, column, value):
    folder = tmp_path / "ids"
    folder.mkdir()
    pd.DataFrame({"record": ["r1", "r2"], column: ["1", value]}).to_csv(folder / "conditions.csv", index=False)
    with pytest.raises(DataError, match=f"conditions.csv line 3: {column} '{value}' is missing or not a whole number"):
        load_folder_metadata(folder)
