"""Read an official PTB-XL folder (the full release or a partial copy in the same layout).

Signals come back as float32 millivolts, shape (12, L), in WFDB lead order (``leads.WFDB_LEADS``).
Default: 100 Hz, 1000 samples, from the 500 Hz record resampled with an anti-aliasing polyphase filter
(``scipy.signal.resample_poly(x, 1, 5)``, the authors' pipeline); ``source="100"`` reads the official
100 Hz files instead (they are not a plain decimation of the 500 Hz files: about 0.024 mV RMS apart);
``rate=500`` keeps the 500 Hz record (5000 samples).

Records are read and validated by :func:`midtecg.data.wfdb_record.read_wfdb_signal` (the one WFDB reader;
every problem names the record, ``"PTB-XL ecg_id 17: ..."``); a missing record is a
:class:`MissingRecordError`, or, with ``on_missing="skip"``, a :class:`DataWarning` and ``None``.

Splits: ``strat_fold`` 1-8 train, 9 validation, 10 test (``DEFAULT_SPLITS``); any fold selection works
(:func:`resolve_folds`, :func:`select_folds`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.signal import resample_poly

from midtecg.data.errors import DataError, DataWarning, MissingRecordError
from midtecg.data.folds import DEFAULT_SPLITS, FOLDS
from midtecg.data.wfdb_record import read_wfdb_signal

__all__ = [
    "DEFAULT_SPLITS",
    "FOLDS",
    "check_folds",
    "REQUIRED_COLUMNS",
    "DURATION_S",
    "resolve_folds",
    "select_folds",
    "load_ptbxl_metadata",
    "resample",
    "record_path",
    "read_ptbxl_record",
]


def check_folds(folds: pd.Series, records: pd.Series, where: str) -> None:
    """Refuse a ``strat_fold`` outside ``FOLDS`` (it would land in no split): a :class:`DataError` naming
    the first such record, ``"{where} {records[i]}"`` (e.g. ``where`` = "PTB-XL ecg_id")."""
    bad = ~pd.to_numeric(folds, errors="coerce").isin(FOLDS).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where} {records.iloc[row]}",
            f"strat_fold {folds.iloc[row]} is not one of the folds {FOLDS[0]}-{FOLDS[-1]}",
        )


REQUIRED_COLUMNS = (
    "ecg_id",
    "patient_id",
    "age",
    "sex",
    "height",
    "weight",
    "scp_codes",
    "strat_fold",
    "filename_lr",
    "filename_hr",
)
DURATION_S = 10


def resolve_folds(split) -> tuple[int, ...] | None:
    """``None`` (all), a split name (train, val, test), one fold or a list of folds -> the folds."""
    if split is None:
        return None
    if isinstance(split, str):
        if split not in DEFAULT_SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(DEFAULT_SPLITS)} or a list of folds")
        return DEFAULT_SPLITS[split]
    folds = (int(split),) if np.isscalar(split) else tuple(int(f) for f in split)
    if not folds:
        raise ValueError("an empty list of folds selects nothing")
    return folds


def select_folds(table: pd.DataFrame, split) -> pd.DataFrame:
    """Rows of a metadata / records table whose ``strat_fold`` is in ``split`` (see :func:`resolve_folds`)."""
    folds = resolve_folds(split)
    return table if folds is None else table[table["strat_fold"].isin(folds)]


def load_ptbxl_metadata(root: str | Path) -> pd.DataFrame:
    """``ptbxl_database.csv`` indexed by ecg_id (the ``ecg_id`` column is kept), required columns checked.

    Values are as in the file (``scp_codes`` is the dict string: parse it with
    :func:`midtecg.data.labels.parse_scp_codes`; demographics are cleaned by
    :func:`midtecg.data.demographics.clean_demographics`).
    """
    path = Path(root) / "ptbxl_database.csv"
    if not path.is_file():
        raise DataError(str(root), "not a PTB-XL folder: ptbxl_database.csv is missing")
    try:
        table = pd.read_csv(path)
    except Exception as error:
        raise DataError(str(path), f"unreadable CSV ({type(error).__name__}: {error})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(str(path), f"missing column(s) {missing}")
    if table["ecg_id"].duplicated().any():
        raise DataError(str(path), f"duplicate ecg_id {table.loc[table['ecg_id'].duplicated(), 'ecg_id'].iloc[0]}")
    folds = pd.to_numeric(table["strat_fold"], errors="coerce")
    if folds.isna().any():
        raise DataError(f"PTB-XL ecg_id {table.loc[folds.isna(), 'ecg_id'].iloc[0]}", "strat_fold is missing")
    check_folds(folds, table["ecg_id"], "PTB-XL ecg_id")
    return table.set_index("ecg_id", drop=False)


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Anti-aliasing polyphase resampling along the last axis with the exact rational ratio ``fs_out / fs_in``
    (``resample_poly(x, 1, 5)`` for 500 -> 100 Hz); float32 out."""
    if fs_in == fs_out:
        return np.asarray(x, dtype=np.float32)
    ratio = Fraction(str(fs_out)) / Fraction(str(fs_in))
    if ratio.denominator > 10_000 or ratio.numerator > 10_000:
        ratio = ratio.limit_denominator(1000)
    y = resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator, axis=-1)
    return y.astype(np.float32)


def _source_name(source) -> str:
    source = str(source)
    if source not in ("500", "100"):
        raise ValueError(f"source must be '500' or '100' (the PTB-XL file rates), got {source!r}")
    return source


def record_path(root: str | Path, row, source_rate: str = "500") -> Path:
    """Path (without suffix) of a record's 500 Hz (``filename_hr``) or 100 Hz (``filename_lr``) files.

    ``row`` is a metadata row or an ``ecg_id`` (then the official naming ``records500/00000/00001_hr`` is used).
    """
    source_rate = _source_name(source_rate)
    if isinstance(row, (int, np.integer)):
        ecg_id = int(row)
        folder = f"{ecg_id // 1000 * 1000:05d}"
        return Path(root) / (
            f"records500/{folder}/{ecg_id:05d}_hr" if source_rate == "500" else f"records100/{folder}/{ecg_id:05d}_lr"
        )
    return Path(root) / str(row["filename_hr" if source_rate == "500" else "filename_lr"])


def _ecg_id(row) -> int:
    if isinstance(row, (int, np.integer)):
        return int(row)
    if isinstance(row, Mapping) or hasattr(row, "get"):
        value = row.get("ecg_id", None)
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            return int(value)
    return int(row.name)


def read_ptbxl_record(
    root: str | Path,
    row,
    rate: int = 100,
    source: str = "500",
    strict: bool = False,
    *,
    source_rate: str | None = None,
    on_missing: str = "error",
    on_flat: str | None = None,
    checksum: bool = True,
) -> np.ndarray | None:
    """The signal of one PTB-XL record as float32 mV (12, 10 s * rate), WFDB lead order.

    ``row``: a row of :func:`load_ptbxl_metadata` (or any mapping with ``ecg_id`` and ``filename_hr`` /
    ``filename_lr``), or an ``ecg_id``. ``source``: "500" (default: the 500 Hz file, resampled to ``rate``) or
    "100" (the official 100 Hz files; only ``rate=100``). ``source_rate`` is an alias of ``source``.
    ``on_missing="skip"`` returns None with a :class:`DataWarning` when the record's files do not exist.
    ``strict`` turns a flat lead into an error (see the module docstring).
    """
    source = _source_name(source_rate if source_rate is not None else source)
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    rate = int(rate)
    if rate <= 0:
        raise ValueError(f"rate must be a positive number of Hz, got {rate}")
    if source == "100" and rate != 100:
        raise ValueError(f"the official 100 Hz files cannot give {rate} Hz signals (500 Hz needs source='500')")
    record = f"PTB-XL ecg_id {_ecg_id(row)}"
    fs_in = int(source)
    try:
        x, _ = read_wfdb_signal(
            record_path(root, row, source),
            record,
            fs=fs_in,
            length=DURATION_S * fs_in,
            strict=strict,
            checksum=checksum,
            on_flat=on_flat,
        )
    except MissingRecordError as error:
        if on_missing == "error":
            raise
        warnings.warn(f"{error}; skipped", DataWarning, stacklevel=2)
        return None
    return resample(x, fs_in, rate)
