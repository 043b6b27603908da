"""Inputs of the evaluation suite: any accepted form of ECGs read into an :class:`ECGSet`, and pairing.

Accepted forms (:func:`load_ecg_set`; signals ``(N, 12, L)`` float32 mV in WFDB lead order, a rate and one
table row per record):

* a prepared cache folder (split ``"test"`` unless given), ``(cache, split)`` with a split name or a list
  of folds, or an object with ``.signals`` and ``.records`` (``midtecg.data.cache.PreparedData``);
* a ``SampledECGs`` or ``GenerationResult`` (``midtecg.generate``);
* a folder of WFDB records (conditions from a ``conditions.csv`` next to them or in the folder above,
  matched on its ``name`` column, else from the records' ``key: value`` header comments), an ``.npz``
  written by :func:`midtecg.io.save_npz`, or a generation folder holding either;
* arrays: ``signals``, ``(signals, table)``, ``(signals, table, fs)`` or ``{"signals", "records" |
  "conditions", "fs"}``.

Pairing (:func:`pair_records`) is by ``ecg_id`` only: both tables must carry one (a ``name`` such as
``synth_ecg00017``, written by ``midtecg generate --paired``, also gives one). Sets that do not pair by id are
unpaired: records are never paired by their order, because an unlabelled set in the same order as the test
records is a coincidence, not a pairing.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from midtecg.data.demographics import parse_sex
from midtecg.data.errors import DataError
from midtecg.data.labels import SCP_CODES, labels_to_vector
from midtecg.data.leads import WFDB_LEADS, wfdb_order
from midtecg.data.signals import check_signals

__all__ = ["ECGSet", "load_ecg_set", "pair_records", "check_compatible", "default_train_source", "DEMOGRAPHICS"]

DEMOGRAPHICS = ("age", "sex", "height", "weight", "heart_rate")
_ID_PATTERNS = (re.compile(r"ecg_?0*(\d+)$", re.IGNORECASE), re.compile(r"^0*(\d+)_(?:lr|hr)$"))


@dataclass
class ECGSet:
    """One set of 12-lead ECGs: ``signals (N, 12, L)`` float32 mV (WFDB order), ``fs`` (Hz or None when not
    known), ``table`` (one row per record: ``ecg_id``, demographics, SCP code columns, ... as available),
    ``source`` (what it was read from) and ``split``."""

    signals: np.ndarray
    fs: float | None
    table: pd.DataFrame
    source: str
    split: Any = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.signals.shape[0])

    @property
    def length(self) -> int:
        return int(self.signals.shape[-1])

    def subset(self, index) -> ECGSet:
        index = np.asarray(index, dtype=np.int64)
        return ECGSet(
            np.ascontiguousarray(self.signals[index]),
            self.fs,
            self.table.iloc[index].reset_index(drop=True),
            self.source,
            self.split,
            list(self.notes),
        )

    def ids(self) -> np.ndarray | None:
        """``ecg_id`` per record (int64), or None when the table has none for some record."""
        if "ecg_id" not in self.table.columns:
            return None
        ids = pd.to_numeric(self.table["ecg_id"], errors="coerce")
        if ids.isna().any():
            return None
        return ids.to_numpy().astype(np.int64)

    def labels71(self) -> np.ndarray | None:
        """(N, 71) multi-hot SCP statements, or None when the table does not carry them."""
        if not all(code in self.table.columns for code in SCP_CODES):
            return None
        y = self.table[list(SCP_CODES)].apply(pd.to_numeric, errors="coerce").fillna(0.0).to_numpy(np.float32)
        return (y > 0.5).astype(np.float32)

    def column(self, name: str) -> np.ndarray | None:
        """A numeric demographic column (NaN where missing), or None when absent or all missing."""
        if name not in self.table.columns:
            return None
        values = pd.to_numeric(self.table[name], errors="coerce").to_numpy(np.float64)
        return values if np.isfinite(values).any() else None

    def describe(self) -> dict:
        return {
            "source": self.source,
            "split": self.split,
            "n": len(self),
            "fs": self.fs,
            "length": self.length,
            "leads": int(self.signals.shape[1]),
            "seconds": (self.length / self.fs) if self.fs else None,
            "has_ecg_id": self.ids() is not None,
            "has_labels": self.labels71() is not None,
            "columns": [str(c) for c in self.table.columns if str(c) not in set(SCP_CODES)],
        }


def _as_signals(signals, lead_names, where: str) -> np.ndarray:
    """Float32 ``(N, 12, L)`` millivolts in WFDB lead order (a single ``(12, L)`` record becomes N = 1)."""
    x = np.asarray(signals) if not isinstance(signals, np.ndarray) else signals
    if x.ndim == 2:
        x = x[None]
    x = check_signals(x, where, n_leads=len(WFDB_LEADS))
    if lead_names is not None:
        try:
            order = wfdb_order(lead_names, where)
        except ValueError as error:
            raise DataError(where, str(error).removeprefix(f"{where}: ")) from None
        if order != list(range(len(WFDB_LEADS))):
            x = x[:, order]
    return np.ascontiguousarray(x)


def _normalize_table(table, n: int, where: str, notes: list[str]) -> pd.DataFrame:
    """One row per record with numeric demographics, ``ecg_id`` when derivable and SCP columns when the
    labels are known (from the columns themselves or a comma-separated ``labels`` column)."""
    if table is None:
        return pd.DataFrame(index=range(n))
    if isinstance(table, dict):
        table = pd.DataFrame({k: np.asarray(v).tolist() if np.ndim(v) > 1 else v for k, v in table.items()})
    if not isinstance(table, pd.DataFrame):
        raise DataError(where, f"conditions / records must be a DataFrame, not {type(table).__name__}")
    if len(table) != n:
        raise DataError(where, f"the table has {len(table)} rows for {n} signals")
    t = table.reset_index(drop=True).copy()
    t.columns = [str(c) for c in t.columns]
    for name in DEMOGRAPHICS:
        if name in t.columns:
            text = not pd.api.types.is_numeric_dtype(t[name])  # object before pandas 3, str from pandas 3 on
            t[name] = (
                t[name].map(lambda v: parse_sex(v, strict=False))
                if name == "sex" and text
                else pd.to_numeric(t[name], errors="coerce")
            )
    if "ecg_id" not in t.columns and "name" in t.columns:
        ids = []
        for name in t["name"].astype(str):
            base = Path(name).name
            match = next((m for m in (p.search(base) for p in _ID_PATTERNS) if m), None)
            ids.append(int(match.group(1)) if match else None)
        if all(i is not None for i in ids) and len(set(ids)) == len(ids):
            t["ecg_id"] = ids
    if not all(code in t.columns for code in SCP_CODES) and "labels" in t.columns:
        rows = []
        try:
            for text in t["labels"]:
                items = (
                    []
                    if text is None or (isinstance(text, float) and math.isnan(text))
                    else [s.strip() for s in str(text).split(",")]
                )
                rows.append(labels_to_vector([s for s in items if s and s.lower() != "none"]))
        except ValueError as exc:
            notes.append(f"{where}: labels not read ({exc}); label-based breakdowns and utility are skipped")
        else:
            labels = pd.DataFrame(np.stack(rows) if rows else np.zeros((0, len(SCP_CODES))), columns=list(SCP_CODES))
            t = pd.concat([t.drop(columns=[c for c in SCP_CODES if c in t.columns]), labels], axis=1)
    return t


def _find_conditions_csv(folder: Path) -> Path | None:
    for candidate in (folder / "conditions.csv", folder.parent / "conditions.csv"):
        if candidate.is_file():
            return candidate
    return None


def _from_wfdb_folder(folder: Path, role: str, notes: list[str]) -> tuple[np.ndarray, float, pd.DataFrame]:
    import wfdb

    from midtecg.io import read_wfdb_folder

    signals, names, comments = read_wfdb_folder(folder, typed=True)
    first = next(
        p
        for p in sorted(folder.glob("**/*.hea"))
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
    fs = float(wfdb.rdheader(str(first.with_suffix(""))).fs)
    base_names = [Path(n).name for n in names]
    csv = _find_conditions_csv(folder)
    table = None
    if csv is not None:
        frame = pd.read_csv(csv)
        if "name" in frame.columns:
            frame["name"] = frame["name"].astype(str)
            lookup = {name: i for i, name in enumerate(frame["name"])}
            missing = [n for n in base_names if n not in lookup]
            if not missing:
                table = frame.iloc[[lookup[n] for n in base_names]].reset_index(drop=True)
            else:
                notes.append(
                    f"{role}: {csv} has no row for {len(missing)} record(s) (e.g. {missing[0]}); "
                    "conditions taken from the header comments"
                )
        elif len(frame) == len(base_names):
            table = frame
            notes.append(f"{role}: {csv} has no name column; rows matched to the records by sorted name")
        else:
            notes.append(
                f"{role}: {csv} has {len(frame)} rows for {len(base_names)} records and no name "
                "column; conditions taken from the header comments"
            )
        if table is not None:
            notes.append(f"{role}: conditions read from {csv}")
    if table is None:
        table = pd.DataFrame([{k: v for k, v in c.items() if k != "_text"} for c in comments])
        if "name" not in table.columns:
            table.insert(0, "name", base_names)
    return signals, fs, table


def _from_path(path, role: str, split, notes: list[str]) -> tuple:
    """-> (signals, fs, table, source, split, lead_names)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{role}: {p} does not exist")
    if p.is_dir() and (p / "manifest.json").is_file():
        from midtecg.data.cache import load_prepared

        split = "test" if split is None else split
        data = load_prepared(p, split=split)
        manifest = dict(getattr(data, "manifest", {}) or {})
        fs = manifest.get("rate", manifest.get("fs"))
        return data.signals, (float(fs) if fs else None), data.records, f"cache {p}", split, None
    if split is not None:
        raise DataError(role, f"a split ({split!r}) was given but {p} is not a prepared cache (no manifest.json)")
    if p.is_file() and p.suffix == ".npz":
        from midtecg.io import load_npz

        loaded = load_npz(p)
        table = loaded.conditions
        if isinstance(table, dict):
            table = pd.DataFrame({k: list(v) if np.ndim(v) > 1 else v for k, v in table.items()})
        return loaded.signals, float(loaded.fs), table, f"npz {p}", None, loaded.lead_names
    if p.is_dir():
        headers = [h for h in p.glob("**/*.hea") if not any(part.startswith(".") for part in h.relative_to(p).parts)]
        if headers:
            signals, fs, table = _from_wfdb_folder(p, role, notes)
            return signals, fs, table, f"WFDB folder {p}", None, None
        npz = sorted(p.glob("*.npz"))
        if len(npz) == 1:
            return _from_path(npz[0], role, None, notes)
        raise DataError(role, f"{p} holds no WFDB record (.hea), no single .npz and no prepared cache")
    raise DataError(role, f"{p}: expected a prepared cache folder, a WFDB folder or an .npz file")


def load_ecg_set(
    source, *, role: str = "ECGs", split=None, fs: float | None = None, notes: list[str] | None = None
) -> ECGSet:
    """Read any accepted input (see the module docstring) into an :class:`ECGSet`.

    ``split`` applies to a prepared cache given as a bare path; ``fs`` is the rate of arrays that carry
    none (a set that does carry one must agree with it).
    """
    shared = [] if notes is None else notes
    notes: list[str] = []
    if isinstance(source, ECGSet):
        return source
    lead_names = None
    table = None
    rate = None
    origin = "arrays"
    if hasattr(source, "ecgs") and hasattr(source.ecgs, "signals"):  # GenerationResult
        source = source.ecgs
    if isinstance(source, (str, os.PathLike)):
        signals, rate, table, origin, split, lead_names = _from_path(source, role, split, notes)
    elif isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], (str, os.PathLike)):
        signals, rate, table, origin, split, lead_names = _from_path(source[0], role, source[1], notes)
    elif isinstance(source, tuple):
        if not 1 <= len(source) <= 3:
            raise DataError(role, "expected (signals, table) or (signals, table, fs)")
        signals = source[0]
        table = source[1] if len(source) > 1 else None
        rate = source[2] if len(source) > 2 else None
    elif isinstance(source, dict):
        if "signals" not in source:
            raise DataError(role, "a dict input needs a 'signals' entry")
        signals = source["signals"]
        table = source.get("records", source.get("conditions"))
        rate = source.get("fs")
        lead_names = source.get("lead_names")
    elif hasattr(source, "signals"):
        signals = source.signals
        table = getattr(source, "records", None)
        if table is None:
            table = getattr(source, "conditions", None)
        rate = getattr(source, "fs", None)
        if rate is None:
            manifest = getattr(source, "manifest", None) or {}
            rate = manifest.get("rate", manifest.get("fs")) if isinstance(manifest, dict) else None
        lead_names = getattr(source, "lead_names", None)
        origin = type(source).__name__
    elif isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        signals = source
    elif source is None:
        raise DataError(role, "no input given")
    else:
        raise DataError(role, f"cannot read ECGs from a {type(source).__name__}")
    x = _as_signals(signals, lead_names, role)
    if x.shape[0] == 0:
        raise DataError(role, "no records")
    if rate is not None:
        rate = float(rate)
        if not rate > 0:
            raise DataError(role, f"sampling rate must be positive, got {rate}")
        if fs is not None and not math.isclose(rate, float(fs)):
            raise DataError(role, f"sampled at {rate:g} Hz but fs={float(fs):g} Hz was requested (no resampling)")
    elif fs is not None:
        rate = float(fs)
    t = _normalize_table(table, x.shape[0], role, notes)
    shared.extend(notes)
    return ECGSet(x, rate, t, origin, split, notes)


def default_train_source(real_source):
    """``(cache, "train")`` when ``real`` names a prepared cache, else None."""
    path = None
    if isinstance(real_source, (str, os.PathLike)):
        path = real_source
    elif isinstance(real_source, tuple) and len(real_source) == 2 and isinstance(real_source[0], (str, os.PathLike)):
        path = real_source[0]
    elif hasattr(real_source, "path") and hasattr(real_source, "records"):
        path = real_source.path
    if path is not None and (Path(path) / "manifest.json").is_file():
        return (path, "train")
    return None


def check_compatible(reference: ECGSet, other: ECGSet, what: str) -> None:
    if reference.fs is not None and other.fs is not None and not math.isclose(reference.fs, other.fs):
        raise DataError(
            what,
            f"sampled at {other.fs:g} Hz but the real ECGs at {reference.fs:g} Hz; "
            "generate or prepare both at one rate (no resampling here)",
        )
    if other.length != reference.length:
        raise DataError(
            what,
            f"{other.length} samples per record but the real ECGs have {reference.length}; "
            "all sets need the same length",
        )
    if other.signals.shape[1] != reference.signals.shape[1]:
        raise DataError(what, f"{other.signals.shape[1]} leads but the real ECGs have {reference.signals.shape[1]}")


def pair_records(real: ECGSet, synth: ECGSet) -> dict:
    """Match synthetic to real records by ``ecg_id`` (never by order). Returns ``{"method": "ecg_id" | None,
    "real_index", "synth_index", "n_pairs", "reason"}`` (indices as int64 arrays; empty when unpaired)."""
    empty = np.zeros(0, dtype=np.int64)

    def unpaired(reason: str) -> dict:
        return {"method": None, "real_index": empty, "synth_index": empty, "n_pairs": 0, "reason": reason}

    rid, sid = real.ids(), synth.ids()
    if rid is None or sid is None:
        missing = " and ".join(name for name, ids in (("real", rid), ("synthetic", sid)) if ids is None)
        return unpaired(
            f"the {missing} records carry no ecg_id, so they cannot be paired (sets are never paired by order)"
        )
    if len(np.unique(rid)) != len(rid):
        return unpaired("the real ecg_ids are not unique")
    lookup = {int(v): i for i, v in enumerate(rid)}
    si = np.array([j for j, v in enumerate(sid) if int(v) in lookup], dtype=np.int64)
    if si.size == 0:
        return unpaired("no synthetic ecg_id matches a real record (another split?)")
    ri = np.array([lookup[int(sid[j])] for j in si], dtype=np.int64)
    reason = "" if si.size == len(synth) else f"{len(synth) - si.size} synthetic record(s) have no real partner"
    return {"method": "ecg_id", "real_index": ri, "synth_index": si, "n_pairs": int(si.size), "reason": reason}
