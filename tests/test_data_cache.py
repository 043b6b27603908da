"""The prepared cache beyond test_data_pipeline.py: content hashing, folds, skipping, selections, the manifest,
incomplete caches, and the whole shared subset."""

from __future__ import annotations

import json
import os
import shutil
import time

import numpy as np
import pandas as pd
import pytest
import wfdb

from midtecg.data import cache as cache_module
from midtecg.data.cache import is_prepared, load_prepared, prepare
from midtecg.data.errors import DataError, DataWarning
from midtecg.data.labels import SCP_CODES
from midtecg.data.leads import WFDB_LEADS
from midtecg.data.ptbxl import load_ptbxl_metadata, read_ptbxl_record, record_path


@pytest.fixture(scope="module")
def cache100(ptbxl_fixture, tmp_path_factory):
    return prepare(ptbxl_fixture, tmp_path_factory.mktemp("cache") / "c100", progress=False)


def test_cache_rows_match_direct_reads(cache100, ptbxl_fixture):
    data = load_prepared(cache100)
    meta = load_ptbxl_metadata(ptbxl_fixture)
    assert isinstance(data.signals, np.memmap) and data.fs == 100 and data.lead_names == WFDB_LEADS
    assert data.records["ecg_id"].tolist() == sorted(meta.index)
    for i in (0, 17, len(data) - 1):
        assert np.array_equal(data.signals[i], read_ptbxl_record(ptbxl_fixture, int(data.records.loc[i, "ecg_id"])))
    assert data.records.loc[data.records["ecg_id"] == 6488, "age"].item() == 90.0
    values, present = data.demographics()
    assert values.shape == (len(data), 4) and (present == ~np.isnan(values)).all()
    assert data.labels("superdiagnostic").shape == (len(data), 5) and data.labels().dtype == np.float32


def test_manifest_contents(cache100, ptbxl_fixture):
    manifest = json.loads((cache100 / "manifest.json").read_text())
    meta = load_ptbxl_metadata(ptbxl_fixture)
    assert manifest["shape"] == [40, 12, 1000] and manifest["units"] == "mV" and manifest["dtype"] == "float32"
    assert manifest["source_kind"] == "ptbxl" and len(manifest["source_hash"]) == 64
    folds = meta["strat_fold"]
    assert manifest["splits"] == {
        "train": int(folds.le(8).sum()),
        "val": int((folds == 9).sum()),
        "test": int((folds == 10).sum()),
    }
    assert sum(manifest["folds"].values()) == 40 and manifest["skipped_missing"] == [] and manifest["flat_leads"] == {}
    assert manifest["labels"]["NORM"] == int(load_prepared(cache100).records["NORM"].sum())
    assert manifest["missing"]["height"] == int(meta["height"].isna().sum())
    assert manifest["settings"]["source_rate"] == "500" and manifest["midtecg_version"]


def test_split_selections(cache100):
    data = load_prepared(cache100)
    test = load_prepared(cache100, split="test")
    assert (test.records["strat_fold"] == 10).all() and len(test) == (data.records["strat_fold"] == 10).sum()
    picked = data.select(np.arange(5, 12))  # contiguous: still a view of the file
    assert isinstance(picked.signals, np.memmap) and np.array_equal(picked.signals, data.signals[5:12])
    scattered = data.select([3, 1])
    assert (
        np.array_equal(scattered.signals[0], data.signals[3])
        and scattered.records["ecg_id"].tolist() == data.records["ecg_id"].iloc[[3, 1]].tolist()
    )
    assert len(data.select(np.zeros(len(data), bool))) == 0
    in_memory = load_prepared(cache100, mmap=False)
    assert not isinstance(in_memory.signals, np.memmap) and np.array_equal(in_memory.signals, data.signals)


def test_folds_and_official_100_hz_files(copy, tmp_path):
    out = prepare(copy, tmp_path / "folds", folds="test", progress=False)
    assert set(load_prepared(out).records["strat_fold"]) == {10}
    with pytest.warns(DataWarning, match="skipping 8 listed record"):
        out = prepare(copy, tmp_path / "lr", source_rate="100", on_missing="skip", progress=False)
    data = load_prepared(out)
    assert len(data) == 32 and data.records["ecg_id"].max() <= 500
    assert len(data.manifest["skipped_missing"]) == 8 and data.manifest["settings"]["source_rate"] == "100"
    with pytest.raises(ValueError, match="500 Hz"):
        prepare(copy, tmp_path / "x", rate=500, source_rate="100", progress=False)


def test_a_copied_dataset_is_recognised_by_content(copy, tmp_path):
    out = prepare(copy, tmp_path / "c", progress=False)
    stamp = (out / "signals.npy").stat().st_mtime_ns
    future = time.time() + 100
    for f in copy.rglob("*"):
        os.utime(f, (future, future))  # same bytes, new times: fingerprint differs, content hash matches
    start = time.perf_counter()
    prepare(copy, out, progress=False)
    assert time.perf_counter() - start < 2.0 and (out / "signals.npy").stat().st_mtime_ns == stamp
    fingerprint = json.loads((out / "manifest.json").read_text())["input_fingerprint"]
    prepare(copy, out, progress=False)
    assert json.loads((out / "manifest.json").read_text())["input_fingerprint"] == fingerprint
    # a changed sample is new content: the cache is rebuilt
    base = record_path(copy, 9)
    signal, fields = wfdb.rdsamp(str(base))
    signal[:, 0] += 0.5
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
    prepare(copy, out, progress=False)
    data = load_prepared(out)
    row = int(np.flatnonzero(data.records["ecg_id"] == 9)[0])
    assert np.allclose(data.signals[row], read_ptbxl_record(copy, 9), atol=1e-6)
    assert (out / "signals.npy").stat().st_mtime_ns != stamp


def test_failure_after_reading_leaves_no_complete_cache(tmp_path, monkeypatch, ptbxl_fixture):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(cache_module, "heart_rate_bpm", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        prepare(ptbxl_fixture, tmp_path / "c", progress=False)
    assert not is_prepared(tmp_path / "c") and not list((tmp_path / "c").glob(".tmp-*"))
    assert not (tmp_path / "c" / "manifest.json").exists()


def test_stale_temporary_folders_are_removed(tmp_path, ptbxl_fixture):
    out = tmp_path / "c"
    stale = out / ".tmp-killed"
    stale.mkdir(parents=True)
    (stale / "pid").write_text("999999999")  # no such process
    (stale / "signals.npy").write_bytes(b"partial")
    prepare(ptbxl_fixture, out, folds=[9], progress=False)
    assert not stale.exists() and is_prepared(out)


def test_incomplete_caches_are_refused(cache100, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(cache100, broken)
    (broken / "signals.npy").unlink()
    with pytest.raises(FileNotFoundError, match="signals.npy is missing"):
        load_prepared(broken)
    shutil.copy(cache100 / "signals.npy", broken / "signals.npy")
    records = pd.read_csv(broken / "records.csv")
    records.iloc[:-1].to_csv(broken / "records.csv", index=False)
    with pytest.raises(ValueError, match="39 rows"):
        load_prepared(broken)
    manifest = json.loads((cache100 / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ValueError, match="format 99"):
        load_prepared(broken)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_prepared(tmp_path / "nowhere")


def test_truncated_or_integer_signals_are_refused(cache100, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(cache100, broken)
    data = (cache100 / "signals.npy").read_bytes()
    (broken / "signals.npy").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="signals.npy: unreadable"):
        load_prepared(broken)
    np.save(broken / "signals.npy", (np.load(cache100 / "signals.npy") * 1000).astype(np.int16))  # microvolts
    with pytest.raises(ValueError, match="signals.npy: samples are int16, a cache holds float32 millivolts"):
        load_prepared(broken)


@pytest.mark.parametrize("fold", [11, 0, "x"])
def test_a_fold_outside_1_to_10_is_refused_naming_the_record(cache100, tmp_path, fold):
    broken = tmp_path / "broken"
    shutil.copytree(cache100, broken)
    records = pd.read_csv(broken / "records.csv")
    records["strat_fold"] = records["strat_fold"].astype(object)
    records.loc[3, "strat_fold"] = fold
    records.to_csv(broken / "records.csv", index=False)
    with pytest.raises(
        DataError,
        match=rf"records\.csv ecg_id {records.loc[3, 'ecg_id']}: strat_fold .*{fold}.* "
        r"is not one of the folds 1-10",
    ):
        load_prepared(broken, split="train")
    records.drop(columns="strat_fold").to_csv(broken / "records.csv", index=False)
    with pytest.raises(ValueError, match=r"records\.csv: column\(s\) \['strat_fold'\] missing"):
        load_prepared(broken)


@pytest.mark.shared
@pytest.mark.slow
def test_shared_subset_cache_agrees_with_its_manifest(shared_ptbxl, tmp_path):
    start = time.perf_counter()
    out = prepare(shared_ptbxl, tmp_path / "shared", progress=False)
    first = time.perf_counter() - start
    start = time.perf_counter()
    prepare(shared_ptbxl, out, progress=False)
    second = time.perf_counter() - start
    data = load_prepared(out)
    manifest_csv = pd.read_csv(shared_ptbxl / "MANIFEST.csv", index_col=0)
    # the shared folder grows from time to time: the expected counts come from its own manifest
    folds = manifest_csv["strat_fold"]
    expected_splits = {
        "train": int(folds.between(1, 8).sum()),
        "val": int((folds == 9).sum()),
        "test": int((folds == 10).sum()),
    }
    assert data.signals.shape == (len(manifest_csv), 12, 1000) and second < 2.0 < first
    assert data.manifest["splits"] == expected_splits
    assert len(load_prepared(out, "train")) == expected_splits["train"]
    assert len(load_prepared(out, "test")) == expected_splits["test"]
    assert np.isfinite(np.asarray(data.signals)).all()
    # superclasses match the provenance table of the shared folder
    expected = manifest_csv.loc[data.records["ecg_id"], "diagnostic_superclasses"].fillna("")
    sup = data.labels("superdiagnostic")
    got = [";".join(c for c, v in zip(("CD", "HYP", "MI", "NORM", "STTC"), row) if v) for row in sup]
    assert [set(g.split(";")) - {""} for g in got] == [set(e.split(";")) - {""} for e in expected]
    assert data.records["heart_rate"].notna().mean() > 0.99
    assert (data.records["age"] == 90).sum() >= 10 and list(data.records.columns[8:]) == list(SCP_CODES)
