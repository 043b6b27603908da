"""WFDB writer/reader round trips (midtecg.io.wfdb_io)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import wfdb

from midtecg.data.leads import WFDB_LEADS
from midtecg.io import read_wfdb_comments, read_wfdb_folder, read_wfdb_record, write_wfdb
from midtecg.io.arrays import DataError


def _signals(n=3, length=1000, scale=0.4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, 12, length)) * scale).astype(np.float32)


def _gains(path):
    return np.asarray(wfdb.rdheader(str(path)).adc_gain, dtype=np.float64)


def test_round_trip_signals_leads_and_comments(tmp_path):
    x = _signals()
    comments = [
        {"labels": ["NORM", "SR"], "age": 65, "sex": "female", "seed": 1, "model": "midt-ecg v0.1"},
        {"labels": "IMI", "age": np.int64(70), "sex": "male", "seed": 2, "model": "sssd"},
        {"age": None, "height": float("nan"), "weight": np.float32(71.5)},
    ]
    paths = write_wfdb(x, tmp_path, fs=100, comments=comments)
    assert [p.name for p in paths] == ["synth_00001", "synth_00002", "synth_00003"]
    for i, path in enumerate(paths):
        assert path.with_suffix(".hea").is_file() and path.with_suffix(".dat").is_file()
        sig, fields = wfdb.rdsamp(str(path))
        assert fields["sig_name"] == list(WFDB_LEADS)
        assert fields["units"] == ["mV"] * 12
        assert fields["fs"] == 100 and sig.shape == (1000, 12)
        header = wfdb.rdheader(str(path))
        assert header.fmt == ["16"] * 12
        gain = _gains(path)
        np.testing.assert_array_equal(gain, 1000.0)
        err = np.abs(sig.T - x[i].astype(np.float64))
        assert (err <= 0.5 / gain[:, None] + 1e-6).all()
    assert read_wfdb_comments(paths[0]) == {
        "labels": "NORM,SR",
        "age": "65",
        "sex": "female",
        "seed": "1",
        "model": "midt-ecg v0.1",
    }
    assert read_wfdb_comments(str(paths[1]) + ".hea", typed=True) == {
        "labels": "IMI",
        "age": 70,
        "sex": "male",
        "seed": 2,
        "model": "sssd",
    }
    assert read_wfdb_comments(paths[2], typed=True) == {"age": None, "height": None, "weight": 71.5}


def test_names_lead_order_and_dataframe_comments(tmp_path):
    import pandas as pd

    x = _signals(2)
    shuffled = list(reversed(WFDB_LEADS))
    paths = write_wfdb(
        x[:, ::-1],
        tmp_path,
        names=["a_1", "b-2"],
        lead_names=shuffled,
        comments=pd.DataFrame({"age": [50, 60], "sex": ["male", "female"]}),
    )
    assert [p.name for p in paths] == ["a_1", "b-2"]
    signal, fs, comments = read_wfdb_record(paths[1])
    assert fs == 100 and comments == {"age": "60", "sex": "female"}
    np.testing.assert_allclose(signal, x[1], atol=5e-4 + 1e-6)


def test_auto_gain_is_finer_and_exact(tmp_path):
    x = _signals(1, scale=0.2)
    (path,) = write_wfdb(x, tmp_path, gain="auto")
    gain = _gains(path)
    assert (gain >= 1000).all()
    assert (np.abs(x[0]).max(axis=1) * gain <= 32767).all()
    sig, _ = wfdb.rdsamp(str(path))
    assert (np.abs(sig.T - x[0]) <= 0.5 / gain[:, None] + 1e-6).all()


def test_overflow_adjusts_gain_with_warning_or_raises(tmp_path):
    x = _signals(2)
    x[1, 6, 10] = 40.0  # V1 beyond +-32.767 mV at gain 1000
    with pytest.raises(DataError, match="synth_00002.*V1"):
        write_wfdb(x, tmp_path / "err", on_overflow="error")
    assert not list((tmp_path / "err").glob("*.hea"))  # validated before writing anything
    with pytest.warns(UserWarning, match="synth_00002: lead V1"):
        paths = write_wfdb(x, tmp_path / "adj")
    gain = _gains(paths[1])
    assert gain[6] == 500.0 and (np.delete(gain, 6) == 1000.0).all()
    sig, _ = wfdb.rdsamp(str(paths[1]))
    assert abs(sig[10, 6] - 40.0) <= 0.5 / 500 + 1e-6  # not clipped
    assert (np.abs(sig.T - x[1]) <= 0.5 / gain[:, None] + 1e-6).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # not wfdb's own deprecation warnings (pandas >= 3.1)
        write_wfdb(x[:1], tmp_path / "ok")  # in range: no warning


def test_bad_input_raises(tmp_path):
    x = _signals(1)
    x[0, 2, 3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        write_wfdb(x, tmp_path)
    with pytest.raises(DataError):
        write_wfdb(_signals(1)[:, :8], tmp_path)
    with pytest.raises(DataError, match="key"):
        write_wfdb(_signals(1), tmp_path, comments=[{"a:b": 1}])
    with pytest.raises(DataError, match="line break"):
        write_wfdb(_signals(1), tmp_path, comments=[{"note": "two\nlines"}])
    with pytest.raises(DataError):
        write_wfdb(_signals(1), tmp_path, names=["../escape"])
    with pytest.raises(DataError, match="WFDB names"):
        write_wfdb(_signals(1), tmp_path, names=["a.b"])
    with pytest.raises(DataError):
        write_wfdb(_signals(2), tmp_path, comments=[{}])


def test_read_folder_reorders_validates(tmp_path):
    x = _signals(3)
    write_wfdb(x[:2], tmp_path, names=["r1", "r2"], comments=[{"k": "v"}, {}])
    # a record written by someone else: upper-case names in another order, microvolts
    order = [WFDB_LEADS.index(n) for n in ["V6", "V5", "V4", "V3", "V2", "V1", "aVF", "aVL", "aVR", "III", "II", "I"]]
    (tmp_path / "sub").mkdir()
    wfdb.wrsamp(
        "other",
        fs=100,
        units=["uV"] * 12,
        sig_name=[WFDB_LEADS[i].upper() for i in order],
        p_signal=(x[2][order].T.astype(np.float64) * 1000.0),
        fmt=["16"] * 12,
        adc_gain=[1.0] * 12,
        baseline=[0] * 12,
        write_dir=str(tmp_path / "sub"),
    )
    signals, names, comments = read_wfdb_folder(tmp_path)
    assert names == ["r1", "r2", "sub/other"]
    assert signals.shape == (3, 12, 1000) and signals.dtype == np.float32
    assert comments == [{"k": "v"}, {}, {}]
    np.testing.assert_allclose(signals, x, atol=5e-4 + 1e-6)
    assert read_wfdb_folder(tmp_path, recursive=False)[1] == ["r1", "r2"]
    with pytest.raises(DataError, match="Hz"):
        read_wfdb_folder(tmp_path, fs=500)


def test_read_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no WFDB"):
        read_wfdb_folder(tmp_path)
    write_wfdb(_signals(1), tmp_path, names=["long"])
    write_wfdb(_signals(1, length=500), tmp_path, names=["short"])
    with pytest.raises(DataError, match="same length"):
        read_wfdb_folder(tmp_path)
    wfdb.wrsamp(
        "eight",
        fs=100,
        units=["mV"] * 8,
        sig_name=list(WFDB_LEADS[:8]),
        p_signal=np.zeros((100, 8)),
        fmt=["16"] * 8,
        adc_gain=[1000.0] * 8,
        baseline=[0] * 8,
        write_dir=str(tmp_path),
    )
    with pytest.raises(DataError, match="eight.*12 leads"):
        read_wfdb_record(tmp_path / "eight")


def test_reading_uses_the_validating_reader(tmp_path):
    """read_wfdb_record is the data layer's reader: corrupt and truncated signal files are named, not read."""
    base = write_wfdb(_signals(1), tmp_path, names=["r"])[0]
    dat = base.with_suffix(".dat")
    data = bytearray(dat.read_bytes())
    data[100:110] = bytes(10)
    dat.write_bytes(bytes(data))
    with pytest.raises(DataError, match="record .*r: unreadable.*checksum"):
        read_wfdb_record(base)
    dat.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(DataError, match="r.dat is truncated"):
        read_wfdb_record(base)


def test_unsafe_names_are_refused_before_anything_is_written(tmp_path):
    out = tmp_path / "out"
    for names in (["/elsewhere/x"], ["../../x"], ["a/b"], ["x" * 300], [""], ["ok", "OK"]):
        with pytest.raises(DataError, match="record name"):
            write_wfdb(_signals(len(names)), out, names=names)
    assert not any(tmp_path.rglob("*.hea"))
    with pytest.raises(DataError, match="integers"):
        write_wfdb((_signals(1) * 1000).astype(np.int16), out)
