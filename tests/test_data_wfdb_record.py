"""The one WFDB reader: units to millivolts, derived limb leads (more cases in test_data_reading.py)."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb

from midtecg.data.errors import DataError
from midtecg.data.leads import WFDB_LEADS
from midtecg.data.wfdb_record import UNIT_TO_MV, read_wfdb_signal


def _write(folder, name, mv, units, names=WFDB_LEADS):
    """``mv`` (leads, L) stored in ``units``: digital int16 values of 1 unit / 1000 each."""
    factor = {"mV": 1.0, "uV": 1000.0, "V": 1e-3, "mmHg": 1.0}[units]
    wfdb.wrsamp(
        name,
        fs=100,
        units=[units] * len(names),
        sig_name=list(names),
        p_signal=(mv * factor).T,
        fmt=["16"] * len(names),
        adc_gain=[1000.0 / factor] * len(names),
        baseline=[0] * len(names),
        write_dir=str(folder),
    )
    return folder / name


@pytest.mark.parametrize("units", ["mV", "uV", "V"])
def test_every_unit_comes_back_in_millivolts(tmp_path, units):
    mv = np.random.default_rng(1).uniform(-3, 3, size=(12, 200)).round(3)
    x, fs = read_wfdb_signal(_write(tmp_path, "r", mv, units), "record r")
    assert fs == 100 and x.dtype == np.float32
    np.testing.assert_allclose(x, mv, atol=1e-6)
    assert UNIT_TO_MV[units.lower()] * {"mV": 1.0, "uV": 1000.0, "V": 1e-3}[units] == 1.0


def test_unknown_units_and_missing_limb_leads(tmp_path):
    mv = np.random.default_rng(2).uniform(-1, 1, size=(12, 200)).round(3)
    with pytest.raises(DataError, match="record r: unknown signal units"):
        read_wfdb_signal(_write(tmp_path, "r", mv, "mmHg"), "record r")
    keep = [0, 5, *range(6, 12)]  # I, aVF, V1-V6
    base = _write(tmp_path, "eight", mv[keep], "mV", [WFDB_LEADS[i] for i in keep])
    with pytest.raises(DataError, match="expected 12 leads, found 8"):
        read_wfdb_signal(base, "record eight")
    x, _ = read_wfdb_signal(base, "record eight", derive_limb_leads=True)
    lead_i, avf = mv[0], mv[5]
    np.testing.assert_allclose(x[1], avf + lead_i / 2, atol=1e-6)  # II
    np.testing.assert_allclose(x[3], -0.75 * lead_i - 0.5 * avf, atol=1e-6)  # aVR
