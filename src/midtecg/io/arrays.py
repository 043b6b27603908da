"""NumPy and CSV outputs: ``.npz`` bundles of signals + conditions, per-ECG CSVs, condition tables.

Every writer here is atomic (:mod:`midtecg.files`: a temporary file in the destination folder moved into
place with ``os.replace``), so a reader never sees a half-written file and an interrupted run leaves the
previous version intact. Record names become file names and follow :func:`midtecg.files.check_record_name`;
signals are checked by :func:`midtecg.data.signals.check_signals` (float millivolts: integer arrays, usually
digital units, are refused rather than read as millivolts).

``.npz`` layout (readable with plain ``numpy.load(path)``, no pickle):

- ``signals``: float32 ``(N, C, L)`` millivolts; ``lead_names``: unicode ``(C,)``; ``fs``: float64 scalar;
- ``conditions_kind``: ``"dataframe"``, ``"dict"`` or ``"none"``;
- ``condition_columns``: unicode array, the column (or key) names in order;
- ``cond__<name>``: one array per column/key. Numeric and boolean columns keep their dtype; any other
  column is stored as unicode text, with ``cond_missing__<name>`` (bool) marking missing entries when
  there are any. Dict values may have any shape whose first axis is N (e.g. ``labels`` ``(N, 71)``).

CSV layouts (millivolts, time in seconds):

- **wide** (the default, most openable: one file per ECG, opens in any spreadsheet):
  columns ``time_s, I, II, III, aVR, aVL, aVF, V1, ..., V6``, one row per sample.
- **long** (one tidy file for many ECGs, for data-frame tools):
  columns ``record, lead, sample, time_s, mv``, one row per (record, lead, sample).
"""

from __future__ import annotations

import io
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from midtecg.data.errors import DataError
from midtecg.data.leads import WFDB_LEADS
from midtecg.data.signals import check_signals
from midtecg.files import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    check_record_names,
    default_record_names,
    path_inside,
)

__all__ = [
    "LoadedNpz",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_lead_names",
    "load_npz",
    "read_ecg_csv",
    "record_names",
    "save_npz",
    "write_conditions_csv",
    "write_ecg_csv",
    "write_signals_csv",
    "write_signals_long_csv",
]


def check_lead_names(lead_names: Sequence[str] | None, n: int) -> list[str]:
    """``n`` distinct lead names as strings (default: the 12 WFDB leads), else :class:`DataError`."""
    names = list(WFDB_LEADS if lead_names is None else lead_names)
    if len(names) != n:
        raise DataError(f"{len(names)} lead names for {n} leads")
    if len(set(names)) != len(names):
        raise DataError(f"duplicate lead names: {names}")
    return [str(s) for s in names]


def record_names(names: Sequence[str] | None, n: int) -> list[str]:
    """The checked names of ``n`` records (:func:`midtecg.files.check_record_names`), or the default ones."""
    return default_record_names(n) if names is None else check_record_names(names, n)


# ----------------------------------------------------------------------------------------------------
# npz


class LoadedNpz(NamedTuple):
    """What :func:`load_npz` returns; unpacks as ``signals, conditions, lead_names, fs``."""

    signals: np.ndarray
    conditions: pd.DataFrame | dict | None
    lead_names: list[str]
    fs: float


def _condition_arrays(conditions, n: int) -> tuple[str, dict[str, np.ndarray]]:
    out: dict[str, np.ndarray] = {}
    if conditions is None:
        return "none", out
    if isinstance(conditions, pd.DataFrame):
        if len(conditions) != n:
            raise DataError(f"conditions has {len(conditions)} rows for {n} signals")
        columns = [str(c) for c in conditions.columns]
        if len(set(columns)) != len(columns):
            raise DataError("condition column names must be unique")
        for name, col in zip(columns, conditions.columns):
            s = conditions[col]
            if pd.api.types.is_bool_dtype(s) or (
                pd.api.types.is_numeric_dtype(s) and not isinstance(s.dtype, pd.CategoricalDtype)
            ):
                if s.isna().any() and not pd.api.types.is_float_dtype(s):
                    arr = s.astype("float64").to_numpy()  # nullable ints/bools with missing values
                else:
                    arr = s.to_numpy()
                    if arr.dtype == object:
                        arr = arr.astype("float64")
                out[f"cond__{name}"] = arr
            else:
                missing = s.isna().to_numpy()
                text = np.array(["" if m else str(v) for v, m in zip(s.tolist(), missing)], dtype=str)
                out[f"cond__{name}"] = text
                if missing.any():
                    out[f"cond_missing__{name}"] = missing
        out["condition_columns"] = np.array(columns, dtype=str)
        return "dataframe", out
    if isinstance(conditions, Mapping):
        keys = [str(k) for k in conditions]
        for key, value in zip(keys, conditions.values()):
            arr = np.asarray(value)
            if arr.dtype == object:
                raise DataError(f"conditions[{key!r}]: object arrays cannot be stored without pickle")
            if arr.ndim == 0 or arr.shape[0] != n:
                raise DataError(f"conditions[{key!r}]: first axis must be N={n}, got shape {arr.shape}")
            out[f"cond__{key}"] = arr
        out["condition_columns"] = np.array(keys, dtype=str)
        return "dict", out
    raise DataError(f"conditions must be a pandas DataFrame, a dict of arrays or None, not {type(conditions)}")


def save_npz(
    path: str | os.PathLike,
    signals,
    conditions: pd.DataFrame | Mapping[str, np.ndarray] | None = None,
    lead_names: Sequence[str] | None = WFDB_LEADS,
    fs: float = 100.0,
    *,
    compress: bool = True,
    allow_nan: bool = False,
) -> Path:
    """Save signals ``(N, C, L)`` (float32 mV), their conditions, lead names and rate to one ``.npz``.

    ``conditions`` is a DataFrame with one row per signal, a dict of arrays whose first axis is N, or
    None. The file loads without pickle (see the module docstring for the layout). NaN/inf raise
    ``DataError`` unless ``allow_nan``. Written atomically; returns the path.
    """
    x = check_signals(signals, allow_nan=allow_nan, min_records=0)
    names = check_lead_names(lead_names, x.shape[1])
    if not (np.isfinite(fs) and fs > 0):
        raise DataError(f"sampling rate must be positive, got {fs}")
    kind, cond = _condition_arrays(conditions, x.shape[0])
    arrays = {
        "signals": x,
        "lead_names": np.array(names, dtype=str),
        "fs": np.float64(fs),
        "conditions_kind": np.array(kind),
        **cond,
    }
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def load_npz(path: str | os.PathLike) -> LoadedNpz:
    """Load a file written by :func:`save_npz`; returns ``LoadedNpz(signals, conditions, lead_names, fs)``.

    ``conditions`` comes back as a DataFrame (text columns with missing entries restored to None), a
    dict of arrays, or None, as it was saved. A file that is not a readable ``.npz`` (truncated, corrupt,
    pickled, missing arrays) raises :class:`DataError` naming it; so do integer signals (digital units,
    not millivolts: convert them first) and a sampling rate that is not a positive number.
    """
    try:
        with np.load(path, allow_pickle=False) as z:
            return _read_npz(z, path)
    except DataError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError) as error:
        raise DataError(f"{path}: not a readable .npz ({type(error).__name__}: {error})") from None


def _read_npz(z, path) -> LoadedNpz:
    if "signals" not in z.files:
        raise DataError(f"{path}: no 'signals' array; not a midtecg npz")
    signals = check_signals(z["signals"], f"{path}: signals", allow_nan=True, min_records=0)
    lead_names = [str(s) for s in z["lead_names"]] if "lead_names" in z.files else list(WFDB_LEADS)
    fs = float(z["fs"]) if "fs" in z.files else 100.0
    if not (np.isfinite(fs) and fs > 0):
        raise DataError(f"{path}: sampling rate fs = {fs:g} is not a positive number")
    kind = str(z["conditions_kind"]) if "conditions_kind" in z.files else "none"
    columns = [str(s) for s in z["condition_columns"]] if "condition_columns" in z.files else []
    conditions: pd.DataFrame | dict | None
    if kind == "dataframe":
        data = {}
        for name in columns:
            arr = z[f"cond__{name}"]
            if arr.dtype.kind == "U":
                values = arr.astype(object)
                if f"cond_missing__{name}" in z.files:
                    values[z[f"cond_missing__{name}"]] = None
                data[name] = pd.Series(values, dtype=object)
            else:
                data[name] = pd.Series(arr)
        conditions = pd.DataFrame(data, columns=columns)
        if not columns:
            conditions = pd.DataFrame(index=range(signals.shape[0]))
    elif kind == "dict":
        conditions = {name: z[f"cond__{name}"] for name in columns}
    else:
        conditions = None
    return LoadedNpz(signals, conditions, lead_names, fs)


# ----------------------------------------------------------------------------------------------------
# CSV


def _wide_frame(signal: np.ndarray, fs: float, lead_names: list[str]) -> pd.DataFrame:
    t = np.arange(signal.shape[1], dtype=np.float64) / fs
    frame = pd.DataFrame({"time_s": t})
    for i, name in enumerate(lead_names):
        frame[name] = signal[i].astype(np.float64)
    return frame


def _time_strings(t: np.ndarray) -> list[str]:
    """Seconds printed exactly enough for any usual rate (microsecond precision, trailing zeros trimmed)."""
    return [f"{v:.6f}".rstrip("0").rstrip(".") or "0" for v in t]


def _to_csv_text(frame: pd.DataFrame, decimals: int | None) -> str:
    fmt = None if decimals is None else f"%.{int(decimals)}f"
    return frame.to_csv(index=False, float_format=fmt, lineterminator="\n")


def write_ecg_csv(
    path: str | os.PathLike,
    signal,
    fs: float = 100.0,
    lead_names: Sequence[str] | None = WFDB_LEADS,
    decimals: int | None = 4,
) -> Path:
    """Write one ECG ``(C, L)`` as a **wide** CSV: ``time_s`` then one column per lead, in mV.

    ``decimals`` rounds the printed millivolts (4 = 0.1 microvolt); None prints full precision.
    ``time_s`` is printed to the microsecond. Atomic; returns the path.
    """
    x = check_signals(np.asarray(signal)[None], str(path))[0]
    names = check_lead_names(lead_names, x.shape[0])
    frame = _wide_frame(x, fs, names)
    frame["time_s"] = _time_strings(frame["time_s"].to_numpy())
    return atomic_write_text(path, _to_csv_text(frame, decimals))


def write_signals_csv(
    out_dir: str | os.PathLike,
    signals,
    fs: float = 100.0,
    names: Sequence[str] | None = None,
    lead_names: Sequence[str] | None = WFDB_LEADS,
    decimals: int | None = 4,
) -> list[Path]:
    """Write each ECG of ``signals (N, C, L)`` to ``out_dir/<name>.csv`` in the wide layout.

    Names default to ``synth_00001``, ``synth_00002``, ... Returns the paths in signal order.
    """
    x = check_signals(signals, min_records=0)
    checked = record_names(names, x.shape[0])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [
        write_ecg_csv(path_inside(out, name, ".csv"), sig, fs=fs, lead_names=lead_names, decimals=decimals)
        for name, sig in zip(checked, x)
    ]


def write_signals_long_csv(
    path: str | os.PathLike,
    signals,
    fs: float = 100.0,
    names: Sequence[str] | None = None,
    lead_names: Sequence[str] | None = WFDB_LEADS,
    decimals: int | None = 4,
) -> Path:
    """Write ``signals (N, C, L)`` to one **long** CSV: ``record, lead, sample, time_s, mv``."""
    x = check_signals(signals, min_records=0)
    checked = record_names(names, x.shape[0])
    leads = check_lead_names(lead_names, x.shape[1])
    n, c, length = x.shape
    frame = pd.DataFrame(
        {
            "record": np.repeat(np.array(checked, dtype=object), c * length),
            "lead": np.tile(np.repeat(np.array(leads, dtype=object), length), n),
            "sample": np.tile(np.arange(length), n * c),
            "time_s": np.tile(np.arange(length) / fs, n * c),
            "mv": x.reshape(-1).astype(np.float64),
        }
    )
    return atomic_write_text(path, _to_csv_text(frame, decimals))


def read_ecg_csv(path: str | os.PathLike) -> tuple[np.ndarray, float, list[str]]:
    """Read a wide CSV written by :func:`write_ecg_csv`: returns ``(signal (C, L) float32, fs, lead_names)``."""
    try:
        frame = pd.read_csv(path)
        if "time_s" not in frame.columns:
            raise DataError(f"{path}: no 'time_s' column; not a wide ECG CSV")
        t = frame["time_s"].to_numpy(dtype=np.float64)
        names = [str(c) for c in frame.columns if c != "time_s"]
        signal = frame[names].to_numpy(dtype=np.float32).T.copy()
    except DataError:
        raise
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: not a readable ECG CSV ({type(error).__name__}: {error})") from None
    if len(t) < 2:
        raise DataError(f"{path}: fewer than 2 samples")
    step = np.median(np.diff(t))
    if not (np.isfinite(step) and step > 0):
        raise DataError(f"{path}: time_s does not increase")
    check_signals(signal[None], str(path))
    return signal, float(np.round(1.0 / step, 6)), names


def write_conditions_csv(path: str | os.PathLike, df) -> Path:
    """Write a conditions table (DataFrame, dict of columns or list of row dicts) to CSV atomically.

    No index column; missing values are blank cells. List-valued cells (e.g. label lists) are written
    comma-joined. Returns the path.
    """
    if not isinstance(df, pd.DataFrame):
        df = pd.DataFrame(df)
    df = df.copy()
    for col in df.columns:
        if df[col].dtype == object:
            df[col] = df[col].map(
                lambda v: ",".join(map(str, v)) if isinstance(v, (list, tuple, set, np.ndarray)) else v
            )
    return atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))
