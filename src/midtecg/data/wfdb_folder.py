"""Generic WFDB datasets: a folder of 12-lead WFDB records plus a CSV of conditions.

So users with other data (MIMIC-IV-ECG, Chapman, their own) can prepare, train and evaluate through the same
record-table interface as PTB-XL (:func:`load_folder_metadata` returns a table shaped like PTB-XL's
metadata, :func:`read_folder_record` reads one of its rows). The CSV (``conditions.csv`` in the folder by
default, else the folder's only ``*.csv``) has one row per record:

- ``record`` (required; also accepted: ``record_name``, ``filename``, ``file``, ``path``): the record's path
  relative to the folder, with or without suffix (``p1000/s1/40689238``, ``ecg7.hea``);
- ``labels``: SCP codes or statement descriptions separated by ``,``, ``;`` or ``|`` (``NORM,SR``), or
  ``scp_codes`` as a PTB-XL dict string; unknown statements raise :class:`DataError` naming the record;
- optional ``ecg_id`` (integers; default 1..N in CSV order), ``patient_id`` (default: the ecg_id),
  ``strat_fold`` or ``fold`` (default: a stable fold 1-10 from a hash of the patient id, so patients never
  cross folds), ``age``, ``sex`` (0 / 1, or M / F / male / female), ``height`` (cm), ``weight`` (kg); these are
  cleaned with the PTB-XL rules (:mod:`midtecg.data.demographics`).

Without any CSV every ``*.hea`` under the folder is a record (no labels, no demographics).

Records may have any sampling rate (resampled to the target rate with ``resample_poly`` and the exact
rational ratio, e.g. 257 -> 100 Hz is up 100, down 257) and must last at least 10 s; longer records are cut
to their first 10 s. Leads are found by name in any order; channels that are not ECG leads are ignored, and
missing limb leads II, III, aVR, aVL, aVF are derived from I and II (or aVF) when V1-V6 are present.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from midtecg.data.demographics import parse_sex
from midtecg.data.errors import DataError
from midtecg.data.labels import parse_scp_codes, resolve_label
from midtecg.data.ptbxl import check_folds, resample
from midtecg.data.wfdb_record import read_wfdb_signal

__all__ = [
    "DURATION_S",
    "RECORD_COLUMNS",
    "stable_fold",
    "find_conditions_csv",
    "load_folder_metadata",
    "read_folder_record",
]

DURATION_S = 10
RECORD_COLUMNS = ("record", "record_name", "filename", "file", "path")
_SUFFIXES = (".hea", ".dat", ".mat")


def stable_fold(patient_id) -> int:
    """A fold 1-10 from a hash of the patient id: stable across runs and machines."""
    digest = hashlib.sha256(str(patient_id).encode()).digest()
    return int.from_bytes(digest[:4], "little") % 10 + 1


def find_conditions_csv(root: str | Path) -> Path | None:
    """``conditions.csv`` in ``root``, else its only ``*.csv``, else None."""
    root = Path(root)
    if (root / "conditions.csv").is_file():
        return root / "conditions.csv"
    found = sorted(root.glob("*.csv"))
    return found[0] if len(found) == 1 else None


def _strip_suffix(name: str) -> str:
    name = name.strip()
    return name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in _SUFFIXES else name


def _labels(text, record: str) -> dict[str, float]:
    if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
        return {}
    text = str(text).strip()
    if text.startswith("{"):
        return parse_scp_codes(text, record)
    codes: dict[str, float] = {}
    for part in re.split(r"[,;|]", text.strip("[]")):
        part = part.strip().strip("'\"")
        if part:
            try:
                codes[resolve_label(part)] = 100.0
            except ValueError as error:
                raise DataError(record, str(error)) from None
    return codes


def _sex(value):
    """A sex word as its code; an unknown word is kept as it is, so that cleaning reports it."""
    if isinstance(value, str):
        code = parse_sex(value, strict=False)
        return value if np.isnan(code) and value.strip() else code
    return value


def _whole_numbers(column: pd.Series, path: Path, name: str) -> np.ndarray:
    """A CSV column of whole numbers as int64; the first bad cell is a :class:`DataError` naming the file,
    its line (the header is line 1) and the value."""
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna() | (values.notna() & (values != values.round()))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        cell = "" if pd.isna(column.iloc[row]) else str(column.iloc[row])
        raise DataError(f"{path} line {row + 2}", f"{name} {cell!r} is missing or not a whole number")
    return values.to_numpy().astype(np.int64)


def load_folder_metadata(root: str | Path, conditions: str | Path | None = None) -> pd.DataFrame:
    """The conditions table in PTB-XL's shape: index and column ``ecg_id``, ``record``, ``patient_id``,
    ``strat_fold``, ``age``, ``sex``, ``height``, ``weight`` (raw: cleaned later) and ``scp_codes`` (dicts)."""
    root = Path(root)
    path = Path(conditions) if conditions else find_conditions_csv(root)
    if path is None:
        records = sorted(str(p.relative_to(root).with_suffix("")) for p in root.rglob("*.hea")) if root.is_dir() else []
        if not records:
            raise DataError(
                str(root), "not a PTB-XL folder and no conditions CSV (conditions.csv) nor WFDB records (*.hea)"
            )
        table = pd.DataFrame({"record": records})
        path = root / "(no conditions CSV)"
    else:
        if not path.is_file():
            raise DataError(str(root), f"not a PTB-XL folder and no conditions CSV at {path}")
        table = pd.read_csv(path, dtype={c: str for c in RECORD_COLUMNS + ("labels", "scp_codes", "sex")})
    table.columns = [str(c).strip() for c in table.columns]
    column = next((c for c in RECORD_COLUMNS if c in table.columns), None)
    if column is None:
        raise DataError(
            str(path),
            f"needs a 'record' column (record paths relative to the folder, no suffix); "
            f"columns are {list(table.columns)}",
        )
    if table.empty:
        raise DataError(str(path), "has no rows")
    out = pd.DataFrame({"record": table[column].astype(str).map(_strip_suffix)})
    if out["record"].duplicated().any():
        raise DataError(f"{path.name} record {out.loc[out['record'].duplicated(), 'record'].iloc[0]}", "listed twice")
    out["ecg_id"] = (
        _whole_numbers(table["ecg_id"], path, "ecg_id") if "ecg_id" in table.columns else np.arange(1, len(table) + 1)
    )
    if out["ecg_id"].duplicated().any():
        raise DataError(str(path), f"duplicate ecg_id {out.loc[out['ecg_id'].duplicated(), 'ecg_id'].iloc[0]}")
    patient = next((c for c in ("patient_id", "patient") if c in table.columns), None)
    out["patient_id"] = table[patient] if patient else out["ecg_id"]
    fold = next((c for c in ("strat_fold", "fold") if c in table.columns), None)
    if fold:
        out["strat_fold"] = _whole_numbers(table[fold], path, fold)
        check_folds(out["strat_fold"], out["record"], f"{path.name} record")
    else:
        out["strat_fold"] = out["patient_id"].map(stable_fold)
    for name in ("age", "sex", "height", "weight"):
        if name in table.columns:
            values = table[name].map(_sex) if name == "sex" else table[name]
            out[name] = values.to_numpy()
        else:
            out[name] = np.nan
    label_column = "scp_codes" if "scp_codes" in table.columns else ("labels" if "labels" in table.columns else None)
    out["scp_codes"] = [
        _labels(value, f"{path.name} record {record}") if label_column else {}
        for record, value in zip(out["record"], table[label_column] if label_column else [None] * len(table))
    ]
    return out.set_index("ecg_id", drop=False)


def read_folder_record(root: str | Path, row: pd.Series, rate: int = 100, strict: bool = False) -> np.ndarray:
    """One record of a generic folder as float32 mV (12, 10 s * rate), resampled from its own rate and cut
    to its first 10 s."""
    record = f"record {row['record']}"
    x, fs = read_wfdb_signal(
        Path(root) / row["record"],
        record,
        strict=strict,
        min_length=None,
        derive_limb_leads=True,
        allow_extra_channels=True,
    )
    if x.shape[1] < round(DURATION_S * fs):
        raise DataError(record, f"lasts {x.shape[1] / fs:g} s, needs at least {DURATION_S} s")
    y = resample(x, fs, rate)
    return np.ascontiguousarray(y[:, : DURATION_S * int(rate)])
