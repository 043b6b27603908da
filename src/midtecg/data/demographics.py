"""Demographic fields of PTB-XL (age, sex, height, weight): cleaning, missing-value masks, binned encodings.

Cleaning rules (:func:`clean_demographics`), applied per value:

- **Missing stays missing**: a blank field becomes NaN, never 0; :func:`demographics_mask` says which
  values are present.
- **Age** in years. PTB-XL stores ages above 89 as **300** (de-identification); it is mapped to
  ``AGE_OVER_89_YEARS = 90.0`` (the lowest age it can stand for). Ages outside ``AGE_RANGE`` (0..120)
  other than 300 are impossible.
- **Sex**: 0 = male, 1 = female (PTB-XL). Anything else is impossible.
- **Height** in cm must lie in ``HEIGHT_RANGE_CM`` (30..250); **weight** in kg in ``WEIGHT_RANGE_KG``
  (1..350). Values outside (0, negative, absurd) are impossible.
- Impossible values are **treated as missing** (NaN) and reported with one :class:`DataWarning` per field
  and problem that names the records; with ``strict=True`` the first one raises :class:`DataError` instead.

``CONDITION_RANGES`` is the one table of plausible values (age, height, weight and heart rate, which
:mod:`midtecg.data.heart_rate` also uses for its measurements). Training keeps exactly what it accepts, and
generation (:func:`check_plausible`) refuses a request outside it instead of clipping, so every value the
model may have seen in training can be asked for, and nothing else. The limits are wide on purpose (PTB-XL
has infants: height 30 cm and weight 1 kg are possible, 0 or 400 are not).

Binned encodings used for conditioning (MIDT-ECG paper): :func:`age_bin_onehot` (6 bins, thresholds
12, 17, 34, 54, 74 years) and :func:`sex_onehot` (male, female). A missing (NaN) or impossible value gives an
**all-zero row**: the condition embedding is bias-free, so an all-zero one-hot contributes nothing, the same
as "no information".
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .errors import DataError, DataWarning

__all__ = [
    "DEMOGRAPHIC_COLUMNS",
    "AGE_OVER_89_CODE",
    "AGE_OVER_89_YEARS",
    "AGE_RANGE",
    "HEIGHT_RANGE_CM",
    "WEIGHT_RANGE_KG",
    "HEART_RATE_RANGE_BPM",
    "CONDITION_RANGES",
    "check_plausible",
    "AGE_BIN_THRESHOLDS",
    "AGE_BIN_NAMES",
    "SEX_NAMES",
    "clean_demographics",
    "demographics_mask",
    "demographics_array",
    "bin_onehot",
    "age_bin_onehot",
    "sex_onehot",
    "SEX_WORDS",
    "parse_sex",
]

DEMOGRAPHIC_COLUMNS: tuple[str, ...] = ("age", "sex", "height", "weight")
AGE_OVER_89_CODE = 300.0
AGE_OVER_89_YEARS = 90.0
AGE_RANGE = (0.0, 120.0)
HEIGHT_RANGE_CM = (30.0, 250.0)
WEIGHT_RANGE_KG = (1.0, 350.0)
HEART_RATE_RANGE_BPM = (20.0, 300.0)
CONDITION_RANGES: dict[str, tuple[float, float]] = {
    "age": AGE_RANGE,
    "height": HEIGHT_RANGE_CM,
    "weight": WEIGHT_RANGE_KG,
    "heart_rate": HEART_RATE_RANGE_BPM,
}
_UNITS = {"age": "years", "height": "cm", "weight": "kg", "heart_rate": "bpm"}
AGE_BIN_THRESHOLDS: tuple[float, ...] = (12.0, 17.0, 34.0, 54.0, 74.0)
AGE_BIN_NAMES: tuple[str, ...] = ("<12", "12-16", "17-33", "34-53", "54-73", ">=74")
SEX_NAMES: tuple[str, ...] = ("male", "female")
# Every spelling of sex that midtecg accepts, in CSVs, WFDB header comments and on the command line.
SEX_WORDS: dict[str, float] = {
    "0": 0.0,
    "m": 0.0,
    "male": 0.0,
    "man": 0.0,
    "1": 1.0,
    "f": 1.0,
    "female": 1.0,
    "w": 1.0,
    "woman": 1.0,
}

_MAX_NAMED = 10


def _report(column: str, problem: str, records: Sequence, strict: bool, what: str) -> None:
    if not len(records):
        return
    if strict:
        raise DataError(f"{what} {records[0]}", f"{column} {problem}")
    named = ", ".join(str(r) for r in records[:_MAX_NAMED])
    more = f" and {len(records) - _MAX_NAMED} more" if len(records) > _MAX_NAMED else ""
    warnings.warn(f"{what} {named}{more}: {column} {problem}; treated as missing", DataWarning, stacklevel=3)


def _numeric(values, column: str, ids, strict: bool, what: str) -> np.ndarray:
    series = pd.Series(values, index=ids)
    out = pd.to_numeric(series, errors="coerce")
    bad = out.isna() & series.notna() & (series.astype(str).str.strip() != "")
    _report(column, "is not a number", list(series.index[bad]), strict, what)
    return out.to_numpy(dtype=np.float64)


def parse_sex(value, *, strict: bool = True) -> float:
    """Sex as a PTB-XL code: 0.0 male, 1.0 female, NaN when missing (None, NaN or blank).

    Accepts the codes 0 / 1 (also ``"0.0"``, ``"1.0"``) and the words of :data:`SEX_WORDS`, in any case. Any
    other value raises ``ValueError`` (``strict=True``) or gives NaN (``strict=False``).
    """
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return float("nan")
    key = str(value).strip().lower()
    if key == "" or key == "nan":
        return float("nan")
    if key.endswith(".0"):
        key = key[:-2]
    if key in SEX_WORDS:
        return SEX_WORDS[key]
    if strict:
        raise ValueError(f"sex must be male or female (or 0/1), got {value!r}")
    return float("nan")


def check_plausible(name: str, value, where: str = "") -> float:
    """``value`` as a float when it lies in ``CONDITION_RANGES[name]`` (NaN when missing: None, NaN or blank),
    else ``ValueError`` starting with ``where`` and naming the field and its range."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return float("nan")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}{name} {value!r} is not a number") from None
    if np.isnan(number):
        return number
    low, high = CONDITION_RANGES[name]
    if not low <= number <= high:
        raise ValueError(f"{where}{name} = {number:g} is out of the plausible range {low:g}-{high:g} {_UNITS[name]}")
    return number


def clean_demographics(table: pd.DataFrame, *, strict: bool = False, what: str = "record") -> pd.DataFrame:
    """Return a float64 DataFrame (same index) with the cleaned ``age, sex, height, weight`` of ``table``.

    Columns absent from ``table`` are all-NaN. Warnings and errors name records by the index of ``table``
    prefixed with ``what`` (e.g. ``what="PTB-XL ecg_id"``). See the module docstring for the rules.
    """
    ids = table.index
    out = pd.DataFrame(index=ids)
    for column in DEMOGRAPHIC_COLUMNS:
        if column not in table.columns:
            out[column] = np.nan
            continue
        x = _numeric(table[column].to_numpy(), column, ids, strict, what)
        if column == "age":
            x = np.where(x == AGE_OVER_89_CODE, AGE_OVER_89_YEARS, x)
            bad = ~np.isnan(x) & ((x < AGE_RANGE[0]) | (x > AGE_RANGE[1]))
            problem = f"outside {AGE_RANGE[0]:g}-{AGE_RANGE[1]:g} years (and not the over-89 code 300)"
        elif column == "sex":
            bad = ~np.isnan(x) & (x != 0) & (x != 1)
            problem = "is not 0 (male) or 1 (female)"
        else:
            lo, hi = CONDITION_RANGES[column]
            unit = _UNITS[column]
            bad = ~np.isnan(x) & ((x < lo) | (x > hi))
            problem = f"outside the plausible range {lo:g}-{hi:g} {unit}"
        _report(column, problem, list(ids[bad]), strict, what)
        x = np.where(bad, np.nan, x)
        out[column] = x.astype(np.float64)
    return out


def demographics_mask(values) -> np.ndarray:
    """Boolean presence mask (True = known) of cleaned demographics (a DataFrame or an array)."""
    if isinstance(values, pd.DataFrame):
        values = values[list(DEMOGRAPHIC_COLUMNS)].to_numpy(dtype=np.float64)
    return ~np.isnan(np.asarray(values, dtype=np.float64))


def demographics_array(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(values (N, 4) float32 with NaN where missing, mask (N, 4) bool)`` in ``DEMOGRAPHIC_COLUMNS`` order
    from a table that already holds cleaned columns (e.g. a prepared ``records.csv``)."""
    values = (
        np.stack(
            [
                table[c].to_numpy(dtype=np.float64) if c in table.columns else np.full(len(table), np.nan)
                for c in DEMOGRAPHIC_COLUMNS
            ],
            axis=-1,
        )
        if len(table)
        else np.zeros((0, len(DEMOGRAPHIC_COLUMNS)))
    )
    return values.astype(np.float32), demographics_mask(values)


def bin_onehot(values, thresholds: Sequence[float]) -> np.ndarray:
    """One-hot (..., len(thresholds) + 1) float32 over the bins cut at ``thresholds`` (ascending).

    Bin 0 is ``x < thresholds[0]``, bin i is ``thresholds[i-1] <= x < thresholds[i]``, the last bin is
    ``x >= thresholds[-1]``. NaN (missing) gives an all-zero row.
    """
    x = np.asarray(values, dtype=np.float64)
    edges = np.asarray(thresholds, dtype=np.float64)
    if edges.ndim != 1 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"thresholds must be strictly increasing, got {list(thresholds)}")
    index = np.digitize(x, edges, right=False)
    onehot = np.zeros(x.shape + (len(edges) + 1,), dtype=np.float32)
    known = ~np.isnan(x)
    np.put_along_axis(onehot, np.where(known, index, 0)[..., None], 1.0, axis=-1)
    onehot[~known] = 0.0
    return onehot


def age_bin_onehot(age) -> np.ndarray:
    """Age (years, scalar or array) -> one-hot over the 6 bins <12, 12-16, 17-33, 34-53, 54-73, >=74.

    Shape ``age.shape + (6,)``; missing (NaN) -> all-zero row. The raw over-89 code 300 lands in the last
    bin like its cleaned value 90; negative ages are treated as missing.
    """
    x = np.asarray(age, dtype=np.float64)
    x = np.where(x < 0, np.nan, x)
    return bin_onehot(x, AGE_BIN_THRESHOLDS)


def sex_onehot(sex) -> np.ndarray:
    """Sex (0 male, 1 female; scalar or array) -> one-hot (..., 2) ``[male, female]``; missing or any other
    value -> all-zero row."""
    x = np.asarray(sex, dtype=np.float64)
    onehot = np.zeros(x.shape + (2,), dtype=np.float32)
    onehot[..., 0] = x == 0
    onehot[..., 1] = x == 1
    return onehot
