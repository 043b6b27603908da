"""The PTB-XL pipeline on real records: leads, labels, demographics, heart rate, splits, the prepared cache,
generic WFDB folders, and every bad-input case naming the record."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import wfdb

from midtecg.cli import main
from midtecg.data import cache as cache_module
from midtecg.data.cache import load_prepared, prepare
from midtecg.data.demographics import age_bin_onehot, clean_demographics, sex_onehot
from midtecg.data.errors import DataError, DataWarning
from midtecg.data.heart_rate import heart_rate_bpm
from midtecg.data.labels import (
    SCP_CODES,
    aggregate_labels,
    label_set_codes,
    labels_to_vector,
    parse_scp_codes,
    resolve_label,
)
from midtecg.data.leads import WFDB_LEADS, to_model_leads, to_twelve_leads
from midtecg.data.ptbxl import load_ptbxl_metadata, read_ptbxl_record, resolve_folds

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "ptbxl"
# ecg_id 162 has limb leads that do not satisfy Einthoven's law in the source files (error 3.8 mV).
INCONSISTENT_LIMB_LEADS = {162}


@pytest.fixture
def fixture_copy(tmp_path) -> Path:
    target = tmp_path / "ptbxl"
    shutil.copytree(FIXTURE, target)
    for path in target.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return target


def first_row(root: Path) -> pd.Series:
    return load_ptbxl_metadata(root).iloc[0]


# --- leads ------------------------------------------------------------------------------------------


def test_twelve_lead_reconstruction_matches_recorded_leads_to_quantisation():
    meta = load_ptbxl_metadata(FIXTURE)
    worst = 0.0
    for _, row in meta.iterrows():
        if row["ecg_id"] in INCONSISTENT_LIMB_LEADS:
            continue
        x = read_ptbxl_record(FIXTURE, row, rate=500).astype(np.float64)
        worst = max(worst, float(np.abs(to_twelve_leads(to_model_leads(x)) - x).max()))
    # PTB-XL stores 1 uV steps; three rounded leads combine to at most 2 uV (1.75 uV measured).
    assert worst <= 0.002 + 1e-9, worst


def test_lead_functions_round_trip_and_accept_tensors():
    x8 = np.random.default_rng(0).normal(size=(3, 8, 50)).astype(np.float32)
    assert np.allclose(to_model_leads(to_twelve_leads(x8)), x8)
    t = torch.from_numpy(x8)
    assert torch.allclose(to_twelve_leads(t), torch.from_numpy(to_twelve_leads(x8)))
    with pytest.raises(ValueError, match="8 leads"):
        to_twelve_leads(np.zeros((12, 10)))


# --- labels -----------------------------------------------------------------------------------------


def test_label_sets_have_the_benchmark_sizes():
    assert len(SCP_CODES) == 71 and list(SCP_CODES) == sorted(SCP_CODES)
    sizes = {
        name: len(label_set_codes(name))
        for name in ("all", "diagnostic", "subdiagnostic", "superdiagnostic", "form", "rhythm")
    }
    assert sizes == {"all": 71, "diagnostic": 44, "subdiagnostic": 23, "superdiagnostic": 5, "form": 19, "rhythm": 12}
    assert set(label_set_codes("superdiagnostic")) == {"NORM", "MI", "STTC", "CD", "HYP"}


def test_label_lookups_and_aggregation():
    vector = labels_to_vector(["IMI", "SR"])
    assert vector.sum() == 2 and vector[SCP_CODES.index("IMI")] == 1
    assert resolve_label("imi") == "IMI" and resolve_label("sinus rhythm") == "SR"
    with pytest.raises(ValueError, match="NORM"):
        resolve_label("NROM")
    superclasses = aggregate_labels(vector[None], "superdiagnostic")
    assert superclasses.shape == (1, 5)
    assert superclasses[0, list(label_set_codes("superdiagnostic")).index("MI")] == 1


# --- demographics and heart rate --------------------------------------------------------------------


def test_demographics_keep_missing_and_map_age_300():
    table = pd.DataFrame(
        {"age": [300, np.nan, 45], "sex": [0, 1, np.nan], "height": [np.nan, 170, 180], "weight": [80, np.nan, 70]},
        index=[1, 2, 3],
    )
    clean = clean_demographics(table)
    assert clean.loc[1, "age"] == 90 and np.isnan(clean.loc[2, "age"]) and np.isnan(clean.loc[3, "sex"])
    assert age_bin_onehot(np.array([5, 12, 16, 17, 40, 60, 80, np.nan])).argmax(1)[:7].tolist() == [0, 1, 1, 2, 3, 4, 5]
    assert age_bin_onehot(np.array([np.nan])).sum() == 0 and sex_onehot(np.array([1.0])).tolist() == [[0, 1]]


@pytest.mark.parametrize("column, value", [("age", -4), ("height", 0), ("weight", -1), ("sex", 2), ("age", 150)])
def test_impossible_demographics_become_missing_with_a_warning_naming_the_record(column, value):
    table = pd.DataFrame({"age": [50.0], "sex": [0.0], "height": [170.0], "weight": [70.0]}, index=[77])
    table.loc[77, column] = value
    with pytest.warns(DataWarning, match="77"):
        clean = clean_demographics(table, what="PTB-XL ecg_id")
    assert np.isnan(clean.loc[77, column])
    with pytest.raises(DataError, match="77"):
        clean_demographics(table, strict=True, what="PTB-XL ecg_id")


@pytest.mark.parametrize("bpm", [50, 75, 110, 150])
def test_heart_rate_detector_on_simulated_ecgs(bpm):
    import neurokit2 as nk

    def simulate(fs, noise):
        return nk.ecg_simulate(
            duration=10,
            sampling_rate=fs,
            heart_rate=bpm,
            heart_rate_std=0,
            method="simple",
            noise=noise,
            random_state=1,
        )

    # neurokit2's simulator does not hit the requested rate exactly (75 -> 71.8 bpm): the truth is the median
    # RR of a noiseless 1000 Hz copy, where R peaks are unambiguous.
    clean = simulate(1000, 0.0)
    middle = clean[1:-1]
    true_peaks = np.nonzero((middle > clean[:-2]) & (middle >= clean[2:]) & (middle > 0.5 * clean.max()))[0]
    true_bpm = 60 / np.median(np.diff(true_peaks) / 1000)
    assert abs(heart_rate_bpm(np.tile(simulate(100, 0.01), (12, 1)), 100) - true_bpm) <= 1.5


def test_heart_rate_on_real_records_is_plausible(tmp_path):
    data = load_prepared(prepare(FIXTURE, tmp_path / "hr-cache", progress=False))
    rates = data.records["heart_rate"].to_numpy()
    assert np.isfinite(rates).mean() > 0.9 and np.nanmin(rates) > 30 and np.nanmax(rates) < 200
    assert heart_rate_bpm(np.zeros((12, 1000), np.float32), 100) != heart_rate_bpm(np.asarray(data.signals[0]), 100)


# --- splits and reading -----------------------------------------------------------------------------


def test_splits():
    assert resolve_folds("train") == tuple(range(1, 9)) and resolve_folds("test") == (10,)
    assert resolve_folds([3, 4]) == (3, 4) and resolve_folds(None) is None
    with pytest.raises(ValueError, match="unknown split"):
        resolve_folds("validation")


def test_rates_and_sources():
    row = load_ptbxl_metadata(FIXTURE).loc[1]
    x100 = read_ptbxl_record(FIXTURE, row)
    x500 = read_ptbxl_record(FIXTURE, row, rate=500)
    official = read_ptbxl_record(FIXTURE, row, source_rate="100")
    assert x100.shape == (12, 1000) and x500.shape == (12, 5000) and x100.dtype == np.float32
    assert np.abs(x100 - x500[:, ::5]).mean() < 0.02  # resampling keeps the waveform
    assert np.sqrt(np.mean((x100 - official) ** 2)) < 0.05  # close to, not equal to, the official 100 Hz file
    with pytest.raises(ValueError, match="500 Hz"):
        read_ptbxl_record(FIXTURE, row, rate=500, source_rate="100")


# --- bad input --------------------------------------------------------------------------------------


def test_missing_record_errors_or_skips(fixture_copy, tmp_path):
    row = first_row(fixture_copy)
    (fixture_copy / f"{row['filename_hr']}.dat").unlink()
    with pytest.raises(DataError, match=f"ecg_id {row['ecg_id']}"):
        prepare(fixture_copy, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()
    with pytest.warns(DataWarning, match=f"ecg_id {row['ecg_id']}"):
        out = prepare(fixture_copy, tmp_path / "out", on_missing="skip", progress=False)
    assert len(load_prepared(out)) == len(load_ptbxl_metadata(fixture_copy)) - 1


def _rewrite_header(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate_dat", "unreadable|samples"),
        ("corrupt_hea", "unreadable"),
        ("eleven_leads", "12 leads"),
        ("wrong_rate", "sampling rate"),
        ("rename_lead", "lead names"),
    ],
)
def test_damaged_files_name_the_record(fixture_copy, damage, message):
    row = first_row(fixture_copy)
    base = fixture_copy / row["filename_hr"]
    hea, dat = base.with_suffix(".hea"), base.with_suffix(".dat")
    if damage == "truncate_dat":
        dat.write_bytes(dat.read_bytes()[:5000])
    elif damage == "corrupt_hea":
        hea.write_text("this is not a WFDB header\n")
    elif damage == "eleven_leads":
        signal, fields = wfdb.rdsamp(str(base))
        wfdb.wrsamp(
            base.name,
            fs=500,
            units=["mV"] * 11,
            sig_name=fields["sig_name"][:11],
            p_signal=signal[:, :11],
            fmt=["16"] * 11,
            adc_gain=[1000.0] * 11,
            baseline=[0] * 11,
            write_dir=str(base.parent),
        )
    elif damage == "wrong_rate":
        _rewrite_header(hea, lambda lines: [lines[0].replace(" 500 ", " 250 ", 1)] + lines[1:])
    elif damage == "rename_lead":
        _rewrite_header(hea, lambda lines: [lines[0]] + [lines[1].rsplit(" ", 1)[0] + " X1"] + lines[2:])
    with pytest.raises(DataError, match=message) as error:
        read_ptbxl_record(fixture_copy, row)
    assert f"ecg_id {row['ecg_id']}" in str(error.value)


def _write_record(base: Path, signal: np.ndarray) -> None:
    _, fields = wfdb.rdsamp(str(base))
    wfdb.wrsamp(
        base.name,
        fs=500,
        units=["mV"] * 12,
        sig_name=fields["sig_name"],
        p_signal=signal,
        fmt=["16"] * 12,
        adc_gain=[1000.0] * 12,
        baseline=[0] * 12,
        write_dir=str(base.parent),
    )


def test_nan_samples_are_refused(fixture_copy):
    row = first_row(fixture_copy)
    base = fixture_copy / row["filename_hr"]
    signal, _ = wfdb.rdsamp(str(base))
    signal[100:200, 3] = np.nan  # stored as WFDB's missing-sample value, read back as NaN
    _write_record(base, signal)
    with pytest.raises(DataError, match="NaN"):
        read_ptbxl_record(fixture_copy, row)


def test_flat_lead_is_kept_with_a_warning_or_refused_when_strict(fixture_copy):
    row = first_row(fixture_copy)
    base = fixture_copy / row["filename_hr"]
    signal, _ = wfdb.rdsamp(str(base))
    signal[:, 7] = 0.0
    _write_record(base, signal)
    with pytest.warns(DataWarning, match=f"ecg_id {row['ecg_id']}.*V2"):
        read_ptbxl_record(fixture_copy, row)
    with pytest.raises(DataError, match="flat"):
        read_ptbxl_record(fixture_copy, row, strict=True)


@pytest.mark.parametrize(
    "scp_codes, message", [("{'NOTACODE': 100.0}", "NOTACODE"), ("{'NORM': 100.0", "malformed"), ("", "empty")]
)
def test_bad_scp_codes_name_the_record(fixture_copy, tmp_path, scp_codes, message):
    meta = pd.read_csv(fixture_copy / "ptbxl_database.csv")
    meta.loc[3, "scp_codes"] = scp_codes
    meta.to_csv(fixture_copy / "ptbxl_database.csv", index=False)
    with pytest.raises(DataError, match=message) as error:
        prepare(fixture_copy, tmp_path / "out", progress=False)
    assert str(meta.loc[3, "ecg_id"]) in str(error.value)
    assert parse_scp_codes("{}") == {}


def test_missing_metadata_and_not_a_cache(tmp_path):
    with pytest.raises(DataError, match="conditions CSV"):
        prepare(tmp_path, tmp_path / "out", progress=False)
    with pytest.raises(FileNotFoundError, match="not a complete midtecg cache"):
        load_prepared(tmp_path)


# --- the prepared cache -----------------------------------------------------------------------------


def test_prepare_writes_the_documented_cache(tmp_path):
    out = prepare(FIXTURE, tmp_path / "c", progress=False)
    signals = np.load(out / "signals.npy", mmap_mode="r")
    records = pd.read_csv(out / "records.csv")
    manifest = json.loads((out / "manifest.json").read_text())
    meta = load_ptbxl_metadata(FIXTURE)
    assert signals.dtype == np.float32 and signals.shape == (len(meta), 12, 1000)
    assert list(records.columns[:8]) == [
        "ecg_id",
        "patient_id",
        "strat_fold",
        "age",
        "sex",
        "height",
        "weight",
        "heart_rate",
    ]
    assert list(records.columns[8:]) == list(SCP_CODES)
    assert manifest["lead_names"] == list(WFDB_LEADS) and manifest["rate"] == 100 and manifest["count"] == len(meta)
    assert set(manifest) >= {"source", "source_hash", "midtecg_version", "format_version", "length"}
    # Labels match the metadata, all likelihoods included.
    row = records.iloc[0]
    expected = set(parse_scp_codes(meta.loc[row["ecg_id"], "scp_codes"]))
    assert {c for c in SCP_CODES if row[c] == 1} == expected
    # Missing heights stay missing.
    assert records["height"].isna().sum() == meta["height"].isna().sum()
    # Splits.
    test = load_prepared(out, split="test")
    assert (test.records["strat_fold"] == 10).all() and len(test.signals) == len(test.records)
    assert load_prepared(out, split=[9, 10]).labels().shape == (int(meta["strat_fold"].isin([9, 10]).sum()), 71)


def test_second_prepare_is_a_no_op_and_settings_change_the_cache(tmp_path):
    out = prepare(FIXTURE, tmp_path / "c", progress=False)
    stamp = (out / "signals.npy").stat().st_mtime_ns
    start = time.perf_counter()
    prepare(FIXTURE, out, progress=False)
    assert time.perf_counter() - start < 1.0
    assert (out / "signals.npy").stat().st_mtime_ns == stamp
    prepare(FIXTURE, out, rate=500, progress=False)
    assert np.load(out / "signals.npy", mmap_mode="r").shape[-1] == 5000


def test_interrupted_prepare_leaves_no_complete_looking_cache(tmp_path, monkeypatch):
    out = prepare(FIXTURE, tmp_path / "c", progress=False)
    calls = {"n": 0}
    original = cache_module.read_ptbxl_record

    def failing(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 10:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(cache_module, "read_ptbxl_record", failing)
    with pytest.raises(KeyboardInterrupt):
        prepare(FIXTURE, out, rate=500, progress=False)
    assert not (out / "manifest.json").exists()
    assert not list(out.glob(".tmp-*"))
    with pytest.raises(FileNotFoundError):
        load_prepared(out)
    monkeypatch.undo()
    assert load_prepared(prepare(FIXTURE, out, rate=500, progress=False)).signals.shape[-1] == 5000


def test_generic_wfdb_folder_at_another_rate(tmp_path):
    folder = tmp_path / "mydata"
    folder.mkdir()
    meta = load_ptbxl_metadata(FIXTURE).iloc[:4]
    rows = []
    for i, (_, row) in enumerate(meta.iterrows()):
        x = read_ptbxl_record(FIXTURE, row, rate=500)
        x250 = x[:, ::2]  # a 250 Hz device
        wfdb.wrsamp(
            f"ecg{i}",
            fs=250,
            units=["mV"] * 12,
            sig_name=list(WFDB_LEADS),
            p_signal=x250.T.astype(np.float64),
            fmt=["16"] * 12,
            adc_gain=[1000.0] * 12,
            baseline=[0] * 12,
            write_dir=str(folder),
        )
        rows.append({"record": f"ecg{i}", "labels": "NORM,SR" if i % 2 else "IMI", "age": 40 + i, "sex": i % 2})
    pd.DataFrame(rows).to_csv(folder / "conditions.csv", index=False)
    data = load_prepared(prepare(folder, tmp_path / "c", progress=False))
    assert data.signals.shape == (4, 12, 1000)
    assert data.records.loc[1, "NORM"] == 1 and data.records.loc[0, "IMI"] == 1
    assert data.records["strat_fold"].between(1, 10).all()
    pd.DataFrame([{"record": "ecg0", "labels": "NOPE"}]).to_csv(folder / "conditions.csv", index=False)
    with pytest.raises(DataError, match="NOPE"):
        prepare(folder, tmp_path / "c2", progress=False)


def test_cli_prepare(tmp_path, capsys):
    assert main(["prepare", str(FIXTURE), str(tmp_path / "c"), "--quiet"]) == 0
    assert "prepared 40 records at 100 Hz" in capsys.readouterr().out
    assert main(["prepare", str(tmp_path / "nowhere"), str(tmp_path / "c")]) == 2
