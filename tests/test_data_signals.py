"""check_signals: what a signal array is, for every reader and writer."""

from __future__ import annotations

import numpy as np
import pytest

from midtecg.data.errors import DataError
from midtecg.data.signals import check_signals


def test_float_signals_pass_without_a_copy():
    x = np.zeros((2, 12, 50), dtype=np.float32)
    assert check_signals(x) is x
    assert check_signals(x.astype(np.float64)).dtype == np.float32
    assert check_signals(x.astype(np.float64), dtype=None).dtype == np.float64
    assert check_signals(np.zeros((3, 5)), ndim=None).shape == (3, 5)


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.uint8, bool])
def test_integer_samples_are_refused_with_their_unit_explained(dtype):
    microvolts = np.full((1, 12, 10), 100, dtype=dtype)
    with pytest.raises(DataError, match=r"x\.npz: samples are integers .*not float millivolts.*microvolts"):
        check_signals(microvolts, "x.npz")


def test_shapes_and_non_finite_values_name_the_array_and_record():
    with pytest.raises(DataError, match="synth: expected a 3-D array"):
        check_signals(np.zeros((12, 10)), "synth")
    with pytest.raises(DataError, match="expected 12 leads"):
        check_signals(np.zeros((1, 8, 10)), n_leads=12)
    with pytest.raises(DataError, match="at least 1 record"):
        check_signals(np.zeros((0, 12, 10)))
    assert check_signals(np.zeros((0, 12, 10)), min_records=0).shape == (0, 12, 10)
    with pytest.raises(DataError, match="empty axis"):
        check_signals(np.zeros((1, 12, 0)))
    with pytest.raises(DataError, match="expected real float"):
        check_signals(np.array([["a"]]), ndim=2)
    x = np.zeros((3, 12, 10))
    x[2, 4, 1] = np.nan
    x[2, 4, 2] = np.inf
    with pytest.raises(DataError, match="real: record 2: NaN or infinite values \\(2 in total, 1 NaN, in 1 record"):
        check_signals(x, "real")
    assert np.isnan(check_signals(x, allow_nan=True)[2, 4, 1])
