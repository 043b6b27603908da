"""NumPy / CSV outputs (midtecg.io.arrays)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from midtecg.data.leads import WFDB_LEADS
from midtecg.io import (
    atomic_path,
    atomic_write_text,
    load_npz,
    read_ecg_csv,
    save_npz,
    write_conditions_csv,
    write_ecg_csv,
    write_signals_csv,
    write_signals_long_csv,
)
from midtecg.io.arrays import DataError


def _signals(n=3, length=200, seed=0):
    return (np.random.default_rng(seed).standard_normal((n, 12, length)) * 0.3).astype(np.float32)


def test_npz_round_trip_dataframe(tmp_path):
    x = _signals()
    df = pd.DataFrame(
        {
            "age": [65.0, np.nan, 30.0],
            "seed": np.array([1, 2, 3], dtype=np.int64),
            "sex": ["female", None, "male"],
            "flag": [True, False, True],
            "labels": ["NORM,SR", "IMI", ""],
        }
    )
    path = save_npz(tmp_path / "out.npz", x, df, WFDB_LEADS, 100)
    assert path == tmp_path / "out.npz" and path.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name != "out.npz"]  # no temp file left behind
    signals, cond, leads, fs = load_npz(path)
    np.testing.assert_array_equal(signals, x)
    assert signals.dtype == np.float32 and leads == list(WFDB_LEADS) and fs == 100.0
    assert list(cond.columns) == list(df.columns)
    np.testing.assert_array_equal(cond["age"].to_numpy(), df["age"].to_numpy())
    assert cond["seed"].dtype == np.int64 and cond["flag"].dtype == bool
    assert cond["sex"].tolist() == ["female", None, "male"]
    assert cond["labels"].tolist() == ["NORM,SR", "IMI", ""]
    with np.load(path, allow_pickle=False) as z:  # plain numpy can read it
        assert z["signals"].shape == x.shape


def test_npz_round_trip_dict_and_none(tmp_path):
    x = _signals(2)
    labels = np.zeros((2, 71), dtype=np.float32)
    labels[0, 3] = 1
    loaded = load_npz(save_npz(tmp_path / "d.npz", x, {"labels": labels, "age": np.array([1.0, 2.0])}, fs=500))
    assert loaded.fs == 500.0 and set(loaded.conditions) == {"labels", "age"}
    np.testing.assert_array_equal(loaded.conditions["labels"], labels)
    assert load_npz(save_npz(tmp_path / "n.npz", x, None)).conditions is None


def test_npz_validation(tmp_path):
    x = _signals(2)
    with pytest.raises(DataError):
        save_npz(tmp_path / "a.npz", x, pd.DataFrame({"a": [1, 2, 3]}))
    with pytest.raises(DataError):
        save_npz(tmp_path / "a.npz", x, None, lead_names=["I", "II"])
    y = x.copy()
    y[1, 0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        save_npz(tmp_path / "a.npz", y, None)
    save_npz(tmp_path / "a.npz", y, None, allow_nan=True)
    assert not (tmp_path / "b.npz").exists()


def test_wide_csv_round_trip(tmp_path):
    x = _signals(2, length=50)
    paths = write_signals_csv(tmp_path / "csv", x, fs=500)
    assert [p.name for p in paths] == ["synth_00001.csv", "synth_00002.csv"]
    header = paths[0].read_text().splitlines()[0]
    assert header == "time_s," + ",".join(WFDB_LEADS)
    assert paths[0].read_text().splitlines()[2].startswith("0.002,")
    signal, fs, leads = read_ecg_csv(paths[1])
    assert fs == 500.0 and leads == list(WFDB_LEADS)
    np.testing.assert_allclose(signal, x[1], atol=0.5e-4 + 1e-7)
    frame = pd.read_csv(paths[0])  # opens with any CSV reader
    assert frame.shape == (50, 13)


def test_long_csv(tmp_path):
    x = _signals(2, length=10)
    path = write_signals_long_csv(tmp_path / "long.csv", x, fs=100, names=["a", "b"])
    frame = pd.read_csv(path)
    assert list(frame.columns) == ["record", "lead", "sample", "time_s", "mv"]
    assert len(frame) == 2 * 12 * 10
    row = frame[(frame.record == "b") & (frame.lead == "V3") & (frame["sample"] == 7)]
    assert abs(float(row.mv.iloc[0]) - x[1, WFDB_LEADS.index("V3"), 7]) < 1e-4
    assert float(row.time_s.iloc[0]) == pytest.approx(0.07)


def test_conditions_csv_and_atomic(tmp_path):
    path = tmp_path / "sub" / "conditions.csv"
    write_conditions_csv(
        path,
        [
            {"name": "synth_00001", "labels": ["NORM", "SR"], "age": 65},
            {"name": "synth_00002", "labels": ["IMI"], "age": None},
        ],
    )
    frame = pd.read_csv(path)
    assert frame["labels"].tolist() == ["NORM,SR", "IMI"]
    assert frame["age"].isna().tolist() == [False, True]
    atomic_write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert path.read_text() == "old"
    assert sorted(p.name for p in path.parent.iterdir()) == ["conditions.csv"]


def test_single_csv(tmp_path):
    x = _signals(1, length=20)[0]
    path = write_ecg_csv(tmp_path / "one.csv", x, fs=100, decimals=None)
    signal, fs, _ = read_ecg_csv(path)
    np.testing.assert_array_equal(signal, x)
    assert fs == 100.0


def test_unreadable_npz_files_name_the_file(tmp_path):
    good = save_npz(tmp_path / "good.npz", _signals(2), pd.DataFrame({"age": [1.0, 2.0]}))
    data = good.read_bytes()
    for name, content in (
        ("truncated.npz", data[: len(data) // 2]),
        ("garbage.npz", b"not a zip at all"),
        ("empty.npz", b""),
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(DataError, match=f"{name}: not a readable .npz"):
            load_npz(tmp_path / name)
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(DataError, match="other.npz: no 'signals' array"):
        load_npz(tmp_path / "other.npz")


def test_integer_signals_are_not_read_as_millivolts(tmp_path):
    """int16 microvolts (PTB-XL's digital values) would read 1000 times too large: refused, unit explained."""
    microvolts = (_signals(2) * 1000).astype(np.int16)
    np.savez(tmp_path / "uv.npz", signals=microvolts, fs=np.float64(100))
    with pytest.raises(DataError, match="uv.npz: signals: samples are integers \\(int16\\).*microvolts"):
        load_npz(tmp_path / "uv.npz")
    with pytest.raises(DataError, match="integers"):
        save_npz(tmp_path / "w.npz", microvolts)
    np.savez(tmp_path / "rate.npz", signals=_signals(1), fs=np.float64(0))
    with pytest.raises(DataError, match="rate.npz: sampling rate"):
        load_npz(tmp_path / "rate.npz")


def test_csv_writers_refuse_unsafe_names_and_readers_name_bad_files(tmp_path):
    for names in (["../x", "b"], ["/abs/x", "b"], ["a", "a"], ["a/b", "c"]):
        with pytest.raises(DataError, match="record name"):
            write_signals_csv(tmp_path / "csv", _signals(2, length=5), names=names)
        with pytest.raises(DataError, match="record name"):
            write_signals_long_csv(tmp_path / "long.csv", _signals(2, length=5), names=names)
    assert not any(tmp_path.rglob("*.csv"))
    (tmp_path / "bad.csv").write_bytes(b"time_s,I\n0,\xff\xfe\n")
    with pytest.raises(DataError, match="bad.csv"):
        read_ecg_csv(tmp_path / "bad.csv")
    (tmp_path / "words.csv").write_text("time_s,I\n0,a\n0.01,b\n")
    with pytest.raises(DataError, match="words.csv: not a readable ECG CSV"):
        read_ecg_csv(tmp_path / "words.csv")
