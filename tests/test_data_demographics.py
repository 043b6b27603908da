"""Demographics: missing stays NaN, age 300, impossible values, binned one-hot encodings."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from midtecg.data.demographics import (
    AGE_BIN_NAMES,
    age_bin_onehot,
    bin_onehot,
    clean_demographics,
    demographics_array,
    demographics_mask,
    sex_onehot,
)
from midtecg.data.errors import DataError, DataWarning


def test_fixture_demographics(ptbxl_fixture):
    meta = pd.read_csv(ptbxl_fixture / "ptbxl_database.csv", index_col=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # the real rows are clean
        clean = clean_demographics(meta, what="PTB-XL ecg_id")
    assert clean.loc[6488, "age"] == 90.0 and clean.loc[10563, "age"] == 90.0  # stored as 300
    assert np.isnan(clean.loc[108, "age"])  # blank in the official file
    assert clean["height"].isna().sum() == meta["height"].isna().sum() > 0
    assert set(clean["sex"].unique()) == {0.0, 1.0}
    values, present = demographics_array(clean)
    assert values.shape == (len(meta), 4) and values.dtype == np.float32
    assert (present == demographics_mask(clean)).all() and (present == ~np.isnan(values)).all()
    assert not (values[~present] == 0).any()


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("age", -1, "outside"),
        ("age", 121, "outside"),
        ("age", 299, "outside"),
        ("height", 0, "outside the plausible range"),
        ("height", 400, "outside the plausible range"),
        ("weight", 0, "outside the plausible range"),
        ("weight", -70, "outside the plausible range"),
        ("weight", 900, "outside the plausible range"),
        ("sex", 2, "is not 0 \\(male\\) or 1"),
        ("age", "old", "is not a number"),
    ],
)
def test_impossible_values_are_missing_with_a_warning_or_an_error(column, value, message):
    table = pd.DataFrame(
        {"age": [50.0, 60.0], "sex": [0.0, 1.0], "height": [170.0, 160.0], "weight": [70.0, 60.0]},
        index=[7, 8],
        dtype=object,
    )
    table.loc[8, column] = value
    with pytest.warns(DataWarning, match=f"ecg_id 8: {column} {message}"):
        clean = clean_demographics(table, what="ecg_id")
    assert np.isnan(clean.loc[8, column]) and not clean.loc[7].isna().any()
    with pytest.raises(DataError, match=f"ecg_id 8: {column}"):
        clean_demographics(table, strict=True, what="ecg_id")


def test_many_bad_values_give_one_warning_naming_the_first_records():
    table = pd.DataFrame({"age": [-1.0] * 25}, index=range(100, 125))
    with pytest.warns(DataWarning, match="record 100, 101.*and 15 more") as caught:
        clean = clean_demographics(table)
    assert len(caught) == 1 and clean["age"].isna().all() and clean["sex"].isna().all()


def test_age_bins_at_every_threshold():
    ages = np.array([0, 11.9, 12, 16.9, 17, 33.9, 34, 53.9, 54, 73.9, 74, 90, 300])
    assert age_bin_onehot(ages).argmax(-1).tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 5]
    assert len(AGE_BIN_NAMES) == 6 and age_bin_onehot(40.0).shape == (6,)
    missing = age_bin_onehot(np.array([np.nan, -3.0]))
    assert missing.shape == (2, 6) and missing.sum() == 0
    assert age_bin_onehot(ages).sum(-1).tolist() == [1.0] * len(ages)


def test_sex_onehot_and_generic_bins():
    assert sex_onehot(np.array([0, 1, np.nan, 2])).tolist() == [[1, 0], [0, 1], [0, 0], [0, 0]]
    assert sex_onehot(1).dtype == np.float32
    hr = bin_onehot(np.array([59, 60, 100, np.nan]), (60, 70, 80, 90, 100))
    assert hr.argmax(-1)[:3].tolist() == [0, 1, 5] and hr[3].sum() == 0
    with pytest.raises(ValueError, match="increasing"):
        bin_onehot([1.0], (5, 3))


def test_one_table_of_plausible_values_for_training_and_requests():
    from midtecg.data.demographics import CONDITION_RANGES, check_plausible
    from midtecg.data.heart_rate import RATE_RANGE_BPM

    # height 35 cm (an infant) is kept by the cleaning and accepted in a request alike
    kept = clean_demographics(pd.DataFrame({"height": [35.0], "weight": [2.5]}), strict=True)
    assert kept.loc[0, "height"] == 35.0 and check_plausible("height", 35) == 35.0
    for name, (low, high) in CONDITION_RANGES.items():
        assert check_plausible(name, low) == low and check_plausible(name, high) == high
        with pytest.raises(ValueError, match=f"line 4: {name} = .* is out of the plausible range"):
            check_plausible(name, high + 1, "line 4: ")
    assert RATE_RANGE_BPM == CONDITION_RANGES["heart_rate"]  # the measured rate uses the same limits
    assert np.isnan(check_plausible("age", None)) and np.isnan(check_plausible("age", " "))
    with pytest.raises(ValueError, match="age 'abc' is not a number"):
        check_plausible("age", "abc")
