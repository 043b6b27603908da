"""Read an official PTB-XL folder (the full release or a partial copy in the same layout).

Signals come back as float32 millivolts, shape (12, L), in WFDB lead order (``leads.WFDB_LEADS``).
Default: 100 Hz, 1000 samples, from the 500 Hz record resampled with an anti-aliasing polyphase filter
(``scipy.signal.resample_poly(x, 1, 5)``, the authors' pipeline); ``source_rate="100"`` reads the official
100 Hz files instead; ``rate=500`` keeps the 500 Hz record (5000 samples).

Every problem names the record: missing or unreadable files, a wrong number of leads, an unexpected
sampling rate or length, unknown lead names and NaN/inf samples raise :class:`DataError`. A flat lead
(constant over the whole record) is kept and reported with a :class:`DataWarning`, or raises with
``strict=True``: a flat lead is a recording fault, not an impossible file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import wfdb
from scipy.signal import resample_poly

from midtecg.data.errors import DataError, DataWarning
from midtecg.data.leads import WFDB_LEADS, canonical_lead_name

DEFAULT_SPLITS: dict[str, tuple[int, ...]] = {"train": (1, 2, 3, 4, 5, 6, 7, 8), "val": (9,), "test": (10,)}
REQUIRED_COLUMNS = ("ecg_id", "patient_id", "age", "sex", "height", "weight", "scp_codes", "strat_fold",
                    "filename_lr", "filename_hr")
FLAT_TOLERANCE_MV = 1e-6


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


def load_ptbxl_metadata(root: str | Path) -> pd.DataFrame:
    """``ptbxl_database.csv`` indexed by ecg_id, with its required columns checked."""
    path = Path(root) / "ptbxl_database.csv"
    if not path.is_file():
        raise DataError(str(root), "not a PTB-XL folder: ptbxl_database.csv is missing")
    table = pd.read_csv(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DataError(str(path), f"missing column(s) {missing}")
    if table["ecg_id"].duplicated().any():
        raise DataError(str(path), f"duplicate ecg_id {table.loc[table['ecg_id'].duplicated(), 'ecg_id'].iloc[0]}")
    return table.set_index("ecg_id", drop=False)


def read_wfdb_signal(path: str | Path, record: str, fs: int | None = None, length: int | None = None,
                     strict: bool = False) -> tuple[np.ndarray, int]:
    """One WFDB record as float32 mV (12, L) in WFDB lead order, validated; returns (signal, fs)."""
    path = Path(path)
    for suffix in (".hea", ".dat"):
        if not path.with_suffix(suffix).is_file():
            raise DataError(record, f"missing file {path.with_suffix(suffix)}")
    try:
        signal, fields = wfdb.rdsamp(str(path))
    except Exception as error:  # wfdb raises many types for truncated or corrupt headers and data
        raise DataError(record, f"unreadable WFDB record {path} ({type(error).__name__}: {error})") from None
    names = list(fields["sig_name"] or [])
    if signal.ndim != 2 or signal.shape[1] != 12 or len(names) != 12:
        raise DataError(record, f"expected 12 leads, found {signal.shape[1] if signal.ndim == 2 else signal.shape}")
    record_fs = fields["fs"]
    if fs is not None and record_fs != fs:
        raise DataError(record, f"sampling rate is {record_fs:g} Hz, expected {fs} Hz")
    if length is not None and signal.shape[0] != length:
        raise DataError(record, f"has {signal.shape[0]} samples, expected {length}")
    try:
        order = [names.index(next(n for n in names if canonical_lead_name(n) == lead)) for lead in WFDB_LEADS]
    except (StopIteration, ValueError):
        raise DataError(record, f"lead names {names} are not the 12 standard leads") from None
    units = [str(u).lower() for u in fields.get("units") or ["mv"] * 12]
    scale = np.array([{"mv": 1.0, "uv": 1e-3, "v": 1e3}.get(units[i], np.nan) for i in order])
    if np.isnan(scale).any():
        raise DataError(record, f"unknown signal units {fields.get('units')}")
    x = signal[:, order].T * scale[:, None]
    if not np.isfinite(x).all():
        bad = [WFDB_LEADS[i] for i in np.nonzero(~np.isfinite(x).all(axis=1))[0]]
        raise DataError(record, f"NaN or infinite samples in lead(s) {', '.join(bad)}")
    flat = np.ptp(x, axis=1) <= FLAT_TOLERANCE_MV
    if flat.any():
        problem = f"flat lead(s) {', '.join(WFDB_LEADS[i] for i in np.nonzero(flat)[0])} (constant over the record)"
        if strict:
            raise DataError(record, problem)
        warnings.warn(f"{record}: {problem}; kept", DataWarning, stacklevel=2)
    return x.astype(np.float32), int(record_fs)


def resample(x: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Anti-aliasing polyphase resampling along the last axis (exact rational ratio)."""
    if fs_in == fs_out:
        return x
    from math import gcd

    g = gcd(int(fs_in), int(fs_out))
    return resample_poly(x.astype(np.float64), fs_out // g, fs_in // g, axis=-1).astype(np.float32)


def record_path(root: str | Path, row: pd.Series, source_rate: str) -> Path:
    if source_rate not in ("500", "100"):
        raise ValueError(f"source_rate must be '500' or '100', got {source_rate!r}")
    return Path(root) / str(row["filename_hr" if source_rate == "500" else "filename_lr"])


def read_ptbxl_record(root: str | Path, row: pd.Series, rate: int = 100, source_rate: str = "500",
                      strict: bool = False) -> np.ndarray:
    """The signal of one metadata row as float32 mV (12, 10 s * rate)."""
    if rate not in (100, 500):
        raise ValueError(f"rate must be 100 or 500 Hz, got {rate}")
    if source_rate == "100" and rate != 100:
        raise ValueError("the official 100 Hz files cannot give 500 Hz signals; use source_rate='500'")
    record = f"PTB-XL ecg_id {int(row['ecg_id'])}"
    fs_in = int(source_rate)
    x, _ = read_wfdb_signal(record_path(root, row, source_rate), record, fs=fs_in, length=10 * fs_in, strict=strict)
    return resample(x, fs_in, rate)
