"""Generic WFDB datasets: a folder of 12-lead WFDB records plus a CSV of conditions.

So users with other data (MIMIC-IV-ECG, Chapman, their own) can prepare, train and evaluate through the same
interface as PTB-XL. The CSV (``conditions.csv`` in the folder by default) has one row per record:

- ``record`` (required): the record's path relative to the folder, without suffix (``p1000/s1/40689238``);
- ``labels``: SCP codes separated by commas (``NORM,SR``), or ``scp_codes`` as a PTB-XL dict string;
- optional ``ecg_id`` (default 1..N), ``patient_id`` (default: the ecg_id), ``strat_fold`` (default: a
  stable fold 1-10 from a hash of the patient id, so patients never cross folds), ``age``, ``sex`` (0 male,
  1 female), ``height`` (cm), ``weight`` (kg).

Records may have any sampling rate; they are resampled to the target rate and must last 10 s.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from midtecg.data.errors import DataError
from midtecg.data.labels import parse_scp_codes, resolve_label
from midtecg.data.ptbxl import read_wfdb_signal, resample

DURATION_S = 10


def stable_fold(patient_id) -> int:
    digest = hashlib.sha256(str(patient_id).encode()).digest()
    return int.from_bytes(digest[:4], "little") % 10 + 1


def load_folder_metadata(root: str | Path, conditions: str | Path | None = None) -> pd.DataFrame:
    """The conditions table in PTB-XL's shape (ecg_id, patient_id, strat_fold, demographics, scp_codes)."""
    root = Path(root)
    path = Path(conditions) if conditions else root / "conditions.csv"
    if not path.is_file():
        raise DataError(str(root), f"not a PTB-XL folder and no conditions CSV at {path}")
    table = pd.read_csv(path, dtype={"record": str, "labels": str})
    if "record" not in table.columns:
        raise DataError(str(path), "needs a 'record' column (record paths relative to the folder, no suffix)")
    if table.empty:
        raise DataError(str(path), "has no rows")
    out = pd.DataFrame({"record": table["record"].astype(str)})
    out["ecg_id"] = table["ecg_id"].astype(int) if "ecg_id" in table.columns else np.arange(1, len(table) + 1)
    if out["ecg_id"].duplicated().any():
        raise DataError(str(path), "duplicate ecg_id values")
    out["patient_id"] = table["patient_id"] if "patient_id" in table.columns else out["ecg_id"]
    out["strat_fold"] = (table["strat_fold"].astype(int) if "strat_fold" in table.columns
                         else out["patient_id"].map(stable_fold))
    for column in ("age", "sex", "height", "weight"):
        out[column] = pd.to_numeric(table[column], errors="coerce") if column in table.columns else np.nan
    codes = []
    for i, row in table.iterrows():
        record = f"{path.name} record {out.loc[i, 'record']}"
        if "scp_codes" in table.columns:
            codes.append(parse_scp_codes(row["scp_codes"], record))
        elif "labels" in table.columns and isinstance(row["labels"], str) and row["labels"].strip():
            try:
                codes.append({resolve_label(code.strip()): 100.0 for code in row["labels"].split(",") if code.strip()})
            except ValueError as error:
                raise DataError(record, str(error)) from None
        else:
            codes.append({})
    out["scp_codes"] = codes
    return out.set_index("ecg_id", drop=False)


def read_folder_record(root: str | Path, row: pd.Series, rate: int = 100, strict: bool = False) -> np.ndarray:
    """One record of a generic folder as float32 mV (12, 10 s * rate), resampled from its own rate."""
    record = f"record {row['record']}"
    x, fs = read_wfdb_signal(Path(root) / row["record"], record, strict=strict)
    if x.shape[1] != DURATION_S * fs:
        raise DataError(record, f"lasts {x.shape[1] / fs:g} s, expected {DURATION_S} s")
    return resample(x, fs, rate)
