"""The prepared cache: what `midtecg prepare` writes and training and evaluation read in seconds.

``OUT/signals.npy``   float32 (N, 12, L) millivolts, WFDB lead order, memory-mappable (written through
                      ``np.lib.format.open_memmap``), rows in ``ecg_id`` order;
``OUT/records.csv``   one row per signal row: ecg_id, patient_id, strat_fold, age, sex, height, weight,
                      heart_rate and one 0/1 column per SCP code (alphabetical). Missing demographics are blank
                      (NaN), never 0; ``heart_rate`` (bpm, :mod:`midtecg.data.heart_rate`) is blank where it
                      cannot be measured;
``OUT/manifest.json`` source, rate, length, lead names, counts, the content hash of the inputs and the
                      settings, midtecg version, format version. Written last: a cache without it is incomplete.

Building: everything is written in a temporary folder ``OUT/.tmp-XXXX``; the old manifest is removed first,
the data files are moved into place with ``os.replace`` and the manifest goes last, so an interrupted run
never leaves a cache that looks complete (a killed run may leave a ``.tmp-*`` folder; the next run removes
it). One process reads the records (about 5 ms per record, I/O and ``wfdb`` parsing; on two shared cores a
process pool did not pay off).

No-op reruns: the manifest keeps ``source_hash``, a SHA-256 over the settings, the metadata files, the
selected record table and the **bytes** of every selected record file, plus a quick fingerprint of the same
files' paths, sizes and modification times. A rerun whose fingerprint matches returns at once; when only
the fingerprint differs (e.g. the dataset was copied) the content hash decides.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import midtecg
from midtecg.data.demographics import DEMOGRAPHIC_COLUMNS, clean_demographics, demographics_array
from midtecg.data.errors import DataError, DataWarning
from midtecg.data.heart_rate import heart_rate_bpm
from midtecg.data.labels import SCP_CODES, aggregate_labels, labels_matrix, parse_scp_codes
from midtecg.data.leads import WFDB_LEADS
from midtecg.data.ptbxl import (
    DEFAULT_SPLITS,
    check_folds,
    load_ptbxl_metadata,
    read_ptbxl_record,
    record_path,
    resolve_folds,
)
from midtecg.data.wfdb_folder import load_folder_metadata, read_folder_record
from midtecg.files import atomic_write_text

__all__ = ["FORMAT_VERSION", "FILES", "RECORD_COLUMNS", "PreparedData", "load_prepared", "prepare", "is_prepared"]

FORMAT_VERSION = 1
FILES = ("signals.npy", "records.csv", "manifest.json")
RECORD_COLUMNS = ("ecg_id", "patient_id", "strat_fold", "age", "sex", "height", "weight", "heart_rate")
_HASH_BLOCK = 1 << 20


@dataclass
class PreparedData:
    """A prepared cache (or a selection of it): ``signals`` (N, 12, L) float32 mV (a read-only memmap when
    loaded whole or by a contiguous selection), ``records`` (N rows, ``records.csv``), ``manifest``."""

    signals: np.ndarray
    records: pd.DataFrame
    manifest: dict
    path: Path

    def __len__(self) -> int:
        return len(self.records)

    @property
    def fs(self) -> int:
        """Sampling rate in Hz."""
        return int(self.manifest["rate"])

    @property
    def lead_names(self) -> tuple[str, ...]:
        return tuple(self.manifest.get("lead_names", WFDB_LEADS))

    def labels(self, name: str = "all") -> np.ndarray:
        """(N, 71) float32 multi-hot SCP labels in alphabetical code order, or label subset ``name``
        (diagnostic, subdiagnostic, superdiagnostic, form, rhythm) as (N, k)."""
        y = self.records[list(SCP_CODES)].to_numpy(dtype=np.float32)
        return y if name == "all" else aggregate_labels(y, name)

    def demographics(self) -> tuple[np.ndarray, np.ndarray]:
        """``(values, present)``: (N, 4) float32 age, sex, height, weight with NaN where missing, and the mask."""
        return demographics_array(self.records)

    def select(self, mask) -> PreparedData:
        """Rows picked by a boolean mask or integer indices. A contiguous selection stays a memmap view;
        any other is read into memory."""
        index = np.asarray(mask)
        if index.dtype == bool:
            if index.shape != (len(self.records),):
                raise ValueError(f"mask of shape {index.shape} for {len(self.records)} records")
            index = np.flatnonzero(index)
        index = index.astype(np.int64).ravel()
        if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
            signals = self.signals[index[0] : index[0] + len(index)]
        else:
            signals = np.asarray(self.signals[index])
        return PreparedData(signals, self.records.iloc[index].reset_index(drop=True), self.manifest, self.path)


def is_prepared(path: str | Path) -> bool:
    """True when ``path`` holds a complete cache (all three files, manifest readable)."""
    path = Path(path)
    if not all((path / name).is_file() for name in FILES):
        return False
    try:
        json.loads((path / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return True


def load_prepared(path: str | Path, split=None, mmap: bool = True) -> PreparedData:
    """Open a cache; ``split`` is None (all), "train" / "val" / "test" (folds 1-8 / 9 / 10), a fold or a list
    of folds. ``mmap=True`` maps ``signals.npy`` read-only instead of reading it."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        hint = "an interrupted or unfinished `midtecg prepare`" if path.is_dir() else "no such folder"
        raise FileNotFoundError(f"{path} is not a complete midtecg cache ({hint}): run `midtecg prepare SOURCE {path}`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable manifest.json ({error}); prepare it again") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: cache format {manifest.get('format_version')} is not {FORMAT_VERSION}; prepare it again"
        )
    for name in FILES[:2]:
        if not (path / name).is_file():
            raise FileNotFoundError(f"{path} is not a complete midtecg cache: {name} is missing; prepare it again")
    try:
        signals = np.load(path / "signals.npy", mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, EOFError) as error:  # truncated or not an .npy
        raise ValueError(f"{path / 'signals.npy'}: unreadable ({error}); prepare it again") from None
    if signals.dtype != np.float32:  # e.g. int16 digital units: never read them as millivolts
        raise ValueError(
            f"{path / 'signals.npy'}: samples are {signals.dtype}, a cache holds float32 millivolts; prepare it again"
        )
    records = pd.read_csv(path / "records.csv")
    if len(records) != len(signals):
        raise ValueError(
            f"{path}: records.csv has {len(records)} rows but signals.npy {len(signals)}; prepare it again"
        )
    expected = manifest.get("shape")
    if expected is not None and list(signals.shape) != list(expected):
        raise ValueError(
            f"{path}: signals.npy has shape {signals.shape}, the manifest says {expected}; prepare it again"
        )
    missing = [c for c in ("ecg_id", "strat_fold") if c not in records.columns]
    if missing:
        raise ValueError(f"{path / 'records.csv'}: column(s) {missing} missing; prepare it again")
    check_folds(records["strat_fold"], records["ecg_id"], f"{path / 'records.csv'} ecg_id")
    data = PreparedData(signals, records, manifest, path)
    folds = resolve_folds(split)
    return data if folds is None else data.select(records["strat_fold"].isin(folds).to_numpy())


def _is_ptbxl(source: Path) -> bool:
    return (source / "ptbxl_database.csv").is_file()


def _header_files(hea: Path) -> list[Path]:
    """The header and the signal files it names (a cheap text parse)."""
    files = [hea]
    try:
        lines = [ln for ln in hea.read_text(errors="replace").splitlines() if ln.strip() and not ln.startswith("#")]
        n_sig = int(lines[0].split()[1])
        for line in lines[1 : 1 + n_sig]:
            f = hea.parent / line.split()[0]
            if f not in files:
                files.append(f)
    except (OSError, IndexError, ValueError):
        pass
    return files


def _record_files(paths: list[Path], ptbxl: bool) -> list[list[Path]]:
    if ptbxl:
        return [[p.with_name(p.name + ".hea"), p.with_name(p.name + ".dat")] for p in paths]
    return [_header_files(p.with_name(p.name + ".hea")) for p in paths]


def _metadata_files(source: Path, ptbxl: bool, conditions) -> list[Path]:
    if ptbxl:
        return [source / "ptbxl_database.csv"]
    from midtecg.data.wfdb_folder import find_conditions_csv

    csv = Path(conditions) if conditions else find_conditions_csv(source)
    return [csv] if csv is not None else []


def _fingerprint(files: list[Path], settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for f in files:
        st = f.stat()
        digest.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _content_hash(files: list[Path], source: Path, table: pd.DataFrame, settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(pd.util.hash_pandas_object(table.astype(str), index=True).values.tobytes())
    for f in files:
        try:
            name = f.relative_to(source)
        except ValueError:
            name = f
        digest.update(f"{name}\0{f.stat().st_size}\n".encode())
        with open(f, "rb") as handle:
            while block := handle.read(_HASH_BLOCK):
                digest.update(block)
    return digest.hexdigest()


def _old_manifest(out: Path) -> dict | None:
    return json.loads((out / "manifest.json").read_text()) if is_prepared(out) else None


def _remove_stale_tmp(out: Path) -> None:
    """Remove ``.tmp-*`` folders left by killed runs (their process no longer exists)."""
    for tmp in out.glob(".tmp-*"):
        try:
            pid = int((tmp / "pid").read_text())
            os.kill(pid, 0)
            if pid != os.getpid():
                continue  # another prepare is running into the same folder
        except (OSError, ValueError):
            pass
        shutil.rmtree(tmp, ignore_errors=True)


def prepare(
    source: str | Path,
    out: str | Path,
    rate: int = 100,
    source_rate: str = "500",
    folds=None,
    on_missing: str = "error",
    conditions: str | Path | None = None,
    strict: bool = False,
    progress: bool = True,
) -> Path:
    """Cache a PTB-XL folder (or a generic WFDB folder + conditions CSV) at ``rate`` Hz; returns ``out``.

    ``source_rate``: "500" (default: the 500 Hz files, resampled) or "100" (the official 100 Hz files) for
    PTB-XL; generic folders are always read at their own rate. ``folds`` restricts the cache to some folds
    (a split name, a fold or a list). ``on_missing``: "error" (default) stops before any work when a listed
    record is absent on disk, naming it; "skip" leaves such records out with one warning. ``strict`` turns data
    warnings (flat leads, impossible demographics set to missing) into errors. ``conditions``: the CSV of a
    generic folder when it is not ``SOURCE/conditions.csv``. See the module docstring for the files.
    """
    started = time.perf_counter()
    source, out = Path(source), Path(out)
    if on_missing not in ("error", "skip"):
        raise ValueError(f"on_missing must be 'error' or 'skip', got {on_missing!r}")
    rate = int(rate)
    if rate not in (100, 500):
        raise ValueError(f"rate must be 100 or 500 Hz, got {rate}")
    if str(source_rate) not in ("500", "100"):
        raise ValueError(f"source_rate must be '500' or '100', got {source_rate!r}")
    source_rate = str(source_rate)
    if not source.is_dir():
        raise FileNotFoundError(f"source folder not found: {source}")
    ptbxl = _is_ptbxl(source)
    if ptbxl and source_rate == "100" and rate != 100:
        raise ValueError("the official 100 Hz files cannot give 500 Hz signals; use source_rate='500'")
    table = load_ptbxl_metadata(source) if ptbxl else load_folder_metadata(source, conditions)
    wanted = resolve_folds(folds)
    if wanted is not None:
        table = table[table["strat_fold"].isin(wanted)]
    paths = [record_path(source, row, source_rate) if ptbxl else source / row["record"] for _, row in table.iterrows()]
    record_files = _record_files(paths, ptbxl)
    present = np.array([all(f.is_file() for f in files) for files in record_files], dtype=bool)
    skipped: list = []
    if not present.all():
        missing = [f"ecg_id {i} ({p})" for i, p, ok in zip(table["ecg_id"], paths, present) if not ok]
        if on_missing == "error":
            raise DataError(
                missing[0],
                f"record file missing; {len(missing)} of {len(table)} listed records are "
                f"absent (first: {', '.join(missing[:5])}). Pass on_missing='skip' / --skip-missing "
                "to leave them out",
            )
        warnings.warn(
            f"{source}: skipping {len(missing)} listed record(s) absent on disk: {', '.join(missing[:10])}"
            f"{' ...' if len(missing) > 10 else ''}",
            DataWarning,
            stacklevel=2,
        )
        skipped = [int(i) for i, ok in zip(table["ecg_id"], present) if not ok]
        table = table[present]
        paths = [p for p, ok in zip(paths, present) if ok]
        record_files = [f for f, ok in zip(record_files, present) if ok]
    if table.empty:
        raise DataError(str(source), "no records to prepare")
    settings = {
        "rate": rate,
        "source_rate": source_rate if ptbxl else "native",
        "folds": wanted,
        "on_missing": on_missing,
        "strict": strict,
        "format_version": FORMAT_VERSION,
    }
    inputs = _metadata_files(source, ptbxl, conditions) + [f for files in record_files for f in files]
    fingerprint = _fingerprint(inputs, settings)
    out.mkdir(parents=True, exist_ok=True)
    _remove_stale_tmp(out)
    old = _old_manifest(out)
    if old is not None and old.get("input_fingerprint") == fingerprint:
        return out
    source_hash = _content_hash(inputs, source, table.drop(columns=["scp_codes"]), settings)
    if old is not None and old.get("source_hash") == source_hash:
        atomic_write_text(out / "manifest.json", json.dumps({**old, "input_fingerprint": fingerprint}, indent=2))
        return out

    records = _records_table(table, ptbxl, strict)
    length = 10 * rate
    (out / "manifest.json").unlink(missing_ok=True)  # from here on the old cache is no longer complete
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out))
    (tmp / "pid").write_text(str(os.getpid()))
    flat: dict[str, str] = {}
    try:
        signals = np.lib.format.open_memmap(
            tmp / "signals.npy", mode="w+", dtype=np.float32, shape=(len(table), 12, length)
        )
        rows = tqdm(table.iterrows(), total=len(table), desc="prepare", unit="rec", disable=not progress)
        for i, (_, row) in enumerate(rows):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DataWarning)
                signals[i] = (
                    read_ptbxl_record(source, row, rate, source_rate, strict)
                    if ptbxl
                    else read_folder_record(source, row, rate, strict)
                )
            for w in caught:
                if issubclass(w.category, DataWarning):
                    flat[str(row["ecg_id"])] = str(w.message)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        if flat:
            warnings.warn(
                f"{source}: {len(flat)} record(s) have flat leads and were kept: "
                f"{'; '.join(list(flat.values())[:5])}{' ...' if len(flat) > 5 else ''}",
                DataWarning,
                stacklevel=2,
            )
        signals.flush()
        records["heart_rate"] = np.round(heart_rate_bpm(signals, rate), 2)
        del signals
        records.to_csv(tmp / "records.csv", index=False)
        manifest = _manifest(
            source,
            ptbxl,
            records,
            settings,
            source_hash,
            fingerprint,
            rate,
            length,
            skipped,
            flat,
            time.perf_counter() - started,
        )
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        for name in FILES:  # manifest last: the cache is complete only once it is in place
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def _manifest(
    source: Path,
    ptbxl: bool,
    records: pd.DataFrame,
    settings: dict,
    source_hash: str,
    fingerprint: str,
    rate: int,
    length: int,
    skipped: list,
    flat: dict,
    seconds: float,
) -> dict:
    fold_counts = records["strat_fold"].value_counts().sort_index()
    labels = records[list(SCP_CODES)].sum()
    return {
        "format_version": FORMAT_VERSION,
        "midtecg_version": midtecg.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": str(source.resolve()),
        "source_kind": "ptbxl" if ptbxl else "wfdb-folder",
        "source_hash": source_hash,
        "input_fingerprint": fingerprint,
        "rate": rate,
        "length": length,
        "lead_names": list(WFDB_LEADS),
        "units": "mV",
        "dtype": "float32",
        "shape": [len(records), 12, length],
        "count": len(records),
        "settings": settings,
        "folds": {str(k): int(v) for k, v in fold_counts.items()},
        "splits": {name: int(records["strat_fold"].isin(f).sum()) for name, f in DEFAULT_SPLITS.items()},
        "labels": {code: int(n) for code, n in labels.items() if n},
        "missing": {c: int(records[c].isna().sum()) for c in DEMOGRAPHIC_COLUMNS},
        "heart_rate_missing": int(records["heart_rate"].isna().sum()),
        "skipped_missing": skipped,
        "flat_leads": flat,
        "seconds": round(seconds, 2),
    }


def _records_table(table: pd.DataFrame, ptbxl: bool, strict: bool) -> pd.DataFrame:
    what = "PTB-XL ecg_id" if ptbxl else "ecg_id"
    demographics = clean_demographics(table, strict=strict, what=what)
    labels = labels_matrix(
        parse_scp_codes(codes, f"{what} {ecg_id}") for ecg_id, codes in zip(table["ecg_id"], table["scp_codes"])
    ).astype(np.int8)
    records = pd.DataFrame(
        {
            "ecg_id": table["ecg_id"].astype(int).to_numpy(),
            "patient_id": table["patient_id"].to_numpy(),
            "strat_fold": table["strat_fold"].astype(int).to_numpy(),
            **{c: demographics[c].to_numpy() for c in DEMOGRAPHIC_COLUMNS},
            "heart_rate": np.nan,
        }
    )
    return pd.concat([records, pd.DataFrame(labels, columns=list(SCP_CODES))], axis=1)
